"""A bound on label values that tenants choose (application and pipeline names).

Every tenant may be hostile: one that creates thousands of pipelines must not create thousands of
time series per metric. The first `limit` distinct combinations are kept; later ones are reported
under `OTHER`. Pure Python without I/O, so workflow code may use it (metrics never reach history).
"""

from __future__ import annotations

OTHER = "_other"


class LabelBudget:
    def __init__(self, limit: int = 2000) -> None:
        self.limit = limit
        self._seen: set[tuple[str, ...]] = set()

    def admit(self, *values: str) -> tuple[str, ...]:
        """`values` unchanged while the budget lasts (and always for combinations already seen)."""
        if values in self._seen:
            return values
        if len(self._seen) < self.limit:
            self._seen.add(values)
            return values
        return tuple(OTHER for _ in values)
