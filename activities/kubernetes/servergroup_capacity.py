"""Changing a server group's size or ending it: resize (absolute replica counts), destroy (foreground,
waiting until its pods are gone), and suspending or resuming the autoscalers that target it.
"""

from __future__ import annotations

import json
import time
from typing import Any

from kubernetes import watch
from kubernetes.client.exceptions import ApiException
from pydantic import BaseModel, Field
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.kubernetes.client import KubernetesAccountClient
from activities.kubernetes.servergroup_create import Health, replica_counts
from activities.kubernetes.servergroup_versions import (
    CAPACITY_ANNOTATION,
    MERGE_PATCH,
    SUSPENDED_ANNOTATION,
    Capacity,
    ServerGroupRef,
    api,
)
from activities.kubernetes.waiting import WAIT_TIMEOUT, WATCH_CHUNK_SECONDS, heartbeat


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


class ServerGroupCapacity:
    """Resize and destroy server groups, suspend and resume their autoscaling (activities of
    `ServerGroupActivities`)."""

    client: KubernetesAccountClient

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
