"""Everyday CLI commands as people run them: `pipelines`, `applications`, `accounts`,
`servergroup`, the richer `status`, piped output, help text, Ctrl-C while following.

Real subprocesses of the `gennaker` console script against the session's `gennaker api` (shared with
test_cli.py) and its worker, and a kubesim account served by its own worker.
Subprocess output is a pipe, so every table here comes out in its piped (tab-separated) form.
"""

from __future__ import annotations

import asyncio
import re
import signal
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.support.cli_rig import (
    GENNAKER,
    Result,
    cli_env,
    failed_cleanly,
    gennaker,
    judgment,
    started_id,
    state_of,
    until_final,
    until_waiting,
    wait,
    write_pipeline,
)
from tests.support.eventually import assert_eventually
from tests.support.kube_rig import KubeRig, deploy_stage, kube_fixture  # noqa: F401  (the `kube` fixture)

# A test here runs a dozen or two `gennaker` interpreters (about 1.3 s of CPU each to start) and the
# first one also waits for the gateway subprocess: on a busy 2-core machine that is minutes, not hangs.
pytestmark = pytest.mark.timeout(300)
PYTHON_TYPE = re.compile(r"<(str|int|float|bool|path|list\[[^>]*\]|[a-z]+ range)>")


@pytest.fixture
def gateway(cli_gateway: str) -> str:
    """The session's `gennaker api` subprocess (tests/integration/conftest.py), shared with test_cli."""
    return cli_gateway


@pytest.fixture
def http(cli_http: httpx.AsyncClient) -> httpx.AsyncClient:
    return cli_http


def rows(result: Result) -> list[list[str]]:
    """The tab-separated rows of piped output (title comments skipped)."""
    return [line.split("\t") for line in result.out.splitlines() if "\t" in line and not line.startswith("#")]


def short_app() -> str:
    return f"ev-{uuid.uuid4().hex[:6]}"


# ---- help ------------------------------------------------------------------------------------------


async def test_help_shows_no_python_types() -> None:
    commands = [
        [],
        ["run"],
        ["status"],
        ["list"],
        ["clusters"],
        ["approve"],
        ["pipelines"],
        ["pipelines", "list"],
        ["pipelines", "get"],
        ["pipelines", "delete"],
        ["pipelines", "history"],
        ["applications"],
        ["accounts"],
        ["servergroup"],
        *[["servergroup", action] for action in ("resize", "enable", "disable", "destroy", "rollback")],
    ]
    # A few at a time: twenty interpreters starting at once on a busy 2-core machine time out.
    limit = asyncio.Semaphore(3)

    async def help_of(command: list[str]) -> Any:
        async with limit:
            return await gennaker(*command, "--help", timeout=120)

    results = await asyncio.gather(*(help_of(command) for command in commands))
    for command, result in zip(commands, results, strict=True):
        assert result.code == 0, (command, str(result))
        assert not PYTHON_TYPE.search(result.out), (command, result.out)
    resize = results[commands.index(["servergroup", "resize"])].out
    assert "--capacity" in resize and " N " in resize and "--server-group" in resize
    run = results[commands.index(["run"])].out
    assert re.search(r"--param\s+-p\s+PARAM", run), run


# ---- pipelines / applications / accounts -----------------------------------------------------------


async def test_pipelines_list_get_history_delete(gateway: str, tmp_path: Path) -> None:
    app = short_app()
    long_name = "release-" + "x" * 70  # longer than any 80-column cut
    first = write_pipeline(tmp_path, wait("a", 0.05), app=app)
    name = yaml.safe_load(first.read_text())["name"]
    other = tmp_path / "long.yaml"
    other.write_text(yaml.safe_dump({"application": app, "name": long_name[:63], "stages": [wait("a")]}))
    assert (await gennaker("save", str(first), api=gateway, GENNAKER_USER="ann")).code == 0
    second = yaml.safe_load(first.read_text())
    second["description"] = "second revision"
    first.write_text(yaml.safe_dump(second))
    assert (await gennaker("save", str(first), api=gateway, GENNAKER_USER="bob")).code == 0
    assert (await gennaker("save", str(other), api=gateway, GENNAKER_USER="ann")).code == 0

    listed = await gennaker("pipelines", "list", "--app", app, api=gateway, COLUMNS="80")
    assert listed.code == 0, str(listed)
    assert rows(listed)[0] == ["application", "pipeline", "revision", "saved by", "saved at"]
    found = {row[1]: row for row in rows(listed)[1:]}
    assert found[name][:4] == [app, name, "2", "bob"]
    assert found[long_name[:63]][:4] == [app, long_name[:63], "1", "ann"]  # untruncated at 80 columns
    everywhere, got, as_json = await asyncio.gather(
        gennaker("pipelines", "list", api=gateway),
        gennaker("pipelines", "get", app, name, api=gateway),
        gennaker("pipelines", "get", app, name, "--revision", "1", "--format", "json", api=gateway),
    )
    assert everywhere.code == 0 and name in everywhere.out, str(everywhere)
    assert got.code == 0, str(got)
    assert got.out.startswith(f"# {app}/{name} revision 2 by bob")
    assert yaml.safe_load(got.out) == second
    assert as_json.code == 0, str(as_json)
    assert "description" not in yaml.safe_load(as_json.out) and yaml.safe_load(as_json.out)["name"] == name
    # What `get` prints, `save` takes back (a new revision, same content).
    (tmp_path / "roundtrip.yaml").write_text(got.out)
    again = await gennaker("save", str(tmp_path / "roundtrip.yaml"), api=gateway)
    assert again.code == 0 and "revision 3" in again.out, str(again)

    deleted = await gennaker("pipelines", "delete", app, name, api=gateway, GENNAKER_USER="cy")
    assert deleted.code == 0, str(deleted)
    assert f"deleted {app}/{name}" in deleted.out and "revision 4" in deleted.out
    history = await gennaker("pipelines", "history", app, name, api=gateway)
    assert history.code == 0, str(history)
    assert [row[:3] for row in rows(history)[1:]] == [
        ["1", "saved", "ann"],
        ["2", "saved", "bob"],
        ["3", "saved", "cli-tester"],
        ["4", "deleted", "cy"],
    ]
    after = await gennaker("pipelines", "list", "--app", app, api=gateway)
    assert name not in after.out and long_name[:63] in after.out

    refused = (
        ["pipelines", "get", app, name],  # deleted
        ["pipelines", "get", app, long_name[:63], "--revision", "9"],
        ["pipelines", "get", app, long_name[:63], "--format", "toml"],
        ["pipelines", "get", app, long_name[:63], "--revision", "0"],
        ["pipelines", "delete", app, name],  # already deleted
        ["pipelines", "history", app, "never-saved"],
        ["pipelines", "list", "--app", "Not_A_Name"],
    )
    for result in await asyncio.gather(*(gennaker(*args, api=gateway) for args in refused)):
        failed_cleanly(result, 2)


async def test_applications_and_accounts(gateway: str, tmp_path: Path, kube: KubeRig) -> None:
    app = short_app()
    assert (await gennaker("save", str(write_pipeline(tmp_path, wait("a"), app=app)), api=gateway)).code == 0
    apps = await gennaker("applications", api=gateway)
    assert apps.code == 0, str(apps)
    mine = next(row for row in rows(apps) if row[0] == app)
    assert mine[1] == "1"

    accounts = await gennaker("accounts", api=gateway)
    assert accounts.code == 0, str(accounts)
    assert rows(accounts)[0] == ["account", "kind", "health", "checked", "task queue", "last error"]
    row = next(r for r in rows(accounts) if r[0] == kube.account.name)
    assert row[1] == "kubernetes" and row[2] == "healthy" and row[4] == kube.account.queue
    as_json = await gennaker("accounts", "--json", api=gateway)
    assert any(a["name"] == kube.account.name for a in yaml.safe_load(as_json.out))


async def test_listing_commands_unreachable_gateway_is_exit_3() -> None:
    commands = [
        ["pipelines", "list"],
        ["pipelines", "get", "a", "b"],
        ["pipelines", "history", "a", "b"],
        ["pipelines", "delete", "a", "b"],
        ["applications"],
        ["accounts"],
        ["servergroup", "enable", "shop", "--account", "a", "--namespace", "n", "--server-group", "shop-v000"],
    ]
    results = await asyncio.gather(*(gennaker(*c, "--api", "http://127.0.0.1:1") for c in commands))
    for result in results:
        failed_cleanly(result, 3)
        assert "cannot reach the Gennaker gateway" in result.flat_err


# ---- piped tables, status details --------------------------------------------------------------------


async def test_piped_list_is_tab_separated_and_never_truncated(gateway: str, tmp_path: Path) -> None:
    app = "piped-" + uuid.uuid4().hex[:6] + "-" + "y" * 40
    result = await gennaker("run", str(write_pipeline(tmp_path, wait("a", 0.05), app=app)), "-f", api=gateway)
    execution = started_id(result)

    async def listed() -> Result:
        return await gennaker("list", "--app", app, api=gateway, COLUMNS="80")

    found = await assert_eventually(
        listed, lambda r: r.code == 0 and execution in r.out, what="execution listed", timeout=20
    )
    row = next(r for r in rows(found) if r[0] == execution)
    assert row[1] == app and row[3] == "SUCCEEDED", found.out
    assert max(len(line) for line in found.out.splitlines()) > 80


async def test_status_shows_outputs_failures_notifications_and_judgment_prompt(
    gateway: str, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    app = short_app()
    path = write_pipeline(
        tmp_path,
        {"refId": "vars", "type": "evaluateVariables", "variables": [{"key": "image", "value": "shop:v9"}]},
        judgment(
            "gate", "vars", instructions="Ship v9 to prod? Check the dashboard first.", judgmentInputs=["ship", "hold"]
        ),
        app=app,
        notifications=[{"type": "slack", "address": "#deploys", "when": ["pipeline.starting"]}],
    )
    name = yaml.safe_load(path.read_text())["name"]
    assert (await gennaker("save", str(path), api=gateway)).code == 0
    execution = started_id(await gennaker("run", "--app", app, "--pipeline", name, api=gateway))
    await until_waiting(http, execution, "gate")
    await assert_eventually(
        lambda: state_of(http, execution),
        lambda s: s["notificationFailures"],
        what="the notification failure",
        timeout=20,
    )

    status = await gennaker("status", execution, api=gateway, COLUMNS="80")
    assert status.code == 0, str(status)
    table = {row[0]: row for row in rows(status)}
    assert table["vars"][4] == "image=shop:v9"  # a succeeded stage shows its key outputs
    assert table["gate (gate)" if "gate (gate)" in table else "gate"][4] == "waiting for judgment: ship, hold"
    text = status.out
    assert "instructions: Ship v9 to prod? Check the dashboard first." in text
    assert "options: ship, hold" in text
    assert f"approve: gennaker approve {execution} gate --option ship" in text
    assert "notification not delivered: pipeline.starting via slack to #deploys" in text

    judged = await gennaker("approve", execution, "gate", "--option", "hold", "--user", "dee", api=gateway)
    assert judged.code == 0, str(judged)
    await until_final(http, execution)
    done = await gennaker("status", execution, api=gateway)
    assert done.code == 0, str(done)
    gate = next(row for row in rows(done) if row[0].startswith("gate"))
    assert "judgmentInput=hold" in gate[4] and "judgedBy=dee" in gate[4]

    failing = write_pipeline(
        tmp_path,
        {
            "refId": "check",
            "type": "checkPreconditions",
            "preconditions": [{"context": {"expression": "false", "failureMessage": "the gate is shut " + "z" * 80}}],
        },
    )
    failed_id = started_id(await gennaker("run", str(failing), api=gateway))
    await until_final(http, failed_id)
    failed = await gennaker("status", failed_id, api=gateway, COLUMNS="80")
    failed_cleanly(failed, 1)
    check = next(row for row in rows(failed) if row[0].startswith("check"))
    assert "the gate is shut " + "z" * 80 in check[4]
    assert "failure:" in failed.out


async def test_status_shows_why_a_waiting_run_was_superseded(
    gateway: str, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    path = write_pipeline(tmp_path, judgment("gate"), limitConcurrent=True)
    running = started_id(await gennaker("run", str(path), api=gateway))
    await until_waiting(http, running, "gate")
    queued = started_id(await gennaker("run", str(path), api=gateway))
    newest = started_id(await gennaker("run", str(path), api=gateway))
    await until_final(http, queued)
    status = await gennaker("status", queued, api=gateway)
    failed_cleanly(status, 1)
    assert f"superseded by {newest}" in status.flat_out
    await gennaker("cancel", running, api=gateway)
    await gennaker("cancel", newest, api=gateway)


async def test_ctrl_c_while_following_says_the_run_goes_on(
    gateway: str, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    path = write_pipeline(tmp_path, judgment("gate"))
    # As a person's shell starts it: SIGINT at its default. A suite started in the background by a
    # non-interactive shell (`nohup bash ... &`) inherits SIGINT ignored, and so would the CLI, which
    # then rightly keeps running on Ctrl-C; the shim resets it before exec'ing the CLI.
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execv(sys.argv[1], sys.argv[1:])",
        GENNAKER,
        "run",
        str(path),
        "--follow",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=cli_env(gateway),
    )
    assert process.stdout is not None and process.stderr is not None
    first_line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
    execution = first_line.split()[1]
    await until_waiting(http, execution, "gate")  # the CLI is following by now
    process.send_signal(signal.SIGINT)
    out, err = await asyncio.wait_for(process.communicate(), 30)
    result = Result(process.returncode or 0, first_line + out.decode(), err.decode())
    failed_cleanly(result, 130)
    assert f"execution {execution} keeps running" in result.flat_err
    assert f"gennaker cancel {execution}" in result.flat_err
    state = await state_of(http, execution)
    assert state["status"] == "RUNNING"
    assert (await gennaker("cancel", execution, api=gateway)).code == 0


# ---- servergroup actions -----------------------------------------------------------------------------


async def _two_groups(gateway: str, http: httpx.AsyncClient, tmp_path: Path, kube: KubeRig) -> tuple[str, str, str]:
    """Deploy two server groups of one cluster, both serving; returns (app, v000, v001)."""
    app = "sg" + uuid.uuid4().hex[:6]
    lb = f"{app}-web"
    await asyncio.to_thread(kube.service, lb)
    path = write_pipeline(
        tmp_path,
        deploy_stage(kube, "d0", stack="web", loadBalancers=[lb]),
        {
            **deploy_stage(kube, "d1", stack="web", loadBalancers=[lb], container=kube.container("2.0")),
            "requisiteStageRefIds": ["d0"],
        },
        app=app,
    )
    result = await gennaker("run", str(path), "--follow", api=gateway, timeout=120)
    assert result.code == 0, str(result)
    return app, f"{app}-web-v000", f"{app}-web-v001"


def _on(kube: KubeRig, *args: str) -> list[str]:
    return [*args, "--account", kube.account.name, "--namespace", kube.namespace]


def _enabled(kube: KubeRig, name: str) -> bool:
    rs = kube.apps.read_namespaced_replica_set(name, kube.namespace)
    return any(key.startswith("lb.gennaker.io/") for key in (rs.spec.template.metadata.labels or {}))


async def test_servergroup_actions_change_the_cluster(
    gateway: str, http: httpx.AsyncClient, tmp_path: Path, kube: KubeRig
) -> None:
    app, v0, v1 = await _two_groups(gateway, http, tmp_path, kube)
    assert await asyncio.to_thread(kube.replicas, v1) == 2

    resized = await gennaker(
        "servergroup",
        *_on(kube, "resize", app),
        "--server-group",
        v1,
        "--capacity",
        "3",
        "--follow",
        api=gateway,
        GENNAKER_USER="ops",
        timeout=90,
    )
    assert resized.code == 0, str(resized)
    assert await asyncio.to_thread(kube.replicas, v1) == 3
    execution = started_id(resized)
    state = await state_of(http, execution)
    assert state["pipeline"] == "cli-resize" and state["trigger"]["user"] == "ops"
    row = next(r for r in rows(resized) if r[0].startswith("Resize"))
    assert f"serverGroup={v1}" in row[4] and "previousDesired=2" in row[4] and "desired=3" in row[4]

    # Without --follow it only starts the run.
    started = await gennaker("servergroup", *_on(kube, "disable", app), "--server-group", v0, api=gateway)
    assert started.code == 0 and "follow it: gennaker status" in started.out, str(started)
    assert (await until_final(http, started_id(started)))["status"] == "SUCCEEDED"
    assert not await asyncio.to_thread(_enabled, kube, v0)
    enabled = await gennaker("servergroup", *_on(kube, "enable", app), "--server-group", v0, "-f", api=gateway)
    assert enabled.code == 0, str(enabled)
    assert await asyncio.to_thread(_enabled, kube, v0)

    # Rollback from v1 to the group before it (found on the live cluster): v0 serves, v1 does not.
    rolled = await gennaker(
        "servergroup",
        *_on(kube, "rollback", app),
        "--server-group",
        v1,
        "--cluster",
        f"{app}-web",
        "-f",
        api=gateway,
        timeout=90,
    )
    assert rolled.code == 0, str(rolled)
    assert f"Enable {v0}" in rolled.out and f"Disable {v1}" in rolled.out
    assert await asyncio.to_thread(_enabled, kube, v0) and not await asyncio.to_thread(_enabled, kube, v1)
    nothing_older = await gennaker("servergroup", *_on(kube, "rollback", app), "--server-group", v0, api=gateway)
    failed_cleanly(nothing_older, 2)
    assert "no older server group" in nothing_older.flat_err

    # Destroy: no terminal and no --yes is refused before anything starts.
    refused = await gennaker("servergroup", *_on(kube, "destroy", app), "--server-group", v1, api=gateway)
    failed_cleanly(refused, 2)
    assert "--yes" in refused.flat_err
    assert v1 in await asyncio.to_thread(kube.server_groups, f"{app}-web")
    destroyed = await gennaker(
        "servergroup", *_on(kube, "destroy", app), "--server-group", v1, "--yes", "-f", api=gateway, timeout=90
    )
    assert destroyed.code == 0, str(destroyed)
    assert set(await asyncio.to_thread(kube.server_groups, f"{app}-web")) == {v0}


async def test_destroy_asks_on_a_terminal_and_no_means_nothing_starts() -> None:
    """`script` gives the CLI a pseudo-terminal; answering no exits 2 before any request (the
    gateway address is unreachable, so a request would have been exit 3)."""
    command = (
        f"{GENNAKER} servergroup destroy shop --account prod --namespace web --server-group shop-web-v001 "
        "--api http://127.0.0.1:1"
    )
    for answer, code, needle in (("n", 2, "nothing destroyed"), ("y", 3, "cannot reach the Gennaker gateway")):
        process = await asyncio.create_subprocess_exec(
            "script",
            "-qec",
            command,
            "/dev/null",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=cli_env(None),
        )
        out, _ = await asyncio.wait_for(process.communicate(f"{answer}\n".encode()), 30)
        text = " ".join(out.decode().split())
        assert process.returncode == code, text
        assert "Destroy server group shop-web-v001 (account prod, namespace web) and its pods? [y/N]" in text
        assert needle in text and "Traceback" not in text


async def test_servergroup_bad_input_is_exit_2(gateway: str, kube: KubeRig) -> None:
    cases: list[tuple[list[str], str]] = [
        (["resize", "shop", "--server-group", "other-web-v001", "--capacity", "2"], "not in application shop"),
        (["resize", "shop", "--server-group", "shop-web-v001", "--capacity", "-1"], "capacity"),
        (["resize", "shop", "--server-group", "shop-web-v001"], "--capacity"),
        (["enable", "shop", "--server-group", "Shop_Web"], "not a valid Kubernetes name"),
        (["enable", "shop", "--server-group", "shop-web-v001", "--cluster", "shop-api"], "not in cluster shop-api"),
        (["rollback", "shop", "--server-group", "shop-web-v001", "--to", "shop-web-v001"], "other than"),
    ]
    results = await asyncio.gather(*(gennaker("servergroup", *_on(kube, *args), api=gateway) for args, _ in cases))
    for (_, needle), result in zip(cases, results, strict=True):
        failed_cleanly(result, 2)
        assert needle in result.flat_err, str(result)
