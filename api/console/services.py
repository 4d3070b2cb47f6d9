"""Everything the console asks of the gateway, in one place.

The console adds no second way to authorise, launch or control an execution: each call below goes
through the same function the JSON API's endpoint uses (the endpoint functions are plain async
functions, so they are called directly with the dependencies they would get from FastAPI). When the
gateway's shared code moves (to `core/`), only the imports of this module need re-pointing.
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import timedelta
from typing import Any

from fastapi import Request, Response
from temporalio.client import Client

from api.auth import authenticate
from api.deps import Access
from api.policy import Identity, Permission, Policy
from api.routers import clusters as clusters_api
from api.routers import executions as executions_api
from api.routers import pipelines as pipelines_api
from api.schemas import (
    ControlBody,
    ExecutionRequest,
    ExecutionStarted,
    ExecutionSummary,
    JudgmentBody,
    SavedExecutionRequest,
)
from api.settings import GatewaySettings
from core.directory import reported_accounts
from core.store import AsyncPipelineStore, PipelineRevision
from workflows.accounts import AccountView
from workflows.model import PipelineSpec, parse_pipeline
from workflows.state import ExecutionState, PipelineRunInput

__all__ = [
    "AccountView",
    "ClustersResponse",
    "ExecutionState",
    "ExecutionSummary",
    "Gateway",
    "Permission",
    "PipelineSpec",
]

ClustersResponse = clusters_api.ClustersResponse


class Gateway:
    """The gateway's state for one request (client, store, settings, policy) and the caller's access."""

    def __init__(self, request: Request, identity: Identity) -> None:
        self.request = request
        self.client: Client = request.app.state.temporal
        self.store: AsyncPipelineStore = request.app.state.store.aio
        self.settings: GatewaySettings = request.app.state.settings
        self.policy: Policy = request.app.state.policy
        self.access = Access(identity, self.policy, self.settings)

    @property
    def subject(self) -> str:
        return self.access.subject

    def can(self, application: str, permission: Permission) -> bool:
        return self.access.can(application, permission)

    def is_admin(self) -> bool:
        return self.settings.auth_disabled or self.policy.is_admin(self.access.identity)

    # ---- applications and saved pipelines ------------------------------------------------------

    async def readable_applications(self) -> list[str]:
        return [app for app in await self.store.list_applications() if self.can(app, Permission.READ)]

    async def pipelines(self, application: str) -> list[tuple[PipelineRevision, PipelineSpec | None]]:
        """Live pipelines with their parsed spec (None if a stored config no longer validates)."""
        self.access.require(application, Permission.READ)
        found: list[tuple[PipelineRevision, PipelineSpec | None]] = []
        for revision in await self.store.list_pipelines(application):
            try:
                spec: PipelineSpec | None = parse_pipeline(revision.config)
            except ValueError:
                spec = None
            found.append((revision, spec))
        return found

    async def run_saved(self, application: str, name: str, parameters: dict[str, Any]) -> ExecutionStarted:
        return await pipelines_api.run_saved_pipeline(
            application,
            name,
            self.client,
            self.store,
            self.settings,
            self.access,
            Response(),
            SavedExecutionRequest(parameters=parameters),
            None,
        )

    async def run_inline(self, pipeline: dict[str, Any]) -> ExecutionStarted:
        """Console actions (resize, enable, ...) are inline pipelines started like `POST /executions`."""
        return await executions_api.run_inline(
            ExecutionRequest(pipeline=pipeline), self.client, self.settings, self.access, Response(), None
        )

    # ---- executions -----------------------------------------------------------------------------

    async def executions(self, application: str, limit: int = 25) -> list[ExecutionSummary]:
        listing = await executions_api.list_executions(self.client, self.access, application, None, None, limit)
        return listing.executions

    async def execution(self, execution_id: str) -> ExecutionState:
        return await executions_api.get_execution(execution_id, self.client, self.access)

    async def judge(self, execution_id: str, ref_id: str, status: str, option: str | None, comment: str | None) -> None:
        body = JudgmentBody.model_validate({"judgmentStatus": status, "input": option, "comment": comment})
        await executions_api.judge_stage(execution_id, ref_id, body, self.client, self.access)

    async def cancel(self, execution_id: str, reason: str | None) -> None:
        await executions_api.cancel_execution(execution_id, self.client, self.access, ControlBody(reason=reason))

    async def pipeline_of(self, state: ExecutionState) -> PipelineSpec:
        """The spec an execution runs (judgment instructions and options live there, not in its
        state): the first event of the run's history, decoded (and decrypted) like any payload.
        A run's input never changes, so it is cached by run id."""
        cached = _SPECS.get(state.runId)
        if cached is not None:
            _SPECS.move_to_end(state.runId)
            return cached
        handle = self.client.get_workflow_handle(state.id, run_id=state.runId)
        async for event in handle.fetch_history_events(page_size=1):
            payloads = list(event.workflow_execution_started_event_attributes.input.payloads)
            (run_input,) = await self.client.data_converter.decode(payloads, [PipelineRunInput])
            spec: PipelineSpec = run_input.pipeline
            break
        else:  # pragma: no cover - a run always starts with its started event
            raise LookupError(f"execution {state.id} has no history")
        _SPECS[state.runId] = spec
        if len(_SPECS) > SPEC_CACHE_SIZE:
            _SPECS.popitem(last=False)
        return spec

    # ---- clusters and accounts ------------------------------------------------------------------

    async def clusters(self, application: str) -> clusters_api.ClustersResponse:
        return await clusters_api.list_clusters(application, self.client, self.settings, self.access, None, None)

    async def accounts(self) -> list[AccountView]:
        """As GET /accounts: READ on some application, and workers gone too long are dropped."""
        self.access.require_somewhere(Permission.READ, "the account list")
        return await reported_accounts(self.client, timedelta(seconds=self.settings.account_forget_after_seconds))


SPEC_CACHE_SIZE = 256
_SPECS: OrderedDict[str, PipelineSpec] = OrderedDict()


async def identify(request: Request, credential: str | None) -> Identity:
    """The caller behind a console credential, checked exactly as an `Authorization: Bearer` header
    (API token or OIDC JWT); raises the API's 401 ApiError when it is missing or invalid."""
    return await authenticate(request, authorization=f"Bearer {credential}" if credential else None)


def auth_disabled(request: Request) -> bool:
    settings: GatewaySettings = request.app.state.settings
    return settings.auth_disabled
