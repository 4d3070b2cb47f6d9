"""The `gennaker` console script as people run it: real subprocesses against a real gateway.

The gateway is the session's `gennaker api` subprocess (`cli_gateway`, tests/integration/conftest.py)
on the session's Temporal dev server and store, with an in-process worker on a queue of its own.
Tests are async and use asyncio subprocesses so the event loop, and with it that worker, keeps
running while the CLI works.

Exit codes: 0 ok, 1 pipeline failed, 2 bad input, 3 gateway unreachable. No error case may print a
traceback.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.cli_rig import (
    EXAMPLES,
    Result,
    failed_cleanly,
    gennaker,
    judgment,
    stage_of,
    started_id,
    state_of,
    until_final,
    until_waiting,
    wait,
    write_pipeline,
)
from tests.support.eventually import assert_eventually
from tests.support.kube_rig import KubeRig, kube_fixture  # noqa: F401  (the module-scoped `kube` fixture)
from workflows.stages.registry import registered_stage_types

UNREACHABLE = "http://127.0.0.1:1"


@pytest.fixture
def gateway(cli_gateway: str) -> str:
    return cli_gateway


@pytest.fixture
def http(cli_http: httpx.AsyncClient) -> httpx.AsyncClient:
    return cli_http


def failing_check(ref: str, *parents: str) -> dict[str, Any]:
    return {
        "refId": ref,
        "name": "Gate check",
        "type": "checkPreconditions",
        "requisiteStageRefIds": list(parents),
        "preconditions": [
            {"context": {"expression": 'parameters.env == "prod"', "failureMessage": "only prod may pass"}}
        ],
    }


# ---- local commands: validate, schema, usage -----------------------------------------------------


async def test_validate_good_files() -> None:
    for example, stages in (("release-demo.yaml", 8), ("smoke-test.yaml", 2)):
        result = await gennaker("validate", str(EXAMPLES / example))
        assert result.code == 0, str(result)
        assert f"{stages} stage(s), valid" in result.out


async def test_validate_bad_file_prints_every_problem_with_its_field(tmp_path: Path) -> None:
    stage_problems = write_pipeline(tmp_path, {"refId": "a", "type": "teleport"}, {"refId": "b", "type": "wait"})
    result = await gennaker("validate", str(stage_problems))
    failed_cleanly(result, 2)
    assert "stages[a].type" in result.err and "teleport" in result.err
    assert "stages[b].waitTime" in result.err

    graph_problems = write_pipeline(tmp_path, wait("a"), wait("a"), wait("c", 0.1, "ghost"))
    result = await gennaker("validate", str(graph_problems))
    failed_cleanly(result, 2)
    lines = [line for line in result.err.splitlines() if line.strip()]
    assert any(line.startswith("stages[a].refId") and "duplicate" in line for line in lines), result.err
    assert any(line.startswith("stages[c].requisiteStageRefIds") and "ghost" in line for line in lines), result.err

    not_yaml = tmp_path / "broken.yaml"
    not_yaml.write_text("stages: [\n")
    failed_cleanly(await gennaker("validate", str(not_yaml)), 2)
    a_list = tmp_path / "list.yaml"
    a_list.write_text("- 1\n- 2\n")
    result = await gennaker("validate", str(a_list))
    failed_cleanly(result, 2)
    assert "pipeline object" in result.flat_err
    result = await gennaker("validate", str(tmp_path / "missing.yaml"))
    failed_cleanly(result, 2)
    assert "cannot read" in result.flat_err


async def test_schema_prints_every_stage_type() -> None:
    result = await gennaker("schema")
    assert result.code == 0, str(result)
    schema = json.loads(result.out)
    mapping = schema["properties"]["stages"]["items"]["discriminator"]["mapping"]
    # Other test modules register test-only types in this process; the CLI knows the shipped ones.
    shipped = {
        name for name, cls in registered_stage_types().items() if not cls.__module__.startswith(("tests.", "bench."))
    }
    assert set(mapping) == shipped


async def test_no_arguments_and_unknown_command_are_usage_errors() -> None:
    result = await gennaker()
    failed_cleanly(result, 2)
    assert "Usage" in result.out + result.err
    result = await gennaker("frobnicate")
    failed_cleanly(result, 2)
    result = await gennaker("status")  # missing EXECUTION_ID
    failed_cleanly(result, 2)


# ---- run / status --------------------------------------------------------------------------------


async def test_run_follow_success(gateway: str, http: httpx.AsyncClient, tmp_path: Path) -> None:
    path = write_pipeline(
        tmp_path,
        {
            "refId": "prep",
            "type": "evaluateVariables",
            "variables": [{"key": "image", "value": "shop:${{ parameters.tag }}"}],
        },
        wait("soak", 0.1, "prep"),
        parameters=[{"name": "tag", "required": True}],
    )
    result = await gennaker("run", str(path), "-p", "tag=v1.2", "--follow", api=gateway, GENNAKER_USER="ivy")
    assert result.code == 0, str(result)
    execution = started_id(result)
    assert "Temporal UI:" in result.out
    assert "Traceback" not in result.err

    state = await state_of(http, execution)
    assert state["status"] == "SUCCEEDED"
    assert state["parameters"] == {"tag": "v1.2"} and state["trigger"]["user"] == "ivy"
    assert stage_of(state, "prep")["outputs"] == {"image": "shop:v1.2"}

    status = await gennaker("status", execution, api=gateway)
    assert status.code == 0, str(status)
    assert execution in status.out and "SUCCEEDED" in status.out
    assert "prep" in status.out and "soak" in status.out


async def test_run_follow_failure_names_the_failing_stage(
    gateway: str, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    path = write_pipeline(
        tmp_path, wait("first", 0.05), failing_check("check", "first"), parameters=[{"name": "env", "default": "dev"}]
    )
    result = await gennaker("run", str(path), "--follow", api=gateway)
    failed_cleanly(result, 1)
    execution = started_id(result)
    assert "TERMINAL" in result.err
    assert "check" in result.flat_err and "Gate check" in result.flat_err
    assert "only prod may pass" in result.flat_err

    status = await gennaker("status", execution, api=gateway)
    failed_cleanly(status, 1)
    assert "TERMINAL" in status.out and "only prod may pass" in status.flat_out

    # Same file with the parameter that satisfies the check.
    result = await gennaker("run", str(path), "-p", "env=prod", "-f", api=gateway)
    assert result.code == 0, str(result)


async def test_run_bad_input_is_exit_2(gateway: str, tmp_path: Path) -> None:
    good = write_pipeline(tmp_path, wait("a"), parameters=[{"name": "tag", "required": True}])
    cases: list[tuple[list[str], str]] = [
        (["run", str(write_pipeline(tmp_path, {"refId": "a", "type": "teleport"}))], "stages[a].type"),
        (["run", str(write_pipeline(tmp_path, wait("a", 0.1, "b"), wait("b", 0.1, "a")))], "cycle"),
        (["run", str(tmp_path / "missing.yaml")], "cannot read"),
        (["run", str(good), "-p", "tag"], "name=value"),
        (["run", str(good), "-p", "=v1"], "name=value"),
        (["run", str(good)], "parameters.tag"),
        (["run", str(good), "-p", "tag=v1", "-p", "colour=red"], "parameters.colour"),
        (["run"], "FILE"),
        (["run", str(good), "--app", "clitest", "--pipeline", "x"], "not both"),
    ]
    results = await asyncio.gather(*(gennaker(*args, api=gateway) for args, _ in cases))
    for (_, needle), result in zip(cases, results, strict=True):
        failed_cleanly(result, 2)
        assert needle in result.flat_err, str(result)


async def test_run_yaml_with_a_date_value_fails_cleanly_or_runs(gateway: str, tmp_path: Path) -> None:
    path = tmp_path / "dated.yaml"
    path.write_text(
        "application: clitest\nname: dated\n"
        "parameters: [{name: day, default: 2024-01-01}]\n"
        "stages: [{refId: a, type: wait, waitTime: 0.05}]\n"
    )
    assert (await gennaker("validate", str(path))).code == 0
    result = await gennaker("run", str(path), "--follow", api=gateway)
    assert result.code in (0, 2), str(result)
    assert "Traceback" not in result.err, str(result)


# ---- approve / cancel / list ---------------------------------------------------------------------


async def test_approve_a_waiting_judgment(gateway: str, http: httpx.AsyncClient, tmp_path: Path) -> None:
    path = write_pipeline(tmp_path, judgment("gate", judgmentInputs=["ship", "hold"]), wait("after", 0.05, "gate"))
    result = await gennaker("run", str(path), api=gateway)
    assert result.code == 0, str(result)
    execution = started_id(result)
    await until_waiting(http, execution, "gate")

    status = await gennaker("status", execution, api=gateway)
    assert status.code == 0, str(status)  # still running: not a failure
    assert f"gennaker approve {execution} gate" in status.flat_out

    wrong = await gennaker("approve", execution, "gate", "--option", "maybe", api=gateway)
    failed_cleanly(wrong, 2)
    assert "maybe" in wrong.flat_err and "ship" in wrong.flat_err
    failed_cleanly(await gennaker("approve", execution, "nope", api=gateway), 2)
    failed_cleanly(await gennaker("approve", execution, "after", api=gateway), 2)

    ok = await gennaker(
        "approve", execution, "gate", "--option", "ship", "--comment", "LGTM", "--user", "jo", api=gateway
    )
    assert ok.code == 0, str(ok)
    assert "judged continue (ship) by jo" in ok.flat_out

    again = await gennaker("approve", execution, "gate", api=gateway)
    failed_cleanly(again, 2)
    assert "not waiting" in again.flat_err or "not running" in again.flat_err

    state = await until_final(http, execution)
    assert state["status"] == "SUCCEEDED"
    assert stage_of(state, "gate")["judgment"]["user"] == "jo"
    assert stage_of(state, "gate")["outputs"]["comment"] == "LGTM"


async def test_approve_stop_fails_the_pipeline(gateway: str, http: httpx.AsyncClient, tmp_path: Path) -> None:
    path = write_pipeline(tmp_path, judgment("gate"))
    execution = started_id(await gennaker("run", str(path), api=gateway))
    await until_waiting(http, execution, "gate")
    result = await gennaker("approve", execution, "gate", "--stop", "--comment", "not today", api=gateway, USER="kim")
    assert result.code == 0, str(result)
    assert "judged stop by kim" in result.flat_out
    state = await until_final(http, execution)
    assert state["status"] == "TERMINAL" and "kim" in state["failure"]


async def test_cancel(gateway: str, http: httpx.AsyncClient, tmp_path: Path) -> None:
    path = write_pipeline(tmp_path, judgment("gate"), wait("after", 0.05, "gate"))
    execution = started_id(await gennaker("run", str(path), api=gateway))
    await until_waiting(http, execution, "gate")

    result = await gennaker("cancel", execution, "--reason", "wrong build", "--user", "lee", api=gateway)
    assert result.code == 0, str(result)
    assert f"cancel requested for {execution}" in result.flat_out
    state = await until_final(http, execution)
    assert state["status"] == "CANCELED"
    assert state["cancelReason"] == "wrong build" and state["canceledBy"] == "lee"

    status = await gennaker("status", execution, api=gateway)
    failed_cleanly(status, 1)
    assert "CANCELED" in status.out

    again = await gennaker("cancel", execution, api=gateway)
    failed_cleanly(again, 2)
    assert "not running" in again.flat_err
    failed_cleanly(await gennaker("cancel", "clitest.nothing.0000", api=gateway), 2)
    failed_cleanly(await gennaker("status", "clitest.nothing.0000", api=gateway), 2)


async def test_list(gateway: str, tmp_path: Path) -> None:
    app = f"list-{uuid.uuid4().hex[:6]}"
    result = await gennaker("run", str(write_pipeline(tmp_path, wait("a", 0.05), app=app)), "--follow", api=gateway)
    assert result.code == 0, str(result)
    execution = started_id(result)

    async def listed() -> Result:
        return await gennaker("list", "--app", app, "--status", "SUCCEEDED", api=gateway)

    found = await assert_eventually(
        listed, lambda r: r.code == 0 and execution in r.out, what="execution listed", timeout=20
    )
    assert app in found.out and "SUCCEEDED" in found.out
    everything = await gennaker("list", "--limit", "5", api=gateway)
    assert everything.code == 0, str(everything)

    bad = await gennaker("list", "--status", "DONE", api=gateway)
    failed_cleanly(bad, 2)
    assert "status" in bad.flat_err


async def test_save_then_run_the_readme_demo(
    gateway: str, http: httpx.AsyncClient, tmp_path: Path, kube: KubeRig
) -> None:
    # The examples, under an application of their own so other tests' saved `shop` pipelines are untouched.
    app = f"demo-{uuid.uuid4().hex[:6]}"
    for example in ("smoke-test.yaml", "release-demo.yaml"):
        text = (EXAMPLES / example).read_text().replace("application: shop", f"application: {app}")
        (tmp_path / example).write_text(text)

    saved = await gennaker("save", str(tmp_path / "smoke-test.yaml"), api=gateway)
    assert saved.code == 0, str(saved)
    assert f"saved {app}/smoke-test revision 1" in saved.out

    # Deployed to a kubesim account of the test rig (the dev stack's would be local-sim), no bake.
    result = await gennaker(
        "run",
        str(tmp_path / "release-demo.yaml"),
        "-p",
        "tag=v2.0",
        "-p",
        f"account={kube.account.name}",
        "-p",
        f"namespace={kube.namespace}",
        api=gateway,
    )
    assert result.code == 0, str(result)
    execution = started_id(result)
    await until_waiting(http, execution, "approve")
    approved = await gennaker("approve", execution, "approve", "--option", "ship", api=gateway)
    assert approved.code == 0, str(approved)
    state = await until_final(http, execution)
    assert state["status"] == "SUCCEEDED", state
    assert stage_of(state, "smoke")["status"] == "SUCCEEDED"
    assert stage_of(state, "bake")["status"] == "SKIPPED"
    deployed = stage_of(state, "deploy")["outputs"]
    assert deployed["serverGroup"].startswith(f"{app}-web-v") and deployed["image"] == "shop/frontend:v2.0"

    # A second release, judged "rollback": traffic flips back to the first release's server group.
    second = await gennaker(
        "run",
        str(tmp_path / "release-demo.yaml"),
        "-p",
        "tag=v2.1",
        "-p",
        f"account={kube.account.name}",
        "-p",
        f"namespace={kube.namespace}",
        api=gateway,
    )
    rollback_id = started_id(second)
    await until_waiting(http, rollback_id, "approve")
    assert (await gennaker("approve", rollback_id, "approve", "--option", "rollback", api=gateway)).code == 0
    rolled = await until_final(http, rollback_id)
    assert rolled["status"] == "SUCCEEDED", rolled
    assert stage_of(rolled, "rollback-enable")["outputs"]["serverGroup"] == deployed["serverGroup"]
    assert stage_of(rolled, "rollback-disable")["status"] == "SUCCEEDED"
    assert stage_of(rolled, "smoke")["status"] == "SKIPPED"

    # The saved child pipeline runs by name too.
    by_name = await gennaker("run", "--app", app, "--pipeline", "smoke-test", "-p", "tag=v3", "-f", api=gateway)
    assert by_name.code == 0, str(by_name)
    bad_tag = await gennaker("run", "--app", app, "--pipeline", "smoke-test", "-p", "tag=3", "-f", api=gateway)
    failed_cleanly(bad_tag, 1)
    assert "tags must start with v" in bad_tag.flat_err
    missing = await gennaker("run", "--app", app, "--pipeline", "nope", api=gateway)
    failed_cleanly(missing, 2)
    assert "not found" in missing.flat_err


# ---- the gateway is down -------------------------------------------------------------------------


async def test_gateway_unreachable_is_exit_3(tmp_path: Path) -> None:
    path = write_pipeline(tmp_path, wait("a"))
    commands = [
        ["run", str(path)],
        ["run", str(path), "--follow"],
        ["status", "x.y.z"],
        ["list"],
        ["approve", "x.y.z", "gate"],
        ["cancel", "x.y.z"],
        ["pause", "x.y.z"],
        ["save", str(path)],
    ]
    results = await asyncio.gather(*(gennaker(*args, "--api", UNREACHABLE) for args in commands))
    for result in results:
        failed_cleanly(result, 3)
        assert "cannot reach the Gennaker gateway" in result.flat_err, str(result)
        assert UNREACHABLE in result.flat_err
    # The environment variable is honoured the same way.
    result = await gennaker("list", api=UNREACHABLE)
    failed_cleanly(result, 3)
    assert UNREACHABLE in result.flat_err
