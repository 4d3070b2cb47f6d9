"""Bringing a server group up: create its ReplicaSet (once per deploy, whatever the retries) and, with a
scaling policy, its HorizontalPodAutoscaler; then wait until every desired replica is ready, saying
why pods are not when they are not.
"""

from __future__ import annotations

import json
from typing import Any, cast

from kubernetes.client.exceptions import ApiException
from pydantic import BaseModel, ConfigDict, Field
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.kubernetes.client import INVALID, KubernetesAccountClient
from activities.kubernetes.client import _status_message as status_message
from activities.kubernetes.servergroup_versions import (
    APP_LABEL,
    CAPACITY_ANNOTATION,
    CLUSTER_LABEL,
    DEPLOY_KEY_ANNOTATION,
    DISABLED_ANNOTATION,
    EXECUTION_ANNOTATION,
    LOAD_BALANCERS_ANNOTATION,
    MANAGED_BY_LABEL,
    SECURITY_GROUP_LABEL_PREFIX,
    SECURITY_GROUPS_ANNOTATION,
    SERVER_GROUP_LABEL,
    STAGE_ANNOTATION,
    VERSION_LABEL,
    Capacity,
    ServerGroupRef,
    api,
    security_group_label,
    server_group_pods,
    version_of,
)
from activities.kubernetes.waiting import Verdict, wait_for_object

# Ends every refusal message whose create left nothing behind; the deploy reads it to know that the
# new server group does not exist, so its rollback does not try to disable what was never made.
NOTHING_CREATED = "nothing was created"


def refused(req: CreateRequest, what: str, exc: Exception, left: str = NOTHING_CREATED) -> ApplicationError:
    """A create the API server (or the client, before sending) refused: retrying sends the same object."""
    if isinstance(exc, ApiException):
        by, reason = "the API server", f"HTTP {exc.status} {exc.reason}: {status_message(exc)}"
    else:
        by, reason = "the Kubernetes client (before sending)", " ".join(str(exc).splitlines()[:3])[:500]
    return ApplicationError(
        f"{by} refused to create {what} in namespace {req.namespace}: {reason}; {left}",
        type=INVALID,
        non_retryable=True,
    )


class CpuUtilization(BaseModel):
    target: int = Field(ge=1, le=1000, description="Average CPU utilization, % of the pods' CPU requests")


class ScalingPolicy(BaseModel):
    """Spinnaker's Kubernetes server-group `scalingPolicy` (`{cpuUtilization: {target: 70}}`): the new
    group gets an HPA (autoscaling/v2) between `capacity.min` and `capacity.max`, named like it and
    owned by it, which `modifyScalingProcess` suspends and resumes."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    cpuUtilization: CpuUtilization


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
    scalingPolicy: ScalingPolicy | None = None


class ServerGroupCreated(BaseModel):
    name: str
    namespace: str
    version: int
    images: list[str]
    created: bool = Field(description="False when an earlier attempt had already created it")
    autoscaler: str | None = Field(default=None, description="The HPA made for it (scalingPolicy)")


class WaitRequest(ServerGroupRef):
    timeoutSeconds: float = 600
    maxRestarts: int | None = Field(default=None, description="Fail early once a container restarted this often")


class Health(BaseModel):
    name: str
    desired: int  # spec.replicas
    ready: int
    current: int  # pods the ReplicaSet has now


def pod_health(client: KubernetesAccountClient, namespace: str, name: str) -> tuple[str, int]:
    """Why pods are not ready ('CrashLoopBackOff, 5 restarts') and the highest restart count."""
    reasons: set[str] = set()
    restarts = 0
    for pod in server_group_pods(client, namespace, name):
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


def replica_counts(rs: Any) -> tuple[int, int, int]:
    status = rs.status
    desired = int(rs.spec.replicas if rs.spec.replicas is not None else 1)
    return desired, int((status.ready_replicas if status else None) or 0), int((status.replicas if status else 0) or 0)


class ServerGroupCreation:
    """Create server groups and wait for them to be healthy (activities of `ServerGroupActivities`)."""

    client: KubernetesAccountClient

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
            made = self.client.apps.create_namespaced_replica_set(req.namespace, cast(Any, body))
        except ValueError as exc:
            # The client validates the body against the API's schema before sending (a container
            # without a name): as final as the server's 422, and it used to be retried as unknown.
            raise refused(req, f"ReplicaSet {req.name}", exc) from None
        except ApiException as exc:
            if exc.status in (400, 422):
                raise refused(req, f"ReplicaSet {req.name}", exc) from None
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
                name=req.name,
                namespace=req.namespace,
                version=version,
                images=images,
                created=False,
                autoscaler=self._autoscaler(req, theirs.metadata.uid),
            )
        return ServerGroupCreated(
            name=req.name,
            namespace=req.namespace,
            version=version,
            images=images,
            created=True,
            autoscaler=self._autoscaler(req, made.metadata.uid if made.metadata else None),
        )

    def _autoscaler(self, req: CreateRequest, owner_uid: str | None) -> str | None:
        """The group's HPA, made once: a retry finds it (409) and keeps it as it is."""
        if req.scalingPolicy is None:
            return None
        body = {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {
                "name": req.name,
                "labels": {APP_LABEL: req.application, CLUSTER_LABEL: req.cluster, MANAGED_BY_LABEL: "gennaker"},
                "annotations": {EXECUTION_ANNOTATION: req.executionId, STAGE_ANNOTATION: req.stage},
                # Destroying the server group takes its autoscaler with it (garbage collection).
                "ownerReferences": [
                    {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": req.name, "uid": owner_uid or ""}
                ],
            },
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": req.name},
                "minReplicas": max(1, req.capacity.min),
                "maxReplicas": max(1, req.capacity.max),
                "metrics": [
                    {
                        "type": "Resource",
                        "resource": {
                            "name": "cpu",
                            "target": {
                                "type": "Utilization",
                                "averageUtilization": req.scalingPolicy.cpuUtilization.target,
                            },
                        },
                    }
                ],
            },
        }
        try:
            self.client.autoscaling.create_namespaced_horizontal_pod_autoscaler(req.namespace, cast(Any, body))
        except ValueError as exc:
            raise self._autoscaler_refused(req, exc) from None
        except ApiException as exc:
            # 403 too: admission (a quota, a policy) or RBAC refusing the autoscaler is as final as a 422;
            # it used to leave the group running without its autoscaler (at best disabled by the rollback).
            if exc.status in (400, 403, 422):
                raise self._autoscaler_refused(req, exc) from None
            if exc.status != 409:
                raise self.client.translate(exc, f"create HorizontalPodAutoscaler {req.name}") from None
        return req.name

    def _autoscaler_refused(self, req: CreateRequest, cause: Exception) -> ApplicationError:
        """The group was made but its autoscaler refused: take the group away again (it is this
        deploy's, by its deploy key), so a refused create leaves nothing, and say if it could not."""
        try:
            self.client.apps.delete_namespaced_replica_set(req.name, req.namespace, propagation_policy="Foreground")
        except ApiException as exc:
            if exc.status != 404:
                failed = f"HTTP {exc.status} {status_message(exc)}"
                left = f"ReplicaSet {req.name} is left behind (deleting it failed: {failed})"
                return refused(req, f"HorizontalPodAutoscaler {req.name}", cause, left)
        gone = f"ReplicaSet {req.name} deleted again, {NOTHING_CREATED}"
        return refused(req, f"HorizontalPodAutoscaler {req.name}", cause, gone)

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
