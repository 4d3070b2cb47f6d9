"""The official client's `kubernetes.watch.Watch`, typed for the benchmarks' watch threads.

The client's API classes and models carry type hints (it ships py.typed), but its watch module
(kubernetes/watch/watch.py) has none, so under `mypy --strict` every call into it is an untyped call.
The three calls are wrapped here once, each ignore naming that reason, instead of in every watcher.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from kubernetes import watch


class EventStream:
    """One watch: `events(list_call, ...)` yields `{"type", "object"}` dicts until `stop()` or its timeout."""

    def __init__(self) -> None:
        self._watch = watch.Watch()  # type: ignore[no-untyped-call]  # watch.py has no annotations

    def events(self, list_call: Callable[..., Any], *args: Any, **kwargs: Any) -> Iterator[dict[str, Any]]:
        stream: Iterator[dict[str, Any]] = self._watch.stream(list_call, *args, **kwargs)  # type: ignore[no-untyped-call]  # as above
        return stream

    def stop(self) -> None:
        """Ends the stream after the event being handled (the client checks between events)."""
        self._watch.stop()  # type: ignore[no-untyped-call]  # as above
