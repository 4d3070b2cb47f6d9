"""The real kubectl against kubesim: apply → rollout status → undo → delete, server-side apply, create
ingress/serviceaccount, a CRD and its custom resource, explain. Skipped where kubectl is not installed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kubesim.testing import RunningKubesim

KUBECTL = shutil.which("kubectl")
pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, labels: {app: web}}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - {name: app, image: "nginx:IMAGE"}
"""

CRD = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.kubectl.example.com}
spec:
  group: kubectl.example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wdg]}
  versions:
  - name: v1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
"""

WIDGET = """\
apiVersion: kubectl.example.com/v1
kind: Widget
metadata: {name: w1}
spec: {size: 3}
"""


@pytest.fixture
def kubectl(kubesim: RunningKubesim, tmp_path: Path, ns: str) -> Callable[..., str]:
    # A discovery cache per test, so kinds served since the last test are seen at once.
    env = {**os.environ, "KUBECONFIG": str(kubesim.kubeconfig_path), "KUBECACHEDIR": str(tmp_path / "cache")}

    def run(*args: str, stdin: str | None = None, ok: bool = True) -> str:
        assert KUBECTL is not None
        done = subprocess.run(
            [KUBECTL, "--namespace", ns, *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )
        if ok and done.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({done.returncode}): {done.stderr}")
        return done.stdout + done.stderr

    return run


def _image(kubectl: Callable[..., str]) -> str:
    return kubectl("get", "deployment", "web", "-o", "jsonpath={.spec.template.spec.containers[0].image}")


def test_apply_rollout_undo_delete(kubectl: Callable[..., str]) -> None:
    out = kubectl("apply", "-f", "-", stdin=DEPLOYMENT.replace("IMAGE", "1.25"))
    assert "deployment.apps/web created" in out
    assert 'deployment "web" successfully rolled out' in kubectl("rollout", "status", "deployment/web", "--timeout=30s")
    assert "unchanged" in kubectl("apply", "-f", "-", stdin=DEPLOYMENT.replace("IMAGE", "1.25"))
    assert "configured" in kubectl("apply", "-f", "-", stdin=DEPLOYMENT.replace("IMAGE", "1.26"))
    kubectl("rollout", "status", "deployment/web", "--timeout=30s")
    assert _image(kubectl) == "nginx:1.26"
    assert "rolled back" in kubectl("rollout", "undo", "deployment/web")
    kubectl("rollout", "status", "deployment/web", "--timeout=30s")
    assert _image(kubectl) == "nginx:1.25"
    history = kubectl("rollout", "history", "deployment/web")
    assert "REVISION" in history
    kubectl("scale", "deployment/web", "--replicas=3")
    kubectl("rollout", "status", "deployment/web", "--timeout=30s")
    assert 'deployment.apps "web" deleted' in kubectl("delete", "deployment", "web", "--wait=true")
    assert "NotFound" in kubectl("get", "deployment", "web", ok=False)


def test_server_side_apply_and_conflicts(kubectl: Callable[..., str]) -> None:
    manifest = DEPLOYMENT.replace("IMAGE", "1.25")
    assert "serverside-applied" in kubectl("apply", "--server-side", "-f", "-", stdin=manifest)
    kubectl("scale", "deployment/web", "--replicas=4")  # the kubectl-scale manager now owns replicas
    conflict = kubectl("apply", "--server-side", "-f", "-", stdin=manifest, ok=False)
    assert "conflict" in conflict and ".spec.replicas" in conflict
    kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", stdin=manifest)
    managed = json.loads(kubectl("get", "deployment", "web", "-o", "json", "--show-managed-fields"))
    managers = {(m["manager"], m["operation"]) for m in managed["metadata"]["managedFields"]}
    assert ("kubectl", "Apply") in managers
    assert managed["spec"]["replicas"] == 2
    assert "serverside-applied" in kubectl(
        "apply", "--server-side", "--dry-run=server", "-f", "-", stdin=manifest.replace("1.25", "1.27")
    )
    assert _image(kubectl) == "nginx:1.25"


def test_create_ingress_and_serviceaccount(kubectl: Callable[..., str]) -> None:
    assert "ingress.networking.k8s.io/shop created" in kubectl(
        "create", "ingress", "shop", "--rule=shop.example.com/*=web:80"
    )
    assert "serviceaccount/deployer created" in kubectl("create", "serviceaccount", "deployer")
    ingress: dict[str, Any] = json.loads(kubectl("get", "ingress", "shop", "-o", "json"))
    rule = ingress["spec"]["rules"][0]
    assert rule["host"] == "shop.example.com"
    assert rule["http"]["paths"][0]["backend"]["service"] == {"name": "web", "port": {"number": 80}}
    assert "deployer" in kubectl("get", "serviceaccounts")
    assert "KIND:       Deployment" in kubectl("explain", "deployment")


def test_crd_and_custom_resource(kubectl: Callable[..., str]) -> None:
    kubectl("apply", "-f", "-", stdin=CRD)
    kubectl("wait", "--for=condition=Established", "crd/widgets.kubectl.example.com", "--timeout=20s")
    try:
        assert "widget.kubectl.example.com/w1 created" in kubectl("apply", "-f", "-", stdin=WIDGET)
        assert "unchanged" in kubectl("apply", "-f", "-", stdin=WIDGET)
        assert "configured" in kubectl("apply", "-f", "-", stdin=WIDGET.replace("size: 3", "size: 4"))
        widget = json.loads(kubectl("get", "wdg", "w1", "-o", "json"))
        assert widget["spec"] == {"size": 4}
        assert "w1" in kubectl("get", "widgets")
    finally:
        kubectl("delete", "crd", "widgets.kubectl.example.com")
    gone = kubectl("get", "widgets", ok=False)  # cached discovery still maps the kind; the server has not
    assert "could not find the requested resource" in gone or "doesn't have a resource type" in gone
