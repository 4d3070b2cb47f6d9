"""Small builders shared by the kubesim tests."""

from __future__ import annotations

import json
from typing import Any

from kubernetes import client

# Seconds kubesim takes to make pods ready in the session kubesim (tests/kubesim/conftest.py).
READY_DELAY = 0.1


def pod_template(labels: dict[str, str], image: str = "nginx:1.25", **container: Any) -> dict[str, Any]:
    return {
        "metadata": {"labels": labels},
        "spec": {"containers": [{"name": "main", "image": image, **container}]},
    }


def replica_set(name: str, replicas: int, labels: dict[str, str], image: str = "nginx:1.25") -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": labels},
        "spec": {"replicas": replicas, "selector": {"matchLabels": labels}, "template": pod_template(labels, image)},
    }


def deployment(name: str, replicas: int, image: str, **spec: Any) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": pod_template(labels, image),
            **spec,
        },
    }


def status_body(exc: client.ApiException) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(exc.body)
    return body


def ready_pods(core: client.CoreV1Api, ns: str, selector: str) -> list[str]:
    pods = core.list_namespaced_pod(ns, label_selector=selector).items
    return sorted(
        p.metadata.name
        for p in pods
        if any(c.type == "Ready" and c.status == "True" for c in (p.status.conditions or []))
    )
