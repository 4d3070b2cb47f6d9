"""What crosses Temporal for a pipeline execution: its input, its live state, and control messages.

Everything here is small by design (names, statuses, outputs): payloads warn at 256 KB.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from activities.grants import ApplicationGrants
from workflows.artifacts import MAX_ARTIFACTS, Artifact, ArtifactBindings
from workflows.model import PipelineSpec

PIPELINE_WORKFLOW = "PipelineWorkflow"


class StageStatus(StrEnum):
    NOT_STARTED = "NOT_STARTED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED_CONTINUE = "FAILED_CONTINUE"
    TERMINAL = "TERMINAL"
    STOPPED = "STOPPED"
    SKIPPED = "SKIPPED"
    CANCELED = "CANCELED"


# A child may start once every parent is in one of these.
PARENT_DONE_OK = frozenset({StageStatus.SUCCEEDED, StageStatus.FAILED_CONTINUE, StageStatus.SKIPPED})
# A child never starts below one of these.
PARENT_BLOCKS = frozenset({StageStatus.TERMINAL, StageStatus.STOPPED, StageStatus.CANCELED})


class ExecutionStatus(StrEnum):
    WAITING = "WAITING"  # limitConcurrent: queued behind the running execution of the same pipeline
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    SUCCEEDED = "SUCCEEDED"
    TERMINAL = "TERMINAL"
    CANCELED = "CANCELED"
    TERMINATED = "TERMINATED"  # ended from outside Gennaker (Temporal UI/CLI); set by readers, never by the workflow


# What the trigger's artifacts may carry in all (embedded/base64 content, URLs): the execution's
# input is one Temporal payload (warned at 256 KB).
MAX_TRIGGER_ARTIFACT_CHARS = 160_000


class TriggerInfo(BaseModel):
    """Who or what started the execution; available to expressions as `trigger`."""

    type: str = "manual"
    user: str | None = None
    source: str | None = Field(default=None, description="e.g. the parent execution id or a webhook name")
    payload: dict[str, Any] = Field(default_factory=dict, description="A small summary, not the raw body")
    runAs: str | None = Field(default=None, description="The pipeline's serviceAccount, for triggered runs")
    artifacts: list[Artifact] = Field(
        default_factory=list,
        max_length=MAX_ARTIFACTS,
        description="Artifacts the trigger brought (a pushed image, a commit, a webhook's `artifacts`), "
        "matched against the pipeline's expectedArtifacts at start",
    )

    @model_validator(mode="after")
    def _bounded_artifacts(self) -> TriggerInfo:
        size = sum(len(a.reference or "") + len(a.name or "") for a in self.artifacts)
        if size > MAX_TRIGGER_ARTIFACT_CHARS:
            raise ValueError(
                f"the trigger's artifacts hold {size} characters; the limit is {MAX_TRIGGER_ARTIFACT_CHARS}: "
                "pass large content by reference (http/file, git/repo, github/file)"
            )
        return self


class StageError(BaseModel):
    message: str
    kind: str = Field(default="failure", description="failure | timeout | expression | canceled")
    details: dict[str, Any] = Field(default_factory=dict)


class JudgmentRecord(BaseModel):
    judgmentStatus: Literal["continue", "stop"]
    input: str | None = None
    comment: str | None = None
    user: str | None = None
    judgedAt: datetime
    via: str = Field(description="update (API/CLI), signal (temporal CLI) or timeout")
    verified: bool = Field(
        default=False,
        description="`user` came from the gateway's authentication (the judge update); a signal's is only a claim",
    )

    @property
    def judged_by(self) -> str | None:
        """Who judged, as recorded in outputs: a signal's name is marked as unverified."""
        if self.user is None or self.verified:
            return self.user
        return f"{self.user} (unverified, {self.via})"


class StageState(BaseModel):
    refId: str
    name: str
    type: str
    requisiteStageRefIds: list[str] = Field(default_factory=list)
    status: StageStatus = StageStatus.NOT_STARTED
    startTime: datetime | None = None
    endTime: datetime | None = None
    outputs: dict[str, Any] = Field(default_factory=dict)
    error: StageError | None = None
    details: str | None = Field(default=None, description="What the stage is doing now")
    waitingForJudgment: bool = False
    judgment: JudgmentRecord | None = None
    restoredFromRun: str | None = Field(default=None, description="Kept from this earlier run on restart")


class RestartFrom(BaseModel):
    """Restart a finished execution from one stage: a new run under the same workflow id."""

    previousRunId: str
    refId: str
    keptStages: list[StageState] = Field(default_factory=list)
    user: str | None = None


class Submitter(BaseModel):
    """Who submitted the execution, from the gateway's authentication (or the pipeline's
    `serviceAccount` for triggered runs); children inherit it."""

    subject: str
    groups: list[str] = Field(default_factory=list)
    via: str = Field(default="token", description="token, trigger, pipeline (a parent execution), …")


class PipelineRunInput(BaseModel):
    pipeline: PipelineSpec
    parameters: dict[str, Any] = Field(default_factory=dict)
    trigger: TriggerInfo = Field(default_factory=TriggerInfo)
    revision: int | None = Field(default=None, description="Saved pipeline revision, if started from one")
    restart: RestartFrom | None = None
    accountQueues: dict[str, str] = Field(
        default_factory=dict,
        description="'<kind>/<account>' -> task queue, from the account directory at start; "
        "accounts not listed use the default queue name (k8s-<name>, registry-<name>)",
    )
    submitter: Submitter | None = Field(default=None, description="Recorded at submission (docs/security.md)")
    grants: ApplicationGrants | None = Field(
        default=None, description="What this execution's application may touch; None: recorded before tenancy"
    )
    delegations: dict[str, ApplicationGrants] = Field(
        default_factory=dict,
        description="Other applications the submitter may EXECUTE that this pipeline names (`application:` of "
        "a deploy or child pipeline), with their grants, resolved at submission",
    )


class NotificationFailure(BaseModel):
    event: str
    channel: str
    address: str
    stage: str | None = None
    reason: str
    at: datetime


class ExecutionState(BaseModel):
    id: str
    runId: str
    application: str
    pipeline: str
    revision: int | None = None
    status: ExecutionStatus
    paused: bool = False
    trigger: TriggerInfo
    parameters: dict[str, Any]
    startTime: datetime
    endTime: datetime | None = None
    stages: list[StageState]
    canceledBy: str | None = None
    cancelReason: str | None = None
    failure: str | None = Field(default=None, description="Why the pipeline failed, naming the stage")
    restartedFrom: RestartFrom | None = None
    triggered: list[str] = Field(default_factory=list, description="Executions this one's end started")
    triggerError: str | None = None
    notificationFailures: list[NotificationFailure] = Field(
        default_factory=list, description="Notifications that could not be delivered (the run went on)"
    )
    artifacts: ArtifactBindings = Field(
        default_factory=ArtifactBindings,
        description="Expected artifact id -> bound artifact, and every artifact seen (trigger, then stages)",
    )

    def stage(self, ref_id: str) -> StageState | None:
        return next((s for s in self.stages if s.refId == ref_id), None)


class ExecutionResult(BaseModel):
    status: ExecutionStatus
    outputs: dict[str, dict[str, Any]] = Field(default_factory=dict)


class JudgmentRequest(BaseModel):
    """Body of the `judgment` signal and the `judge` update.

    From the Temporal CLI: temporal workflow signal --workflow-id ID --name judgment \
        --input '{"refId": "approve", "judgmentStatus": "continue", "input": "ship", "user": "alice"}'

    Identity is trusted only from the update, which the gateway fills from authentication. The
    signal can be sent by anyone who reaches Temporal: its `groups` and `admin` are ignored and its
    `user` is recorded as unverified, so it cannot satisfy an `approvers` list.
    """

    model_config = ConfigDict(extra="forbid")
    refId: str
    judgmentStatus: Literal["continue", "stop"] = "continue"
    input: str | None = Field(default=None, description="One of the stage's judgmentInputs")
    comment: str | None = None
    user: str | None = None
    groups: list[str] = Field(default_factory=list, description="The judge's groups (set by the gateway)")
    admin: bool = Field(default=False, description="The judge is a Gennaker admin (set by the gateway)")


class ControlAck(BaseModel):
    """What a control Update (pause, resume, cancel, skipWait, judge) answers: small on purpose, as
    it is stored in history; read the execution's state with the `state` query."""

    accepted: bool = True
    status: ExecutionStatus
    message: str
    judgment: JudgmentRecord | None = Field(default=None, description="The recorded judgment (judge only)")


class ControlRequest(BaseModel):
    """Body of cancel/pause/resume updates; `user` is filled in by the gateway, not the caller."""

    reason: str | None = None
    user: str | None = None


class SkipWaitRequest(BaseModel):
    refId: str
    user: str | None = None
