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

import json
import re
import time
from typing import Any, cast

from kubernetes import watch
from kubernetes.client.exceptions import ApiException
from pydantic import BaseModel, Field
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.kubernetes.client import CONFLICT, KubernetesAccountClient
from activities.kubernetes.waiting import WAIT_TIMEOUT, WATCH_CHUNK_SECONDS, Verdict, heartbeat, wait_for_object

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


class CreateRequest(BaseModel):
    namespace: str
    application: str
    cluster: str
    name: str
    deployKey: str
    executionId: str
    stage: str
    podTemplate: dict[str, Any] = Field(description="metadata (labels, annotations) + spec of the pods")
    replicas: int
    capacity: Capacity
    loadBalancers: list[str] = Field(default_factory=list)
    securityGroups: list[str] = Field(default_factory=list)
    enabled: bool = Field(description="Start with the load balancers' selector labels on the pods")


class ServerGroupCreated(BaseModel):
    name: str
    namespace: str
    version: int
    images: list[str]
    created: bool = Field(description="False when an earlier attempt had already created it")


class ServerGroupRef(BaseModel):
    namespace: str
    name: str


class WaitRequest(ServerGroupRef):
    timeoutSeconds: float = 600
    maxRestarts: int | None = Field(default=None, description="Fail early once a container restarted this often")


class Health(BaseModel):
    name: str
    desired: int  # spec.replicas
    ready: int
    current: int  # pods the ReplicaSet has now


class ResizeRequest(ServerGroupRef):
    replicas: int = Field(ge=0)
    capacity: Capacity | None = None


class DestroyRequest(ServerGroupRef):
    timeoutSeconds: float = 300


class Destroyed(BaseModel):
    name: str
    existed: bool


class ScalingRequest(ServerGroupRef):
    suspend: bool


class ScalingResult(BaseModel):
    autoscalers: list[str]
    suspended: bool


def pod_health(client: KubernetesAccountClient, namespace: str, name: str) -> tuple[str, int]:
    """Why pods are not ready ('CrashLoopBackOff, 5 restarts') and the highest restart count."""
    pods = api(client, client.core.list_namespaced_pod, namespace, label_selector=f"{SERVER_GROUP_LABEL}={name}")
    reasons: set[str] = set()
    restarts = 0
    for pod in pods.items:
        for status in (pod.status.container_statuses if pod.status else None) or []:
            restarts = max(restarts, status.restart_count or 0)
            waiting = status.state.waiting if status.state else None
            if waiting is not None and waiting.reason:
                reasons.add(str(waiting.reason))
        if pod.status is not None and pod.status.phase == "Failed":
            reasons.add("Failed")
    text = ", ".join(sorted(reasons))
    if restarts:
        text = f"{text}, {restarts} restarts" if text else f"{restarts} restarts"
    return text, restarts


def wait_until_gone(
    client: KubernetesAccountClient, list_fn: Any, namespace: str, name: str, timeout_seconds: float, what: str
) -> None:
    """Watch until the object is deleted (a foreground delete waits for its pods first)."""
    deadline = time.monotonic() + timeout_seconds
    selector = f"metadata.name={name}"
    while time.monotonic() < deadline:
        listing = api(client, list_fn, namespace, field_selector=selector, what=f"list {what}")
        if not listing.items:
            return
        heartbeat(f"deleting {what} {name}", listing.metadata.resource_version)
        stream = watch.Watch()
        try:
            chunk = max(1, int(min(WATCH_CHUNK_SECONDS, deadline - time.monotonic())))
            for event in stream.stream(
                list_fn,
                namespace,
                field_selector=selector,
                resource_version=listing.metadata.resource_version,
                timeout_seconds=chunk,
            ):
                if event["type"] in ("DELETED", "ERROR"):
                    stream.stop()
                    break
        except ApiException as exc:
            if exc.status != 410:
                raise client.translate(exc, f"watch {what}") from None
    raise ApplicationError(
        f"timed out after {timeout_seconds:g}s waiting for {what} {namespace}/{name} to be deleted",
        type=WAIT_TIMEOUT,
        non_retryable=True,
    )


def replica_counts(rs: Any) -> tuple[int, int, int]:
    status = rs.status
    desired = int(rs.spec.replicas if rs.spec.replicas is not None else 1)
    return desired, int((status.ready_replicas if status else None) or 0), int((status.replicas if status else 0) or 0)


class ServerGroupActivities:
    """Create, wait for, resize and destroy server groups of one account (bound to its client)."""

    def __init__(self, client: KubernetesAccountClient) -> None:
        self.client = client

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

    @activity.defn(name="createServerGroup")
    def create_server_group(self, req: CreateRequest) -> ServerGroupCreated:
        self.client.check_namespace(req.namespace)
        version = version_of(req.name) or 0
        template = json.loads(json.dumps(req.podTemplate))
        meta = template.setdefault("metadata", {})
        labels = {
            **(meta.get("labels") or {}),
            APP_LABEL: req.application,
            CLUSTER_LABEL: req.cluster,
            SERVER_GROUP_LABEL: req.name,
            VERSION_LABEL: f"v{version:03d}",
            MANAGED_BY_LABEL: "gennaker",
        }
        labels.update({security_group_label(sg): "true" for sg in req.securityGroups})
        if req.enabled:
            from activities.kubernetes.traffic import traffic_labels

            labels.update(traffic_labels(self.client, req.namespace, req.name, req.loadBalancers))
        meta["labels"] = labels
        images = [str(c.get("image")) for c in (template.get("spec") or {}).get("containers") or []]
        annotations = {
            EXECUTION_ANNOTATION: req.executionId,
            STAGE_ANNOTATION: req.stage,
            DEPLOY_KEY_ANNOTATION: req.deployKey,
            LOAD_BALANCERS_ANNOTATION: ",".join(req.loadBalancers),
            SECURITY_GROUPS_ANNOTATION: ",".join(req.securityGroups),
            CAPACITY_ANNOTATION: req.capacity.model_dump_json(),
            DISABLED_ANNOTATION: "false" if req.enabled else "true",
        }
        body = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": req.name,
                "labels": {k: v for k, v in labels.items() if not k.startswith(SECURITY_GROUP_LABEL_PREFIX)},
                "annotations": annotations,
            },
            "spec": {
                "replicas": req.replicas,
                "selector": {"matchLabels": {SERVER_GROUP_LABEL: req.name}},
                "template": template,
            },
        }
        try:
            self.client.apps.create_namespaced_replica_set(req.namespace, cast(Any, body))
        except ApiException as exc:
            if exc.status != 409:
                raise self.client.translate(exc, f"create ReplicaSet {req.name}") from None
            theirs = api(
                self.client,
                self.client.apps.read_namespaced_replica_set,
                req.name,
                req.namespace,
                what=f"read ReplicaSet {req.name}",
            )
            if (theirs.metadata.annotations or {}).get(DEPLOY_KEY_ANNOTATION) != req.deployKey:
                raise ApplicationError(
                    f"{req.name} already exists and was made by another deploy "
                    f"({(theirs.metadata.annotations or {}).get(EXECUTION_ANNOTATION)}); versions must not be reused",
                    type="ServerGroupExists",
                    non_retryable=True,
                ) from None
            return ServerGroupCreated(
                name=req.name, namespace=req.namespace, version=version, images=images, created=False
            )
        return ServerGroupCreated(name=req.name, namespace=req.namespace, version=version, images=images, created=True)

    @activity.defn(name="waitServerGroupHealthy")
    def wait_server_group_healthy(self, req: WaitRequest) -> Health:
        """Until every desired replica is ready (and surplus pods are gone), watching the ReplicaSet."""
        client = self.client

        def judge(rs: Any) -> Verdict:
            desired, ready, current = replica_counts(rs)
            observed = rs.status.observed_generation if rs.status else None
            settled = observed is None or observed >= (rs.metadata.generation or 0)
            if settled and ready >= desired and current == desired:
                return Verdict(done=True, progress=f"{ready}/{desired} ready")
            why, restarts = pod_health(client, req.namespace, req.name) if ready < desired else ("", 0)
            progress = f"{ready}/{desired} ready" + (f": {why}" if why else "")
            if req.maxRestarts is not None and restarts > req.maxRestarts:
                return Verdict(done=False, progress=progress, failed=f"never became healthy ({progress})")
            return Verdict(done=False, progress=progress)

        rs = wait_for_object(
            client,
            client.apps.list_namespaced_replica_set,
            req.namespace,
            req.name,
            judge,
            req.timeoutSeconds,
            "ReplicaSet",
        )
        desired, ready, current = replica_counts(rs)
        return Health(name=req.name, desired=desired, ready=ready, current=current)

    @activity.defn(name="resizeServerGroup")
    def resize_server_group(self, req: ResizeRequest) -> Health:
        """Set the replica count (absolute, so a retry changes nothing) and the recorded capacity."""
        self.client.check_namespace(req.namespace)
        patch: dict[str, Any] = {"spec": {"replicas": req.replicas}}
        if req.capacity is not None:
            patch["metadata"] = {"annotations": {CAPACITY_ANNOTATION: req.capacity.model_dump_json()}}
        rs = api(
            self.client,
            self.client.apps.patch_namespaced_replica_set,
            req.name,
            req.namespace,
            patch,
            _content_type=MERGE_PATCH,
            what=f"resize ReplicaSet {req.name}",
        )
        desired, ready, current = replica_counts(rs)
        return Health(name=req.name, desired=desired, ready=ready, current=current)

    @activity.defn(name="destroyServerGroup")
    def destroy_server_group(self, req: DestroyRequest) -> Destroyed:
        """Delete the ReplicaSet and its pods (foreground), and wait until both are gone."""
        self.client.check_namespace(req.namespace)
        try:
            self.client.apps.delete_namespaced_replica_set(req.name, req.namespace, propagation_policy="Foreground")
        except ApiException as exc:
            if exc.status == 404:
                return Destroyed(name=req.name, existed=False)
            raise self.client.translate(exc, f"delete ReplicaSet {req.name}") from None
        wait_until_gone(
            self.client,
            self.client.apps.list_namespaced_replica_set,
            req.namespace,
            req.name,
            req.timeoutSeconds,
            "ReplicaSet",
        )
        return Destroyed(name=req.name, existed=True)

    @activity.defn(name="setServerGroupScaling")
    def set_server_group_scaling(self, req: ScalingRequest) -> ScalingResult:
        """Suspend the HPA by pinning min = max = current replicas (bounds kept in an annotation); resume."""
        client = self.client
        client.check_namespace(req.namespace)
        hpas = api(
            client,
            client.autoscaling.list_namespaced_horizontal_pod_autoscaler,
            req.namespace,
            what="list HorizontalPodAutoscalers",
        ).items
        target = ("ReplicaSet", req.name)
        mine = [h for h in hpas if (h.spec.scale_target_ref.kind, h.spec.scale_target_ref.name) == target]
        if not mine:
            raise ApplicationError(
                f"no HorizontalPodAutoscaler targets ReplicaSet {req.namespace}/{req.name}",
                type="NoAutoscaler",
                non_retryable=True,
            )
        rs = api(client, client.apps.read_namespaced_replica_set, req.name, req.namespace, what=f"read {req.name}")
        names: list[str] = []
        for hpa in mine:
            saved = (hpa.metadata.annotations or {}).get(SUSPENDED_ANNOTATION)
            if req.suspend and saved is None:
                pinned = max(1, replica_counts(rs)[0])
                bounds = json.dumps({"minReplicas": hpa.spec.min_replicas, "maxReplicas": hpa.spec.max_replicas})
                patch: dict[str, Any] = {
                    "metadata": {"annotations": {SUSPENDED_ANNOTATION: bounds}},
                    "spec": {"minReplicas": pinned, "maxReplicas": pinned},
                }
            elif not req.suspend and saved is not None:
                patch = {"metadata": {"annotations": {SUSPENDED_ANNOTATION: None}}, "spec": json.loads(saved)}
            else:
                names.append(hpa.metadata.name)
                continue  # already as asked (a retry lands here)
            api(
                client,
                client.autoscaling.patch_namespaced_horizontal_pod_autoscaler,
                hpa.metadata.name,
                req.namespace,
                patch,
                _content_type=MERGE_PATCH,
                what=f"patch HPA {hpa.metadata.name}",
            )
            names.append(hpa.metadata.name)
        return ScalingResult(autoscalers=names, suspended=req.suspend)
