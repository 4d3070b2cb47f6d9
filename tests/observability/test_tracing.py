"""One trace from a submission through the gateway to the workflow, its stages and activities.

Real gateway app (ASGI), real Temporal dev server and worker; spans go to an in-memory exporter on a
provider of this test's own (the global OpenTelemetry provider stays untouched).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from temporalio.client import Client
from typer.testing import CliRunner

import workflows.stages.webhook  # noqa: F401  (registers `type: webhook`)
from api.app import create_app
from api.settings import GatewaySettings
from core.observability.settings import TelemetrySettings
from core.observability.tracing import traced_client, tracer_provider
from core.store import PipelineStore
from stack.cli import app as cli  # `gennaker api` is registered there
from tests.support.fake_services import FakeHttp, Reply
from tests.support.worker_policy import TEST_EGRESS
from workers.config import WorkerConfig
from workers.gateway_client import CliError
from workers.runner import pipeline_worker
from workers.telemetry import observe_worker_client
from workflows.state import ExecutionState

QUEUE = f"traces-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def spans() -> tuple[TracerProvider, InMemorySpanExporter]:
    provider = TracerProvider()
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


@pytest.fixture(scope="module")
def http() -> Iterator[FakeHttp]:
    with FakeHttp() as fake:
        yield fake


@pytest.fixture(scope="module")
async def gateway(
    client: Client, store: PipelineStore, spans: tuple[TracerProvider, InMemorySpanExporter]
) -> AsyncIterator[httpx.AsyncClient]:
    provider, _ = spans
    worker_client = observe_worker_client(client, provider)
    settings = GatewaySettings(task_queue=QUEUE, database_url=store.database_url, auth_disabled=True)
    app = create_app(settings, client=traced_client(client, provider), store=store)
    app.state.tracer_provider = provider
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with (
        pipeline_worker(worker_client, store, task_queue=QUEUE, config=WorkerConfig(egress=TEST_EGRESS)),
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://gennaker.test") as http_client,
    ):
        yield http_client


def named(spans: list[ReadableSpan], prefix: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name.startswith(prefix)]


async def test_a_submission_is_one_trace_through_workflow_stages_and_activities(
    gateway: httpx.AsyncClient, client: Client, spans: tuple[TracerProvider, InMemorySpanExporter], http: FakeHttp
) -> None:
    _, exporter = spans
    exporter.clear()
    url = http.route("POST", "/traced", Reply(200, {"ok": True}))
    spec: dict[str, Any] = {
        "application": "shop",
        "name": "traced",
        "stages": [
            {"refId": "wait", "type": "wait", "waitTime": 0},
            {"refId": "hook", "type": "webhook", "url": url, "requisiteStageRefIds": ["wait"]},
        ],
    }
    response = await gateway.post("/executions", json={"pipeline": spec}, headers={"X-Gennaker-User": "alice"})
    assert response.status_code in (200, 201, 202), response.text
    execution_id = response.json()["id"]
    handle = client.get_workflow_handle(execution_id)
    await asyncio.wait_for(handle.result(), 60)
    state = await handle.query("state", result_type=ExecutionState)
    assert state.status == "SUCCEEDED", state.failure

    finished = list(exporter.get_finished_spans())
    (root,) = [s for s in finished if s.name == "POST /executions"]
    trace_id = root.context.trace_id
    ours = [s for s in finished if s.context.trace_id == trace_id]
    for prefix in ("StartWorkflow:PipelineWorkflow", "RunWorkflow:PipelineWorkflow", "StartActivity:", "RunActivity:"):
        assert named(ours, prefix), f"no {prefix} span in the submission's trace: {[s.name for s in ours]}"
    stage_spans = {s.attributes["gennaker.stage.ref_id"] for s in named(ours, "Stage:") if s.attributes}
    assert stage_spans == {"wait", "hook"}
    # The gateway span is the root: everything else descends from it.
    assert root.parent is None
    assert all(s.parent is not None for s in ours if s is not root)
    assert root.attributes is not None and root.attributes["http.route"] == "/executions"


def test_otlp_export_is_off_by_default_and_posts_spans_to_the_configured_endpoint(http: FakeHttp) -> None:
    assert tracer_provider(TelemetrySettings(otlp_endpoint=None)) is None
    endpoint = http.route("POST", "/v1/traces", Reply(200, {}))
    provider = tracer_provider(TelemetrySettings(otlp_endpoint=endpoint, service_name="gennaker-test"))
    assert provider is not None
    try:
        with provider.get_tracer("test").start_as_current_span("probe-span"):
            pass
        assert provider.force_flush(10_000)
    finally:
        provider.shutdown()
    (request,) = [r for r in http.requests if r.path == "/v1/traces"]
    headers = {k.lower(): v for k, v in request.headers.items()}
    assert headers["content-type"] == "application/x-protobuf"
    assert b"probe-span" in request.body and b"gennaker-test" in request.body


def test_a_bad_telemetry_variable_is_exit_2_naming_it() -> None:
    # Command errors are CliErrors that `run_cli` (the entry point) turns into a message and exit code.
    runner = CliRunner()
    for command, env, named in (
        (["worker"], {"GENNAKER_METRICS_ADDRESS": "not an address"}, "GENNAKER_METRICS_ADDRESS"),
        (["api"], {"GENNAKER_LOG_FORMAT": "xml"}, "GENNAKER_LOG_FORMAT"),
    ):
        result = runner.invoke(cli, command, env=env)
        error = result.exception
        assert isinstance(error, CliError), result.output
        assert error.exit_code == 2 and named in str(error), str(error)
