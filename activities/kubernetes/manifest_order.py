"""In which order a set of manifests is applied: Kubernetes order, as Helm installs a chart.

Namespaces and CustomResourceDefinitions come first (everything else may live in the one or be an
instance of the other), then Helm's install order for the rest (helm `pkg/releaseutil/kind_sorter.go`
`InstallOrder`): policies and quotas, ServiceAccounts, Secrets, ConfigMaps, storage, RBAC, Services,
then workloads, autoscalers, Jobs and Ingresses. Kinds Helm does not name (custom resources and
the rest) go last, in the order the manifests list them (Helm sorts those by kind name; the author's
order is kept here because one custom resource often needs another first). The sort is stable, so
objects of one kind keep their order too.
"""

from __future__ import annotations

from collections.abc import Sequence

INSTALL_ORDER = (
    "Namespace",
    "CustomResourceDefinition",
    "NetworkPolicy",
    "ResourceQuota",
    "LimitRange",
    "PodSecurityPolicy",
    "PodDisruptionBudget",
    "ServiceAccount",
    "Secret",
    "ConfigMap",
    "StorageClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "ClusterRole",
    "ClusterRoleBinding",
    "Role",
    "RoleBinding",
    "Service",
    "DaemonSet",
    "Pod",
    "ReplicationController",
    "ReplicaSet",
    "Deployment",
    "HorizontalPodAutoscaler",
    "StatefulSet",
    "Job",
    "CronJob",
    "IngressClass",
    "Ingress",
    "APIService",
)
_RANK = {kind: rank for rank, kind in enumerate(INSTALL_ORDER)}


def install_order(kinds: Sequence[str]) -> list[int]:
    """Indexes into `kinds` in the order their objects are applied."""
    return sorted(range(len(kinds)), key=lambda i: _RANK.get(kinds[i], len(INSTALL_ORDER)))
