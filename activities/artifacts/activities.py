"""Artifact activities a worker with an `artifacts:` configuration serves.

`fetch_manifests` returns manifests into the workflow, so it is for small documents (the same
200 KB bound as inline manifests); activities that apply manifests can instead call
`activities.artifacts.manifests.load_manifests` themselves and keep large documents out of history.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, Field
from temporalio import activity

from activities.artifacts.binding import BoundImage
from activities.artifacts.errors import ARTIFACT_TOO_LARGE, artifact_error
from activities.artifacts.files import FileFetcher
from activities.artifacts.manifests import load_manifests
from activities.artifacts.model import Artifact
from activities.artifacts.settings import ArtifactAccounts
from activities.artifacts.store import ContentStore

MAX_RETURNED_MANIFEST_BYTES = 200_000


class FetchManifestsInput(BaseModel):
    """No secrets: recorded in history. `application` is the execution's (never the tenant's say)."""

    artifact: Artifact
    application: str
    bindArtifacts: list[Artifact] = Field(default_factory=list, description="docker/image artifacts to bind")


class FetchedManifests(BaseModel):
    manifests: list[dict[str, Any]]
    boundImages: list[BoundImage] = Field(default_factory=list)
    digest: str = Field(description="sha256 of the fetched document")
    source: str = Field(description="The artifact, described")


class ArtifactActivities:
    """Built once per worker from its configuration; holds no open connections."""

    def __init__(self, settings: ArtifactAccounts, store: ContentStore | None = None) -> None:
        self.settings = settings
        self.fetcher = FileFetcher(settings, store)

    @activity.defn(name="fetch_manifests")
    def fetch_manifests(self, request: FetchManifestsInput) -> FetchedManifests:
        """Fetch a manifest artifact, parse it, bind images; refuse results too large for history."""
        manifests, bound, digest = load_manifests(
            self.fetcher, request.artifact, request.application, request.bindArtifacts
        )
        size = len(json.dumps(manifests))
        if size > MAX_RETURNED_MANIFEST_BYTES:
            raise artifact_error(
                request.artifact.describe(),
                f"the manifests are {size // 1000} KB; the limit for manifests passed through the pipeline is "
                f"{MAX_RETURNED_MANIFEST_BYTES // 1000} KB: split them into several artifacts",
                ARTIFACT_TOO_LARGE,
            )
        return FetchedManifests(
            manifests=manifests, boundImages=bound, digest=digest, source=request.artifact.describe()
        )

    def activities(self) -> list[Callable[..., Any]]:
        return [self.fetch_manifests]
