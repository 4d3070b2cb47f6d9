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
