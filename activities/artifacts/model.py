"""Spinnaker's artifact: a typed, named *reference* to something outside the pipeline (a file at a
URL, a file in GitHub/GitLab, a Git repository at a ref, a Docker image, a Helm chart). Only
`embedded/base64` carries content, and that is bounded here so history stays small.

Field meanings follow spinnaker.io/docs/reference/ref-artifacts (types: `embedded/base64`,
`http/file`, `github/file`, `gitlab/file`, `git/repo` with `version` = ref and `metadata.subPath`,
`docker/image`, `helm/chart` with `name` + `version` in the account's repository). The model lives
with the activities (which depend on nothing above them) and is re-exported by `workflows.artifacts`.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator

# Spinnaker's types that Gennaker workers can fetch or bind.
ArtifactType = Literal[
    "embedded/base64",
    "http/file",
    "github/file",
    "gitlab/file",
    "git/repo",
    "docker/image",
    "helm/chart",
]
ARTIFACT_TYPES: tuple[str, ...] = get_args(ArtifactType)

MAX_FIELD_CHARS = 2048
# An embedded/base64 reference carries its content through history: keep it well below Temporal's
# 256 KB payload warning (large rendered manifests go to the worker's store instead, see
# activities/artifacts/store.py).
MAX_EMBEDDED_CHARS = 96 * 1024
MAX_METADATA_ENTRIES = 32


class Artifact(BaseModel):
    """Spinnaker's artifact: a typed, named reference. Only these fields are known; `id`,
    `customKind` and `kind` are accepted because Spinnaker's UI writes them into exported pipelines."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str = Field(min_length=1, max_length=64, description="e.g. http/file, git/repo, docker/image")
    name: str | None = Field(default=None, max_length=MAX_FIELD_CHARS)
    reference: str | None = Field(default=None, description="URL, image reference, or base64 content")
    version: str | None = Field(default=None, max_length=MAX_FIELD_CHARS, description="ref, tag, chart version")
    location: str | None = Field(default=None, max_length=MAX_FIELD_CHARS)
    artifactAccount: str | None = Field(default=None, max_length=128, description="Worker-side credentials")
    metadata: dict[str, Any] = Field(default_factory=dict, description="e.g. subPath of a git/repo")
    provenance: str | None = Field(default=None, max_length=MAX_FIELD_CHARS)
    uuid: str | None = Field(default=None, max_length=128)
    id: str | None = Field(default=None, max_length=128)
    customKind: bool | None = None
    kind: str | None = Field(default=None, max_length=64)

    @field_validator("reference")
    @classmethod
    def _bounded_reference(cls, value: str | None) -> str | None:
        if value is not None and len(value) > MAX_EMBEDDED_CHARS:
            raise ValueError(
                f"reference is {len(value)} characters; the limit is {MAX_EMBEDDED_CHARS}: serve large "
                "content over http/file, git/repo or github/file instead of embedding it"
            )
        return value

    @field_validator("metadata")
    @classmethod
    def _bounded_metadata(cls, value: dict[str, Any]) -> dict[str, Any]:
        if len(value) > MAX_METADATA_ENTRIES:
            raise ValueError(f"metadata has {len(value)} entries; the limit is {MAX_METADATA_ENTRIES}")
        for key, item in value.items():
            if len(key) > 128 or len(str(item)) > MAX_FIELD_CHARS:
                raise ValueError(f"metadata.{key[:40]} is too long (keys 128, values {MAX_FIELD_CHARS} characters)")
        return value

    @property
    def sub_path(self) -> str | None:
        """A git/repo artifact's directory inside the repository (Spinnaker's `metadata.subPath`;
        `location` is the older spelling)."""
        value = self.metadata.get("subPath") or self.location
        return str(value) if value else None

    def describe(self) -> str:
        """How errors name this artifact: type, then name or reference (never embedded content)."""
        shown = self.name or (self.reference if self.type != "embedded/base64" else None) or "(unnamed)"
        if len(shown) > 120:
            shown = shown[:117] + "…"
        version = f"@{self.version}" if self.version else ""
        return f"{self.type} {shown}{version}"
