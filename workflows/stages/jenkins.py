"""Jenkins stage: run a job on a Jenkins master the workers know, and wait for its result."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

from pydantic import Field
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.workflow import ActivityCancellationType, ActivityConfig

from workflows.account_calls import call_activity
from workflows.artifacts import Artifact
from workflows.context import StageContext
from workflows.stages.base import StageConfig, StageFailed
from workflows.stages.registry import register_stage

with workflow.unsafe.imports_passed_through():
    from activities.jenkins import NOT_RETRYABLE, JenkinsActivities, JenkinsBuildRequest, JenkinsBuildResult

JENKINS_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=60),
    maximum_attempts=10,
    non_retryable_error_types=NOT_RETRYABLE,
)


@register_stage
class JenkinsStage(StageConfig):
    """Spinnaker's Jenkins stage. `master` names an entry of the worker's `jenkins:` list; the
    credentials stay on the worker. SUCCESS passes; UNSTABLE passes only with
    `markUnstableAsSuccessful`; FAILURE, ABORTED and NOT_BUILT fail the stage."""

    type: Literal["jenkins"] = "jenkins"
    master: str = Field(min_length=1, description="Name of a Jenkins master in the worker's config")
    job: str = Field(min_length=1, description="Job name; jobs in folders as folder/job")
    parameters: dict[str, Any] = Field(default_factory=dict, description="Build parameters (sent as strings)")
    propertyFile: str | None = Field(default=None, description="Archived key=value file; values become outputs")
    artifacts: list[str] = Field(default_factory=list, description="Glob patterns of archived artifacts to output")
    markUnstableAsSuccessful: bool = False
    waitForCompletion: bool = True
    pollIntervalSeconds: float = Field(default=5, gt=0, le=300)
    buildTimeoutMs: int = Field(default=4 * 3600 * 1000, gt=0, description="Give up on one attempt after this")

    def produced_artifacts(self, outputs: dict[str, Any]) -> list[Artifact]:
        # `outputs.artifacts` here is the build's archived files (Jenkins' own word), not Spinnaker
        # artifacts; a Jenkins stage produces artifacts only through its `expectedArtifacts`.
        return []

    def summary(self) -> str:
        return f"Jenkins build {self.job} on {self.master}"

    async def run(self, ctx: StageContext) -> dict[str, Any]:
        ctx.set_details(f"building {self.job} on {self.master}")
        request = JenkinsBuildRequest(
            master=self.master,
            job=self.job,
            parameters={k: v if isinstance(v, str) else _text(v) for k, v in self.parameters.items()},
            propertyFile=self.propertyFile,
            artifacts=self.artifacts,
            waitForCompletion=self.waitForCompletion,
            pollIntervalSeconds=self.pollIntervalSeconds,
        )
        build: JenkinsBuildResult = await call_activity(
            JenkinsActivities.run_jenkins_build,
            request,
            ActivityConfig(
                summary=self.summary(),
                start_to_close_timeout=timedelta(milliseconds=self.buildTimeoutMs),
                # Cancellation reaches a sync activity with a heartbeat, sent at most every 0.8 x this.
                heartbeat_timeout=timedelta(seconds=3 * self.pollIntervalSeconds + 10),
                retry_policy=JENKINS_RETRY,
                # Let the activity abort the Jenkins build before the stage reports CANCELED.
                cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
            ),
            doing=f"Jenkins job {self.job} on {self.master}",
        )
        outputs = build.model_dump(mode="json", exclude={"master", "job"})
        outputs["master"], outputs["job"] = self.master, self.job
        if not self.waitForCompletion:
            return outputs
        passed = build.result == "SUCCESS" or (build.result == "UNSTABLE" and self.markUnstableAsSuccessful)
        if not passed:
            ctx.stage.outputs = outputs
            hint = " (set markUnstableAsSuccessful to accept it)" if build.result == "UNSTABLE" else ""
            raise StageFailed(
                f"Jenkins build {self.job} #{build.buildNumber} on {self.master} finished {build.result}{hint}: "
                f"{build.url}",
                details=outputs,
            )
        return outputs


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)
