"""The accounts `gennaker dev` brings up on its own, so the demo can deploy and bake on a fresh machine.

- Kubernetes: the kubeconfig given with --kubeconfig (account `local`), else kubesim — a simulated
  Kubernetes API, not a real cluster — as account `local-sim`, its objects kept in the data dir.
- Registry: when a Docker engine answers ($DOCKER_HOST, else /var/run/docker.sock) and Debian's
  `docker-registry` is installed, a registry on 127.0.0.1:5000+offset (account `local`) whose push
  notifications go to this gateway, so `docker` triggers work too. Otherwise no registry account,
  and the banner says how to get one.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from activities.accounts import KubernetesAccount, RegistryAccount

BASE_REGISTRY_PORT = 5000
SIM_ACCOUNT = "local-sim"
REGISTRY_ACCOUNT = "local"
# How long a simulated pod takes to become Ready: long enough to watch a rollout happen.
SIM_READY_DELAY = 1.0


@dataclass
class DevAccounts:
    kubernetes: list[KubernetesAccount] = field(default_factory=list)
    registries: list[RegistryAccount] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    stops: list[Callable[[], None]] = field(default_factory=list)
    cancelled: bool = False  # set when the stack stops while these are still starting

    def stop(self) -> None:
        for stop in reversed(self.stops):
            with contextlib.suppress(Exception):
                stop()


def docker_engine() -> str | None:
    """The first Docker engine that answers, as a DOCKER_HOST value."""
    import docker

    for host in (os.environ.get("DOCKER_HOST"), "unix:///var/run/docker.sock"):
        if not host:
            continue
        try:
            engine = docker.DockerClient(base_url=host, timeout=3)
            try:
                if engine.ping():
                    return host
            finally:
                engine.close()
        except Exception:  # no engine there: try the next place
            continue
    return None


def _kubernetes(data_dir: Path, kubeconfig: Path | None, context: str | None, found: DevAccounts) -> None:
    if kubeconfig is not None:
        found.kubernetes.append(KubernetesAccount(name="local", kubeconfig=kubeconfig, context=context))
        found.notes.append(f"Kubernetes  account local: {kubeconfig}" + (f" (context {context})" if context else ""))
        return
    from kubesim.testing import start_kubesim

    directory = data_dir / "kubesim"
    sim = start_kubesim(ready_delay=SIM_READY_DELAY, state_file=directory / "state.json", directory=directory)
    found.stops.append(sim.stop)
    found.kubernetes.append(
        KubernetesAccount(name=SIM_ACCOUNT, kubeconfig=sim.kubeconfig_path, namespaces=["default"], simulated=True)
    )
    found.notes.append(
        f"Kubernetes  account {SIM_ACCOUNT}: kubesim at {sim.url} — a SIMULATED cluster "
        f"(kubeconfig {sim.kubeconfig_path}); pass --kubeconfig for a real one"
    )


def _registry(data_dir: Path, port: int, api_port: int, found: DevAccounts) -> None:
    engine = docker_engine()
    binary = shutil.which("docker-registry")
    if engine is None or binary is None:
        missing = (
            "no Docker engine answers (start dockerd or set DOCKER_HOST)"
            if engine is None
            else ("docker-registry is not installed (apt-get install docker-registry)")
        )
        found.notes.append(f"Registry    none: {missing}; bake stages need one")
        return
    directory = data_dir / "registry"
    directory.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(24)
    # The gateway (same process) reads this to authenticate the registry's notifications.
    os.environ[f"GENNAKER_TRIGGER_SECRET_REGISTRY_{REGISTRY_ACCOUNT.upper()}"] = secret
    config = {
        "version": 0.1,
        "log": {"level": "warn", "accesslog": {"disabled": True}},
        "storage": {"filesystem": {"rootdirectory": str(directory / "data")}, "delete": {"enabled": True}},
        "http": {"addr": f"127.0.0.1:{port}", "secret": secrets.token_hex(16)},
        # distribution registry notifications: https://distribution.github.io/distribution/about/notifications/
        "notifications": {
            "endpoints": [
                {
                    "name": "gennaker",
                    "url": f"http://127.0.0.1:{api_port}/webhooks/registry/{REGISTRY_ACCOUNT}",
                    "headers": {"Authorization": [f"Bearer {secret}"]},
                    "timeout": "2s",
                    "threshold": 5,
                    "backoff": "1s",
                }
            ]
        },
    }
    (directory / "config.yml").write_text(json.dumps(config))  # JSON is YAML
    log = (directory / "registry.log").open("ab")
    process = subprocess.Popen([binary, "serve", str(directory / "config.yml")], stdout=log, stderr=log)

    def stop() -> None:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()

    found.stops.append(stop)
    deadline = time.monotonic() + 15
    while True:
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"http://127.0.0.1:{port}/v2/", timeout=1).status_code == 200:
                break
        if process.poll() is not None or time.monotonic() > deadline or found.cancelled:
            found.notes.append(f"Registry    none: docker-registry did not start (see {directory / 'registry.log'})")
            return
        time.sleep(0.05)
    address = f"127.0.0.1:{port}"
    found.registries.append(RegistryAccount(name=REGISTRY_ACCOUNT, address=address, insecure=True, docker_host=engine))
    found.notes.append(f"Registry    account {REGISTRY_ACCOUNT}: {address} (engine {engine})")


def start_dev_accounts(
    data_dir: Path,
    port_offset: int,
    api_port: int,
    kubeconfig: Path | None = None,
    context: str | None = None,
    found: DevAccounts | None = None,
) -> DevAccounts:
    """Fills `found` (when given, so a caller that stops early can still stop what was started)."""
    found = found if found is not None else DevAccounts()
    try:
        _kubernetes(data_dir, kubeconfig, context, found)
        _registry(data_dir, BASE_REGISTRY_PORT + port_offset, api_port, found)
    except BaseException:
        found.stop()
        raise
    return found
