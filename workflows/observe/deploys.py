"""What counts as a deploy, a rollback and a failed change: shared by the live metrics
(workflows/telemetry.py) and the DORA figures computed from history (core/observability/dora.py)."""

from __future__ import annotations

from typing import Any

# Stage types that put a new version in front of users. Spinnaker's DORA-like reports use the same
# two: a server-group deploy and a manifest deploy.
DEPLOY_STAGE_TYPES = frozenset({"deploy", "deployManifest"})
# Stages whose success means an earlier change was taken back.
ROLLBACK_STAGE_TYPES = frozenset({"undoRolloutManifest", "rollbackCluster", "rollbackServerGroup"})
# A manual judgment answered with one of these inputs is a decision to roll back.
ROLLBACK_JUDGMENT_INPUTS = frozenset({"rollback", "roll back", "revert", "undo"})

FAILED_STATUSES = frozenset({"TERMINAL", "FAILED_CONTINUE", "STOPPED"})


def deploy_outcome(status: str, error: dict[str, Any] | None) -> tuple[str, str]:
    """(outcome, rollback_reason) of a finished deploy stage, as low-cardinality label values.

    outcome: succeeded | failed | canceled | skipped. rollback_reason: none when nothing was rolled
    back; otherwise unhealthy (the new group never became healthy), traffic (switching traffic
    failed), timeout, canceled, or failure. The phrases matched are the ones
    workflows/stages/deploy_strategies.py puts in front of its rollback message.
    """
    if status == "SUCCEEDED":
        return "succeeded", "none"
    if status == "SKIPPED":
        return "skipped", "none"
    error = error or {}
    message = str(error.get("message") or "")
    rolled_back = bool((error.get("details") or {}).get("rolledBack")) or "rolled back" in message
    if status == "CANCELED":
        return "canceled", "canceled" if rolled_back or "cleanup" in message else "none"
    if not rolled_back:
        return "failed", "none"
    if error.get("kind") == "timeout":
        return "failed", "timeout"
    if "never became healthy" in message:
        return "failed", "unhealthy"
    if "switching traffic" in message:
        return "failed", "traffic"
    return "failed", "failure"


def is_rollback_judgment(judgment_input: str | None) -> bool:
    return (judgment_input or "").strip().lower() in ROLLBACK_JUDGMENT_INPUTS
