"""Small builders shared by the tests: stage dicts as a person would write them, and a bounded poll."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any


def wait(ref: str, seconds: Any = 0.2, *parents: str, **fields: Any) -> dict[str, Any]:
    return {"refId": ref, "type": "wait", "waitTime": seconds, "requisiteStageRefIds": list(parents), **fields}


def judgment(ref: str, *parents: str, **fields: Any) -> dict[str, Any]:
    return {"refId": ref, "type": "manualJudgment", "requisiteStageRefIds": list(parents), **fields}


def variables(ref: str, *parents: str, **values: Any) -> dict[str, Any]:
    return {
        "refId": ref,
        "type": "evaluateVariables",
        "requisiteStageRefIds": list(parents),
        "variables": [{"key": k, "value": v} for k, v in values.items()],
    }


async def eventually(
    fetch: Callable[[], Awaitable[Any]], predicate: Callable[[Any], bool], timeout: float = 20, what: str = ""
) -> Any:
    """Poll `fetch` until `predicate` holds; fail after `timeout` s showing the last value."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await fetch()
        if predicate(value):
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not reached in {timeout}s: {what}; last value: {value!r}")
        await asyncio.sleep(0.05)
