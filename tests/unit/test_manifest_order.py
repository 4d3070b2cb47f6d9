"""Kubernetes apply order and kind spellings (`manifest_order.py`, `manifest_kinds.kind_of`)."""

from __future__ import annotations

import pytest
from temporalio.exceptions import ApplicationError

from activities.kubernetes.manifest_kinds import ManifestRef, kind_of
from activities.kubernetes.manifest_order import install_order


def test_namespaces_and_crds_first_then_helm_order_then_other_kinds_as_given() -> None:
    kinds = [
        "Cache",
        "Deployment",
        "Ingress",
        "Namespace",
        "Service",
        "VirtualService",
        "ConfigMap",
        "CustomResourceDefinition",
        "ServiceAccount",
        "RoleBinding",
        "Role",
        "Secret",
    ]
    ordered = [kinds[i] for i in install_order(kinds)]
    assert ordered == [
        "Namespace",
        "CustomResourceDefinition",
        "ServiceAccount",
        "Secret",
        "ConfigMap",
        "Role",
        "RoleBinding",
        "Service",
        "Deployment",
        "Ingress",
        "Cache",
        "VirtualService",
    ]


def test_the_order_is_stable_within_a_kind() -> None:
    assert install_order(["ConfigMap", "Namespace", "ConfigMap"]) == [1, 0, 2]


def test_kind_spellings() -> None:
    assert kind_of("deploy").kind == "Deployment" and kind_of("HPA").api_version == "autoscaling/v2"
    assert kind_of("VirtualService").kind == "VirtualService" and kind_of("VirtualService").api_version is None
    for bad in ("Stateful Set", "apps/v1 Deployment", "", "x" * 64):
        with pytest.raises(ApplicationError, match="not a Kubernetes kind name"):
            kind_of(bad)


def test_refs_name_cluster_scoped_objects_without_a_namespace() -> None:
    assert str(ManifestRef(kind="crd", name="caches.shop.example.com", namespace="")) == (
        "CustomResourceDefinition caches.shop.example.com"
    )
    assert ManifestRef(kind="deploy", name="web", namespace="shop").label == "deployment web"
