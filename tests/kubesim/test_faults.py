"""Fault injection through the admin endpoint: latency, 5xx bursts, 401 tokens, 403 rules."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from kubernetes import client

from kubesim.testing import RunningKubesim, start_kubesim
from tests.kubesim.util import status_body


def test_latency(core: client.CoreV1Api, kubesim: RunningKubesim, ns: str) -> None:
    kubesim.inject(latency_ms=150)
    started = time.monotonic()
    core.list_namespaced_config_map(ns)
    assert time.monotonic() - started >= 0.15
    kubesim.reset_faults()
    started = time.monotonic()
    core.list_namespaced_config_map(ns)
    assert time.monotonic() - started < 0.15


def test_error_burst(core: client.CoreV1Api, kubesim: RunningKubesim, ns: str) -> None:
    kubesim.inject(error_burst={"count": 2, "code": 503})
    for _ in range(2):
        with pytest.raises(client.ApiException) as err:
            core.list_namespaced_config_map(ns)
        assert err.value.status == 503
        assert status_body(err.value)["reason"] == "ServiceUnavailable"
    core.list_namespaced_config_map(ns)  # the burst is over
    assert kubesim.faults()["error_burst"]["count"] == 0


def test_forbidden_rule(core: client.CoreV1Api, kubesim: RunningKubesim, ns: str) -> None:
    kubesim.inject(forbid=[{"verb": "delete", "resource": "configmaps"}])
    core.create_namespaced_config_map(ns, {"metadata": {"name": "keep"}})
    with pytest.raises(client.ApiException) as err:
        core.delete_namespaced_config_map("keep", ns)
    body = status_body(err.value)
    assert err.value.status == 403 and body["reason"] == "Forbidden"
    assert body["message"].startswith('configmaps is forbidden: User "system:anonymous" cannot delete resource')


@pytest.fixture(scope="module")
def guarded() -> Iterator[RunningKubesim]:
    sim = start_kubesim(token="s3cret")
    yield sim
    sim.stop()


def test_token_required_and_revocable(guarded: RunningKubesim) -> None:
    v1 = client.CoreV1Api(guarded.new_client())
    assert v1.list_namespace().items  # the kubeconfig carries the token
    anonymous = client.Configuration()
    anonymous.host = guarded.url
    with pytest.raises(client.ApiException) as err:
        client.CoreV1Api(client.ApiClient(anonymous)).list_namespace()
    assert err.value.status == 401 and status_body(err.value)["reason"] == "Unauthorized"
    guarded.inject(revoke_token=True)
    with pytest.raises(client.ApiException) as err:
        v1.list_namespace()
    assert err.value.status == 401
    guarded.reset_faults()
    assert v1.list_namespace().items
