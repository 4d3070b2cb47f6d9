"""`python -m kubesim`: the kubeconfig it writes, and --state keeping objects across restarts."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from kubernetes import client, config

from kubesim.testing import wait_until


@contextmanager
def running(*args: str) -> Iterator[Path]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "kubesim", "--ready-delay", "0.05", *args],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        path = None
        for _ in range(5):
            line = proc.stdout.readline()
            if line.startswith("kubeconfig: "):
                path = Path(line.split(": ", 1)[1].strip())
                break
        assert path is not None and path.exists()
        yield path
    finally:
        proc.terminate()
        # uvicorn shuts down gracefully (saving state), then re-raises SIGTERM.
        assert proc.wait(timeout=15) in (0, -15)


def _client(path: Path) -> client.CoreV1Api:
    api = config.new_client_from_config(config_file=str(path))
    core = client.CoreV1Api(api)
    wait_until(lambda: _answers(core), timeout=15, what="kubesim to answer")
    return core


def _answers(core: client.CoreV1Api) -> bool:
    try:
        core.list_namespace()
        return True
    except Exception:
        return False


def test_main_writes_kubeconfig_and_state_survives_restart(tmp_path: Path) -> None:
    state = tmp_path / "kubesim.json"
    with running("--state", str(state), "--token", "t0k") as kubeconfig:
        _, active = config.list_kube_config_contexts(config_file=str(kubeconfig))
        assert "kubesim" in active["name"] and "kubesim" in active["context"]["cluster"]
        core = _client(kubeconfig)
        core.create_namespaced_config_map("default", {"metadata": {"name": "kept"}, "data": {"k": "v"}})
        uid = core.read_namespaced_config_map("kept", "default").metadata.uid
    with running("--state", str(state), "--token", "t0k") as kubeconfig:
        core = _client(kubeconfig)
        kept = core.read_namespaced_config_map("kept", "default")
        assert kept.data == {"k": "v"} and kept.metadata.uid == uid


def test_custom_resources_are_served_at_once_after_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "kubesim.json"
    crd = {
        "metadata": {"name": "notes.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"plural": "notes", "kind": "Note"},
            "versions": [{"name": "v1", "served": True, "storage": True}],
        },
    }
    with running("--state", str(state)) as kubeconfig:
        api = config.new_client_from_config(config_file=str(kubeconfig))
        _client(kubeconfig)
        client.ApiextensionsV1Api(api).create_custom_resource_definition(crd)
        custom = client.CustomObjectsApi(api)
        note = {"apiVersion": "example.com/v1", "kind": "Note", "metadata": {"name": "n1"}, "text": "kept"}
        wait_until(lambda: _created(custom, note), what="the Note kind to be served")
    with running("--state", str(state)) as kubeconfig:
        api = config.new_client_from_config(config_file=str(kubeconfig))
        _client(kubeconfig)
        got = client.CustomObjectsApi(api).get_namespaced_custom_object("example.com", "v1", "default", "notes", "n1")
        assert got["text"] == "kept"


def _created(custom: client.CustomObjectsApi, body: dict[str, object]) -> bool:
    try:
        custom.create_namespaced_custom_object("example.com", "v1", "default", "notes", body)
        return True
    except client.ApiException as exc:
        if exc.status != 404:
            raise
        return False
