"""Dependencies shared by the routers: the Temporal client, the store, settings, and access checks.

All `async def`: they only read app state, and a plain `def` dependency costs a thread-pool hop per
request. The store they hand out is the async one (core/store/aio.py): its calls run off the loop."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from temporalio.client import Client

from api.auth import IdentityDep, PolicyDep, require, require_admin
from api.errors import ApiError
from api.policy import Identity, Permission, Policy
from api.settings import GatewaySettings
from core.store import AsyncPipelineStore, PipelineStore


async def _client(request: Request) -> Client:
    client: Client = request.app.state.temporal
    return client


async def _store(request: Request) -> AsyncPipelineStore:
    store: PipelineStore = request.app.state.store
    return store.aio


async def _settings(request: Request) -> GatewaySettings:
    settings: GatewaySettings = request.app.state.settings
    return settings


TemporalClientDep = Annotated[Client, Depends(_client)]
StoreDep = Annotated[AsyncPipelineStore, Depends(_store)]
SettingsDep = Annotated[GatewaySettings, Depends(_settings)]


@dataclass(frozen=True)
class Access:
    """The caller and what the policy lets them do; handlers ask before acting."""

    identity: Identity
    policy: Policy
    settings: GatewaySettings

    @property
    def subject(self) -> str:
        return self.identity.subject

    def require(self, application: str, permission: Permission) -> None:
        require(self.identity, self.policy, self.settings, application, permission)

    def can(self, application: str, permission: Permission) -> bool:
        return self.settings.auth_disabled or self.policy.allows(self.identity, application, permission)

    def require_somewhere(self, permission: Permission, what: str) -> None:
        """For views that belong to no application (accounts): some application must grant it."""
        if self.settings.auth_disabled or self.policy.allows_somewhere(self.identity, permission):
            return
        raise ApiError(
            403, "forbidden", f"{self.subject} lacks {permission.value} on every application ({what} needs it on one)"
        )

    def launch_as(self) -> dict[str, Any]:
        """start_execution's tenancy arguments: the policy (none when auth is off) and the caller."""
        return {"policy": None if self.settings.auth_disabled else self.policy, "submitter": self.identity}

    def require_admin(self, what: str) -> None:
        require_admin(self.identity, self.policy, self.settings, what)


async def _access(identity: IdentityDep, policy: PolicyDep, settings: SettingsDep) -> Access:
    return Access(identity, policy, settings)


AccessDep = Annotated[Access, Depends(_access)]


async def _caller(access: AccessDep) -> str:
    return access.subject


# The authenticated subject: what judgments, cancels and saves record (never a name from a body).
CallerDep = Annotated[str, Depends(_caller)]
