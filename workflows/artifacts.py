"""Artifacts as Spinnaker models them, and how a pipeline binds them: pure and deterministic, so it
runs inside workflows.

An artifact is a *reference* to something outside the pipeline (a file at a URL, a file in GitHub, a
Git repository at a ref, a Docker image, a Helm chart); only `embedded/base64` carries its content,
and that content is bounded here. Fetching happens in workers (`activities/artifacts/`), never here.

Matching follows kork's `ExpectedArtifact.matches` (spinnaker/kork `kork-artifacts/.../
ExpectedArtifact.java`): every non-empty field of `matchArtifact` among type, name, version,
location and reference is a regular expression that must match the *whole* field of the candidate;
artifactAccount, provenance and ids are never compared. Resolution follows orca's
`ArtifactResolver.resolveExpectedArtifacts` (spinnaker/orca `orca-core/.../pipeline/util/
ArtifactResolver.java`): for each expected artifact, the unique match among the trigger's artifacts,
else (`usePriorArtifact`) the unique match among the prior execution's artifacts, else
(`useDefaultArtifact`) the `defaultArtifact`, else the execution is refused naming the expected id.
Artifacts produced by stages bind to a stage's own `expectedArtifacts` the same way, except that the
first of several matches wins (orca's `BindProducedArtifactsTask` does not require unique matches).

Patterns come from tenants and run in the workflow worker, and Python's `re` has no timeout, so
they are bounded: at most `MAX_PATTERN_CHARS` characters, no nested quantifier like `(a+)+` (the
classic exponential backtracking), at most two unbounded repetitions (`.*a.*b.*` failing on n
characters costs n³), and fields over `MAX_MATCHED_CHARS` never match.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, model_validator
from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.artifacts.model import ARTIFACT_TYPES, Artifact

__all__ = [
    "ARTIFACT_TYPES",
    "Artifact",
    "ArtifactBindings",
    "ArtifactError",
    "ExpectedArtifact",
    "check_pattern",
    "resolve_expected_artifacts",
    "stage_artifact",
]

MAX_PATTERN_CHARS = 256
MAX_EXPECTED_ARTIFACTS = 64
MAX_ARTIFACTS = 128
MAX_UNBOUNDED_QUANTIFIERS = 2
# Longer fields (only an embedded/base64 reference can be) never match a non-empty pattern: with
# two unbounded quantifiers a failing match costs up to n² steps, which must stay small.
MAX_MATCHED_CHARS = 2048
# A quantified group whose body itself holds a quantifier: (a+)+, (a*b?)*, (x{2,}){3}.
_NESTED_QUANTIFIER = re.compile(r"\((?:[^()\\]|\\.)*(?:[+*?]|\{\d*,?\d*\})(?:[^()\\]|\\.)*\)\s*(?:[+*]|\{\d*,?\d*\})")
# `*`, `+` and `{n,}`, counted after escapes and character classes are removed.
_UNBOUNDED_QUANTIFIER = re.compile(r"[*+]|\{\d+,\}")
_ESCAPE_OR_CLASS = re.compile(r"\\.|\[(?:\\.|[^\]\\])*\]")


class ArtifactError(ValueError):
    """An artifact that cannot be bound or used; the message names the expected artifact or stage."""


class ExpectedArtifact(BaseModel):
    """Spinnaker's expected artifact: what to match (regular expressions) and what to do without a match."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, max_length=128, description="How stages refer to the bound artifact")
    displayName: str | None = Field(default=None, max_length=256)
    matchArtifact: Artifact
    useDefaultArtifact: bool = False
    defaultArtifact: Artifact | None = None
    usePriorArtifact: bool = False
    boundArtifact: Artifact | None = Field(default=None, description="Set by resolution; ignored on input")

    @model_validator(mode="after")
    def _valid(self) -> ExpectedArtifact:
        for field in ("type", "name", "version", "location", "reference"):
            pattern = getattr(self.matchArtifact, field)
            if pattern:
                check_pattern(pattern, f"expected artifact {self.id}: matchArtifact.{field}")
        if self.useDefaultArtifact and self.defaultArtifact is None:
            raise ValueError(f"expected artifact {self.id}: useDefaultArtifact needs a defaultArtifact")
        return self

    def label(self) -> str:
        return f"{self.id} ({self.displayName})" if self.displayName else self.id

    def matches(self, artifact: Artifact) -> bool:
        wanted = self.matchArtifact
        for field in ("type", "name", "version", "location", "reference"):
            pattern = getattr(wanted, field)
            if not pattern:
                continue
            value = getattr(artifact, field)
            if value is None or len(value) > MAX_MATCHED_CHARS or re.fullmatch(pattern, value) is None:
                return False
        return True


def check_pattern(pattern: str, where: str) -> None:
    """Refuse a tenant's pattern that is too long, invalid, or prone to catastrophic backtracking."""
    if len(pattern) > MAX_PATTERN_CHARS:
        raise ValueError(f"{where}: the pattern is {len(pattern)} characters; the limit is {MAX_PATTERN_CHARS}")
    if _NESTED_QUANTIFIER.search(pattern):
        raise ValueError(f"{where}: nested quantifiers like (a+)+ are not allowed in patterns (they can take forever)")
    quantifiers = len(_UNBOUNDED_QUANTIFIER.findall(_ESCAPE_OR_CLASS.sub("", pattern)))
    if quantifiers > MAX_UNBOUNDED_QUANTIFIERS:
        raise ValueError(
            f"{where}: at most {MAX_UNBOUNDED_QUANTIFIERS} unbounded repetitions (*, +, {{n,}}) per pattern; "
            f"this one has {quantifiers}"
        )
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"{where}: {pattern!r} is not a valid regular expression: {exc}") from None


class ArtifactBindings(BaseModel):
    """What the pipeline has bound so far: expected artifact id → artifact, plus every artifact seen
    (trigger, then those produced by stages), in the order they arrived."""

    model_config = ConfigDict(extra="forbid")

    bound: dict[str, Artifact] = Field(default_factory=dict)
    artifacts: list[Artifact] = Field(default_factory=list)

    def get(self, artifact_id: str, who: str) -> Artifact:
        """The artifact bound to `artifact_id`; `who` (e.g. "stage deploy: manifestArtifactId") names the asker."""
        found = self.bound.get(artifact_id)
        if found is None:
            known = ", ".join(sorted(self.bound)) or "none"
            raise ArtifactError(
                f"{who}: no artifact is bound to expected artifact id {artifact_id!r} (bound ids: {known}). "
                "Declare it in the pipeline's expectedArtifacts or in an upstream stage's expectedArtifacts."
            )
        return found

    def required(self, artifact_ids: list[str], who: str) -> list[Artifact]:
        """A stage's `requiredArtifactIds`, each resolved or the stage fails naming the missing id."""
        return [self.get(artifact_id, f"{who}: requiredArtifactIds") for artifact_id in artifact_ids]

    def with_produced(self, produced: list[Artifact], expected: list[ExpectedArtifact], who: str) -> ArtifactBindings:
        """These bindings plus a stage's produced artifacts, bound to that stage's `expectedArtifacts`."""
        bound = dict(self.bound)
        for item in expected:
            found = next((a for a in produced if item.matches(a)), None)
            if found is None and item.useDefaultArtifact:
                found = item.defaultArtifact
            if found is None:
                made = ", ".join(a.describe() for a in produced) or "nothing"
                raise ArtifactError(
                    f"{who}: expected artifact {item.label()} matches none of the artifacts the stage produced ({made})"
                )
            bound[item.id] = found
        return ArtifactBindings(bound=bound, artifacts=[*self.artifacts, *produced][-MAX_ARTIFACTS:])


def _unique_match(expected: ExpectedArtifact, candidates: list[Artifact], where: str) -> Artifact | None:
    found = [a for a in candidates if expected.matches(a)]
    if len(found) > 1:
        names = ", ".join(a.describe() for a in found[:5])
        raise ArtifactError(
            f"expected artifact {expected.label()} matches {len(found)} artifacts from {where} ({names}); "
            "make its matchArtifact more specific"
        )
    return found[0] if found else None


def resolve_expected_artifacts(
    expected: list[ExpectedArtifact],
    received: list[Artifact],
    prior: list[Artifact] | None = None,
) -> ArtifactBindings:
    """Bind the pipeline's `expectedArtifacts` to what the trigger brought (`received`), the prior
    execution's artifacts (`prior`, read by the caller for `usePriorArtifact`) or the defaults.

    Raises ArtifactError naming the first expected artifact that cannot be bound, and why."""
    if len(expected) > MAX_EXPECTED_ARTIFACTS:
        raise ArtifactError(f"{len(expected)} expected artifacts; the limit is {MAX_EXPECTED_ARTIFACTS}")
    if len(received) > MAX_ARTIFACTS:
        raise ArtifactError(f"the trigger brought {len(received)} artifacts; the limit is {MAX_ARTIFACTS}")
    ids = [e.id for e in expected]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ArtifactError(f"expected artifact ids must be unique: {', '.join(duplicates)}")
    bound: dict[str, Artifact] = {}
    for item in expected:
        found = _unique_match(item, received, "the trigger")
        if found is None and item.usePriorArtifact and prior:
            found = _unique_match(item, prior, "the prior execution")
        if found is None and item.useDefaultArtifact:
            found = item.defaultArtifact
        if found is None:
            tried = ["the trigger's artifacts"]
            if item.usePriorArtifact:
                tried.append("the prior execution's artifacts" if prior else "a prior execution (there is none)")
            hint = (
                "" if item.useDefaultArtifact else "; set useDefaultArtifact with a defaultArtifact to run without one"
            )
            raise ArtifactError(
                f"expected artifact {item.label()} ({_pattern_text(item.matchArtifact)}) was not found in "
                f"{' or '.join(tried)}{hint}"
            )
        bound[item.id] = found
    seen = list(received)
    seen.extend(a for a in bound.values() if a not in seen)
    return ArtifactBindings(bound=bound, artifacts=seen[:MAX_ARTIFACTS])


def _pattern_text(match: Artifact) -> str:
    parts = [f"{f}={getattr(match, f)!r}" for f in ("type", "name", "version", "reference") if getattr(match, f)]
    return ", ".join(parts) or "matches anything"


def stage_artifact(
    bindings: ArtifactBindings,
    who: str,
    artifact_id: str | None,
    inline: Artifact | None,
    allowed_types: tuple[str, ...] = ARTIFACT_TYPES,
) -> Artifact:
    """The artifact a stage consumes: by expected-artifact id (`manifestArtifactId`) or inline
    (`manifestArtifact`), exactly one of them, of one of `allowed_types`."""
    if (artifact_id is None) == (inline is None):
        raise ArtifactError(f"{who}: give exactly one of an artifact id or an inline artifact")
    artifact = bindings.get(artifact_id, who) if artifact_id is not None else inline
    assert artifact is not None
    if artifact.type not in allowed_types:
        raise ArtifactError(
            f"{who}: {artifact.describe()} is a {artifact.type}; expected one of {', '.join(allowed_types)}"
        )
    return artifact
