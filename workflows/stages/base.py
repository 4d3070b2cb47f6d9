"""What every stage type shares: the Spinnaker stage flags, and the `run` contract.

A stage type is one pydantic model (its config) whose `run(ctx)` is workflow code: it orchestrates
activities, timers and signals through `ctx` and returns the stage's outputs. Register it with
`@register_stage` (workflows/stages/registry.py) and it is accepted in pipelines, shown in the JSON
Schema and runnable by PipelineWorkflow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from workflows.artifacts import MAX_ARTIFACTS, MAX_EXPECTED_ARTIFACTS, Artifact, ArtifactBindings, ExpectedArtifact
from workflows.errors import StageFailed

if TYPE_CHECKING:
    from workflows.context import StageContext

__all__ = ["REF_ID_PATTERN", "Expression", "JudgmentGate", "StageConfig", "StageEnabled", "StageFailed"]


REF_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"

# A typed field (int, bool, list…) may instead hold one whole `${{ }}` expression; it is evaluated
# before `run`, so `run` sees the typed value. Declare such fields as e.g. `int | Expression`.
Expression = Annotated[str, StringConstraints(pattern=r"^\s*\$\{\{.*\}\}\s*$")]


class StageEnabled(BaseModel):
    """Spinnaker's conditional-on-expression flag: the stage runs only if the expression is true."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["expression"] = "expression"
    expression: str = Field(description="CEL expression, bare or wrapped in ${{ }}", min_length=1)


class StageNotification(BaseModel):
    """A per-stage notification (delivered by the notification channels of the workers)."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["email", "slack", "sms", "webhook"]
    address: str = Field(min_length=1)
    when: list[str] = Field(default_factory=list)
    message: dict[str, Any] = Field(default_factory=dict)


class JudgmentGate(BaseModel):
    """What a stage that waits for people accepts: the options one must choose (none: continue or
    stop is enough), who may judge (users or `group:<name>`; empty: anyone who may execute), and
    what the judge is told."""

    model_config = ConfigDict(frozen=True)
    options: list[str] = Field(default_factory=list)
    approvers: list[str] = Field(default_factory=list)
    instructions: str | None = None


class StageConfig(BaseModel):
    """Fields every stage has, named as in Spinnaker's pipeline JSON so pipelines can be brought over."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str
    refId: str = Field(pattern=REF_ID_PATTERN, description="Unique id of the stage within the pipeline")
    name: str | None = Field(default=None, description="Human name; defaults to the refId")
    requisiteStageRefIds: list[str] = Field(
        default_factory=list, description="refIds that must finish before this stage starts"
    )
    failPipeline: bool = Field(default=True, description="A failure of this stage fails the pipeline")
    continuePipeline: bool = Field(
        default=False, description="On failure mark FAILED_CONTINUE and let downstream stages run"
    )
    completeOtherBranchesThenFail: bool = Field(
        default=False, description="On failure halt this branch, let other branches finish, then fail"
    )
    stageEnabled: StageEnabled | None = None
    stageTimeoutMs: int | None = Field(default=None, gt=0, description="Fail the stage after this long")
    noWorkerTimeoutMs: int | None = Field(
        default=None,
        gt=0,
        le=86_400_000,
        description="Fail the stage when no worker for its account takes up a call within this long (default 5 min)",
    )
    sendNotifications: bool = False
    notifications: list[StageNotification] = Field(default_factory=list)
    comments: str | None = None
    expectedArtifacts: list[ExpectedArtifact] = Field(
        default_factory=list,
        max_length=MAX_EXPECTED_ARTIFACTS,
        description="Artifacts this stage produces, bound by id for the stages after it (Spinnaker's "
        "produced artifacts: the first produced artifact that matches, else the default)",
    )

    # Fields whose `${{ }}` expressions the stage evaluates itself (at its own time, with its own
    # context) instead of having the runner resolve them before `run`.
    raw_fields: ClassVar[frozenset[str]] = frozenset()
    # Fields that are structure, never templated.
    structural_fields: ClassVar[frozenset[str]] = frozenset(
        {"type", "refId", "requisiteStageRefIds", "stageEnabled", "notifications", "expectedArtifacts"}
    )

    # ---- what the engine asks a stage type (it never names one) ---------------------------------

    # Older or Spinnaker names of this type, accepted in pipelines and read as `type` (e.g. Spinnaker's
    # `runJobManifest` for `runJob`).
    aliases: ClassVar[tuple[str, ...]] = ()
    # People may end the running stage early (the skipWait signal/update); the stage polls
    # `ctx.sleep`, which returns when someone did.
    skippable: ClassVar[bool] = False

    def judgment_gate(self) -> JudgmentGate | None:
        """The judgments this stage accepts while it waits in `ctx.wait_for_judgment`; None: none."""
        return None

    def exported_variables(self, outputs: dict[str, Any]) -> dict[str, Any]:
        """What a SUCCEEDED stage adds to `variables` for the stages after it."""
        return {}

    def consumed_artifact_ids(self) -> list[tuple[str, str]]:
        """(field path, expected artifact id) of every bound artifact this stage reads, so a pipeline
        naming an id nobody declares is refused at submission."""
        return []

    def produced_artifacts(self, outputs: dict[str, Any]) -> list[Artifact]:
        """The artifacts a SUCCEEDED stage produced: by default its `outputs.artifacts`."""
        raw = outputs.get("artifacts")
        if not isinstance(raw, list):
            return []
        try:
            return [Artifact.model_validate(item) for item in raw[:MAX_ARTIFACTS]]
        except ValidationError as exc:
            raise StageFailed(f"the stage produced an artifact that is not valid: {exc.errors()[0]['msg']}") from None

    def bind_artifacts(self, bindings: ArtifactBindings, outputs: dict[str, Any]) -> ArtifactBindings:
        """The pipeline's bindings once this stage SUCCEEDED: its produced artifacts added and bound
        to its own `expectedArtifacts`. Raises ArtifactError naming an expected artifact left unbound."""
        produced = self.produced_artifacts(outputs)
        if not produced and not self.expectedArtifacts:
            return bindings
        return bindings.with_produced(produced, list(self.expectedArtifacts), f"stage {self.refId}")

    @property
    def display_name(self) -> str:
        return self.name or self.refId

    def problems(self) -> list[tuple[str, str]]:
        """Checks beyond the field types, run when a pipeline is submitted: (field path, message)."""
        return []

    def summary(self) -> str:
        """One line for the Temporal UI, e.g. 'Wait 30s'."""
        return f"{self.type} {self.display_name}"

    async def run(self, ctx: StageContext) -> dict[str, Any]:
        raise NotImplementedError(f"stage type {self.type!r} has no run()")
