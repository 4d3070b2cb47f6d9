"""Script stage: run a command in a container image on the worker's Docker engine."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

from pydantic import Field, field_validator
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.workflow import ActivityCancellationType, ActivityConfig

from workflows.account_calls import call_activity
from workflows.context import StageContext
from workflows.stages.base import StageConfig, StageFailed
from workflows.stages.registry import register_stage

with workflow.unsafe.imports_passed_through():
    from activities.script import NOT_RETRYABLE, ScriptActivities, ScriptRequest, ScriptResult

SCRIPT_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=5,
    non_retryable_error_types=NOT_RETRYABLE,
)


@register_stage
class ScriptStage(StageConfig):
    """Run `command` (a shell line, run with /bin/sh -c, or an argv list replacing the image's
    entrypoint) with `args` and `env` in `image`. Exit 0 passes. Lines printed as
    `GENNAKER_OUTPUTS {"key": "value"}` become the stage's outputs."""

    type: Literal["script"] = "script"
    image: str = Field(min_length=1, description="Image on (or pullable by) the worker's Docker engine")
    command: str | list[str] | None = Field(default=None, description="Shell line or argv; default the image's")
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict, description="Stored in history: no secrets")
    workingDir: str | None = None
    timeoutSeconds: float = Field(default=3600, gt=0, le=7 * 24 * 3600)
    logLines: int = Field(default=50, ge=0, le=500, description="How many trailing log lines to keep")
    pullPolicy: Literal["IfNotPresent", "Always", "Never"] = "IfNotPresent"

    @field_validator("env", mode="before")
    @classmethod
    def _env_strings(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {str(k): v if isinstance(v, str) else str(v) for k, v in value.items()}
        return value

    def summary(self) -> str:
        return f"Script in {self.image}"

    def _entrypoint(self) -> list[str] | None:
        if isinstance(self.command, str):
            return ["/bin/sh", "-c", self.command]
        return self.command

    async def run(self, ctx: StageContext) -> dict[str, Any]:
        ctx.set_details(f"running in {self.image}")
        request = ScriptRequest(
            stageKey=self.refId,
            image=self.image,
            command=self._entrypoint(),
            args=self.args,
            env=self.env,
            workingDir=self.workingDir,
            timeoutSeconds=self.timeoutSeconds,
            logLines=self.logLines,
            pullPolicy=self.pullPolicy,
        )
        result: ScriptResult = await call_activity(
            ScriptActivities.run_script,
            request,
            ActivityConfig(
                summary=self.summary(),
                # The script's own timeout is enforced by the activity (it kills the container);
                # this leaves room for an image pull.
                start_to_close_timeout=timedelta(seconds=self.timeoutSeconds + 600),
                heartbeat_timeout=timedelta(seconds=10),
                retry_policy=SCRIPT_RETRY,
                cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
            ),
            doing=f"script in {self.image}",
        )
        outputs: dict[str, Any] = {
            **result.outputs,
            "exitCode": result.exitCode,
            "logs": result.logs,
            "container": result.container,
        }
        if result.exitCode != 0 or result.outputsError:
            ctx.stage.outputs = outputs
            why = f"exited with code {result.exitCode}" if result.exitCode != 0 else str(result.outputsError)
            tail = " | ".join(result.logs[-5:])
            raise StageFailed(
                f"script in {self.image} {why} (container {result.container}, removed)"
                + (f"; last lines: {tail}" if tail else ""),
                details={"exitCode": result.exitCode},
            )
        return outputs
