"""Pipeline stage: run another pipeline as a child workflow, waiting for it or not."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ChildWorkflowError
from temporalio.workflow import ParentClosePolicy

from workflows.account_calls import failure_reason
from workflows.context import StageContext
from workflows.model import PipelineInvalid, PipelineSpec, parse_pipeline, resolve_parameters
from workflows.search import initial_attributes
from workflows.stages.base import StageConfig, StageFailed
from workflows.stages.registry import register_stage
from workflows.state import PIPELINE_WORKFLOW, ExecutionResult, PipelineRunInput, TriggerInfo

with workflow.unsafe.imports_passed_through():
    from activities.pipelines import SavedPipelineActivities, SavedPipelineConfig, SavedPipelineRef

LOAD_TIMEOUT = timedelta(seconds=30)
LOAD_RETRY = RetryPolicy(maximum_attempts=5, non_retryable_error_types=["PipelineNotFound"])


@register_stage
class PipelineStage(StageConfig):
    """Spinnaker's Pipeline stage. Names a saved pipeline (`application` + `pipeline`) or embeds one
    (`pipelineConfig`); the child is its own execution, id `<parent id>.<refId>`."""

    type: Literal["pipeline"] = "pipeline"
    application: str | None = Field(default=None, description="Defaults to this pipeline's application")
    pipeline: str | None = Field(default=None, description="Name of a saved pipeline")
    pipelineRevision: int | None = Field(default=None, description="Pin a saved revision; default latest")
    pipelineConfig: dict[str, Any] | None = Field(default=None, description="An inline pipeline instead")
    pipelineParameters: dict[str, Any] = Field(default_factory=dict)
    waitForCompletion: bool = True
    # The inline child's own expressions belong to the child's execution, not this one.
    raw_fields: ClassVar[frozenset[str]] = frozenset({"pipelineConfig"})

    @model_validator(mode="after")
    def _one_source(self) -> PipelineStage:
        if (self.pipeline is None) == (self.pipelineConfig is None):
            raise ValueError("give exactly one of `pipeline` (a saved pipeline's name) or `pipelineConfig`")
        return self

    def problems(self) -> list[tuple[str, str]]:
        if self.pipelineConfig is None:
            return []
        try:
            parse_pipeline(self.pipelineConfig)
        except PipelineInvalid as exc:
            return [(f"pipelineConfig.{e.field}", e.message) for e in exc.errors]
        return []

    def summary(self) -> str:
        target = self.pipeline or (self.pipelineConfig or {}).get("name", "inline pipeline")
        return f"Run pipeline {target}" + ("" if self.waitForCompletion else " (fire and forget)")

    async def _load(self, ctx: StageContext) -> tuple[PipelineSpec, int | None]:
        if self.pipelineConfig is not None:
            return parse_pipeline(self.pipelineConfig), None
        application = self.application or ctx.execution.application
        ctx.grants_for(application)  # refuse before reading another application's saved pipeline
        saved: SavedPipelineConfig = await workflow.execute_activity_method(
            SavedPipelineActivities.load_saved_pipeline,
            SavedPipelineRef(application=application, name=str(self.pipeline), revision=self.pipelineRevision),
            summary=f"Load saved pipeline {application}/{self.pipeline}",
            start_to_close_timeout=LOAD_TIMEOUT,
            retry_policy=LOAD_RETRY,
        )
        return parse_pipeline(saved.config), saved.revision

    async def run(self, ctx: StageContext) -> dict[str, Any]:
        try:
            spec, revision = await self._load(ctx)
            parameters = resolve_parameters(spec, self.pipelineParameters)
        except PipelineInvalid as exc:
            raise StageFailed(f"child pipeline is invalid: {exc}") from None
        # Checked again here, not only at submission: a saved child's application, or one that
        # came from an expression, is known only now. The child runs as this execution's submitter.
        grants = ctx.grants_for(spec.application)
        parent = ctx.run_input
        child_id = f"{ctx.execution_id}.{self.refId}"
        ctx.set_details(f"starting {spec.application}/{spec.name} as {child_id}")
        handle = await workflow.start_child_workflow(
            PIPELINE_WORKFLOW,
            PipelineRunInput(
                pipeline=spec,
                parameters=parameters,
                revision=revision,
                trigger=TriggerInfo(type="pipeline", source=ctx.execution_id, user=ctx.execution.trigger.user),
                accountQueues=parent.accountQueues,
                submitter=parent.submitter,
                grants=grants if parent.grants is not None else None,
                delegations=parent.delegations,
            ),
            id=child_id,
            task_queue=workflow.info().task_queue,
            result_type=ExecutionResult,
            search_attributes=initial_attributes(spec.application, spec.name, "pipeline"),
            static_summary=f"{spec.application}/{spec.name} (child of {ctx.execution_id})",
            parent_close_policy=(
                ParentClosePolicy.REQUEST_CANCEL if self.waitForCompletion else ParentClosePolicy.ABANDON
            ),
        )
        outputs: dict[str, Any] = {
            "executionId": child_id,
            "application": spec.application,
            "pipeline": spec.name,
            "revision": revision,
        }
        if not self.waitForCompletion:
            return {**outputs, "status": "STARTED"}
        ctx.set_details(f"waiting for {spec.application}/{spec.name} ({child_id})")
        try:
            result: ExecutionResult = await handle
        except ChildWorkflowError as exc:
            raise StageFailed(
                f"child pipeline {spec.application}/{spec.name} ({child_id}) failed: {failure_reason(exc)}",
                details=outputs,
            ) from None
        return {**outputs, "status": result.status.value, "outputs": result.outputs}
