"""Find Image from registry tags, registry account health, and the registry client's auth flows,
against a real distribution registry (tests/support/docker_rig.py) and the real Temporal dev server.
"""

from __future__ import annotations

import asyncio
import json
import signal
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from temporalio.client import Client

import workflows.stages.find_image  # noqa: F401  (registers `findImage`)
from activities.accounts import RegistryAccount, SecretRef
from activities.registry import RegistryClient, build_registry_account, check_registry_health, semver_key
from core.directory import reported_accounts
from tests.support.docker_rig import DockerRig, docker_rig_fixture, serving  # noqa: F401
from tests.support.eventually import assert_eventually
from tests.support.runner import DIRECTORY_QUEUE, Runner, pipeline
from tests.support.worker_policy import TEST_BAKE, TEST_EGRESS
from workers.config import WorkerConfig
from workers.devserver import TemporalDevServer
from workers.main import run_worker
from workflows.state import StageStatus

ACCOUNT = "finds"
T0 = datetime(2026, 1, 1, tzinfo=UTC)
# tag -> creation time offset (hours). Newest final release by time is v1.2.0; highest is v1.10.0.
TAGS = {"v1.9.3": 2, "v1.10.0": 1, "v1.2.0": 3, "v2.0.0-rc.1": 4, "latest": 5, "build-17": 0, "v1.2.0-beta": 6}


@pytest.fixture(scope="module")
def repository(docker_rig: DockerRig) -> str:
    name = f"shop/finder-{uuid.uuid4().hex[:6]}"
    for tag, hours in TAGS.items():
        docker_rig.registry.push_synthetic(name, tag, T0 + timedelta(hours=hours), note=tag)
    return name


@pytest.fixture(scope="module")
async def find_worker(client: Client, docker_rig: DockerRig) -> AsyncIterator[None]:
    async with serving(client, build_registry_account(docker_rig.registry.account(ACCOUNT), TEST_EGRESS, TEST_BAKE)):
        yield


def find(ref: str, repository: str, regex: str, order: str = "newest", **extra: Any) -> dict[str, Any]:
    return {
        "refId": ref,
        "type": "findImage",
        "account": ACCOUNT,
        "repository": repository,
        "tagRegex": regex,
        "order": order,
        **extra,
    }


def test_semver_precedence() -> None:
    ordered = [
        "0.9.0",
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "v1.0.0",
        "1.2.0",
        "1.10.0",
        "2.0.0+build.5",
    ]
    keys = [semver_key(t) for t in ordered]
    assert all(k is not None for k in keys)
    assert sorted(ordered, key=lambda t: semver_key(t)) == ordered  # type: ignore[arg-type,return-value]
    assert semver_key("latest") is None and semver_key("1.2") is None and semver_key("01.2.3") is None


async def test_find_image_by_regex_newest_and_semver(
    runner: Runner, docker_rig: DockerRig, repository: str, find_worker: None
) -> None:
    handle = await runner.start(
        pipeline(
            find("newest", repository, r"v\d+\.\d+\.\d+"),
            find("semver", repository, r"v\d+\.\d+\.\d+", "semver"),
            find("prerelease", repository, r"v.*", "semver"),
            find("any", repository, ".*"),
            find("none", repository, r"release-.*", continuePipeline=True),
            name="find-images",
        )
    )
    state = await runner.finish(handle, timeout=30)
    out = {ref: state.stage(ref) for ref in ("newest", "semver", "prerelease", "any", "none")}
    address = docker_rig.registry.address
    assert out["newest"].outputs["tag"] == "v1.2.0"  # type: ignore[union-attr]
    assert out["newest"].outputs["image"] == f"{address}/{repository}:v1.2.0"  # type: ignore[union-attr]
    assert out["newest"].outputs["candidates"] == 3  # type: ignore[union-attr]
    assert out["newest"].outputs["created"].startswith("2026-01-01T03:00")  # type: ignore[union-attr]
    assert out["semver"].outputs["tag"] == "v1.10.0"  # type: ignore[union-attr]
    assert out["prerelease"].outputs["tag"] == "v2.0.0-rc.1"  # type: ignore[union-attr]
    assert out["any"].outputs["tag"] == "v1.2.0-beta"  # type: ignore[union-attr]
    with docker_rig.registry.http() as http:
        manifest = http.get(
            f"/v2/{repository}/manifests/v1.10.0",
            headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
        )
    assert out["semver"].outputs["digest"] == manifest.headers["docker-content-digest"]  # type: ignore[union-attr]
    none = out["none"]
    assert none is not None and none.status is StageStatus.FAILED_CONTINUE and none.error is not None
    assert f"registry {ACCOUNT}: no tag of {repository} matches 'release-.*'" in none.error.message


def test_invalid_regex_is_rejected_at_submission() -> None:
    from workflows.model import PipelineInvalid, parse_pipeline

    with pytest.raises(PipelineInvalid) as info:
        parse_pipeline(pipeline(find("f", "shop/x", "v(")))
    assert info.value.errors[0].field.startswith("stages[f].tagRegex")


# ---- health and GET /accounts ----------------------------------------------------------------------


async def test_health_of_registry_accounts_through_the_account_directory(
    temporal_server: TemporalDevServer, client: Client, docker_rig: DockerRig, worker: None
) -> None:
    good = docker_rig.registry.account("health-ok", docker_host=docker_rig.engine.host, repositories=["shop/a"])
    bad = docker_rig.registry.account("health-bad", password="wrong")
    down = RegistryAccount(name="health-down", address="127.0.0.1:9", insecure=True)
    assert check_registry_health(RegistryClient(good)).healthy
    config = WorkerConfig(
        temporal_address=temporal_server.address,
        task_queue=DIRECTORY_QUEUE,  # it reports to the session's account directory
        serve_pipelines=False,
        registries=[good, bad, down],
        health_interval_seconds=60,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(run_worker(config, stop))
    try:

        async def health_views() -> dict[str, Any]:
            return {v.name: v for v in await reported_accounts(client) if v.name.startswith("health-")}

        views = await assert_eventually(
            health_views, lambda found: len(found) == 3, what="three health-* accounts reported", timeout=10
        )
    finally:
        stop.set()
        await task
        for sig in (signal.SIGTERM, signal.SIGINT):  # run_worker took them over for its graceful stop
            asyncio.get_running_loop().remove_signal_handler(sig)
    assert views["health-ok"].healthy and views["health-ok"].authenticated, views["health-ok"]
    assert views["health-ok"].details["dockerEngine"].startswith("Docker ")
    assert views["health-bad"].reachable and not views["health-bad"].authenticated
    assert views["health-bad"].lastError == (
        f"registry health-bad: 401 Unauthorized — check the password in file {bad.password.file}"  # type: ignore[union-attr]
    )
    assert not views["health-down"].reachable and "cannot reach 127.0.0.1:9" in str(views["health-down"].lastError)
    assert all(v.kind == "registry" and v.taskQueue == f"registry-{n}" for n, v in views.items())


# ---- token (Bearer) authentication, as Docker Hub / GCR do it -----------------------------------


class _TokenRegistry(BaseHTTPRequestHandler):
    """A registry front that wants a Bearer token from its token service (both on one port)."""

    issued: list[dict[str, str]] = []

    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        for key, value in {"Content-Type": "application/json", **(headers or {})}.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        host = f"127.0.0.1:{self.server.server_address[1]}"
        if self.path.startswith("/token"):
            import base64
            from urllib.parse import parse_qs, urlsplit

            basic = self.headers.get("Authorization", "").removeprefix("Basic ")
            if base64.b64decode(basic or "Og==").decode() != "robot:tok-s3cret":
                return self._send(401, {"errors": [{"code": "UNAUTHORIZED"}]})
            query = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
            self.issued.append(query)
            return self._send(200, {"token": f"T-{query.get('scope', '')}"})
        scope = "repository:shop/app:pull"
        if self.headers.get("Authorization") != f"Bearer T-{scope}":
            challenge = f'Bearer realm="http://{host}/token",service="test",scope="{scope}"'
            return self._send(401, {"errors": [{"code": "UNAUTHORIZED"}]}, {"WWW-Authenticate": challenge})
        return self._send(200, {"name": "shop/app", "tags": ["a", "b"]})


@pytest.fixture
def token_registry() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _TokenRegistry)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_bearer_token_flow(token_registry: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOKEN_PW", "tok-s3cret")
    account = RegistryAccount(
        name="tokens", address=token_registry, insecure=True, username="robot", password=SecretRef(env="TOKEN_PW")
    )
    client = RegistryClient(account)
    assert client.tags("shop/app") == ["a", "b"]
    assert client.tags("shop/app") == ["a", "b"]  # the cached token is reused
    assert _TokenRegistry.issued == [{"service": "test", "scope": "repository:shop/app:pull"}]
    monkeypatch.setenv("TOKEN_PW", "wrong")
    fresh = RegistryClient(account)
    with pytest.raises(Exception, match=r"registry tokens: 401 from the token service .* check the password in env"):
        fresh.tags("shop/app")
