"""Traffic and pods: enable / disable a server group behind its load balancers (Services), and
replace its pods in place (quick patch).

A load balancer is a Service; its selector labels are the "traffic labels". Enabling a server group
adds them to the ReplicaSet's pod template and to its live pods; disabling removes them, template
first so replacement pods never come back enabled. The ReplicaSet's own selector holds only
`gennaker.io/server-group`, so a relabelled pod stays owned. A Service whose selector shares a key
with that selector is refused (disabling would orphan the pods). Partial traffic (rolling red/black)
keeps the labels on only `enabledPods` of the live pods.

Every change is followed by a watch on each Service's Endpoints until it agrees: the enabled, ready
pods are listed and the disabled ones are gone.

Red/black's switch is one activity (`switchServerGroupTraffic`): enable the new group, watch until
its Services list its pods, then disable the older groups and watch until they have left — make
before break, as separate enable and disable calls would, but without a task-queue round trip and
a second reading of the ReplicaSets and Services between the two halves.

Quick patch sets a new image on the pod template and deletes the pods still running the old one,
one at a time (waiting for each replacement to be ready) or all at once. A retry recomputes which
pods are stale from the live pods, so it never replaces a pod twice.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pydantic import BaseModel, Field
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.kubernetes.client import INVALID, NOT_FOUND, KubernetesAccountClient
from activities.kubernetes.servergroup_versions import server_group_pods
from activities.kubernetes.servergroups import (
    DISABLED_ANNOTATION,
    LOAD_BALANCERS_ANNOTATION,
    MERGE_PATCH,
    SERVER_GROUP_LABEL,
    api,
)
from activities.kubernetes.waiting import Verdict, heartbeat, wait_for_object

# Pods relabelled at once per server group; below the client's connection pool (5 per CPU).
RELABEL_CONCURRENCY = 8


class TrafficRequest(BaseModel):
    namespace: str
    name: str
    enabled: bool
    enabledPods: int | None = Field(
        default=None, description="Keep traffic on only this many live pods (template unchanged); None = all"
    )
    timeoutSeconds: float = 120


class SwitchRequest(BaseModel):
    namespace: str
    enable: str = Field(description="The server group to put behind its load balancers")
    disable: list[str] = Field(default_factory=list, description="Groups to take out once `enable` serves")
    timeoutSeconds: float = Field(default=120, description="For the whole switch, both halves")


class QuickPatchRequest(BaseModel):
    namespace: str
    name: str
    image: str
    container: str | None = Field(default=None, description="Default: the first container")
    oneAtATime: bool = True
    timeoutSeconds: float = 600


class QuickPatchResult(BaseModel):
    name: str
    container: str
    image: str
    replacedPods: list[str]


class TrafficResult(BaseModel):
    name: str
    loadBalancers: list[str]
    enabledPods: list[str]
    disabledPods: list[str]


class SwitchResult(BaseModel):
    enabled: TrafficResult
    disabled: list[TrafficResult]


def load_balancers_of(rs: Any) -> list[str]:
    text = (rs.metadata.annotations or {}).get(LOAD_BALANCERS_ANNOTATION, "")
    return [name for name in text.split(",") if name]


def traffic_labels(
    client: KubernetesAccountClient,
    namespace: str,
    server_group: str,
    load_balancers: list[str],
    known: dict[str, dict[str, str]] | None = None,
) -> dict[str, str]:
    """The union of the Services' selectors, checked not to touch the ReplicaSet's selector.
    Selectors already in `known` are not read again; those read are added to it."""
    labels: dict[str, str] = {}
    known = {} if known is None else known
    for name in load_balancers:
        if name not in known:
            service = api(client, client.core.read_namespaced_service, name, namespace, what=f"read Service {name}")
            known[name] = dict(service.spec.selector or {})
        selector = known[name]
        if not selector:
            raise ApplicationError(
                f"load balancer {namespace}/{name} has no selector; give it one such as "
                f"{{'gennaker.io/load-balancer-{name}': 'true'}}",
                type=INVALID,
                non_retryable=True,
            )
        if SERVER_GROUP_LABEL in selector:
            raise ApplicationError(
                f"load balancer {namespace}/{name} selects on {SERVER_GROUP_LABEL}, the ReplicaSet's own selector: "
                f"disabling {server_group} would orphan its pods",
                type=INVALID,
                non_retryable=True,
            )
        labels.update(selector)
    return labels


class TrafficActivities:
    def __init__(self, client: KubernetesAccountClient) -> None:
        self.client = client

    @activity.defn(name="setServerGroupTraffic")
    def set_server_group_traffic(self, req: TrafficRequest) -> TrafficResult:
        result = self._relabel(req, {})
        for balancer in result.loadBalancers:
            self._wait_endpoints(
                req.namespace, balancer, set(result.enabledPods), set(result.disabledPods), req.timeoutSeconds
            )
        return result

    @activity.defn(name="switchServerGroupTraffic")
    def switch_server_group_traffic(self, req: SwitchRequest) -> SwitchResult:
        """Enable `enable`; once its Services list its ready pods, disable each of `disable`; once
        their pods have left, return. Every step sets labels to an absolute value read from the
        live objects, so a retried attempt finds what an earlier one did and redoes nothing."""
        deadline = time.monotonic() + req.timeoutSeconds
        selectors: dict[str, dict[str, str]] = {}  # Service -> selector, read once for both halves
        enabled = self._relabel(TrafficRequest(namespace=req.namespace, name=req.enable, enabled=True), selectors)
        on = set(enabled.enabledPods)
        for balancer in enabled.loadBalancers:
            self._wait_endpoints(req.namespace, balancer, on, set(enabled.disabledPods), _left(deadline))
        heartbeat(f"{req.enable} serving; disabling {', '.join(req.disable) or 'nothing'}")
        disabled = [
            self._relabel(TrafficRequest(namespace=req.namespace, name=name, enabled=False), selectors)
            for name in req.disable
        ]
        for balancer in sorted({b for result in disabled for b in result.loadBalancers}):
            off = {pod for result in disabled if balancer in result.loadBalancers for pod in result.disabledPods}
            # The new group's pods stay listed: the end state is checked whole, not just the old leaving.
            still_on = on if balancer in enabled.loadBalancers else set()
            self._wait_endpoints(req.namespace, balancer, still_on, off, _left(deadline))
        return SwitchResult(enabled=enabled, disabled=disabled)

    def _relabel(self, req: TrafficRequest, selectors: dict[str, dict[str, str]]) -> TrafficResult:
        """Set the traffic labels on the ReplicaSet's template and its live pods (no wait).
        `selectors` caches the Services' selectors across calls of one activity."""
        client = self.client
        client.check_namespace(req.namespace)
        rs = api(
            client, client.apps.read_namespaced_replica_set, req.name, req.namespace, what=f"read ReplicaSet {req.name}"
        )
        balancers = load_balancers_of(rs)
        labels = traffic_labels(client, req.namespace, req.name, balancers, selectors)
        partial = req.enabled and req.enabledPods is not None
        if not partial:
            template_labels: dict[str, Any] = {k: (v if req.enabled else None) for k, v in labels.items()}
            patch = {
                "metadata": {"annotations": {DISABLED_ANNOTATION: "false" if req.enabled else "true"}},
                "spec": {"template": {"metadata": {"labels": template_labels}}},
            }
            api(
                client,
                client.apps.patch_namespaced_replica_set,
                req.name,
                req.namespace,
                patch,
                _content_type=MERGE_PATCH,
                what=f"{'enable' if req.enabled else 'disable'} {req.name}",
            )
        pods = server_group_pods(client, req.namespace, req.name)
        live = sorted((p for p in pods if not p.metadata.deletion_timestamp), key=_keep_first)
        keep = len(live) if req.enabledPods is None else max(0, min(req.enabledPods, len(live)))
        on = [p.metadata.name for p in live[:keep]] if req.enabled else []
        off = [p.metadata.name for p in live if p.metadata.name not in on]
        changes: dict[str, dict[str, Any]] = {}
        for pod in live:
            want_on = pod.metadata.name in on
            current = pod.metadata.labels or {}
            has = all(current.get(k) == v for k, v in labels.items())
            if labels and want_on != has:
                changes[pod.metadata.name] = {
                    "metadata": {"labels": {k: (v if want_on else None) for k, v in labels.items()}}
                }
        self._relabel_pods(req.namespace, changes)
        return TrafficResult(name=req.name, loadBalancers=balancers, enabledPods=on, disabledPods=off)

    def _relabel_pods(self, namespace: str, changes: dict[str, dict[str, Any]]) -> None:
        """Patch the pods' labels side by side: each patch is one request of its own, so a group's
        pods change within one round trip of each other instead of one after another (the Service's
        endpoints then settle once). The first failure is raised after all have been tried."""
        client = self.client

        def patch(name: str) -> None:
            try:
                response = api(
                    client,
                    client.core.patch_namespaced_pod,
                    name,
                    namespace,
                    changes[name],
                    _content_type=MERGE_PATCH,
                    _preload_content=False,  # the patched pod is not needed: skip decoding it
                    what=f"relabel pod {name}",
                )
                response.read()  # to the end, which hands the connection back to the pool
            except ApplicationError as exc:
                if exc.type != NOT_FOUND:  # a pod that went away meanwhile needs no label
                    raise

        if len(changes) <= 1:
            for name in changes:
                patch(name)
            return
        with ThreadPoolExecutor(max_workers=min(len(changes), RELABEL_CONCURRENCY)) as pool:
            outcomes = [pool.submit(patch, name) for name in sorted(changes)]
        for outcome in outcomes:
            outcome.result()

    @activity.defn(name="quickPatchServerGroup")
    def quick_patch_server_group(self, req: QuickPatchRequest) -> QuickPatchResult:
        client = self.client
        client.check_namespace(req.namespace)
        rs = api(
            client, client.apps.read_namespaced_replica_set, req.name, req.namespace, what=f"read ReplicaSet {req.name}"
        )
        container = req.container or rs.spec.template.spec.containers[0].name
        patch = {"spec": {"template": {"spec": {"containers": [{"name": container, "image": req.image}]}}}}
        api(
            client,
            client.apps.patch_namespaced_replica_set,
            req.name,
            req.namespace,
            patch,
            _content_type="application/strategic-merge-patch+json",
            what=f"set image of {req.name}",
        )
        pods = server_group_pods(client, req.namespace, req.name)
        stale = sorted(p.metadata.name for p in pods if _image(p, container) != req.image)
        batches = [[name] for name in stale] if req.oneAtATime else [stale]
        replaced: list[str] = []
        for batch in batches:
            for name in batch:
                try:
                    api(client, client.core.delete_namespaced_pod, name, req.namespace, what=f"delete pod {name}")
                except ApplicationError as exc:
                    if exc.type != NOT_FOUND:
                        raise
            replaced += batch
            self._wait_replaced(req, container, set(batch), f"{len(replaced)}/{len(stale)} pods replaced")
        return QuickPatchResult(name=req.name, container=container, image=req.image, replacedPods=replaced)

    def _wait_replaced(self, req: QuickPatchRequest, container: str, gone: set[str], note: str) -> None:
        client = self.client

        def judge(rs: Any) -> Verdict:
            desired = int(rs.spec.replicas or 0)
            pods = server_group_pods(client, req.namespace, req.name)
            names = {p.metadata.name for p in pods}
            ready = [p for p in pods if _ready(p)]
            fresh = [p for p in ready if _image(p, container) == req.image]
            progress = f"{note}; {len(ready)}/{desired} ready, {len(fresh)} on {req.image}"
            return Verdict(done=not (gone & names) and len(ready) >= desired == len(pods), progress=progress)

        wait_for_object(
            client,
            client.apps.list_namespaced_replica_set,
            req.namespace,
            req.name,
            judge,
            req.timeoutSeconds,
            "ReplicaSet",
        )

    def _wait_endpoints(self, namespace: str, service: str, on: set[str], off: set[str], timeout: float) -> None:
        client = self.client

        def judge(endpoints: Any) -> Verdict:
            ready: set[str] = set()
            listed: set[str] = set()
            for subset in endpoints.subsets or []:
                for address in subset.addresses or []:
                    if address.target_ref is not None:
                        ready.add(address.target_ref.name)
                for address in subset.not_ready_addresses or []:
                    if address.target_ref is not None:
                        listed.add(address.target_ref.name)
            listed |= ready
            stale = off & listed
            # Enabled pods that are not ready yet are the readiness probe's business, not traffic's.
            missing = {name for name in on if name not in listed and _pod_ready(client, namespace, name)}
            if not stale and not missing:
                return Verdict(done=True, progress=f"{service}: {len(on & ready)} of ours serving")
            return Verdict(done=False, progress=f"{service}: {len(stale)} still listed, {len(missing)} missing")

        wait_for_object(client, client.core.list_namespaced_endpoints, namespace, service, judge, timeout, "Endpoints")


def _left(deadline: float) -> float:
    """Seconds to `deadline`; never 0, so a wait still judges the current state once."""
    return max(0.1, deadline - time.monotonic())


def _image(pod: Any, container: str) -> str | None:
    for spec in pod.spec.containers:
        if spec.name == container:
            return str(spec.image)
    return None


def _keep_first(pod: Any) -> tuple[int, str]:
    """Ready pods keep traffic before not-ready ones; then the oldest (stable order by name)."""
    return (0 if _ready(pod) else 1, str(pod.metadata.creation_timestamp or "") + pod.metadata.name)


def _ready(pod: Any) -> bool:
    for condition in (pod.status.conditions if pod.status else None) or []:
        if condition.type == "Ready":
            return bool(condition.status == "True")
    return False


def _pod_ready(client: KubernetesAccountClient, namespace: str, name: str) -> bool:
    try:
        pod = client.core.read_namespaced_pod(name, namespace)
    except Exception:
        return False
    return _ready(pod)
