"""What a server group is called and labelled, and which version it gets.

Server groups are versioned ReplicaSets `<cluster>-v<NNN>` (Spinnaker's Kubernetes mapping); the
labels and annotations below are what every server group activity reads and writes.

Version numbers are never reused: a per-cluster ConfigMap `gennaker-cluster-<cluster>` keeps the
high-water mark in the annotation `gennaker.io/highest-version`, advanced with an optimistic-locking
update (resourceVersion) before the ReplicaSet is created, and `gennaker.io/reserved-by` names the
deploy that reserved it so a retried reservation gets the same number back.
"""

from __future__ import annotations

import re
from typing import Any, cast

from kubernetes.client.exceptions import ApiException
from pydantic import BaseModel, Field
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.kubernetes.client import CONFLICT, KubernetesAccountClient

APP_LABEL = "app.kubernetes.io/name"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
CLUSTER_LABEL = "gennaker.io/cluster"
SERVER_GROUP_LABEL = "gennaker.io/server-group"
VERSION_LABEL = "gennaker.io/version"
EXECUTION_ANNOTATION = "gennaker.io/execution-id"
STAGE_ANNOTATION = "gennaker.io/stage"
DEPLOY_KEY_ANNOTATION = "gennaker.io/deploy-key"
LOAD_BALANCERS_ANNOTATION = "gennaker.io/load-balancers"
SECURITY_GROUPS_ANNOTATION = "gennaker.io/security-groups"
CAPACITY_ANNOTATION = "gennaker.io/capacity"
DISABLED_ANNOTATION = "gennaker.io/disabled"
HIGHEST_VERSION_ANNOTATION = "gennaker.io/highest-version"
RESERVED_BY_ANNOTATION = "gennaker.io/reserved-by"
SUSPENDED_ANNOTATION = "gennaker.io/suspended-bounds"
SECURITY_GROUP_LABEL_PREFIX = "security-group.gennaker.io/"
MERGE_PATCH = "application/merge-patch+json"
_VERSIONED = re.compile(r"^(?P<cluster>.+)-v(?P<version>\d{3,})$")


def api(client: KubernetesAccountClient, fn: Any, *args: Any, what: str = "", **kwargs: Any) -> Any:
    """`client.call` with the result untyped: the client's models mark every field Optional."""
    return client.call(fn, *args, what=what, **kwargs)


def server_group_pods(client: KubernetesAccountClient, namespace: str, name: str) -> list[Any]:
    """The pods of server group `name` (its ReplicaSet selects them by this label alone)."""
    pods = api(
        client,
        client.core.list_namespaced_pod,
        namespace,
        label_selector=f"{SERVER_GROUP_LABEL}={name}",
        what=f"list pods of {name}",
    )
    return list(pods.items)


def cluster_name(application: str, stack: str | None = None, detail: str | None = None) -> str:
    """Spinnaker's naming: app, app-stack, app-stack-detail, app--detail."""
    if detail:
        return f"{application}-{stack or ''}-{detail}"
    return f"{application}-{stack}" if stack else application


def server_group_name(cluster: str, version: int) -> str:
    return f"{cluster}-v{version:03d}"


def version_of(name: str) -> int | None:
    match = _VERSIONED.match(name)
    return int(match.group("version")) if match else None


def security_group_label(name: str) -> str:
    return SECURITY_GROUP_LABEL_PREFIX + name


class Capacity(BaseModel):
    min: int = Field(default=1, ge=0)
    max: int = Field(default=1, ge=0)
    desired: int = Field(default=1, ge=0)


class ReserveRequest(BaseModel):
    namespace: str
    application: str
    cluster: str
    deployKey: str = Field(description="<execution id>/<run id>/<stage refId>: what makes a retry find its group")


class Reservation(BaseModel):
    name: str
    version: int
    exists: bool = Field(description="A ReplicaSet with this deploy key already exists (an earlier attempt)")


class ServerGroupRef(BaseModel):
    namespace: str
    name: str


class ServerGroupVersions:
    """Reserve server group versions (activities of `ServerGroupActivities`)."""

    client: KubernetesAccountClient

    def _cluster_groups(self, namespace: str, cluster: str) -> list[Any]:
        listing = api(
            self.client,
            self.client.apps.list_namespaced_replica_set,
            namespace,
            label_selector=f"{CLUSTER_LABEL}={cluster}",
            what=f"list server groups of {cluster}",
        )
        return list(listing.items)

    @activity.defn(name="reserveServerGroupVersion")
    def reserve_server_group_version(self, req: ReserveRequest) -> Reservation:
        """The next version of the cluster (or the one this deploy already has)."""
        self.client.check_namespace(req.namespace)
        existing = self._cluster_groups(req.namespace, req.cluster)
        for rs in existing:
            if (rs.metadata.annotations or {}).get(DEPLOY_KEY_ANNOTATION) == req.deployKey:
                return Reservation(name=rs.metadata.name, version=version_of(rs.metadata.name) or 0, exists=True)
        highest_live = max((version_of(rs.metadata.name) or 0 for rs in existing), default=-1)
        config_name = f"gennaker-cluster-{req.cluster}"
        for _ in range(20):
            try:
                current: Any = self.client.core.read_namespaced_config_map(config_name, req.namespace)
            except ApiException as exc:
                if exc.status != 404:
                    raise self.client.translate(exc, f"read ConfigMap {config_name}") from None
                current = None
            notes = (current.metadata.annotations or {}) if current is not None else {}
            if notes.get(RESERVED_BY_ANNOTATION) == req.deployKey:
                version = int(notes[HIGHEST_VERSION_ANNOTATION])
                return Reservation(name=server_group_name(req.cluster, version), version=version, exists=False)
            version = max(int(notes.get(HIGHEST_VERSION_ANNOTATION, -1)), highest_live) + 1
            annotations = {HIGHEST_VERSION_ANNOTATION: str(version), RESERVED_BY_ANNOTATION: req.deployKey}
            try:
                if current is None:
                    labels = {APP_LABEL: req.application, CLUSTER_LABEL: req.cluster, MANAGED_BY_LABEL: "gennaker"}
                    body = {
                        "metadata": {"name": config_name, "labels": labels, "annotations": annotations},
                        "data": {"purpose": "version high-water mark of server groups; never reuse a version"},
                    }
                    self.client.core.create_namespaced_config_map(req.namespace, cast(Any, body))
                else:
                    current.metadata.annotations = {**notes, **annotations}
                    self.client.core.replace_namespaced_config_map(config_name, req.namespace, current)
            except ApiException as exc:
                if exc.status == 409:
                    continue  # someone else reserved a version meanwhile: read again
                raise self.client.translate(exc, f"write ConfigMap {config_name}") from None
            return Reservation(name=server_group_name(req.cluster, version), version=version, exists=False)
        raise ApplicationError(f"could not reserve a version of {req.cluster}: too much contention", type=CONFLICT)
