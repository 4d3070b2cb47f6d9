"""Tenancy at submission: who submits, what the application may touch, and which other
applications the pipeline may act for (docs/security.md "Tenancy").

`application:` on a deploy stage or a child pipeline (saved or inline) must be the execution's own
application or one the submitter may EXECUTE. Static names are checked here, before anything
starts; each allowed one is recorded with its grants in `PipelineRunInput.delegations`, so the
workflow checks names it only learns at run time (expressions, a saved child's own stages) against
that snapshot when the stage or child starts. A snapshot rather than an activity reading the policy
again: the policy lives with the gateway, which authenticated the submitter; the workers never see
it, and a running execution keeps the rights it was submitted with.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from activities.grants import ApplicationGrants
from core.errors import ServiceError
from core.policy import Identity, Permission, Policy
from workflows.expressions import contains_expression
from workflows.model import PipelineSpec
from workflows.state import Submitter
from workflows.triggers import PipelineFinishedTrigger


def named_applications(stages: list[Any], path: str = "stages") -> Iterator[tuple[str, str]]:
    """(field path, application) of every static `application:` on a stage, inline children included."""
    for index, stage in enumerate(stages):
        raw = stage.model_dump(mode="json") if hasattr(stage, "model_dump") else stage
        if not isinstance(raw, Mapping):
            continue
        where = f"{path}[{raw.get('refId', index)}]"
        application = raw.get("application")
        if isinstance(application, str) and application and not contains_expression(application):
            yield f"{where}.application", application
        inline = raw.get("pipelineConfig")
        if isinstance(inline, Mapping):
            child = inline.get("application")
            if isinstance(child, str) and not contains_expression(child):
                yield f"{where}.pipelineConfig.application", child
            if isinstance(inline.get("stages"), list):
                yield from named_applications(inline["stages"], f"{where}.pipelineConfig.stages")


def submitter_of(identity: Identity | None, via: str | None = None) -> Submitter | None:
    if identity is None:
        return None
    return Submitter(subject=identity.subject, groups=sorted(identity.groups), via=via or identity.via)


def resolve_tenancy(
    spec: PipelineSpec, policy: Policy | None, identity: Identity | None
) -> tuple[ApplicationGrants, dict[str, ApplicationGrants]]:
    """The application's grants and the delegations of the applications the pipeline names.

    Without a policy (auth disabled, single-tenant) everything is open and nothing is refused.
    Raises 403 naming the stage field when the submitter may not EXECUTE a named application."""
    if policy is None:
        return ApplicationGrants.open(spec.application), {}
    grants = policy.grants_for(spec.application)
    delegations: dict[str, ApplicationGrants] = {}
    for field, application in named_applications(list(spec.stages)):
        if application == spec.application or application in delegations:
            continue
        if identity is None or not policy.allows(identity, application, Permission.EXECUTE):
            who = identity.subject if identity is not None else "the submitter"
            raise ServiceError(
                403,
                "forbidden",
                f"policy: {field} names application {application}, which {who} may not EXECUTE "
                f"(rule: `application:` must be {spec.application} or one the submitter may EXECUTE)",
                field,
            )
        delegations[application] = policy.grants_for(application)
    return grants, delegations


def run_as_identities(spec: PipelineSpec) -> list[str]:
    """Who the pipeline's triggered runs act as: its serviceAccount, else `<trigger type>-trigger`
    for each trigger it declares (what core/triggers.py and core/schedules.py record)."""
    if spec.serviceAccount:
        return [spec.serviceAccount]
    return sorted({f"{trigger.type}-trigger" for trigger in spec.triggers})


def require_run_as(spec: PipelineSpec, policy: Policy | None, saver: Identity | None) -> None:
    """Refuse (403 naming `serviceAccount`) a save whose triggered runs would act as an identity
    with a right the saver lacks: otherwise anyone who may WRITE one application could name an
    admin, or another team's member, as its serviceAccount and have a cron or webhook run act for
    applications they may not EXECUTE themselves. Without a policy or a saver nothing is checked."""
    if policy is None or saver is None:
        return
    for subject in run_as_identities(spec):
        lacked = policy.right_lacked(saver, Identity(subject=subject, via="trigger"))
        if lacked is not None:
            raise ServiceError(
                403,
                "forbidden",
                f"policy: triggered runs of {spec.application}/{spec.name} would act as {subject}, which has "
                f"{lacked}; {saver.subject} does not (rule: a pipeline's serviceAccount may have no right "
                "its saver lacks)",
                "serviceAccount",
            )


def require_trigger_sources(spec: PipelineSpec, policy: Policy | None, saver: Identity | None) -> None:
    """Refuse (403 naming the field) a trigger that would listen to another tenant's events: a
    `pipeline` trigger on an application the saver may not READ (each run it starts is told the
    upstream execution's id, pipeline and outcome), or a trigger naming a secret its application is
    not granted (Policy.trigger_secret_refusal). Without a policy nothing is checked."""
    if policy is None:
        return
    for index, trigger in enumerate(spec.triggers):
        secret = getattr(trigger, "secret", None)
        if isinstance(secret, str) and (refusal := policy.trigger_secret_refusal(spec.application, secret)):
            raise ServiceError(403, "forbidden", refusal, f"triggers[{index}].secret")
    if saver is None:
        return
    for index, trigger in enumerate(spec.triggers):
        if not isinstance(trigger, PipelineFinishedTrigger) or trigger.application == spec.application:
            continue
        if not policy.allows(saver, trigger.application, Permission.READ):
            raise ServiceError(
                403,
                "forbidden",
                f"policy: triggers[{index}] waits for pipelines of application {trigger.application}, which "
                f"{saver.subject} may not READ (rule: a pipeline trigger needs READ on the upstream application)",
                f"triggers[{index}].application",
            )
