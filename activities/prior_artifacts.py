"""The artifacts of a pipeline's previous successful execution, for expected artifacts with
`usePriorArtifact` (orca `ArtifactUtils.getArtifactsForPipelineId`: the most recent execution of
the same pipeline that SUCCEEDED).

Executions are Temporal workflows: visibility finds them by the Gennaker search attributes and the
`state` query reads their artifacts (ExecutionState.artifacts.artifacts). Run as a local activity
by the pipeline worker, which already holds a Temporal client.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, Field
from temporalio import activity
from temporalio.client import Client

from activities.artifacts.model import Artifact

MAX_PRIOR_ARTIFACTS = 128
# Newest first is not guaranteed by every visibility store: look at a few and pick the newest.
CANDIDATES = 20


class PriorArtifactsRequest(BaseModel):
    application: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    pipeline: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    executionId: str = Field(description="The asking execution, never its own prior")


class PriorArtifacts(BaseModel):
    executionId: str | None = None
    artifacts: list[Artifact] = Field(default_factory=list)


class PriorArtifactActivities:
    def __init__(self, client: Client) -> None:
        self.client = client

    def activities(self) -> list[Callable[..., Any]]:
        return [self.prior_artifacts]

    @activity.defn(name="prior_artifacts")
    async def prior_artifacts(self, request: PriorArtifactsRequest) -> PriorArtifacts:
        # The names are validated above ([a-z0-9-]), so they cannot break out of the quotes.
        query = (
            f"GennakerApplication = '{request.application}' AND GennakerPipeline = '{request.pipeline}' "
            "AND GennakerStatus = 'SUCCEEDED'"
        )
        found = [e async for e in self.client.list_workflows(query, limit=CANDIDATES) if e.id != request.executionId]
        if not found:
            return PriorArtifacts()
        newest = max(found, key=lambda e: e.start_time)
        state: Any = await self.client.get_workflow_handle(newest.id, run_id=newest.run_id).query("state")
        bindings = state.get("artifacts") if isinstance(state, dict) else None
        raw = bindings.get("artifacts") if isinstance(bindings, dict) else None
        items = raw[:MAX_PRIOR_ARTIFACTS] if isinstance(raw, list) else []
        return PriorArtifacts(executionId=newest.id, artifacts=[Artifact.model_validate(a) for a in items])
