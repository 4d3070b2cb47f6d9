"""The gateway (api/) in-process through httpx's ASGI transport, wired to the session's real Temporal
dev server, SQLite store and the module's worker on its own task queue.

Visibility (GET /executions) is eventually consistent, so list assertions poll. Ordering is asserted
through states a test controls (a judgment still waiting, a paused execution), never through time.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import yaml
from temporalio.client import Client

from api.app import create_app
from api.schemas import EXAMPLE_PIPELINE
from api.settings import GatewaySettings
from core.store import PipelineStore
from tests.support.builders import judgment, variables, wait
from tests.support.eventually import assert_eventually
from workers.devserver import TemporalDevServer
from workflows.stages.registry import registered_stage_types

USER_HEADER = "X-Gennaker-User"
FINAL = {"SUCCEEDED", "TERMINAL", "CANCELED"}


# ---- fixtures and helpers ------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def api(
    temporal_server: TemporalDevServer, client: Client, store: PipelineStore, task_queue: str, worker: None
) -> AsyncIterator[httpx.AsyncClient]:
    settings = GatewaySettings(
        task_queue=task_queue,
        temporal_address=temporal_server.address,
        database_url=store.database_url,
        auth_disabled=True,  # identities come from X-Gennaker-User here; test_auth.py covers tokens
    )
    app = create_app(settings, client=client, store=store)
    # ASGITransport does not run the lifespan; enter it ourselves so app.state is set. Unhandled errors
    # come back as the 500 a client would see instead of being raised into the test.
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://gennaker.test") as http,
    ):
        yield http


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def pipeline(*stages: dict[str, Any], app: str = "apitest", name: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"application": app, "name": name or unique("p"), "stages": list(stages), **extra}


def error_of(
    response: httpx.Response, status: int, code: str | None = None, field: str | None = None
) -> dict[str, Any]:
    """Every error is JSON {"error": {"code", "message", "field"?, "errors"?}}; return the inner object."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json"), response.headers
    error: dict[str, Any] = response.json()["error"]
    assert isinstance(error["code"], str) and error["code"]
    assert isinstance(error["message"], str) and error["message"]
    if code is not None:
        assert error["code"] == code, error
    if field is not None:
        assert error.get("field") == field, error
    return error


async def start(api: httpx.AsyncClient, spec: dict[str, Any], user: str = "tester", **parameters: Any) -> str:
    response = await api.post(
        "/executions", json={"pipeline": spec, "parameters": parameters}, headers={USER_HEADER: user}
    )
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


async def state_of(api: httpx.AsyncClient, execution_id: str) -> dict[str, Any]:
    response = await api.get(f"/executions/{execution_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def stage_of(state: dict[str, Any], ref: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [s for s in state["stages"] if s["refId"] == ref]
    assert found, f"no stage {ref} in {state}"
    return found[0]


async def until_state(
    api: httpx.AsyncClient, execution_id: str, predicate: Callable[[dict[str, Any]], bool], what: str = ""
) -> dict[str, Any]:
    result: dict[str, Any] = await assert_eventually(
        lambda: state_of(api, execution_id), predicate, what=what, timeout=20
    )
    return result


async def until_final(api: httpx.AsyncClient, execution_id: str) -> dict[str, Any]:
    return await until_state(api, execution_id, lambda s: s["status"] in FINAL, "a final status")


async def until_waiting(api: httpx.AsyncClient, execution_id: str, ref: str) -> dict[str, Any]:
    return await until_state(
        api, execution_id, lambda s: stage_of(s, ref)["waitingForJudgment"], f"{ref} waiting for judgment"
    )


# ---- starting and reading executions -------------------------------------------------------------


async def test_post_execution_is_accepted_with_id_location_and_links(api: httpx.AsyncClient) -> None:
    spec = pipeline(variables("prep", greeting="hi ${{ parameters.who }}"), wait("w", 0.1, "prep"))
    spec["parameters"] = [{"name": "who", "default": "world"}]
    response = await api.post("/executions", json={"pipeline": spec}, headers={USER_HEADER: "alice"})
    assert response.status_code == 202, response.text
    started = response.json()
    assert started["id"].startswith(f"apitest.{spec['name']}.")
    assert started["runId"]
    assert started["application"] == "apitest" and started["pipeline"] == spec["name"]
    assert started["replayed"] is False and started["revision"] is None
    assert response.headers["location"] == started["links"]["self"] == f"/executions/{started['id']}"
    assert started["id"] in started["links"]["ui"] and started["runId"] in started["links"]["ui"]

    state = await until_final(api, started["id"])
    assert state["status"] == "SUCCEEDED"
    assert state["id"] == started["id"] and state["runId"] == started["runId"]
    assert state["trigger"]["type"] == "manual" and state["trigger"]["user"] == "alice"
    assert state["parameters"] == {"who": "world"}
    assert stage_of(state, "prep")["outputs"] == {"greeting": "hi world"}
    assert [s["status"] for s in state["stages"]] == ["SUCCEEDED", "SUCCEEDED"]
    assert state["endTime"] is not None


async def test_running_execution_state_shows_the_waiting_judgment(api: httpx.AsyncClient) -> None:
    execution = await start(
        api, pipeline(judgment("gate", judgmentInputs=["ship", "hold"]), wait("after", 0.1, "gate"))
    )
    state = await until_waiting(api, execution, "gate")
    assert state["status"] == "RUNNING" and state["endTime"] is None
    assert stage_of(state, "gate")["status"] == "RUNNING"
    assert stage_of(state, "after")["status"] == "NOT_STARTED"
    assert (await api.put(f"/executions/{execution}/cancel")).status_code == 202
    assert (await until_final(api, execution))["status"] == "CANCELED"


# ---- validation: every rule is a 422 naming the field --------------------------------------------


def _with(**changes: Any) -> dict[str, Any]:
    return {"pipeline": pipeline(wait("a"), name="valid", **changes)}


VALIDATION_CASES: dict[str, tuple[dict[str, Any], str, str]] = {
    "unknown stage type": (
        {"pipeline": pipeline({"refId": "a", "type": "teleport"}, name="v")},
        "stages[a].type",
        "teleport",
    ),
    "duplicate refIds": ({"pipeline": pipeline(wait("a"), wait("a"), name="v")}, "stages[a].refId", "duplicate"),
    "unknown requisite ref": (
        {"pipeline": pipeline(wait("a"), wait("b", 0.1, "ghost"), name="v")},
        "stages[b].requisiteStageRefIds",
        "ghost",
    ),
    "cycle": (
        {"pipeline": pipeline(wait("a", 0.1, "b"), wait("b", 0.1, "a"), name="v")},
        "stages[a].requisiteStageRefIds",
        "cycle",
    ),
    "bad field of a stage": (
        {"pipeline": pipeline(wait("a"), judgment("gate", "a", timeoutMs=-5), name="v")},
        "stages[gate].timeoutMs",
        "greater than 0",
    ),
    "missing stage field": (
        {"pipeline": pipeline({"refId": "nap", "type": "wait"}, name="v")},
        "stages[nap].waitTime",
        "required",
    ),
    "missing required parameter": (
        {"pipeline": pipeline(wait("a"), name="v", parameters=[{"name": "tag", "required": True}])},
        "parameters.tag",
        "required",
    ),
    "parameter not in options": (
        {
            "pipeline": pipeline(wait("a"), name="v", parameters=[{"name": "env", "options": ["staging", "prod"]}]),
            "parameters": {"env": "moon"},
        },
        "parameters.env",
        "staging",
    ),
    "unknown parameter": (
        {"pipeline": pipeline(wait("a"), name="v"), "parameters": {"bogus": "1"}},
        "parameters.bogus",
        "not a parameter",
    ),
    "bad application name": (_with(application="Not A Name"), "application", ""),
    "no stages": ({"pipeline": {"application": "apitest", "name": "v", "stages": []}}, "stages", ""),
}


@pytest.mark.parametrize("case", list(VALIDATION_CASES))
async def test_invalid_submission_is_422_naming_the_field(api: httpx.AsyncClient, case: str) -> None:
    body, field, needle = VALIDATION_CASES[case]
    response = await api.post("/executions", json=body)
    error = error_of(response, 422, field=field)
    assert error["code"] == "invalid_pipeline"
    assert field in [e["field"] for e in error["errors"]]
    assert needle in error["message"]


async def test_every_problem_is_listed_not_only_the_first(api: httpx.AsyncClient) -> None:
    spec = pipeline({"refId": "a", "type": "teleport"}, {"refId": "b", "type": "wait"}, name="v")
    error = error_of(await api.post("/executions", json={"pipeline": spec}), 422, "invalid_pipeline")
    assert {e["field"] for e in error["errors"]} == {"stages[a].type", "stages[b].waitTime"}


async def test_bad_union_field_is_named_without_pydantic_internals(api: httpx.AsyncClient) -> None:
    spec = pipeline({"refId": "slow", "type": "wait", "waitTime": "soon"}, name="v")
    error = error_of(await api.post("/executions", json={"pipeline": spec}), 422, "invalid_pipeline")
    assert error["field"] == "stages[slow].waitTime"
    assert {e["field"] for e in error["errors"]} == {"stages[slow].waitTime"}


async def test_bad_union_field_names_the_stage_and_field(api: httpx.AsyncClient) -> None:
    spec = pipeline({"refId": "slow", "type": "wait", "waitTime": "soon"}, name="v")
    error = error_of(await api.post("/executions", json={"pipeline": spec}), 422, "invalid_pipeline")
    assert error["field"].startswith("stages[slow].waitTime")


async def test_malformed_json_is_422_naming_the_body(api: httpx.AsyncClient) -> None:
    response = await api.post("/executions", content=b"{not json", headers={"content-type": "application/json"})
    error_of(response, 422, "invalid_request", field="body")


async def test_malformed_json_is_a_json_422(api: httpx.AsyncClient) -> None:
    response = await api.post("/executions", content=b"{not json", headers={"content-type": "application/json"})
    error = error_of(response, 422, "invalid_request")
    assert "JSON" in error["message"]


async def test_request_envelope_is_validated(api: httpx.AsyncClient) -> None:
    response = await api.post("/executions", json={"pipeline": pipeline(wait("a")), "surprise": 1})
    error_of(response, 422, "invalid_request", field="surprise")
    error_of(await api.post("/executions", json={"parameters": {}}), 422, "invalid_request", field="pipeline")


# ---- idempotency ---------------------------------------------------------------------------------


async def test_idempotency_key_starts_one_workflow(api: httpx.AsyncClient, client: Client) -> None:
    spec = pipeline(judgment("gate"))
    key = uuid.uuid4().hex
    body = {"pipeline": spec}
    first = await api.post("/executions", json=body, headers={"Idempotency-Key": key})
    second = await api.post("/executions", json=body, headers={"Idempotency-Key": key})
    assert first.status_code == second.status_code == 202, (first.text, second.text)
    one, two = first.json(), second.json()
    assert one["replayed"] is False and two["replayed"] is True
    assert one["id"] == two["id"] and one["runId"] == two["runId"]
    assert second.headers["location"] == f"/executions/{one['id']}"

    # A different key is a different execution.
    other = await api.post("/executions", json=body, headers={"Idempotency-Key": uuid.uuid4().hex})
    assert other.status_code == 202 and other.json()["id"] != one["id"]

    description = await client.get_workflow_handle(one["id"]).describe()
    assert description.run_id == one["runId"]

    async def runs() -> list[str]:
        return [wf.run_id async for wf in client.list_workflows(f"WorkflowId = '{one['id']}'")]

    found = await assert_eventually(runs, lambda r: len(r) >= 1, what="the execution in visibility", timeout=20)
    assert found == [one["runId"]]

    # Still the same execution once it has finished: the key is not reused for a new run.
    assert (await api.put(f"/executions/{one['id']}/cancel")).status_code == 202
    assert (await until_final(api, one["id"]))["status"] == "CANCELED"
    third = await api.post("/executions", json=body, headers={"Idempotency-Key": key})
    assert third.status_code == 202 and third.json()["replayed"] is True and third.json()["runId"] == one["runId"]
    assert (await runs()) == [one["runId"]]
    await api.put(f"/executions/{other.json()['id']}/cancel")


# ---- 404s ----------------------------------------------------------------------------------------


async def test_unknown_things_are_404(api: httpx.AsyncClient) -> None:
    error_of(await api.get("/executions/apitest.nothing.0123456789"), 404, "not_found")
    error_of(await api.put("/executions/apitest.nothing.0123456789/cancel"), 404, "not_found")
    error_of(await api.post("/executions/apitest.nothing.0123456789/stages/gate/judgment", json={}), 404, "not_found")
    error_of(await api.get("/applications/apitest/pipelines/never-saved"), 404, "not_found")
    error_of(await api.get("/applications/apitest/pipelines/never-saved/revisions"), 404, "not_found")
    error_of(await api.delete("/applications/apitest/pipelines/never-saved"), 404, "not_found")
    error_of(await api.post("/pipelines/apitest/never-saved"), 404, "not_found")
    error_of(await api.get("/no/such/route"), 404, "not_found")
    error_of(await api.delete("/healthz"), 405, "method_not_allowed")


# ---- judgments -----------------------------------------------------------------------------------


async def test_judgment_through_the_api(api: httpx.AsyncClient) -> None:
    spec = pipeline(
        judgment("gate", judgmentInputs=["ship", "hold"]),
        wait("soak", 0.1),
        judgment("later", "gate"),
    )
    execution = await start(api, spec)
    await until_waiting(api, execution, "gate")
    url = f"/executions/{execution}/stages"

    error_of(await api.post(f"{url}/nope/judgment", json={}), 404, "unknown_stage")
    error_of(await api.post(f"{url}/later/judgment", json={}), 409, "not_waiting")
    error_of(await api.post(f"{url}/soak/judgment", json={}), 422, "not_judgment")
    error = error_of(await api.post(f"{url}/gate/judgment", json={"input": "maybe"}), 422, "unknown_option")
    assert "ship" in error["message"] and "hold" in error["message"]
    error_of(await api.post(f"{url}/gate/judgment", json={"judgmentStatus": "perhaps"}), 422, "invalid_request")

    response = await api.post(
        f"{url}/gate/judgment", json={"input": "ship", "comment": "LGTM"}, headers={USER_HEADER: "alice"}
    )
    assert response.status_code == 200, response.text
    record = response.json()
    assert record["user"] == "alice" and record["input"] == "ship" and record["comment"] == "LGTM"
    assert record["judgmentStatus"] == "continue" and record["via"] == "update" and record["judgedAt"]

    # Judged once: a second judgment of the same stage is refused.
    error_of(await api.post(f"{url}/gate/judgment", json={"input": "hold"}), 409, "not_waiting")

    state = await until_waiting(api, execution, "later")
    gate = stage_of(state, "gate")
    assert gate["status"] == "SUCCEEDED"
    assert gate["judgment"]["user"] == "alice"
    assert gate["outputs"]["judgedBy"] == "alice" and gate["outputs"]["judgmentInput"] == "ship"

    # Without the header the caller is recorded as anonymous, never as nobody.
    response = await api.post(f"{url}/later/judgment", json={"judgmentStatus": "stop", "comment": "no"})
    assert response.status_code == 200 and response.json()["user"] == "anonymous"
    state = await until_final(api, execution)
    assert state["status"] == "TERMINAL"
    assert "later" in state["failure"] and "anonymous" in state["failure"]

    error_of(await api.post(f"{url}/later/judgment", json={}), 409, "not_running")


# ---- cancel, pause/resume, skip ------------------------------------------------------------------


async def test_cancel_while_waiting_records_who_and_why(api: httpx.AsyncClient) -> None:
    execution = await start(api, pipeline(judgment("gate"), wait("after", 0.1, "gate")))
    await until_waiting(api, execution, "gate")
    response = await api.put(
        f"/executions/{execution}/cancel", json={"reason": "bad canary"}, headers={USER_HEADER: "bob"}
    )
    assert response.status_code == 202, response.text
    assert response.json()["canceledBy"] == "bob"

    state = await until_final(api, execution)
    assert state["status"] == "CANCELED"
    assert state["cancelReason"] == "bad canary" and state["canceledBy"] == "bob"
    assert stage_of(state, "gate")["status"] == "CANCELED"
    assert stage_of(state, "after")["status"] == "NOT_STARTED"

    error_of(await api.put(f"/executions/{execution}/cancel", json={"reason": "again"}), 409, "not_running")


async def test_cancel_of_a_finished_execution_is_409(api: httpx.AsyncClient) -> None:
    execution = await start(api, pipeline(wait("quick", 0.05)))
    assert (await until_final(api, execution))["status"] == "SUCCEEDED"
    error = error_of(await api.put(f"/executions/{execution}/cancel"), 409, "not_running")
    assert execution in error["message"]
    error_of(await api.put(f"/executions/{execution}/pause"), 409, "not_running")


async def test_pause_holds_new_stages_until_resume(api: httpx.AsyncClient) -> None:
    execution = await start(api, pipeline(judgment("gate"), wait("after", 0.1, "gate")))
    await until_waiting(api, execution, "gate")

    response = await api.put(f"/executions/{execution}/pause", json={"reason": "freeze"}, headers={USER_HEADER: "c"})
    assert response.status_code == 200, response.text
    assert response.json()["paused"] is True and response.json()["status"] == "PAUSED"

    # A judgment is still accepted while paused, but nothing downstream starts.
    judged = await api.post(f"/executions/{execution}/stages/gate/judgment", json={})
    assert judged.status_code == 200, judged.text
    state = await until_state(api, execution, lambda s: stage_of(s, "gate")["status"] == "SUCCEEDED")
    assert state["status"] == "PAUSED" and state["paused"] is True
    assert stage_of(state, "after")["status"] == "NOT_STARTED"

    response = await api.put(f"/executions/{execution}/resume")
    assert response.status_code == 200, response.text
    assert response.json()["paused"] is False and response.json()["status"] == "RUNNING"
    state = await until_final(api, execution)
    assert state["status"] == "SUCCEEDED" and stage_of(state, "after")["status"] == "SUCCEEDED"
    error_of(await api.put(f"/executions/{execution}/resume"), 409, "not_running")


async def test_skip_a_running_wait(api: httpx.AsyncClient) -> None:
    execution = await start(api, pipeline(wait("long", 3600), wait("next", 0.05, "long")))
    await until_state(api, execution, lambda s: stage_of(s, "long")["status"] == "RUNNING")
    url = f"/executions/{execution}/stages"
    error_of(await api.post(f"{url}/next/skip"), 409, "not_waiting")
    error_of(await api.post(f"{url}/ghost/skip"), 404, "unknown_stage")

    response = await api.post(f"{url}/long/skip", headers={USER_HEADER: "dana"})
    assert response.status_code == 200, response.text
    state = await until_final(api, execution)
    assert state["status"] == "SUCCEEDED"
    assert stage_of(state, "long")["outputs"]["skipped"] is True
    assert stage_of(state, "next")["status"] == "SUCCEEDED"
    error_of(await api.post(f"{url}/long/skip"), 409, "not_running")


# ---- restart -------------------------------------------------------------------------------------


async def test_restart_a_failed_stage(api: httpx.AsyncClient) -> None:
    # The first judgment says stop; a restart from the judgment asks again and this time it continues.
    spec = pipeline(
        variables("prep", release="r-${{ parameters.tag }}"),
        judgment("gate", "prep"),
        wait("after", 0.05, "gate"),
        parameters=[{"name": "tag", "required": True}],
    )
    execution = await start(api, spec, tag="v9")
    await until_waiting(api, execution, "gate")
    url = f"/executions/{execution}/stages"

    # A running execution cannot be restarted.
    error_of(await api.post(f"{url}/gate/restart"), 409, "still_running")

    await api.post(f"{url}/gate/judgment", json={"judgmentStatus": "stop", "comment": "not yet"})
    failed = await until_final(api, execution)
    assert failed["status"] == "TERMINAL" and "gate" in failed["failure"]
    first_run = failed["runId"]
    prep_before = stage_of(failed, "prep")

    error_of(await api.post(f"{url}/ghost/restart"), 404, "unknown_stage")

    response = await api.post(f"{url}/gate/restart", headers={USER_HEADER: "erin"})
    assert response.status_code == 202, response.text
    restarted = response.json()
    assert restarted["id"] == execution and restarted["runId"] != first_run

    state = await until_waiting(api, execution, "gate")
    assert state["id"] == execution and state["runId"] == restarted["runId"]
    assert state["parameters"] == {"tag": "v9"}
    assert state["restartedFrom"]["refId"] == "gate" and state["restartedFrom"]["previousRunId"] == first_run
    assert state["restartedFrom"]["user"] == "erin"
    prep = stage_of(state, "prep")
    assert prep["status"] == "SUCCEEDED" and prep["restoredFromRun"] == first_run
    assert prep["outputs"] == prep_before["outputs"] == {"release": "r-v9"}
    assert prep["startTime"] == prep_before["startTime"]
    assert stage_of(state, "gate")["restoredFromRun"] is None
    assert stage_of(state, "after")["status"] == "NOT_STARTED"

    await api.post(f"{url}/gate/judgment", json={"judgmentStatus": "continue"})
    done = await until_final(api, execution)
    assert done["status"] == "SUCCEEDED" and done["runId"] == restarted["runId"]
    assert stage_of(done, "after")["status"] == "SUCCEEDED" and stage_of(done, "after")["restoredFromRun"] is None


async def test_concurrent_restarts_start_one_run_and_refuse_the_other(api: httpx.AsyncClient) -> None:
    execution = await start(api, pipeline(judgment("gate")))
    await until_waiting(api, execution, "gate")
    await api.post(f"/executions/{execution}/stages/gate/judgment", json={"judgmentStatus": "stop"})
    assert (await until_final(api, execution))["status"] == "TERMINAL"
    try:
        # Both requests pass the describe() check before either starts the new run.
        responses = await asyncio.gather(*(api.post(f"/executions/{execution}/stages/gate/restart") for _ in range(2)))
        assert sorted(r.status_code for r in responses) == [202, 409], [r.text for r in responses]
    finally:
        await api.put(f"/executions/{execution}/cancel")


# ---- saved pipelines -----------------------------------------------------------------------------


async def test_saved_pipeline_revisions_and_tombstone(api: httpx.AsyncClient) -> None:
    name = unique("saved")
    url = f"/applications/apitest/pipelines/{name}"
    v1 = {"stages": [wait("a")]}  # application/name come from the URL
    created = await api.put(url, json=v1, headers={USER_HEADER: "frank"})
    assert created.status_code == 201, created.text
    assert created.json()["revision"] == 1 and created.json()["author"] == "frank"

    v2 = pipeline(wait("a"), wait("b", 0.1, "a"), name=name)
    updated = await api.put(url, json=v2)
    assert updated.status_code == 200, updated.text
    assert updated.json()["revision"] == 2

    latest = (await api.get(url)).json()
    assert latest["revision"] == 2 and [s["refId"] for s in latest["config"]["stages"]] == ["a", "b"]
    assert latest["config"]["application"] == "apitest" and latest["config"]["name"] == name
    first = await api.get(url, params={"revision": 1})
    assert first.status_code == 200 and first.json()["revision"] == 1 and first.json()["author"] == "frank"
    assert [s["refId"] for s in first.json()["config"]["stages"]] == ["a"]
    error_of(await api.get(url, params={"revision": 7}), 404, "not_found")
    error_of(await api.get(url, params={"revision": 0}), 422, "invalid_request", field="revision")

    listed = (await api.get("/applications/apitest/pipelines")).json()
    assert any(p["name"] == name and p["revision"] == 2 for p in listed)
    applications = {a["name"]: a["pipelines"] for a in (await api.get("/applications")).json()}
    assert name in applications["apitest"]

    deleted = await api.delete(url, headers={USER_HEADER: "gina"})
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["deleted"] is True and deleted.json()["revision"] == 3
    error_of(await api.get(url), 404, "not_found")
    error_of(await api.delete(url), 404, "not_found")
    error_of(await api.post(f"/pipelines/apitest/{name}"), 404, "not_found")

    revisions = (await api.get(f"{url}/revisions")).json()
    assert [(r["revision"], r["deleted"]) for r in revisions] == [(1, False), (2, False), (3, True)]
    assert revisions[2]["author"] == "gina"
    # History stays readable.
    assert (await api.get(url, params={"revision": 2})).status_code == 200
    assert all(p["name"] != name for p in (await api.get("/applications/apitest/pipelines")).json())

    again = await api.put(url, json=v1)
    assert again.status_code == 201 and again.json()["revision"] == 4


async def test_saved_pipeline_rejections(api: httpx.AsyncClient) -> None:
    name = unique("saved")
    url = f"/applications/apitest/pipelines/{name}"
    error = error_of(await api.put(url, json=pipeline(wait("a"), name="other-name")), 422, "path_mismatch", "name")
    assert "other-name" in error["message"]
    error_of(
        await api.put(url, json=pipeline(wait("a"), app="other-app", name=name)), 422, "path_mismatch", "application"
    )
    error_of(
        await api.put(url, json={"stages": [{"refId": "x", "type": "warp"}]}), 422, "invalid_pipeline", "stages[x].type"
    )
    error_of(await api.put(url, json=[1, 2]), 422, "invalid_body", "body")
    error_of(await api.put(url, content=b"{nope", headers={"content-type": "application/json"}), 422, "invalid_body")
    error_of(
        await api.put(url, content=b"stages: [", headers={"content-type": "application/yaml"}), 422, "invalid_body"
    )
    error_of(await api.put("/applications/Bad_App/pipelines/x", json={"stages": [wait("a")]}), 422, "invalid_request")
    # Nothing was saved by any of these.
    error_of(await api.get(f"{url}/revisions"), 404, "not_found")


async def test_saved_pipeline_from_yaml(api: httpx.AsyncClient) -> None:
    name = unique("yaml")
    text = yaml.safe_dump(
        pipeline(judgment("approve", judgmentInputs=["ship", "hold"]), name=name, description="from YAML")
    )
    text = "# a comment people write\n" + text
    url = f"/applications/apitest/pipelines/{name}"
    response = await api.put(url, content=text.encode(), headers={"content-type": "application/yaml"})
    assert response.status_code == 201, response.text
    saved = (await api.get(url)).json()
    assert saved["config"]["description"] == "from YAML"
    assert saved["config"]["stages"][0]["judgmentInputs"] == ["ship", "hold"]


async def test_saved_yaml_with_a_date_value_is_not_a_500(api: httpx.AsyncClient) -> None:
    name = unique("dated")
    url = f"/applications/apitest/pipelines/{name}"
    text = b"parameters: [{name: day, default: 2024-01-01}]\nstages: [{refId: a, type: wait, waitTime: 0.1}]\n"
    response = await api.put(url, content=text, headers={"content-type": "application/yaml"})
    assert response.status_code in (201, 422), response.text
    if response.status_code == 201:
        assert (await api.get(url)).json()["config"]["parameters"][0]["default"] == "2024-01-01"
    else:
        error_of(response, 422, field="parameters[0].default")


async def test_run_a_saved_pipeline_records_its_revision(api: httpx.AsyncClient) -> None:
    name = unique("saved")
    url = f"/applications/apitest/pipelines/{name}"
    base = {"parameters": [{"name": "tag", "required": True}]}
    await api.put(url, json={**base, "stages": [variables("v", rev="one ${{ parameters.tag }}")]})
    await api.put(url, json={**base, "stages": [variables("v", rev="two ${{ parameters.tag }}")]})

    response = await api.post(
        f"/pipelines/apitest/{name}", json={"parameters": {"tag": "x"}}, headers={USER_HEADER: "h"}
    )
    assert response.status_code == 202, response.text
    started = response.json()
    assert started["revision"] == 2 and response.headers["location"] == f"/executions/{started['id']}"
    state = await until_final(api, started["id"])
    assert state["status"] == "SUCCEEDED" and state["revision"] == 2 and state["pipeline"] == name
    assert stage_of(state, "v")["outputs"] == {"rev": "two x"}
    assert state["trigger"]["user"] == "h"

    older = await api.post(f"/pipelines/apitest/{name}", json={"parameters": {"tag": "y"}, "revision": 1})
    assert older.status_code == 202, older.text
    state = await until_final(api, older.json()["id"])
    assert state["revision"] == 1 and stage_of(state, "v")["outputs"] == {"rev": "one y"}

    error_of(
        await api.post(f"/pipelines/apitest/{name}", json={"parameters": {}}), 422, "invalid_pipeline", "parameters.tag"
    )
    error_of(
        await api.post(f"/pipelines/apitest/{name}", json={"parameters": {"tag": "x"}, "revision": 9}), 404, "not_found"
    )


# ---- listing -------------------------------------------------------------------------------------


async def test_list_executions_filters_by_application_and_status(api: httpx.AsyncClient) -> None:
    app = unique("list")
    done = await start(api, pipeline(wait("quick", 0.05), app=app))
    running = await start(api, pipeline(judgment("gate"), app=app))
    other = await start(api, pipeline(wait("quick", 0.05)))
    await until_final(api, done)
    await until_waiting(api, running, "gate")

    async def listed(**query: str) -> dict[str, dict[str, Any]]:
        response = await api.get("/executions", params=query)
        assert response.status_code == 200, response.text
        return {e["id"]: e for e in response.json()["executions"]}

    everything = await assert_eventually(
        lambda: listed(application=app),
        lambda found: {done, running} <= set(found),
        what="the awaited value",
        timeout=20,
    )
    assert other not in everything
    assert everything[done]["application"] == app and everything[done]["trigger"] == "manual"

    succeeded = await assert_eventually(
        lambda: listed(application=app, status="SUCCEEDED"), lambda f: done in f, what="the awaited value", timeout=20
    )
    assert set(succeeded) == {done} and succeeded[done]["status"] == "SUCCEEDED"
    assert succeeded[done]["temporalStatus"] == "COMPLETED" and succeeded[done]["closeTime"]
    still = await assert_eventually(
        lambda: listed(application=app, status="RUNNING"), lambda f: running in f, what="the awaited value", timeout=20
    )
    assert set(still) == {running} and still[running]["closeTime"] is None

    limited = await api.get("/executions", params={"application": app, "limit": 1})
    assert len(limited.json()["executions"]) == 1

    error_of(await api.get("/executions", params={"status": "DONE"}), 422, "invalid_request", "status")
    error_of(
        await api.get("/executions", params={"application": "x' OR 'a'='a"}), 422, "invalid_request", "application"
    )
    error_of(await api.get("/executions", params={"limit": 0}), 422, "invalid_request", "limit")
    await api.put(f"/executions/{running}/cancel")


# ---- meta ----------------------------------------------------------------------------------------


async def test_health_and_readiness(api: httpx.AsyncClient) -> None:
    health = await api.get("/healthz")
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    ready = await api.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json() == {"status": "ready", "checks": {"temporal": "ok", "store": "ok"}}


async def test_schema_lists_every_stage_type(api: httpx.AsyncClient) -> None:
    response = await api.get("/schema")
    assert response.status_code == 200
    schema = response.json()
    items = schema["properties"]["stages"]["items"]
    mapping = items["discriminator"]["mapping"]
    assert items["discriminator"]["propertyName"] == "type"
    assert set(mapping) == set(registered_stage_types())
    assert {"wait", "manualJudgment", "checkPreconditions", "evaluateVariables", "pipeline"} <= set(mapping)
    for ref in mapping.values():
        assert ref.split("/")[-1] in schema["$defs"], ref
    assert set(schema["required"]) >= {"application", "name", "stages"}


async def test_openapi_has_every_route_and_the_request_examples(api: httpx.AsyncClient) -> None:
    response = await api.get("/openapi.json")
    assert response.status_code == 200
    spec = response.json()
    expected = {
        ("get", "/healthz"),
        ("get", "/readyz"),
        ("get", "/schema"),
        ("post", "/executions"),
        ("get", "/executions"),
        ("get", "/executions/{execution_id}"),
        ("put", "/executions/{execution_id}/cancel"),
        ("put", "/executions/{execution_id}/pause"),
        ("put", "/executions/{execution_id}/resume"),
        ("post", "/executions/{execution_id}/stages/{ref_id}/judgment"),
        ("post", "/executions/{execution_id}/stages/{ref_id}/skip"),
        ("post", "/executions/{execution_id}/stages/{ref_id}/restart"),
        ("put", "/applications/{application}/pipelines/{name}"),
        ("get", "/applications/{application}/pipelines/{name}"),
        ("delete", "/applications/{application}/pipelines/{name}"),
        ("get", "/applications/{application}/pipelines/{name}/revisions"),
        ("post", "/pipelines/{application}/{name}"),
        ("get", "/applications"),
        ("get", "/applications/{application}/pipelines"),
    }
    documented = {(method, path) for path, ops in spec["paths"].items() for method in ops}
    assert expected <= documented, expected - documented

    schemas = spec["components"]["schemas"]
    inline = schemas["ExecutionRequest"]["examples"][0]
    assert inline["pipeline"] == EXAMPLE_PIPELINE
    assert schemas["JudgmentBody"]["examples"]
    assert schemas["ControlBody"]["examples"]
    assert schemas["SavedExecutionRequest"]["examples"]
    save_body = spec["paths"]["/applications/{application}/pipelines/{name}"]["put"]["requestBody"]["content"]
    assert save_body["application/json"]["example"] == EXAMPLE_PIPELINE
    assert "application/yaml" in save_body
    # The documented example is itself a valid pipeline the gateway accepts.
    example = await api.post("/executions", json={**inline, "pipeline": {**inline["pipeline"], "name": unique("ex")}})
    assert example.status_code == 202, example.text
    await api.put(f"/executions/{example.json()['id']}/cancel")
