"""The exception a stage raises to fail with a message people can act on."""

from __future__ import annotations

from typing import Any


class StageFailed(Exception):
    """Raised by a stage's `run` to fail the stage with a message people can act on."""

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}
