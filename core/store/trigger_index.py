"""What the trigger index files a trigger under, and what a delivery looks up.

Both sides are here, side by side, so they stay in step: a trigger declaration is filed under
`trigger_key(trigger)`; a delivery of kind K whose trigger info names its source looks up
`delivery_key(K, info)`. Matching stays the dispatcher's job (secrets, branch and tag regexes,
statuses): the index only narrows a delivery to the pipelines that watch the same source, so a
delivery parses O(matching triggers) saved pipelines, not all of them (issue 11, item 5).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from pydantic import TypeAdapter, ValidationError

from workflows.state import TriggerInfo
from workflows.triggers import (
    DockerTrigger,
    GitTrigger,
    JenkinsTrigger,
    PipelineFinishedTrigger,
    Trigger,
    WebhookTrigger,
)

_TRIGGER: TypeAdapter[Trigger] = TypeAdapter(Trigger)


def _digest(kind: str, *parts: str) -> str:
    # A digest, not the joined text: fixed width for the database index, no separator ambiguity.
    return hashlib.sha256(json.dumps([kind, *parts]).encode()).hexdigest()


def trigger_key(trigger: Trigger) -> str | None:
    """The key of an event trigger; None for triggers no delivery starts (cron: Temporal Schedules)."""
    if isinstance(trigger, WebhookTrigger):
        return _digest("webhook", trigger.source)
    if isinstance(trigger, GitTrigger):
        return _digest("git", trigger.source, trigger.project, trigger.slug)
    if isinstance(trigger, JenkinsTrigger):
        return _digest("jenkins", trigger.master, trigger.job)
    if isinstance(trigger, DockerTrigger):
        return _digest("docker", trigger.account, trigger.repository)
    if isinstance(trigger, PipelineFinishedTrigger):
        return _digest("pipeline", trigger.application, trigger.pipeline)
    return None


def delivery_key(kind: str, info: TriggerInfo) -> str | None:
    """The key a delivery's triggers are filed under, from the trigger info the endpoint built."""
    payload = info.payload
    source = info.source or ""
    if kind == "webhook":
        return _digest("webhook", source)
    if kind == "git" and source.startswith("github:"):
        return _digest("git", "github", str(payload.get("project")), str(payload.get("slug")))
    if kind == "jenkins" and source.startswith("jenkins:"):
        master, _, job = source.removeprefix("jenkins:").partition("/")
        return _digest("jenkins", master, job)
    if kind == "docker" and source.startswith("registry:"):
        return _digest("docker", source.removeprefix("registry:"), str(payload.get("repository")))
    if kind == "pipeline":
        return _digest("pipeline", str(payload.get("application")), str(payload.get("pipeline")))
    return None


def index_entries(config: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(kind, key) of each enabled event trigger in a saved config; triggers that do not validate are
    skipped (the service validated the whole pipeline before saving; dispatch re-checks anyway)."""
    raw = config.get("triggers")
    entries: list[tuple[str, str]] = []
    for item in raw if isinstance(raw, list) else ():
        try:
            trigger = _TRIGGER.validate_python(item)
        except ValidationError:
            continue
        key = trigger_key(trigger) if trigger.enabled else None
        if key is not None and (trigger.type, key) not in entries:
            entries.append((trigger.type, key))
    return entries
