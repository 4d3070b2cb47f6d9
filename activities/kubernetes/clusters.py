"""The read model: clusters and their server groups as people and cluster stages see them.

One list of ReplicaSets, Services and pods per namespace (never one call per server group), turned
into small views: version, images (and the digests the kubelet resolved), replicas ready/desired,
enabled or not, load balancers and security groups, and which execution made it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from temporalio import activity

from activities.kubernetes.client import KubernetesAccountClient
from activities.kubernetes.servergroups import (
    APP_LABEL,
    CAPACITY_ANNOTATION,
    CLUSTER_LABEL,
    DISABLED_ANNOTATION,
    EXECUTION_ANNOTATION,
    SECURITY_GROUPS_ANNOTATION,
    SERVER_GROUP_LABEL,
    STAGE_ANNOTATION,
    Capacity,
    api,
    replica_counts,
    version_of,
)
from activities.kubernetes.traffic import load_balancers_of


class ContainerImage(BaseModel):
    container: str
    image: str
    imageId: str | None = Field(default=None, description="Digest the kubelet resolved (from a running pod)")


class ServerGroupView(BaseModel):
    account: str
    namespace: str
    name: str
    cluster: str
    application: str
    version: int | None
    images: list[ContainerImage]
    desired: int
    ready: int
    current: int
    capacity: Capacity
    enabled: bool
    loadBalancers: list[str]
    securityGroups: list[str]
    createdAt: datetime | None = None
    executionId: str | None = None
    stage: str | None = None

    @property
    def image(self) -> str | None:
        return self.images[0].image if self.images else None


class ClusterView(BaseModel):
    account: str
    namespace: str
    name: str
    application: str
    serverGroups: list[ServerGroupView] = Field(default_factory=list, description="Oldest first")


class ClusterQuery(BaseModel):
    namespace: str
    cluster: str


class ApplicationQuery(BaseModel):
    application: str
    namespaces: list[str] | None = Field(default=None, description="Default: every namespace of the account")


class ApplicationClusters(BaseModel):
    account: str
    simulated: bool = False
    clusters: list[ClusterView] = Field(default_factory=list)


def _selector_labels(services: dict[str, Any], name: str) -> dict[str, str] | None:
    service = services.get(name)
    if service is None or service.spec is None:
        return None
    return dict(service.spec.selector or {})


def server_group_view(account: str, rs: Any, services: dict[str, Any], pods: list[Any]) -> ServerGroupView:
    meta = rs.metadata
    labels = meta.labels or {}
    notes = meta.annotations or {}
    template_labels = (rs.spec.template.metadata.labels if rs.spec.template.metadata else None) or {}
    balancers = load_balancers_of(rs)
    enabled = notes.get(DISABLED_ANNOTATION) != "true"
    for balancer in balancers:
        selector = _selector_labels(services, balancer)
        if selector is not None:
            enabled = enabled and all(template_labels.get(k) == v for k, v in selector.items())
    digests: dict[str, str] = {}
    for pod in pods:
        for status in (pod.status.container_statuses if pod.status else None) or []:
            if status.image_id:
                digests.setdefault(status.name, status.image_id)
    images = [
        ContainerImage(container=c.name, image=c.image, imageId=digests.get(c.name))
        for c in rs.spec.template.spec.containers
    ]
    desired, ready, current = replica_counts(rs)
    try:
        capacity = Capacity.model_validate_json(notes[CAPACITY_ANNOTATION])
    except (KeyError, ValueError):
        capacity = Capacity(min=desired, max=desired, desired=desired)
    return ServerGroupView(
        account=account,
        namespace=meta.namespace,
        name=meta.name,
        cluster=labels.get(CLUSTER_LABEL, meta.name),
        application=labels.get(APP_LABEL, ""),
        version=version_of(meta.name),
        images=images,
        desired=desired,
        ready=ready,
        current=current,
        capacity=capacity,
        enabled=enabled,
        loadBalancers=balancers,
        securityGroups=[s for s in notes.get(SECURITY_GROUPS_ANNOTATION, "").split(",") if s],
        createdAt=meta.creation_timestamp,
        executionId=notes.get(EXECUTION_ANNOTATION),
        stage=notes.get(STAGE_ANNOTATION),
    )


class ClusterActivities:
    def __init__(self, client: KubernetesAccountClient) -> None:
        self.client = client

    def _views(self, namespace: str, selector: str) -> list[ServerGroupView]:
        client = self.client
        sets = api(
            client,
            client.apps.list_namespaced_replica_set,
            namespace,
            label_selector=selector,
            what=f"list ReplicaSets in {namespace}",
        ).items
        sets = [rs for rs in sets if SERVER_GROUP_LABEL in (rs.metadata.labels or {})]
        if not sets:
            return []
        services = {
            s.metadata.name: s
            for s in api(
                client, client.core.list_namespaced_service, namespace, what=f"list Services in {namespace}"
            ).items
        }
        pods: dict[str, list[Any]] = {}
        for pod in api(
            client,
            client.core.list_namespaced_pod,
            namespace,
            label_selector=selector,
            what=f"list pods in {namespace}",
        ).items:
            pods.setdefault((pod.metadata.labels or {}).get(SERVER_GROUP_LABEL, ""), []).append(pod)
        views = [server_group_view(client.account.name, rs, services, pods.get(rs.metadata.name, [])) for rs in sets]
        return sorted(views, key=lambda v: (v.version if v.version is not None else -1, v.name))

    @activity.defn(name="describeCluster")
    def describe_cluster(self, query: ClusterQuery) -> ClusterView:
        self.client.check_namespace(query.namespace)
        views = self._views(query.namespace, f"{CLUSTER_LABEL}={query.cluster}")
        return ClusterView(
            account=self.client.account.name,
            namespace=query.namespace,
            name=query.cluster,
            application=views[0].application if views else "",
            serverGroups=views,
        )

    @activity.defn(name="listApplicationClusters")
    def list_application_clusters(self, query: ApplicationQuery) -> ApplicationClusters:
        account = self.client.account
        namespaces = [n for n in (query.namespaces or account.namespaces) if n in account.namespaces]
        clusters: dict[tuple[str, str], ClusterView] = {}
        for namespace in namespaces:
            for view in self._views(namespace, f"{APP_LABEL}={query.application},{CLUSTER_LABEL}"):
                key = (namespace, view.cluster)
                cluster = clusters.setdefault(
                    key,
                    ClusterView(
                        account=account.name, namespace=namespace, name=view.cluster, application=query.application
                    ),
                )
                cluster.serverGroups.append(view)
        return ApplicationClusters(
            account=account.name, simulated=account.simulated, clusters=[clusters[k] for k in sorted(clusters)]
        )
