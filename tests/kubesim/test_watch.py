"""Watch streams: event framing, resume by resourceVersion, 410 Gone, dropped connections."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from kubernetes import client, watch

from kubesim.testing import RunningKubesim, wait_until


def _cm(name: str, **labels: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels}, "data": {}}


def test_watch_events_and_resume(core: client.CoreV1Api, ns: str) -> None:
    listed = core.list_namespaced_config_map(ns)
    core.create_namespaced_config_map(ns, _cm("a"))
    core.patch_namespaced_config_map("a", ns, {"data": {"k": "v"}})
    core.delete_namespaced_config_map("a", ns)
    w = watch.Watch()
    seen = []
    for event in w.stream(
        core.list_namespaced_config_map, ns, resource_version=listed.metadata.resource_version, timeout_seconds=5
    ):
        seen.append((event["type"], event["object"].metadata.name, event["object"].data))
        if event["type"] == "DELETED":
            w.stop()
    assert seen == [("ADDED", "a", {}), ("MODIFIED", "a", {"k": "v"}), ("DELETED", "a", {"k": "v"})]
    # Resuming from the MODIFIED event's resourceVersion replays only what came after it.
    w2 = watch.Watch()
    modified_rv = int(listed.metadata.resource_version) + 2
    rest = [
        e["type"]
        for e in w2.stream(core.list_namespaced_config_map, ns, resource_version=str(modified_rv), timeout_seconds=1)
    ]
    assert rest == ["DELETED"]


def test_watch_without_resource_version_starts_with_current_state(core: client.CoreV1Api, ns: str) -> None:
    core.create_namespaced_config_map(ns, _cm("x"))
    events = [
        (e["type"], e["object"].metadata.name)
        for e in watch.Watch().stream(core.list_namespaced_config_map, ns, timeout_seconds=1)
    ]
    assert events == [("ADDED", "x")]


def test_selector_watch_sees_objects_leave(core: client.CoreV1Api, ns: str) -> None:
    core.create_namespaced_config_map(ns, _cm("s", lb="on"))
    rv = core.list_namespaced_config_map(ns).metadata.resource_version
    core.patch_namespaced_config_map("s", ns, {"metadata": {"labels": {"lb": "off"}}})
    core.patch_namespaced_config_map("s", ns, {"metadata": {"labels": {"lb": "on"}}})
    events = [
        e["type"]
        for e in watch.Watch().stream(
            core.list_namespaced_config_map, ns, label_selector="lb=on", resource_version=rv, timeout_seconds=1
        )
    ]
    assert events == ["DELETED", "ADDED"]


def test_expired_resource_version_gives_410(core: client.CoreV1Api, kubesim: RunningKubesim, ns: str) -> None:
    rv = core.list_namespaced_config_map(ns).metadata.resource_version
    core.create_namespaced_config_map(ns, _cm("old"))
    kubesim.compact()
    raw = core.list_namespaced_config_map(
        ns, watch=True, resource_version=rv, timeout_seconds=1, _preload_content=False
    )
    assert raw.status == 200
    import json

    line = json.loads(raw.data.decode().splitlines()[0])
    assert line["type"] == "ERROR"
    assert line["object"]["code"] == 410 and line["object"]["reason"] == "Expired"
    assert line["object"]["kind"] == "Status"
    # The client retries once after 410 from the same resourceVersion, then raises.
    with pytest.raises(client.ApiException) as err:
        list(watch.Watch().stream(core.list_namespaced_config_map, ns, resource_version=rv))
    assert err.value.status == 410


def test_dropped_watch_is_resumed_by_the_client(core: client.CoreV1Api, kubesim: RunningKubesim, ns: str) -> None:
    rv = core.list_namespaced_config_map(ns).metadata.resource_version
    names: list[str] = []
    w = watch.Watch()

    def consume() -> None:
        for event in w.stream(core.list_namespaced_config_map, ns, resource_version=rv):
            names.append(event["object"].metadata.name)
            if len(names) == 2:
                w.stop()
                return

    thread = threading.Thread(target=consume)
    thread.start()
    core.create_namespaced_config_map(ns, _cm("first"))
    wait_until(lambda: names == ["first"], what="first event")
    assert kubesim.drop_watches() >= 1
    core.create_namespaced_config_map(ns, _cm("second"))
    thread.join(timeout=10)
    assert names == ["first", "second"]
