"""Fault injection through the admin endpoint: latency, 5xx bursts, 401 tokens, 403 rules, refused creates."""

from __future__ import annotations

import time
import urllib.error
from collections.abc import Iterator
from typing import Any

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


def hpa(name: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": name}, "maxReplicas": 3},
    }


def test_a_refused_create_answers_the_status_a_validating_server_sends_and_stores_nothing(
    api_client: Any, kubesim: RunningKubesim, ns: str
) -> None:
    hpas: Any = client.AutoscalingV2Api(api_client)
    rule = {"resource": "horizontalpodautoscalers", "namespace": ns, "message": "metrics are not allowed here",
            "field": "spec.metrics"}  # fmt: skip
    assert kubesim.inject(refuse_create=[rule])["refuse_create"][0]["reason"] == "Invalid"
    with pytest.raises(client.ApiException) as err:
        hpas.create_namespaced_horizontal_pod_autoscaler(ns, hpa("web"))
    assert err.value.status == 422
    assert status_body(err.value) == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'HorizontalPodAutoscaler.autoscaling "web" is invalid: '
        "spec.metrics: Forbidden: metrics are not allowed here",
        "reason": "Invalid",
        "details": {
            "name": "web",
            "group": "autoscaling",
            "kind": "HorizontalPodAutoscaler",
            "causes": [
                {
                    "reason": "FieldValueForbidden",
                    "message": "Forbidden: metrics are not allowed here",
                    "field": "spec.metrics",
                }
            ],
        },
        "code": 422,
    }
    with pytest.raises(client.ApiException) as missing:
        hpas.read_namespaced_horizontal_pod_autoscaler("web", ns)
    assert missing.value.status == 404  # refused before storage: nothing was made
    assert kubesim.faults()["refusals_served"] >= 1
    # Only creates of that resource in that namespace: other kinds, and reads, go through.
    core: Any = client.CoreV1Api(api_client)
    core.create_namespaced_config_map(ns, {"metadata": {"name": "web"}})
    assert hpas.list_namespaced_horizontal_pod_autoscaler(ns).items == []
    kubesim.reset_faults()
    assert hpas.create_namespaced_horizontal_pod_autoscaler(ns, hpa("web")).metadata.name == "web"


def test_a_create_refused_by_admission_is_forbidden_for_that_object(
    api_client: Any, kubesim: RunningKubesim, ns: str
) -> None:
    hpas: Any = client.AutoscalingV2Api(api_client)
    rule = {"resource": "horizontalpodautoscalers", "name": "web", "code": 403, "message": "exceeded quota"}
    kubesim.inject(refuse_create=[rule])
    hpas.create_namespaced_horizontal_pod_autoscaler(ns, hpa("other"))  # the rule names one object
    with pytest.raises(client.ApiException) as err:
        hpas.create_namespaced_horizontal_pod_autoscaler(ns, hpa("web"))
    body = status_body(err.value)
    assert err.value.status == 403 and body["code"] == 403
    assert (body["kind"], body["apiVersion"], body["status"], body["reason"]) == ("Status", "v1", "Failure", "Forbidden")
    assert body["message"] == 'horizontalpodautoscalers.autoscaling "web" is forbidden: exceeded quota'
    assert body["details"] == {"name": "web", "group": "autoscaling", "kind": "horizontalpodautoscalers"}


def test_a_malformed_refusal_rule_is_rejected_and_changes_nothing(kubesim: RunningKubesim, ns: str) -> None:
    kubesim.inject(latency_ms=0, refuse_create=[{"resource": "configmaps", "namespace": ns}])
    for bad in ([{"code": 422}], [{"resource": "configmaps", "code": 500}], [{"resource": "pods", "verb": "x"}], 7):
        with pytest.raises(urllib.error.HTTPError) as err:
            kubesim.inject(latency_ms=500, refuse_create=bad)
        assert err.value.code == 400
    faults = kubesim.faults()
    assert faults["latency_ms"] == 0 and [r["resource"] for r in faults["refuse_create"]] == ["configmaps"]


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
