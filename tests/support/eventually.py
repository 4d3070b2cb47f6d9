"""The one bounded poll of the test suite (after the Temporal Python SDK's `tests/helpers`
`assert_eventually`): ask again until the answer is right, and fail showing the last answer."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pydantic import BaseModel

T = TypeVar("T")

_NOT_SEEN = object()


async def assert_eventually(
    check: Callable[[], Awaitable[T]] | Callable[[], T],
    predicate: Callable[[T], Any] | None = None,
    *,
    what: str,
    timeout: float,
    interval: float = 0.05,
    retry_on: tuple[type[BaseException], ...] = (),
) -> T:
    """Call `check` (sync or async) until `predicate(value)` holds (the value's truthiness without a
    predicate) and return that value. An AssertionError raised by `check` or `predicate` counts as
    "not yet", as do the exceptions named in `retry_on` (e.g. a query while a worker takes over).
    After `timeout` s fail with `what` and the last value (or error) seen."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last: Any = _NOT_SEEN
    while True:
        try:
            value = check()
            if inspect.isawaitable(value):
                value = await value
            last = value
            if predicate(value) if predicate is not None else value:
                return value  # type: ignore[return-value]
        except (AssertionError, *retry_on) as error:
            last = error
        if loop.time() >= deadline:
            raise AssertionError(f"{what}: not reached within {timeout:g}s; last seen: {_shown(last)}")
        await asyncio.sleep(interval)


def _shown(value: Any) -> str:
    if value is _NOT_SEEN:
        return "(nothing: the check never answered)"
    if isinstance(value, BaseException):
        return f"{type(value).__name__}: {value}"
    if isinstance(value, BaseModel):
        return value.model_dump_json(indent=1)
    return repr(value)
