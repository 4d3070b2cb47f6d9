"""Dependencies shared by the routers: the Temporal client, the store, settings, the caller."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request
from temporalio.client import Client

from api.settings import GatewaySettings
from api.store import PipelineStore


def _client(request: Request) -> Client:
    client: Client = request.app.state.temporal
    return client


def _store(request: Request) -> PipelineStore:
    store: PipelineStore = request.app.state.store
    return store


def _settings(request: Request) -> GatewaySettings:
    settings: GatewaySettings = request.app.state.settings
    return settings


def _caller(
    x_gennaker_user: Annotated[str | None, Header(description="Who is calling (until token auth)")] = None,
) -> str:
    return (x_gennaker_user or "anonymous").strip()[:255] or "anonymous"


TemporalClientDep = Annotated[Client, Depends(_client)]
StoreDep = Annotated[PipelineStore, Depends(_store)]
SettingsDep = Annotated[GatewaySettings, Depends(_settings)]
CallerDep = Annotated[str, Depends(_caller)]
