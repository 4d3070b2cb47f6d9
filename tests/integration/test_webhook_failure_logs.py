"""A failing webhook's secrets stay out of the worker's log lines (and out of the stage's error).

The worker logs every failed activity ("Completing activity as failed", with the exception) through
the root handler that `configure_logging` installs; this captures those lines with the product's
own formatters (JSON and text), as a worker process writes them, while webhooks fail in the ways
that echo what the request carried: a server quoting the token back in its error, a header value the
HTTP library refuses and quotes, a credential under a query parameter no word list knows.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from temporalio.client import Client

import workflows.stages.webhook  # noqa: F401  (registers `type: webhook`)
from core.observability.logs import TEXT_FORMAT, JsonLinesFormatter, RedactingTextFormatter, redact
from core.store import PipelineStore
from tests.support.fake_services import FakeHttp, Reply
from tests.support.runner import Runner
from tests.support.worker_policy import TEST_EGRESS
from workers.config import WorkerConfig
from workers.runner import pipeline_worker
from workers.telemetry import observe_worker_client
from workflows.state import ExecutionState, StageStatus

QUEUE = f"webhook-logs-{uuid.uuid4().hex[:8]}"
TOKEN = f"tok-{uuid.uuid4().hex}"
SIGNATURE = f"sig-{uuid.uuid4().hex}"
API_KEY = f"key-{uuid.uuid4().hex}"


class WorkerLog(logging.Handler):
    """What the worker process would print: every record through both product formatters."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.formats = [JsonLinesFormatter(), RedactingTextFormatter(TEXT_FORMAT)]
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.extend(f.format(record) for f in self.formats)


@pytest.fixture(scope="module")
def http() -> Iterator[FakeHttp]:
    with FakeHttp() as fake:
        yield fake


@pytest.fixture(scope="module")
async def worker(client: Client, store: PipelineStore) -> AsyncIterator[None]:
    config = WorkerConfig(egress=TEST_EGRESS)
    async with pipeline_worker(observe_worker_client(client, None), store, task_queue=QUEUE, config=config):
        yield


async def run_logged(client: Client, stage: dict[str, Any]) -> tuple[ExecutionState, list[str]]:
    log, root = WorkerLog(), logging.getLogger()
    level = root.level
    root.addHandler(log)
    root.setLevel(logging.INFO)  # as `configure_logging` runs a worker (GENNAKER_LOG_LEVEL default)
    try:
        state = await Runner(client, QUEUE).run({"application": "shop", "name": "hook-logs", "stages": [stage]})
    finally:
        root.removeHandler(log)
        root.setLevel(level)
    return state, log.lines


def failed_message(state: ExecutionState) -> str:
    stage = state.stage("hook")
    assert stage is not None and stage.status is StageStatus.TERMINAL and stage.error is not None, stage
    return stage.error.message


async def test_a_server_echoing_the_token_does_not_put_it_in_the_log(
    client: Client, worker: None, http: FakeHttp
) -> None:
    # Many APIs quote the credential they refuse; the failure message quotes the answer.
    url = http.route("POST", "/hook", Reply(401, f"token {TOKEN} is expired; ask for a new one"))
    state, lines = await run_logged(client, {"refId": "hook", "type": "webhook", "url": f"{url}?token={TOKEN}"})
    message = failed_message(state)
    assert "HTTP 401" in message and "is expired" in message, message
    assert http.received("POST", "/hook")[0].query["token"] == [TOKEN]  # the token was really sent
    failed = [line for line in lines if "Completing activity as failed" in line]
    assert failed and any("is expired" in line for line in failed), lines  # the line exists, echo and all
    assert TOKEN not in message
    assert not [line for line in lines if TOKEN in line]


async def test_a_refused_header_value_and_an_unknown_query_name_stay_out_of_the_log(
    client: Client, worker: None, http: FakeHttp
) -> None:
    # h11 refuses a header value with a line break and quotes it in its error (a transport error, so
    # the call is retried, then fails); `sig=` is no word a keyword redactor knows (SAS URLs).
    url = http.route("POST", "/signed", Reply(200, {}))
    stage = {
        "refId": "hook",
        "type": "webhook",
        "url": f"{url}?sv=2024&sig={SIGNATURE}",
        "customHeaders": {"X-Team-Key": f"{API_KEY}\n"},
        "maxRetries": 1,
    }
    state, lines = await run_logged(client, stage)
    message = failed_message(state)
    assert "LocalProtocolError" in message and "***" in message, message
    assert not http.received("POST", "/signed")  # nothing was sent
    assert [line for line in lines if "Completing activity as failed" in line], lines
    for secret in (SIGNATURE, API_KEY):
        assert secret not in message
        assert not [line for line in lines if secret in line], secret


def test_log_redaction_cuts_url_queries_as_history_does() -> None:
    lines = {
        f"HTTP Request: GET https://acct.blob.core.windows.net/c/b?sv=2024&sig={SIGNATURE} 200": "/c/b?…",
        f"redirected to http://h/cb?code={TOKEN}#state=1": "http://h/cb?…",
        f"private_token={TOKEN}": "private_token=***",
        f"client_secret: {TOKEN}": "client_secret: ***",
    }
    for line, kept in lines.items():
        assert redact(line).count(kept) == 1 and TOKEN not in redact(line) and SIGNATURE not in redact(line), line
    # Prose keeps its question marks; a word merely ending in a secret word is no key.
    assert redact("is the account in gennaker.yaml?") == "is the account in gennaker.yaml?"
    assert redact("token_type=bearer") == "token_type=bearer"
