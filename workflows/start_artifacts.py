"""Artifacts at the start of an execution: the pipeline's `expectedArtifacts` bound to what the
trigger brought, to the prior successful execution's artifacts (read only when some expected
artifact has `usePriorArtifact`) or to their defaults; then what stages kept from an earlier run
(a restart) produced is bound again. An expected artifact that cannot be bound refuses the
execution before any stage, naming it.

Without expected artifacts, trigger artifacts or kept stages this issues no command, so executions
recorded before artifacts existed replay unchanged; reading the prior execution is behind
`workflow.patched("prior-artifacts")`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

from workflows.account_calls import failure_reason
from workflows.artifacts import Artifact, ArtifactBindings, ArtifactError, resolve_expected_artifacts
from workflows.model import PipelineSpec
from workflows.stages.base import StageConfig, StageFailed
from workflows.state import StageState, TriggerInfo

with workflow.unsafe.imports_passed_through():
    from activities.prior_artifacts import PriorArtifactActivities, PriorArtifactsRequest


async def prior_artifacts(spec: PipelineSpec, execution_id: str) -> list[Artifact]:
    """The artifacts of the last SUCCEEDED execution of this pipeline (a local activity on the
    pipeline worker, which has the Temporal client)."""
    ask = PriorArtifactsRequest(application=spec.application, pipeline=spec.name, executionId=execution_id)
    found = await workflow.execute_local_activity_method(
        PriorArtifactActivities.prior_artifacts,
        ask,
        start_to_close_timeout=timedelta(seconds=30),
        retry_policy=RetryPolicy(maximum_attempts=3),
        summary=f"Read the artifacts of the last successful {spec.application}/{spec.name}",
    )
    return found.artifacts


async def bind_start_artifacts(
    spec: PipelineSpec,
    trigger: TriggerInfo,
    execution_id: str,
    kept: list[StageState],
    config_of: Mapping[str, StageConfig],
) -> ArtifactBindings | str:
    """The execution's bindings, or why it cannot start ("artifacts: …")."""
    expected = list(spec.expectedArtifacts)
    received = list(trigger.artifacts)
    if not expected and not received and not kept:
        return ArtifactBindings()
    prior: list[Artifact] | None = None
    if any(e.usePriorArtifact for e in expected) and workflow.patched("prior-artifacts"):
        try:
            prior = await prior_artifacts(spec, execution_id)
        except ActivityError as exc:
            return f"artifacts: could not read the prior execution's artifacts: {failure_reason(exc)}"
    try:
        bindings = resolve_expected_artifacts(expected, received, prior)
        for stage in kept:
            bindings = config_of[stage.refId].bind_artifacts(bindings, stage.outputs)
    except ArtifactError as exc:
        return f"artifacts: {exc}"
    except StageFailed as exc:
        return f"artifacts: {exc.message}"
    return bindings
