"""What the Temporal UI reads from a history: stage-named summaries and current details in clear,
inputs still encrypted; a stage whose account has no worker fails after its own bounded wait."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import EventType
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import Client, WorkflowExecutionStatus

from api.app import create_app
from api.settings import GatewaySettings
from core.codec import READABLE
from core.executions import visibility_query
from core.store import PipelineStore
from tests.support.eventually import assert_eventually
from tests.support.runner import Runner, pipeline
from workers.devserver import TemporalDevServer
from workflows.search import STATUS
from workflows.state import ExecutionStatus, StageStatus

SECRET_PARAMETER = "hunter2-never-in-a-summary"


async def _raw(temporal_server: TemporalDevServer) -> Client:
    return await Client.connect(temporal_server.address)  # no codec, no key: what the server stores


async def test_summaries_and_details_are_readable_and_name_the_stage(
    runner: Runner, temporal_server: TemporalDevServer
) -> None:
    spec = pipeline(
        {"refId": "pause", "name": "settle", "type": "wait", "waitTime": 1},
        {
            "refId": "approve",
            "type": "manualJudgment",
            "requisiteStageRefIds": ["pause"],
            "instructions": "Check the canary dashboard",
            "judgmentInputs": ["ship", "hold"],
        },
        name="readable",
        parameters=[{"name": "p"}],
    )
    handle = await runner.start(spec, {"p": SECRET_PARAMETER})
    raw = (await _raw(temporal_server)).get_workflow_handle(handle.id)

    async def current_details() -> str:
        answer = await raw.query("__temporal_workflow_metadata")
        # A client without the key reads it: the answer is stored in clear (json/protobuf).
        assert isinstance(answer, WorkflowMetadata), answer
        return answer.current_details

    details = await assert_eventually(
        current_details,
        lambda text: "waits for a judgment" in text,
        what="details show the waiting judgment",
        timeout=10,
    )
    assert "**approve** (manualJudgment)" in details and "**approve** waits for a judgment" in details
    assert "instructions: Check the canary dashboard" in details
    assert "options: ship, hold" in details
    assert f"gennaker approve {handle.id} approve --option ship" in details
    assert f"/console/executions/{handle.id}" in details

    history = await raw.fetch_history()
    timers = [e for e in history.events if e.event_type == EventType.EVENT_TYPE_TIMER_STARTED]
    assert timers, "the wait stage started no timer"
    summary = timers[0].user_metadata.summary
    assert summary.metadata.get(READABLE) == b"1"
    assert json.loads(summary.data) == "settle · Wait 1s"
    started = history.events[0].workflow_execution_started_event_attributes
    assert started.input.payloads[0].metadata["encoding"] == b"binary/encrypted"
    assert SECRET_PARAMETER not in history.to_json()
    assert base64.b64encode(SECRET_PARAMETER.encode()).decode() not in history.to_json()
    await handle.cancel()


async def test_a_stage_whose_account_has_no_worker_fails_after_its_own_limit(runner: Runner) -> None:
    spec = pipeline(
        {
            "refId": "resize",
            "type": "resizeServerGroup",
            "account": "nowhere",
            "namespace": "default",
            "cluster": "shop",
            "resizeType": "exact",
            "capacity": {"min": 1, "max": 1, "desired": 1},
            "noWorkerTimeoutMs": 1500,
        },
        name="noworker",
    )
    state = await runner.finish(await runner.start(spec), timeout=30)
    stage = state.stage("resize")
    assert stage is not None and stage.status is StageStatus.TERMINAL
    assert stage.error is not None and stage.error.kind == "noWorker"
    assert "no worker for kubernetes account nowhere" in stage.error.message
    assert " in 1 s" in stage.error.message


UI_ORIGIN = "https://temporal-ui.example.test"
ISSUER, AUDIENCE = "https://login.example.test", "temporal-ui"


@pytest.fixture
async def oidc_gateway(
    temporal_server: TemporalDevServer, client: Client, store: PipelineStore, codec_keys: Path, tmp_path: Path
) -> AsyncIterator[tuple[httpx.AsyncClient, rsa.RSAPrivateKey]]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [{**jwk, "kid": "ui", "use": "sig", "alg": "RS256"}]}))
    policy = tmp_path / "policy.yaml"
    policy.write_text("admins: []\napplications:\n  '*': {READ: [group:operators]}\n  shop: {READ: [group:shop]}\n")
    settings = GatewaySettings(
        temporal_address=temporal_server.address,
        database_url=store.database_url,
        codec_keys_file=codec_keys,
        temporal_ui_url=UI_ORIGIN,
        auth_policy_file=policy,
        oidc_issuer=ISSUER,
        oidc_audience=AUDIENCE,
        oidc_jwks_file=jwks,
    )
    app = create_app(settings, client=client, store=store)
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
        yield http, key


def access_token(key: rsa.RSAPrivateKey, *groups: str) -> str:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "ola", "groups": list(groups), "iat": now, "exp": now + 300}
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": "ui"})


async def test_the_ui_passes_its_oidc_access_token_to_the_codec_endpoint(
    oidc_gateway: tuple[httpx.AsyncClient, rsa.RSAPrivateKey], client: Client
) -> None:
    http, key = oidc_gateway
    # The browser's preflight for the UI's POST with Authorization and X-Namespace.
    preflight = await http.options(
        "/codec/decode",
        headers={
            "Origin": UI_ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type,x-namespace",
        },
    )
    assert preflight.status_code == 200, preflight.text
    assert preflight.headers["access-control-allow-origin"] == UI_ORIGIN
    allowed = preflight.headers["access-control-allow-headers"].lower()
    assert "authorization" in allowed and "x-namespace" in allowed
    other = await http.options(
        "/codec/decode", headers={"Origin": "https://evil.test", "Access-Control-Request-Method": "POST"}
    )
    assert other.headers.get("access-control-allow-origin") != "https://evil.test"

    codec = client.data_converter.payload_codec
    assert codec is not None
    [sealed] = await codec.encode([Payload(metadata={"encoding": b"json/plain"}, data=b'"x"')])
    assert sealed.metadata["encoding"] == b"binary/encrypted"
    body = {"payloads": [json_format.MessageToDict(sealed)]}
    headers = {"Origin": UI_ORIGIN, "X-Namespace": "default"}
    decoded = await http.post(
        "/codec/decode", json=body, headers={**headers, "Authorization": f"Bearer {access_token(key, 'operators')}"}
    )
    assert decoded.status_code == 200, decoded.text
    assert base64.b64decode(decoded.json()["payloads"][0]["data"]) == b'"x"'
    # Reading one application is not enough: a payload does not say whose it is.
    narrow = await http.post(
        "/codec/decode", json=body, headers={**headers, "Authorization": f"Bearer {access_token(key, 'shop')}"}
    )
    assert narrow.status_code == 403, narrow.text
    assert (await http.post("/codec/decode", json=body, headers=headers)).status_code == 401
    # The dev stack's keyed endpoint does not exist on a gateway that `gennaker dev` did not start.
    assert (await http.post("/codec/dev/guess/decode", json=body, headers=headers)).status_code == 404


async def test_a_superseded_run_reads_superseded_in_the_list(runner: Runner, client: Client) -> None:
    spec = pipeline(
        {"refId": "work", "type": "wait", "waitTime": 30},
        name="ui-supersede",
        limitConcurrent=True,
        keepWaitingPipelines=False,
    )
    first = await runner.start(spec)
    await runner.wait_until(first, lambda s: s.status is ExecutionStatus.RUNNING)
    second = await runner.start(spec)
    await runner.wait_until(second, lambda s: s.status is ExecutionStatus.WAITING)
    third = await runner.start(spec)
    state = await runner.finish(second)
    assert state.status is ExecutionStatus.CANCELED and "superseded by" in (state.cancelReason or "")
    described = await client.get_workflow_handle(second.id).describe()
    assert described.status == WorkflowExecutionStatus.COMPLETED  # what Temporal's own column says
    assert described.typed_search_attributes.get(STATUS) == "SUPERSEDED"  # what GennakerStatus says
    # The console's and API's CANCELED filter still finds it (visibility is eventually consistent).
    query = visibility_query(spec["application"], "ui-supersede", ExecutionStatus.CANCELED)

    async def listed() -> list[str]:
        return [wf.id async for wf in client.list_workflows(query)]

    await assert_eventually(listed, lambda ids: second.id in ids, what=f"{second.id} listed by {query}", timeout=10)
    for handle in (first, third):
        await handle.cancel()
