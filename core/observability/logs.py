"""Logging setup: human-readable text (default) or JSON lines (`GENNAKER_LOG_FORMAT=json`).

A JSON line carries the execution id (the workflow id), run id, workflow/activity type, task queue,
stage refId and account where known, from the `temporal_workflow` / `temporal_activity` extras the
SDK's loggers attach and from workflows/observe/context.py. Every message and exception text is
passed through `redact`, which removes what looks like a credential (`token=…`, `Bearer …`,
`password: …`, `user:pass@host`, a URL's query): a secret that a person put into a URL or header must not reach a
log aggregator even when some library logs the whole URL (httpx logs every request at INFO).
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from typing import Any

from core.observability.settings import TelemetrySettings, load_telemetry_settings
from workflows.observe.context import ACCOUNT, STAGE_REF

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_SECRET_WORDS = r"(?:authorization|x-api-key|api[_-]?key|access[_-]?token|token|password|passwd|secret|signature)"
_REDACTIONS = (
    # `Bearer <token>` first: the key pattern below would otherwise take only the word Bearer
    (re.compile(r"(?i)\b(bearer|basic)\s+(?!\*\*\*)[A-Za-z0-9._~+/=\-]+"), r"\1 ***"),
    # key=value, key: value, "key": "value" (query strings, headers, JSON, reprs); `_` may come before
    # the word (`api_token`, `client_secret`, `private_token`), which `\b` would not see as a boundary
    (re.compile(rf"(?i)((?<![a-z0-9]){_SECRET_WORDS}\b[\"']?\s*[:=]\s*[\"']?)(?!\*\*\*)([^\s\"'&,;}}\]]+)"), r"\1***"),
    (re.compile(r"(?i)(\b[a-z][a-z0-9+.\-]*://)[^/\s:@]+:[^/\s@]+@"), r"\1***@"),
    # A URL loses its query and fragment, as failure messages in history do (activities/egress.py
    # `redacted_url`): a credential may sit under any parameter name (`sig=` in a SAS URL, `key=`,
    # `code=`, `api_token=`), which the word list above cannot know.
    (re.compile(r"(?i)(\b[a-z][a-z0-9+.\-]*://[^\s?#\"'<>]*)[?#][^\s\"'<>]+"), "\\1?…"),
)
# Queues that the worker names after an account (workers/providers.py): k8s-<name>, registry-<name>.
_ACCOUNT_QUEUE = re.compile(r"^(?:k8s|registry)-(?P<account>[a-z0-9][a-z0-9\-]*)$")


def redact(text: str) -> str:
    for pattern, replacement in _REDACTIONS:
        text = pattern.sub(replacement, text)
    return text


class JsonLinesFormatter(logging.Formatter):
    """One JSON object per line; keys are stable so log pipelines can index them."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        workflow: dict[str, Any] = getattr(record, "temporal_workflow", None) or {}
        activity: dict[str, Any] = getattr(record, "temporal_activity", None) or _current_activity()
        queue = activity.get("task_queue") or workflow.get("task_queue")
        fields = {
            "execution_id": workflow.get("workflow_id") or activity.get("workflow_id"),
            "run_id": workflow.get("run_id") or activity.get("workflow_run_id"),
            "workflow_type": workflow.get("workflow_type") or activity.get("workflow_type"),
            "activity_type": activity.get("activity_type"),
            "attempt": activity.get("attempt") or workflow.get("attempt"),
            "task_queue": queue,
            "stage": getattr(record, "stage", None) or STAGE_REF.get(),
            "account": getattr(record, "account", None) or ACCOUNT.get() or _account_of(queue),
        }
        entry.update({k: v for k, v in fields.items() if v is not None})
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, default=str, ensure_ascii=False)


class RedactingTextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def _current_activity() -> dict[str, Any]:
    """Libraries (httpx, kubernetes) log without Temporal's extras; inside an activity (its context
    is set in the thread a sync activity runs on, too) the ids are still known."""
    from temporalio import activity

    if not activity.in_activity():
        return {}
    info = activity.info()
    return {
        "activity_type": info.activity_type,
        "workflow_id": info.workflow_id,
        "workflow_run_id": info.workflow_run_id,
        "workflow_type": info.workflow_type,
        "task_queue": info.task_queue,
        "attempt": info.attempt,
    }


def _account_of(queue: str | None) -> str | None:
    match = _ACCOUNT_QUEUE.match(queue or "")
    return match.group("account") if match else None


def configure_logging(settings: TelemetrySettings | None = None) -> None:
    """Set the root handler once per process (replacing `logging.basicConfig` in entry points)."""
    settings = settings or load_telemetry_settings()
    handler = logging.StreamHandler()
    if settings.log_format == "json":
        handler.setFormatter(JsonLinesFormatter())
        # The ids are fields of the JSON object; appending them to the message too would repeat them.
        from temporalio import activity, workflow

        workflow.logger.workflow_info_on_message = False
        activity.logger.activity_info_on_message = False
    else:
        handler.setFormatter(RedactingTextFormatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(settings.log_level.upper())
