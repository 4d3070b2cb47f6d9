"""`gennaker dev --config gennaker.yaml`: the file's registries, notification channels and trigger
secrets reach the embedded worker and gateway; notifications link to the console; a bad file is
refused before anything starts."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from stack.dev import DevPorts
from tests.integration.test_dev_stack import DevStack, free_offset
from tests.support.cli_rig import GENNAKER, cli_env
from tests.support.eventually import assert_eventually

HMAC_KEY = "notify-hmac-key"
TRIGGER_SECRET = "s3cret-for-the-deploy-hook"


class Received:
    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.arrived = threading.Event()


@pytest.fixture
def hook() -> Iterator[tuple[str, Received]]:
    received = Received()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            received.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
            received.arrived.set()
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    finally:
        server.shutdown()
        server.server_close()


async def launch(tmp_path: Path, config: Path, env: dict[str, str]) -> DevStack:
    offset = free_offset()
    logs = tmp_path / "logs"
    logs.mkdir(exist_ok=True)
    stdout, stderr = logs / "dev.out", logs / "dev.err"
    with open(stdout, "wb") as out, open(stderr, "wb") as err:
        process = await asyncio.create_subprocess_exec(
            GENNAKER, "dev", "--data-dir", str(tmp_path / "data"), "--port-offset", str(offset),
            "--config", str(config), stdout=out, stderr=err, env=env,
        )  # fmt: skip
    return DevStack(tmp_path / "data", DevPorts.with_offset(offset), process, stdout, stderr)


@pytest.fixture
async def stacks() -> AsyncIterator[list[DevStack]]:
    started: list[DevStack] = []
    yield started
    for stack in started:
        await stack.kill()


async def test_dev_takes_the_workers_config_file(
    tmp_path: Path, hook: tuple[str, Received], stacks: list[DevStack]
) -> None:
    url, received = hook
    secrets_file = tmp_path / "trigger-secrets.yaml"
    secrets_file.write_text(yaml.safe_dump({"deploy-hook": TRIGGER_SECRET}))
    config = tmp_path / "gennaker.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "registries": [{"name": "extra-registry", "address": "127.0.0.1:1", "insecure": True}],
                "notifications": {"webhook": {"secret": {"env": "NOTIFY_HMAC"}}},
                "trigger_secrets_file": str(secrets_file),
                # The notification receiver below listens on loopback: the file allow-lists it, as an
                # operator would (the dev stack's own policy allows no outbound address).
                "egress": {"allow_cidrs": ["127.0.0.0/8"]},
            }
        )
    )
    env = {**cli_env(None), "PYTHONUNBUFFERED": "1", "NOTIFY_HMAC": HMAC_KEY}
    env.pop("GENNAKER_CODEC_KEYS_FILE", None)
    stack = await launch(tmp_path, config, env)
    stacks.append(stack)
    await stack.wait_until_up(90)
    assert f"config       {config}" in stack.stdout.read_text()
    token = (stack.data_dir / "admin-token").read_text().strip()
    async with httpx.AsyncClient(base_url=stack.api, timeout=15, headers={"Authorization": f"Bearer {token}"}) as http:
        # The file's registry account is served (and reported) by the embedded worker.
        async def accounts() -> str:
            return (await http.get("/accounts")).text

        await assert_eventually(
            accounts,
            lambda text: "extra-registry" in text,
            what="extra-registry in /accounts",
            timeout=30,
            interval=0.3,
        )

        pipeline = {
            "application": "shop",
            "name": "hooked",
            "triggers": [{"type": "webhook", "source": "deploy-hook", "secret": "deploy-hook"}],
            "notifications": [{"type": "webhook", "address": url, "when": ["pipeline.complete"]}],
            "stages": [{"refId": "w", "type": "wait", "waitTime": 0}],
        }
        saved = await http.put("/applications/shop/pipelines/hooked", json=pipeline)
        assert saved.status_code in (200, 201), saved.text

        refused = await http.post("/webhooks/webhook/deploy-hook", json={}, headers={"X-Gennaker-Secret": "wrong"})
        assert refused.status_code == 401, refused.text
        # The trigger secret comes from the file the config names.
        started = await http.post(
            "/webhooks/webhook/deploy-hook", json={}, headers={"X-Gennaker-Secret": TRIGGER_SECRET}
        )
        assert started.status_code == 202, started.text
        execution_id = started.json()["started"][0]["id"]

    assert await asyncio.to_thread(received.arrived.wait, 30), "no notification arrived"
    headers, body = received.requests[0]
    # The channel's settings (its HMAC key) come from the config file.
    assert headers["x-gennaker-signature"].endswith(hmac.new(HMAC_KEY.encode(), body, hashlib.sha256).hexdigest())
    sent = json.loads(body)
    assert sent["link"] == f"{stack.api}/console/executions/{execution_id}"
    assert sent["temporalUiLink"].startswith(f"http://127.0.0.1:{stack.ports.ui}/namespaces/default/workflows/")


async def test_a_config_key_neither_worker_nor_gateway_knows_is_refused(tmp_path: Path, stacks: list[DevStack]) -> None:
    config = tmp_path / "gennaker.yaml"
    config.write_text("registries: []\nnotifcations: {}\n")
    stack = await launch(tmp_path, config, {**cli_env(None), "PYTHONUNBUFFERED": "1"})
    stacks.append(stack)
    assert await asyncio.wait_for(stack.process.wait(), 30) == 2
    assert "unknown key(s) notifcations" in stack.stderr.read_text() + stack.stdout.read_text()
