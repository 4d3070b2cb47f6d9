"""Server groups: versioned ReplicaSets `<cluster>-v<NNN>` (Spinnaker's Kubernetes mapping).

Labels on the ReplicaSet and its pod template: `app.kubernetes.io/name` (application),
`gennaker.io/cluster`, `gennaker.io/server-group` (the ReplicaSet's name, its only selector label),
`app.kubernetes.io/managed-by: gennaker`. Annotations say which execution and stage made it and
which load balancers and security groups it belongs to. Traffic labels (a Service's selector) are
never part of the ReplicaSet's selector, so a disabled pod stays owned by its ReplicaSet.

Version numbers are never reused: a per-cluster ConfigMap `gennaker-cluster-<cluster>` keeps the
high-water mark in the annotation `gennaker.io/highest-version`, advanced with an optimistic-locking
update (resourceVersion) before the ReplicaSet is created, and `gennaker.io/reserved-by` names the
deploy that reserved it so a retried reservation gets the same number back.
"""

from __future__ import annotations

# The activities, models and helpers live in the modules below, one idea each; they are
# re-exported so that `activities.kubernetes.servergroups` stays the one import path callers use.
from activities.kubernetes.client import KubernetesAccountClient
from activities.kubernetes.servergroup_capacity import (
    Destroyed,
    DestroyRequest,
    ResizeRequest,
    ScalingRequest,
    ScalingResult,
    ServerGroupCapacity,
    wait_until_gone,
)
from activities.kubernetes.servergroup_create import (
    CreateRequest,
    Health,
    ServerGroupCreated,
    ServerGroupCreation,
    WaitRequest,
    pod_health,
    replica_counts,
)
from activities.kubernetes.servergroup_versions import (
    APP_LABEL,
    CAPACITY_ANNOTATION,
    CLUSTER_LABEL,
    DEPLOY_KEY_ANNOTATION,
    DISABLED_ANNOTATION,
    EXECUTION_ANNOTATION,
    HIGHEST_VERSION_ANNOTATION,
    LOAD_BALANCERS_ANNOTATION,
    MANAGED_BY_LABEL,
    MERGE_PATCH,
    RESERVED_BY_ANNOTATION,
    SECURITY_GROUP_LABEL_PREFIX,
    SECURITY_GROUPS_ANNOTATION,
    SERVER_GROUP_LABEL,
    STAGE_ANNOTATION,
    SUSPENDED_ANNOTATION,
    VERSION_LABEL,
    Capacity,
    Reservation,
    ReserveRequest,
    ServerGroupRef,
    ServerGroupVersions,
    api,
    cluster_name,
    security_group_label,
    server_group_name,
    version_of,
)

__all__ = [
    "APP_LABEL",
    "CAPACITY_ANNOTATION",
    "CLUSTER_LABEL",
    "DEPLOY_KEY_ANNOTATION",
    "DISABLED_ANNOTATION",
    "EXECUTION_ANNOTATION",
    "HIGHEST_VERSION_ANNOTATION",
    "LOAD_BALANCERS_ANNOTATION",
    "MANAGED_BY_LABEL",
    "MERGE_PATCH",
    "RESERVED_BY_ANNOTATION",
    "SECURITY_GROUPS_ANNOTATION",
    "SECURITY_GROUP_LABEL_PREFIX",
    "SERVER_GROUP_LABEL",
    "STAGE_ANNOTATION",
    "SUSPENDED_ANNOTATION",
    "VERSION_LABEL",
    "Capacity",
    "CreateRequest",
    "DestroyRequest",
    "Destroyed",
    "Health",
    "Reservation",
    "ReserveRequest",
    "ResizeRequest",
    "ScalingRequest",
    "ScalingResult",
    "ServerGroupActivities",
    "ServerGroupCapacity",
    "ServerGroupCreated",
    "ServerGroupCreation",
    "ServerGroupRef",
    "ServerGroupVersions",
    "WaitRequest",
    "api",
    "cluster_name",
    "pod_health",
    "replica_counts",
    "security_group_label",
    "server_group_name",
    "version_of",
    "wait_until_gone",
]


class ServerGroupActivities(ServerGroupVersions, ServerGroupCreation, ServerGroupCapacity):
    """Create, wait for, resize and destroy server groups of one account (bound to its client)."""

    def __init__(self, client: KubernetesAccountClient) -> None:
        self.client = client
