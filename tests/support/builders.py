"""Small builders shared by the tests: stage dicts as a person would write them."""

from __future__ import annotations

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
