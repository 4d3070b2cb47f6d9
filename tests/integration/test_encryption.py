"""Histories are encrypted at rest, and the gateway's codec endpoint decodes them for the UI."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from temporalio.client import Client

from api.app import create_app
from api.settings import GatewaySettings
from core.store import PipelineStore
from tests.support.runner import Runner, pipeline
from workers.devserver import TemporalDevServer

MARKER = "very-recognisable-parameter-value"


@pytest.fixture
async def api(
    temporal_server: TemporalDevServer, client: Client, store: PipelineStore, codec_keys: Path
) -> AsyncIterator[httpx.AsyncClient]:
    settings = GatewaySettings(
        temporal_address=temporal_server.address,
        database_url=store.database_url,
        codec_keys_file=codec_keys,
        temporal_ui_url="http://ui.example:8233",
        auth_disabled=True,  # this file tests encryption; tests/integration/test_auth.py tests access
    )
    app = create_app(settings, client=client, store=store)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://gateway") as http,
    ):
        yield http


async def test_history_is_encrypted_and_the_codec_endpoint_reads_it(
    runner: Runner, temporal_server: TemporalDevServer, api: httpx.AsyncClient
) -> None:
    spec = pipeline(
        {"refId": "v", "type": "evaluateVariables", "variables": [{"key": "echo", "value": "${{ parameters.p }}"}]},
        name="encrypted",
        parameters=[{"name": "p"}],
    )
    handle = await runner.start(spec, {"p": MARKER})
    state = await runner.finish(handle)
    assert state.stage("v") and state.stage("v").outputs == {"echo": MARKER}  # type: ignore[union-attr]

    # What the server stores: read the raw history with a client that has no key.
    raw_client = await Client.connect(temporal_server.address)  # default converter: no codec at all
    history = await raw_client.get_workflow_handle(handle.id).fetch_history()
    raw = history.to_json()
    assert MARKER not in raw
    assert base64.b64encode(b"binary/encrypted").decode() in raw

    # The Temporal UI sends the stored payloads to the codec endpoint and shows what comes back.
    started = history.events[0].workflow_execution_started_event_attributes
    payload = started.input.payloads[0]
    body = {
        "payloads": [
            {
                "metadata": {k: base64.b64encode(v).decode() for k, v in payload.metadata.items()},
                "data": base64.b64encode(payload.data).decode(),
            }
        ]
    }
    response = await api.post("/codec/decode", json=body, headers={"Origin": "http://ui.example:8233"})
    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] == "http://ui.example:8233"
    decoded = base64.b64decode(response.json()["payloads"][0]["data"]).decode()
    assert MARKER in decoded


async def test_codec_endpoint_rejects_garbage_with_a_json_error(api: httpx.AsyncClient) -> None:
    response = await api.post("/codec/decode", content=b"not json")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_payloads"
