"""Run Job (Spinnaker's Run Job (Manifest) stage on Kubernetes): create the Job once, wait for it by
watching, then read the log of its deciding pod for the failure message and the stage outputs.

Idempotent under activity retry: the Job's name is derived from the execution id, its run and the stage
refId, and a retry that finds that Job annotated as ours reattaches to it instead of making a second.
Outputs are Spinnaker's property-file idea read from the log: a line `GENNAKER_OUTPUTS {json}` (also
Spinnaker's own `SPINNAKER_PROPERTY_<KEY>=value` and `SPINNAKER_CONFIG_JSON={json}` lines, see
https://spinnaker.io/docs/guides/user/kubernetes-v2/run-job-manifest/ and orca's
KubernetesJobRunner/PropertyFileParser). Later lines win over earlier ones.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, Field
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.grants import AccountGrant
from activities.kubernetes.client import CONFLICT, INVALID, NOT_FOUND, KubernetesAccountClient
from activities.kubernetes.manifests import (
    APPLICATION_ANNOTATION,
    EXECUTION_ANNOTATION,
    MANAGED_BY_LABEL,
    MANIFEST_INVALID,
    NON_RETRYABLE_MANIFEST,
    STAGE_ANNOTATION,
    KubernetesManifestActivities,
    ManifestRef,
    check_size,
)
from activities.kubernetes.ownership import ObjectToTouch, authorize_objects
from activities.kubernetes.waiting import Verdict, wait_for_object

RUN_ANNOTATION = "gennaker.io/run-id"
OUTPUTS_MARKER = "GENNAKER_OUTPUTS"
JOB_NOT_OURS = "JobNotOurs"
NON_RETRYABLE_JOB = [*NON_RETRYABLE_MANIFEST, JOB_NOT_OURS]
MAX_OUTPUTS_BYTES = 64_000
LOG_SCAN_LINES = 10_000  # the outputs line must be among the container's last 10,000 lines
LOG_MAX_BYTES = 4 << 20
MAX_LINE_CHARS = 500


class StartJobInput(BaseModel):
    manifest: dict[str, Any] = Field(description="A batch/v1 Job; its name is replaced by a stage-owned one")
    namespace: str | None = Field(default=None, description="Overrides the manifest's namespace")
    defaultNamespace: str = "default"
    executionId: str
    runId: str
    stage: str
    application: str
    backoffLimit: int | None = Field(default=None, ge=0)
    outputsContainer: str | None = Field(default=None, description="Container whose log holds outputs")
    grant: AccountGrant | None = Field(default=None, description="Stamped by the workflow (AccountCalls)")


class JobRef(BaseModel):
    name: str
    namespace: str
    container: str = Field(description="Container whose log is read")
    reattached: bool = Field(default=False, description="An earlier attempt had created it")


class WaitForJobInput(BaseModel):
    job: JobRef
    timeoutSeconds: float = 3600
    logTailLines: int = Field(default=40, ge=0, le=1000)
    parseOutputs: bool = True


class JobOutcome(BaseModel):
    succeeded: bool
    reason: str = Field(description="e.g. CompletionsReached, BackoffLimitExceeded")
    message: str = ""
    active: int = 0
    succeededPods: int = 0
    failedPods: int = 0
    backoffLimit: int = 6
    pod: str | None = Field(default=None, description="The pod whose log was read")
    logTail: list[str] = Field(default_factory=list)
    outputs: dict[str, Any] = Field(default_factory=dict)
    outputsError: str | None = None


class JobDeleted(BaseModel):
    deleted: bool


def job_name(base: str, execution_id: str, run_id: str, stage: str) -> str:
    """`<base>-<8 hex>`, ≤ 63 characters (the `job-name` pod label's limit), stable per stage run."""
    clean = re.sub(r"[^a-z0-9-]+", "-", base.lower()).strip("-")[:54].rstrip("-") or "job"
    digest = hashlib.sha256(f"{execution_id}/{run_id}/{stage}".encode()).hexdigest()[:8]
    return f"{clean}-{digest}"


def parse_outputs(lines: list[str]) -> tuple[dict[str, Any], str | None]:
    """Stage outputs from log lines; the error says which line could not be read."""
    found: dict[str, Any] = {}
    for number, line in enumerate(lines, 1):
        text = line.strip()
        try:
            if text.startswith(OUTPUTS_MARKER):
                value = json.loads(text[len(OUTPUTS_MARKER) :].strip())
            elif text.startswith("SPINNAKER_CONFIG_JSON="):
                value = json.loads(text.partition("=")[2])
            elif text.startswith("SPINNAKER_PROPERTY_") and "=" in text:
                key, _, raw = text[len("SPINNAKER_PROPERTY_") :].partition("=")
                value = {key.lower(): raw}
            else:
                continue
        except ValueError as exc:
            return found, f"log line {number} ({text[:80]!r}) is not valid JSON: {exc}"
        if not isinstance(value, dict):
            return found, f"log line {number}: {OUTPUTS_MARKER} needs a JSON object, got {type(value).__name__}"
        found.update(value)
    if len(json.dumps(found)) > MAX_OUTPUTS_BYTES:
        return {}, f"outputs are larger than {MAX_OUTPUTS_BYTES // 1000} KB; pass a reference instead"
    return found, None


def job_verdict(job: Any) -> Verdict:
    status, spec = job.status, job.spec
    finished = [
        c
        for c in (status.conditions if status else None) or []
        if c.type in ("Complete", "Failed") and c.status == "True"
    ]
    if finished:
        return Verdict(done=True, progress=f"{finished[0].type}: {finished[0].reason}")
    active, ok, bad = (status.active or 0, status.succeeded or 0, status.failed or 0) if status else (0, 0, 0)
    limit = 6 if spec.backoff_limit is None else spec.backoff_limit
    return Verdict(
        done=False,
        progress=f"{active} running, {ok} of {spec.completions or 1} succeeded, {bad} failed (backoffLimit {limit})",
    )


class KubernetesJobActivities:
    """Job activities bound to one account's client."""

    def __init__(self, client: KubernetesAccountClient) -> None:
        self.client = client
        self.manifests = KubernetesManifestActivities(client)

    def activities(self) -> list[Callable[..., Any]]:
        return [self.start_job, self.wait_for_job, self.delete_job]

    @activity.defn
    def start_job(self, input: StartJobInput) -> JobRef:
        check_size("the Job manifest", input.manifest)
        body = copy.deepcopy(input.manifest)
        if body.setdefault("kind", "Job") != "Job":
            raise ApplicationError(
                f"runJob needs a Job manifest, not a {body['kind']}", type=MANIFEST_INVALID, non_retryable=True
            )
        meta = body.setdefault("metadata", {})
        namespace = input.namespace or meta.get("namespace") or input.defaultNamespace
        self.client.check_namespace(namespace)
        authorize_objects(
            self.client.account, input.application, [ObjectToTouch("batch/v1", "Job", namespace, "")], input.grant
        )
        name = job_name(
            meta.get("name") or meta.get("generateName") or input.stage, input.executionId, input.runId, input.stage
        )
        meta.pop("generateName", None)
        meta.update(name=name, namespace=namespace)
        meta.setdefault("labels", {}).setdefault(MANAGED_BY_LABEL, "gennaker")
        ours = {EXECUTION_ANNOTATION: input.executionId, RUN_ANNOTATION: input.runId, STAGE_ANNOTATION: input.stage}
        meta.setdefault("annotations", {}).update({**ours, APPLICATION_ANNOTATION: input.application})
        body["apiVersion"] = "batch/v1"
        spec = body.setdefault("spec", {})
        if input.backoffLimit is not None:
            spec["backoffLimit"] = input.backoffLimit
        pod_spec = spec.setdefault("template", {}).setdefault("spec", {})
        pod_spec.setdefault("restartPolicy", "Never")  # a Job's pods may not use the Pod default, Always
        containers = [c.get("name") for c in pod_spec.get("containers") or [] if isinstance(c, dict)]
        container = input.outputsContainer or (containers[0] if containers else None)
        if container is None or container not in containers:
            raise ApplicationError(
                f"Job {namespace}/{name}: container {container!r} is not in the pod template "
                f"(containers: {containers})",
                type=MANIFEST_INVALID,
                non_retryable=True,
            )
        try:
            self.client.call(
                self.client.batch.create_namespaced_job, namespace, body, what=f"create Job {namespace}/{name}"
            )
            return JobRef(name=name, namespace=namespace, container=container)
        except ApplicationError as exc:
            if exc.type != CONFLICT:
                raise
        existing: Any = self.client.call(
            self.client.batch.read_namespaced_job, name, namespace, what=f"read Job {namespace}/{name}"
        )
        annotations = existing.metadata.annotations or {}
        if any(annotations.get(k) != v for k, v in ours.items()):
            raise ApplicationError(
                f"Job {namespace}/{name} already exists and was not created by this stage run "
                f"(its execution: {annotations.get(EXECUTION_ANNOTATION, 'none')}); delete it or rename the job",
                type=JOB_NOT_OURS,
                non_retryable=True,
            )
        return JobRef(name=name, namespace=namespace, container=container, reattached=True)

    @activity.defn
    def wait_for_job(self, input: WaitForJobInput) -> JobOutcome:
        """Watch the Job until Complete or Failed (backoffLimit is the Job's own), then read the log of
        the pod that decided it. A failed Job is an outcome, not an error: the stage words the failure."""
        ref = input.job
        job: Any = wait_for_object(
            self.client,
            self.client.batch.list_namespaced_job,
            ref.namespace,
            ref.name,
            job_verdict,
            input.timeoutSeconds,
            "Job",
        )
        status = job.status
        final = next(c for c in status.conditions or [] if c.type in ("Complete", "Failed") and c.status == "True")
        succeeded = final.type == "Complete"
        pod = self._deciding_pod(job, "Succeeded" if succeeded else "Failed")
        lines = self._log_lines(ref, pod) if pod else ["(no pod of this Job is left to read logs from)"]
        outputs, error = parse_outputs(lines) if input.parseOutputs and succeeded else ({}, None)
        tail = [line[:MAX_LINE_CHARS] for line in lines[-input.logTailLines :]] if input.logTailLines else []
        return JobOutcome(
            succeeded=succeeded,
            reason=final.reason or final.type,
            message=final.message or "",
            active=status.active or 0,
            succeededPods=status.succeeded or 0,
            failedPods=status.failed or 0,
            backoffLimit=6 if job.spec.backoff_limit is None else job.spec.backoff_limit,
            pod=pod,
            logTail=tail,
            outputs=outputs,
            outputsError=error,
        )

    def _deciding_pod(self, job: Any, phase: str) -> str | None:
        """The newest pod in `phase` (else the newest pod) among those the Job's selector matches."""
        labels = (job.spec.selector.match_labels if job.spec.selector else None) or {"job-name": job.metadata.name}
        pods: Any = self.client.call(
            self.client.core.list_namespaced_pod,
            job.metadata.namespace,
            label_selector=",".join(f"{k}={v}" for k, v in sorted(labels.items())),
            what=f"list pods of Job {job.metadata.namespace}/{job.metadata.name}",
        )
        ranked = sorted(
            pods.items,
            key=lambda p: (
                (p.status.phase if p.status else None) == phase,
                p.metadata.creation_timestamp,
                p.metadata.name,
            ),
        )
        return str(ranked[-1].metadata.name) if ranked else None

    def _log_lines(self, ref: JobRef, pod: str) -> list[str]:
        try:
            text: Any = self.client.call(
                self.client.core.read_namespaced_pod_log,
                pod,
                ref.namespace,
                container=ref.container,
                tail_lines=LOG_SCAN_LINES,
                limit_bytes=LOG_MAX_BYTES,
                what=f"read the log of pod {pod}",
            )
        except ApplicationError as exc:
            if exc.type not in (NOT_FOUND, INVALID):
                raise
            return [f"(logs unavailable: {exc.message})"]
        return str(text).splitlines()

    @activity.defn
    def delete_job(self, input: JobRef) -> JobDeleted:
        """Delete the Job and (Background propagation) its pods; already gone counts as done."""
        try:
            self.client.call(
                self.client.batch.delete_namespaced_job,
                input.name,
                input.namespace,
                propagation_policy="Background",
                what=f"delete Job {input.namespace}/{input.name}",
            )
        except ApplicationError as exc:
            if exc.type != NOT_FOUND:
                raise
            return JobDeleted(deleted=False)
        self.manifests.wait_gone(ManifestRef(kind="Job", name=input.name, namespace=input.namespace), 60)
        return JobDeleted(deleted=True)
