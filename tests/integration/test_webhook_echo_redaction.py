"""A server that echoes the request does not put the request's secrets into workflow history.

Echo endpoints (httpbin's /anything), chatty 200 pages and a hostile tenant's own server answer with
the headers and query they were sent. The webhook stage keeps the reply body, each poll's body, the
status, the progress message and the status URL in its outputs: those are activity results, so
workflow history, which the Temporal UI shows. Here a real local server echoes everything — headers
and query as values and as keys, in JSON and in a long text answer, the token even in the Location
it answers — and the test reads what was kept through the `state` query and through the history
itself, every payload decoded with the suite's codec.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle

import workflows.stages.webhook  # noqa: F401  (registers `type: webhook`)
from activities.webhook import BODY_LIMIT
from activities.webhook_redaction import MIN_SECRET_LENGTH, RequestSecrets
from tests.support.fake_services import FakeHttp, Recorded, Reply
from tests.support.payloads import payloads_in
from tests.support.runner import Runner, pipeline
from workflows.state import StageStatus

QUERY_TOKEN = f"qtok-{uuid.uuid4().hex}"
PASSWORD = f"pw-{uuid.uuid4().hex}"
USER = "deployer"
API_KEY = f"key-{uuid.uuid4().hex}"
BEARER = f"bearer-{uuid.uuid4().hex}"
BASIC = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
SECRETS = {"query token": QUERY_TOKEN, "basic auth": BASIC, "API key": API_KEY, "bearer token": BEARER}
# No pipeline config holds the password in clear (only its Basic encoding): found anywhere in
# history, it came from an answer.
DERIVED = {"password (decoded from Basic)": PASSWORD}


@pytest.fixture(scope="module")
def http() -> Iterator[FakeHttp]:
    with FakeHttp() as fake:
        yield fake


def hook(url: str, **fields: Any) -> dict[str, Any]:
    return {"refId": "hook", "type": "webhook", "url": url, "pollIntervalSeconds": 0.1, **fields}


def echoed(req: Recorded, **extra: Any) -> dict[str, Any]:
    """What httpbin's /anything answers, plus every header and query value again as a key."""
    query = {k: v[0] for k, v in req.query.items()}
    return {
        "headers": req.headers,
        "args": query,
        "seen": {value: name for name, value in [*req.headers.items(), *query.items()]},
        "list": [[value] for value in query.values()],
        "basicAuth": req.basic_auth(),  # as httpbin's /basic-auth, decoded
        **extra,
    }


def status_echo(status: str) -> Any:
    return lambda req: Reply(
        200, echoed(req, state=status, progress=f"{status} for {req.headers.get('authorization')}")
    )


def text_echo(req: Recorded) -> Reply:
    # Over BODY_LIMIT, so kept as cut text: the headers as JSON text, then the token across the cut.
    headers = json.dumps(req.headers)
    return Reply(200, headers + "x" * (BODY_LIMIT - 3 - len(headers)) + req.query["token"][0] + "x" * 100)


async def history_payloads(client: Client, handle: WorkflowHandle[Any, Any]) -> list[tuple[str, str, str]]:
    """(event type, activity type, decoded text) for every payload of every event."""
    codec = client.data_converter.payload_codec
    assert codec is not None, "the suite runs encrypted"
    history = await handle.fetch_history()
    found = []
    for event in history.events:
        scheduled = event.activity_task_scheduled_event_attributes.activity_type.name
        for payload in await codec.decode(list(payloads_in(event))):
            found.append((EventType.Name(event.event_type), scheduled, payload.data.decode("utf-8", "replace")))
    assert found, "no payloads: the walk is broken"
    raw = history.to_json()
    for name, secret in {**SECRETS, **DERIVED}.items():
        assert secret not in raw, f"{name} in the stored history"
    return found


def leaked(text: str) -> list[str]:
    return [name for name, secret in {**SECRETS, **DERIVED}.items() if secret in text or secret[:10] in text]


async def test_echoed_secrets_stay_out_of_outputs_and_history(client: Client, runner: Runner, http: FakeHttp) -> None:
    # 1: a 200 echo of a call with Basic auth, a token in the query and an API key header.
    plain = http.route("POST", "/echo", lambda req: Reply(200, echoed(req))) + f"?token={QUERY_TOKEN}&page=2"
    # 2: a long text echo, cut at BODY_LIMIT.
    long_text = http.route("POST", "/text", text_echo) + f"?token={QUERY_TOKEN}"
    # 3: a monitored call whose server puts the token into its Location; every poll echoes too,
    # and the progress path reads an echoed header.
    http.route("POST", "/jobs", Reply(202, {}, {"Location": f"/jobs/{BEARER}?token={QUERY_TOKEN}"}))
    http.route("GET", f"/jobs/{BEARER}", status_echo("RUNNING"), status_echo("DONE"))
    handles = [
        await runner.start(
            pipeline(
                hook(plain, customHeaders={"Authorization": f"Basic {BASIC}", "X-Api-Key": API_KEY}), name="echo-plain"
            )
        ),
        await runner.start(pipeline(hook(long_text, customHeaders={"X-Api-Key": API_KEY}), name="echo-text")),
        await runner.start(
            pipeline(
                hook(
                    f"{http.url}/jobs?token={QUERY_TOKEN}",
                    customHeaders={"Authorization": f"Bearer {BEARER}", "X-Api-Key": API_KEY},
                    waitForCompletion=True,
                    statusUrlResolution="locationHeader",
                    statusJsonPath="$.state",
                    progressJsonPath="$.progress",
                    successStatuses="DONE",
                ),
                name="echo-poll",
            )
        ),
    ]
    states = [await Runner.finish(handle) for handle in handles]
    plain_stage, text_stage, poll_stage = (state.stage("hook") for state in states)

    # The secrets were really sent (and so really echoed).
    sent = http.received("POST", "/echo")[0]
    assert sent.basic_auth() == (USER, PASSWORD) and sent.query["token"] == [QUERY_TOKEN]
    assert sent.headers["x-api-key"] == API_KEY
    polls = http.received("GET", "/jobs/")
    assert len(polls) == 2 and polls[0].headers["authorization"] == f"Bearer {BEARER}"
    assert polls[0].query["token"] == [QUERY_TOKEN]  # the poll reached the real, unsealed URL

    assert plain_stage is not None and plain_stage.status is StageStatus.SUCCEEDED, plain_stage
    body = plain_stage.outputs["webhook"]["body"]
    assert body["args"] == {"token": "***", "page": "2"}, body
    assert body["headers"]["authorization"] == "***" and body["headers"]["x-api-key"] == "***", body
    assert body["basicAuth"] == [USER, "***"], body  # `user:password` decoded is cut whole, then alone
    assert "***" in body["seen"] and body["list"][0] == ["***"], body

    assert text_stage is not None and text_stage.status is StageStatus.SUCCEEDED, text_stage
    text = text_stage.outputs["webhook"]["body"]
    assert text_stage.outputs["webhook"]["bodyTruncated"] is True and len(text) == BODY_LIMIT
    # Cut after redacting: no first part of the token is left at the cut (the raw text ends in it).
    assert "x***x" in text and not text.endswith(QUERY_TOKEN[:3]), text[-20:]

    assert poll_stage is not None and poll_stage.status is StageStatus.SUCCEEDED, poll_stage
    webhook = poll_stage.outputs["webhook"]
    assert webhook["statusUrl"] == f"{http.url}/jobs/***?token=***", webhook
    monitor = webhook["monitor"]
    # The whole header value is the longest secret: it goes whole.
    assert monitor["polls"] == 2 and monitor["progressMessage"] == "DONE for ***", monitor
    assert monitor["body"]["headers"]["authorization"] == "***", monitor

    for stage in (plain_stage, text_stage, poll_stage):
        shown = json.dumps(stage.outputs)
        assert "***" in shown and not leaked(shown), leaked(shown)

    sealed: list[str] = []
    configs: list[str] = []
    for handle in handles:
        for event, activity, text in await history_payloads(client, handle):
            # The pipeline config (workflow input, the webhook activities' inputs) holds the URL and
            # headers as the tenant wrote them; every other payload must not hold a secret.
            config = event == "EVENT_TYPE_WORKFLOW_EXECUTION_STARTED" or (
                event == "EVENT_TYPE_ACTIVITY_TASK_SCHEDULED" and activity in ("call_webhook", "poll_webhook_status")
            )
            if config:
                assert not [name for name, secret in DERIVED.items() if secret in text], (event, text)
                configs.append(text)
                document = json.loads(text) if text.startswith("{") else {}
                if activity == "poll_webhook_status" and "statusJsonPath" in document:
                    sealed.append(document["url"])
            else:
                assert not leaked(text), (event, activity, leaked(text), text[:2000])
    # The control: the decoded history does hold the token where the tenant wrote it.
    assert any(QUERY_TOKEN in text for text in configs), "the decoding walk finds nothing"
    # The poll's URL came from the echoing Location: history keeps it sealed.
    assert len(sealed) == 1 and f"{http.url}/jobs/" in sealed[0] and not leaked(sealed[0]), sealed


def test_secrets_are_cut_in_every_form_and_short_values_are_kept() -> None:
    secrets = RequestSecrets("http://h/x?token=a%2Fb%2Bcd&v=2", {"Authorization": "Bearer tok/en+1", "X-N": "abc"})
    assert len("abc") < MIN_SECRET_LENGTH
    # Decoded, as written (percent-encoded), the credentials alone; `2` and `abc` would shred text.
    assert secrets.text("a/b+cd a%2Fb%2Bcd tok%2Fen%2B1 Bearer tok/en+1 v=2 abc") == "*** *** *** *** v=2 abc"
    assert secrets.document({"a/b+cd": ["x tok/en+1 y", 2, None]}) == {"***": ["x *** y", 2, None]}
    deep: list[Any] = []
    for _ in range(20_000):  # deeper than Python's recursion limit: the walk is iterative
        deep = [deep, "tok/en+1"]
    assert secrets.document(deep)[1] == "***"
    url = "http://h/jobs/tok/en+1?token=a%2Fb%2Bcd"
    sealed = secrets.seal(url)
    assert "tok/en" not in sealed and "a%2F" not in sealed and secrets.unseal(sealed) == url
    assert RequestSecrets.shown(sealed) == "http://h/jobs/***?token=***"
