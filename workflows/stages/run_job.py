"""Run Job (Manifest): run a Kubernetes Job to completion and turn its log into stage outputs.

Spinnaker's shape (spinnaker.io/docs/guides/user/kubernetes-v2/run-job-manifest/, orca
`RunJobStage` + `KubernetesJobRunner`): `account`/`credentials`, `manifest` (a batch/v1 Job),
`application`, `propertyFile` (the container whose log holds the outputs) and
`consumeArtifactSource` (`propertyFile`, or `none` to ignore the log). Gennaker adds `container` (a
container spec instead of a whole Job), `backoffLimit`, `deleteOnCompletion`, `logTailLines` and
`waitTimeoutSeconds`.

The Job is named `<manifest name or refId>-<hash of execution, run and refId>`, so a retried start
finds the Job an earlier attempt made instead of starting a second one, and a restarted stage (a
new run) gets a fresh Job. Outputs: the `GENNAKER_OUTPUTS {json}` lines of the log merged at the top
level (and under `propertyFileContents`), plus `jobName`, `namespace`, `jobStatus` and `logTail`.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from temporalio import workflow

from workflows.account_calls import WAIT, WRITE
from workflows.context import StageContext
from workflows.stages.base import StageFailed
from workflows.stages.manifest_sources import (
    ManifestFromArtifact,
    ManifestSource,
    consumed_ids,
    source_problems,
    stage_manifests,
)
from workflows.stages.manifests import KubernetesStage, size_checked
from workflows.stages.registry import register_stage

with workflow.unsafe.imports_passed_through():
    from activities.kubernetes.jobs import (
        NON_RETRYABLE_JOB,
        JobOutcome,
        JobRef,
        KubernetesJobActivities,
        StartJobInput,
        WaitForJobInput,
    )


class JobContainer(BaseModel):
    """A container to run as a one-pod Job (restartPolicy Never)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = "job"
    image: str = Field(min_length=1)
    command: list[str] = Field(default_factory=list)
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)


@register_stage
class RunJobStage(KubernetesStage, ManifestFromArtifact):
    """Run a Job, wait for it (heartbeating), fail with the last log lines if it fails."""

    type: Literal["runJob"] = "runJob"
    aliases: ClassVar[tuple[str, ...]] = ("runJobManifest",)  # Spinnaker's name of this stage
    manifest: dict[str, Any] | None = Field(default=None, description="A batch/v1 Job manifest")
    container: JobContainer | None = Field(default=None, description="Instead of `manifest`: one container")
    namespace: str | None = Field(default=None, description="Overrides the manifest's namespace")
    application: str | None = Field(default=None, description="Defaults to the pipeline's application")
    propertyFile: str | None = Field(default=None, description="Container whose log holds the outputs")
    consumeArtifactSource: Literal["propertyFile", "none"] = "propertyFile"
    backoffLimit: int | None = Field(default=None, ge=0, description="Overrides the Job's (Kubernetes default 6)")
    deleteOnCompletion: bool = Field(default=False, description="Delete the Job (and its pods) once it finished")
    logTailLines: int = Field(default=40, ge=0, le=1000, description="Log lines kept in outputs and errors")
    source: ManifestSource = Field(default="text", description="text (`manifest`/`container`) or artifact")
    waitTimeoutSeconds: float = Field(default=3600, gt=0, description="How long the Job may run")

    raw_fields = frozenset({"manifest"})

    @model_validator(mode="after")
    def _one_source(self) -> RunJobStage:
        if self.source == "artifact":
            problems = source_problems(
                self.source, self.manifest is not None or self.container is not None, self, "manifest"
            )
            if problems:
                raise ValueError("; ".join(problems).replace("`manifest` is", "`manifest` and `container` are"))
        elif (self.manifest is None) == (self.container is None):
            raise ValueError("give exactly one of `manifest` (a Job) or `container`")
        if self.manifest is not None and self.manifest.get("kind", "Job") != "Job":
            raise ValueError(f"runJob runs a Job, not a {self.manifest.get('kind')}")
        return self

    def consumed_artifact_ids(self) -> list[tuple[str, str]]:
        return consumed_ids(self)

    def summary(self) -> str:
        return f"Run Job {self._base_name()}"

    def _base_name(self) -> str:
        meta = (self.manifest or {}).get("metadata") or {}
        return str(meta.get("name") or meta.get("generateName") or self.refId)

    def _job_manifest(self) -> dict[str, Any]:
        if self.manifest is not None:
            return self.manifest
        assert self.container is not None
        spec: dict[str, Any] = {"name": self.container.name, "image": self.container.image}
        if self.container.command:
            spec["command"] = list(self.container.command)
        if self.container.args:
            spec["args"] = list(self.container.args)
        if self.container.env:
            spec["env"] = [{"name": k, "value": v} for k, v in self.container.env.items()]
        return {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": self.refId},
            "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [spec]}}},
        }

    async def _cleanup(self, ctx: StageContext, job: JobRef, delete: bool) -> str:
        where = f"Job {job.namespace}/{job.name}"
        if not delete:
            return f"{where} is left in place for inspection"
        try:
            await self.call(
                ctx,
                KubernetesJobActivities.delete_job,
                job,
                WRITE,
                summary=f"Delete {where}",
                doing=f"deleting {where}",
                non_retryable=NON_RETRYABLE_JOB,
            )
        except StageFailed as exc:
            return f"{where} could not be deleted ({exc.message}) and is left in place"
        return f"{where} was deleted"

    async def _manifest(self, ctx: StageContext) -> tuple[dict[str, Any], dict[str, Any]]:
        """The Job to run: written (evaluated unless skipExpressionEvaluation) or from the artifact,
        with images bound. An artifact must hold exactly one Job."""
        if self.source == "text" and self.manifest is None:
            written = [self._job_manifest()]  # from `container`: no expressions of its own to evaluate
            manifests, about = await stage_manifests(
                self, self.model_copy(update={"skipExpressionEvaluation": True}), ctx, "text", written
            )
        else:
            manifests, about = await stage_manifests(
                self, self, ctx, self.source, [self.manifest] if self.manifest else []
            )
        jobs = [m for m in manifests if m.get("kind") == "Job"]
        if len(manifests) != 1 or len(jobs) != 1:
            kinds = ", ".join(str(m.get("kind")) for m in manifests[:10])
            raise StageFailed(f"runJob runs exactly one Job; the manifests hold {len(manifests)} object(s): {kinds}")
        return jobs[0], about

    async def run(self, ctx: StageContext) -> dict[str, Any]:
        manifest, about = await self._manifest(ctx)
        size_checked("the Job manifest", manifest)
        start = StartJobInput(
            manifest=manifest,
            namespace=self.namespace,
            executionId=ctx.execution_id,
            runId=ctx.execution.runId,
            stage=self.refId,
            application=self.application or ctx.execution.application,
            backoffLimit=self.backoffLimit,
            outputsContainer=self.propertyFile,
        )
        ctx.set_details(f"starting Job {self._base_name()}")
        job = await self.call(
            ctx,
            KubernetesJobActivities.start_job,
            start,
            WRITE,
            summary=self.summary(),
            doing=f"starting Job {self._base_name()}",
            left="No Job was left running.",
            non_retryable=NON_RETRYABLE_JOB,
        )
        where = f"Job {job.namespace}/{job.name}"
        ctx.set_details(f"{'reattached to' if job.reattached else 'running'} {where}")
        wait = WaitForJobInput(
            job=job,
            timeoutSeconds=self.waitTimeoutSeconds,
            logTailLines=self.logTailLines,
            parseOutputs=self.consumeArtifactSource == "propertyFile",
        )
        try:
            outcome = await self.call(
                ctx,
                KubernetesJobActivities.wait_for_job,
                wait,
                WAIT,
                summary=f"Wait for {where}",
                doing=f"waiting for {where}",
                wait=timedelta(seconds=self.waitTimeoutSeconds + 60),
                non_retryable=NON_RETRYABLE_JOB,
            )
        except StageFailed as exc:
            left = await self._cleanup(ctx, job, self.deleteOnCompletion)
            raise StageFailed(f"{exc.message} {left}.", details=exc.details) from None
        except asyncio.CancelledError:
            # A canceled stage must not leave its Job running (Spinnaker cancels a Run Job by deleting it).
            await self._cleanup(ctx, job, True)
            raise
        left = await self._cleanup(ctx, job, self.deleteOnCompletion)
        details = self._outputs(job, outcome)
        if not outcome.succeeded:
            tail = "\n".join(outcome.logTail) or "(no log lines)"
            raise StageFailed(
                f"{where} failed: {outcome.reason} ({outcome.message}); {outcome.failedPods} pod(s) failed with "
                f"backoffLimit {outcome.backoffLimit}; {left}. Last {len(outcome.logTail)} log lines of pod "
                f"{outcome.pod}:\n{tail}",
                details=details,
            )
        if outcome.outputsError:
            raise StageFailed(
                f"{where} succeeded but its outputs could not be read: {outcome.outputsError}; {left}", details=details
            )
        return {**outcome.outputs, **details, **about}

    def _outputs(self, job: JobRef, outcome: JobOutcome) -> dict[str, Any]:
        return {
            "account": self.account_name,
            "jobName": job.name,
            "namespace": job.namespace,
            "reattached": job.reattached,
            "propertyFileContents": outcome.outputs,
            "logTail": outcome.logTail,
            "jobStatus": {
                "succeeded": outcome.succeeded,
                "reason": outcome.reason,
                "message": outcome.message,
                "succeededPods": outcome.succeededPods,
                "failedPods": outcome.failedPods,
                "backoffLimit": outcome.backoffLimit,
                "pod": outcome.pod,
            },
        }
