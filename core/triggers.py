"""Starting saved pipelines from events: matching triggers and starting each match once.

Each delivery has an id (GitHub's X-GitHub-Delivery, the registry's event id, Jenkins' build number
and phase, …) that becomes the execution's idempotency key, so a redelivered event maps to the same
workflow id and Temporal refuses to start it twice.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field
from temporalio.client import Client

from core.errors import ServiceError
from core.launch import start_execution
from core.policy import Identity, Policy
from core.settings import GennakerSettings
from core.store import PipelineStore
from workflows.model import PipelineInvalid, PipelineSpec, parse_pipeline
from workflows.state import TriggerInfo
from workflows.triggers import DockerTrigger, PipelineFinishedTrigger, Trigger

# A matcher looks at one enabled trigger of the right type: None means "start", a string says why
# not, and UNRELATED means the trigger watches something else (not worth reporting).
Matcher = Callable[[PipelineSpec, Trigger], str | None]
UNRELATED = ""
# Reasons starting with this mean the delivery could not prove it comes from the trigger's source.
AUTH_FAILED = "authentication failed"


class StartedExecution(BaseModel):
    id: str
    application: str
    pipeline: str
    replayed: bool = Field(description="This delivery had already started it")


class NotStarted(BaseModel):
    application: str
    pipeline: str
    reason: str


class DispatchResult(BaseModel):
    message: str
    started: list[StartedExecution] = Field(default_factory=list)
    notStarted: list[NotStarted] = Field(default_factory=list)


@dataclass
class TriggerEvent:
    kind: str  # the trigger `type` it can match
    delivery_id: str
    info: TriggerInfo
    matcher: Matcher


def full_match(pattern: str | None, value: str) -> bool:
    return pattern is None or re.fullmatch(pattern, value) is not None


def payload_value(payload: Any, dotted: str) -> Any:
    current = payload
    for part in dotted.split("."):
        if not isinstance(current, dict) or part not in current:
            return None
        current = current[part]
    return current


async def dispatch(
    client: Client,
    settings: GennakerSettings,
    store: PipelineStore,
    event: TriggerEvent,
    *,
    policy: Policy | None = None,
) -> DispatchResult:
    result = DispatchResult(message="")
    for saved in store.live_pipelines():
        try:
            spec = parse_pipeline(saved.config)
        except PipelineInvalid:
            continue  # saved under older rules; it cannot be triggered until saved again
        for index, trigger in enumerate(spec.triggers):
            if trigger.type != event.kind or not trigger.enabled:
                continue
            reason = event.matcher(spec, trigger)
            if reason == UNRELATED:
                continue
            if reason is not None:
                result.notStarted.append(NotStarted(application=spec.application, pipeline=spec.name, reason=reason))
                continue
            try:
                started = await start_execution(
                    client,
                    settings,
                    spec,
                    dict(trigger.parameters),
                    event.info.model_copy(update={"runAs": spec.serviceAccount or f"{event.kind}-trigger"}),
                    revision=saved.revision,
                    idempotency_key=f"{event.kind}:{event.delivery_id}:{index}",
                    policy=policy,
                    # A triggered run acts as the pipeline's serviceAccount (docs/security.md).
                    submitter=Identity(subject=spec.serviceAccount or f"{event.kind}-trigger", via="trigger"),
                )
            except PipelineInvalid as exc:
                result.notStarted.append(
                    NotStarted(application=spec.application, pipeline=spec.name, reason=f"parameters: {exc}")
                )
                continue
            except ServiceError as exc:
                reason = exc.message
                result.notStarted.append(NotStarted(application=spec.application, pipeline=spec.name, reason=reason))
                continue
            result.started.append(
                StartedExecution(
                    id=started.id, application=spec.application, pipeline=spec.name, replayed=started.replayed
                )
            )
    if result.started:
        result.message = f"started {len(result.started)} execution(s)"
    else:
        result.message = "no pipeline matched"
    return result


def only_authentication_failed(result: DispatchResult) -> bool:
    """True when triggers for this source exist but the delivery proved itself to none of them."""
    return (
        not result.started
        and bool(result.notStarted)
        and all(n.reason.startswith(AUTH_FAILED) for n in result.notStarted)
    )


async def dispatch_registry_push(
    client: Client,
    settings: GennakerSettings,
    store: PipelineStore,
    *,
    account: str,
    repository: str,
    tag: str,
    digest: str | None,
    delivery_id: str,
) -> DispatchResult:
    """A push to a registry account (its notification endpoint verified the sender)."""

    def matcher(spec: PipelineSpec, trigger: Trigger) -> str | None:
        assert isinstance(trigger, DockerTrigger)
        if (trigger.account, trigger.repository) != (account, repository):
            return UNRELATED
        if not full_match(trigger.tag, tag):
            return f"tag {tag!r} does not match {trigger.tag!r}"
        return None

    event = TriggerEvent(
        kind="docker",
        delivery_id=delivery_id,
        info=TriggerInfo(
            type="docker",
            source=f"registry:{account}",
            payload={"account": account, "repository": repository, "tag": tag, "digest": digest},
        ),
        matcher=matcher,
    )
    return await dispatch(client, settings, store, event)


async def dispatch_pipeline_finished(
    client: Client,
    settings: GennakerSettings,
    store: PipelineStore,
    *,
    application: str,
    pipeline: str,
    execution_id: str,
    status: str,
) -> DispatchResult:
    """Another pipeline ended: start those whose `pipeline` trigger waits for it."""

    def matcher(spec: PipelineSpec, trigger: Trigger) -> str | None:
        assert isinstance(trigger, PipelineFinishedTrigger)
        if (trigger.application, trigger.pipeline) != (application, pipeline):
            return UNRELATED
        if status not in trigger.status:
            return f"status {status} is not one of {', '.join(trigger.status)}"
        return None

    event = TriggerEvent(
        kind="pipeline",
        delivery_id=execution_id,
        info=TriggerInfo(
            type="pipeline",
            source=execution_id,
            payload={"application": application, "pipeline": pipeline, "status": status},
        ),
        matcher=matcher,
    )
    return await dispatch(client, settings, store, event)
