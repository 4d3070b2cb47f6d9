"""Starting saved pipelines from events: matching triggers and starting each match once.

Each delivery has an id (GitHub's X-GitHub-Delivery, the registry's event id, Jenkins' build number
and phase, …) that becomes the execution's idempotency key, so a redelivered event maps to the same
workflow id and Temporal refuses to start it twice.
"""

from __future__ import annotations

import logging
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
from core.store import AsyncPipelineStore
from core.store.trigger_index import delivery_key
from workflows.model import FieldError, PipelineInvalid, PipelineSpec, parse_pipeline
from workflows.state import TriggerInfo
from workflows.trigger_artifacts import docker_image_artifact
from workflows.triggers import DockerTrigger, PipelineFinishedTrigger, Trigger

log = logging.getLogger("gennaker.triggers")

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
    store: AsyncPipelineStore,
    event: TriggerEvent,
    *,
    policy: Policy | None = None,
) -> DispatchResult:
    result = DispatchResult(message="")
    # Only the pipelines whose triggers are filed under this delivery's source are read and parsed:
    # a delivery costs O(matching triggers), whatever else is saved (core/store/trigger_index.py).
    key = delivery_key(event.kind, event.info)
    candidates = [] if key is None else await store.trigger_candidates(event.kind, key)
    for saved in candidates:
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
            # Saved before its application's trigger secrets were restricted: it cannot claim the
            # delivery as its own (reported like a wrong secret: only to the gateway log).
            secret = getattr(trigger, "secret", None)
            refusal = (
                policy.trigger_secret_refusal(spec.application, secret)
                if reason is None and policy is not None and isinstance(secret, str)
                else None
            )
            if refusal is not None:
                reason = f"{AUTH_FAILED}: {refusal}"
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


def authenticated_answer(result: DispatchResult, source: str) -> DispatchResult | None:
    """What a sender may see of a dispatch, or None for "not authenticated".

    A sender that proved itself to no trigger learns nothing: no trigger for its source, a trigger
    whose secret the gateway lacks, and a wrong secret all look the same (None → one generic 401), so
    the endpoint cannot be used to probe which sources exist or which secrets they use. The reasons
    go to the gateway log. A sender that proved itself to at least one trigger sees why the others
    did not start, minus the authentication failures (they belong to other pipelines' secrets)."""
    refused = [n for n in result.notStarted if n.reason.startswith(AUTH_FAILED)]
    for entry in refused:
        log.warning("%s delivery not accepted by %s/%s: %s", source, entry.application, entry.pipeline, entry.reason)
    visible = [n for n in result.notStarted if not n.reason.startswith(AUTH_FAILED)]
    if not result.started and not visible:
        if not refused:
            log.warning("%s delivery matched no trigger", source)
        return None
    return result.model_copy(update={"notStarted": visible})


SecretLookup = Callable[[str], str | None]


def unconfigured_trigger_secrets(spec: PipelineSpec, secret: SecretLookup) -> list[FieldError]:
    """Triggers naming a secret the gateway does not hold: such a trigger could never fire, and
    finding out at the first delivery (a 401 that, on purpose, says nothing) is too late."""
    errors = []
    for index, trigger in enumerate(spec.triggers):
        name = getattr(trigger, "secret", None)
        if isinstance(name, str) and secret(name) is None:
            errors.append(
                FieldError(
                    field=f"triggers[{index}].secret",
                    message=f"secret {name!r} is not configured on the gateway (GENNAKER_TRIGGER_SECRET_"
                    f"{name.upper().replace('-', '_')} or the trigger secrets file)",
                )
            )
    return errors


def require_trigger_secrets(spec: PipelineSpec, settings: GennakerSettings) -> None:
    """PipelineInvalid (422) naming each trigger whose secret this gateway does not hold. Settings
    without trigger secrets (workers, CLI tools) check nothing: only the gateway receives deliveries."""
    lookup = getattr(settings, "trigger_secret", None)
    if not callable(lookup):
        return
    errors = unconfigured_trigger_secrets(spec, lookup)
    if errors:
        raise PipelineInvalid(errors)


async def dispatch_registry_push(
    client: Client,
    settings: GennakerSettings,
    store: AsyncPipelineStore,
    *,
    account: str,
    repository: str,
    tag: str,
    digest: str | None,
    delivery_id: str,
    registry_host: str | None = None,
    policy: Policy | None = None,
) -> DispatchResult:
    """A push to a registry account (its notification endpoint verified the sender). The run gets
    the image as a `docker/image` artifact, as Spinnaker's docker trigger does, for image binding."""

    def matcher(spec: PipelineSpec, trigger: Trigger) -> str | None:
        assert isinstance(trigger, DockerTrigger)
        if (trigger.account, trigger.repository) != (account, repository):
            return UNRELATED
        if not full_match(trigger.tag, tag):
            return f"tag {tag!r} does not match {trigger.tag!r}"
        # A push tells the run the tag and digest: only an application granted the repository
        # may learn them (policy `resources.repositories`), as with Find Image.
        if policy is not None:
            return policy.grants_for(spec.application).repository_refusal(repository)
        return None

    event = TriggerEvent(
        kind="docker",
        delivery_id=delivery_id,
        info=TriggerInfo(
            type="docker",
            source=f"registry:{account}",
            payload={"account": account, "repository": repository, "tag": tag, "digest": digest},
            artifacts=[docker_image_artifact(registry_host or "", repository, tag, digest)],
        ),
        matcher=matcher,
    )
    return await dispatch(client, settings, store, event, policy=policy)


async def dispatch_pipeline_finished(
    client: Client,
    settings: GennakerSettings,
    store: AsyncPipelineStore,
    *,
    application: str,
    pipeline: str,
    execution_id: str,
    status: str,
    policy: Policy | None = None,
) -> DispatchResult:
    """Another pipeline ended: start those whose `pipeline` trigger waits for it. With `policy` each
    run acts as its pipeline's serviceAccount with its application's grants, as webhook runs do."""

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
    return await dispatch(client, settings, store, event, policy=policy)
