"""Traffic for manifests, as Spinnaker's Kubernetes provider manages it: a workload's load balancers
are the Services named in its `traffic.spinnaker.io/load-balancers` annotation (a JSON list such as
`["service web"]`); *enabling* adds each Service's selector labels to the ReplicaSet's pod template
and to its live pods, *disabling* removes them (template first, so replacement pods never come back
enabled). Only ReplicaSets take part: changing a Deployment's pod template would start a rollout.
A Service whose selector shares a key with the ReplicaSet's own selector is refused, since removing
that label would orphan the pods (clouddriver's `KubernetesReplicaSetHandler` rule).

Without the annotation, disable acts on the Services that currently select the pods and records
them in `gennaker.io/disabled-load-balancers`, which a later enable reads. Each change is followed
by a watch on the Services' Endpoints until the enabled pods are listed and the disabled ones gone.

Deploy with `trafficManagement` versions its ReplicaSets (`<name>-v<NNN>`, the next free number in
the namespace), annotates their load balancers and adds the selector labels when traffic is to be
enabled at once (`version_traffic_manifests`); `list_cluster_versions` lists the other versions for
red/black and highlander.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, Field
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.kubernetes.client import INVALID, NOT_FOUND, KubernetesAccountClient
from activities.kubernetes.manifests import EXECUTION_ANNOTATION, STAGE_ANNOTATION, TARGET_NOT_FOUND, ManifestRef
from activities.kubernetes.waiting import Verdict, heartbeat, wait_for_object

LOAD_BALANCERS_ANNOTATION = "traffic.spinnaker.io/load-balancers"
DISABLED_LOAD_BALANCERS_ANNOTATION = "gennaker.io/disabled-load-balancers"
# Each version's pods carry their own version label, so two versions' selectors never overlap.
VERSION_LABEL = "gennaker.io/version"
MERGE_PATCH = "application/merge-patch+json"
TRAFFIC_UNSUPPORTED = "ManifestTrafficUnsupported"
NON_RETRYABLE_TRAFFIC = [TRAFFIC_UNSUPPORTED]
_VERSIONED = re.compile(r"^(?P<cluster>.+)-v(?P<version>\d{3,})$")


class ManifestTrafficInput(BaseModel):
    ref: ManifestRef
    enabled: bool
    loadBalancers: list[str] = Field(
        default_factory=list, description="'service <name>' entries; empty: the workload's own annotation"
    )
    timeoutSeconds: float = 120


class ManifestTrafficResult(BaseModel):
    ref: ManifestRef
    loadBalancers: list[str]
    labels: dict[str, str]
    enabledPods: list[str]
    disabledPods: list[str]


class VersionTrafficInput(BaseModel):
    manifests: list[dict[str, Any]]
    namespace: str = Field(description="Where manifests without a namespace go (the stage's override or default)")
    services: list[str] = Field(description="'service <name>' entries")
    enableTraffic: bool
    executionId: str
    stage: str


class VersionedManifests(BaseModel):
    manifests: list[dict[str, Any]]
    replicaSets: list[ManifestRef] = Field(description="The versioned ReplicaSets, named <cluster>-v<NNN>")
    clusters: dict[str, str] = Field(description="ReplicaSet name -> its cluster")


class ClusterVersionsInput(BaseModel):
    namespace: str
    cluster: str


def service_names(entries: list[str]) -> list[str]:
    """'service web' (Spinnaker's form), 'Service/web' or plain 'web' → 'web'."""
    names = []
    for entry in entries:
        kind, _, name = entry.strip().replace("/", " ").partition(" ")
        if not name:
            kind, name = "service", kind
        if kind.lower() not in ("service", "svc") or not name.strip():
            raise ApplicationError(
                f"load balancer {entry!r} must be '<service name>' or 'service <name>'",
                type=TRAFFIC_UNSUPPORTED,
                non_retryable=True,
            )
        names.append(name.strip())
    return names


def annotated_load_balancers(annotations: dict[str, str] | None, key: str = LOAD_BALANCERS_ANNOTATION) -> list[str]:
    text = (annotations or {}).get(key)
    if not text:
        return []
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ApplicationError(
            f'annotation {key} must be a JSON list such as ["service web"]; it is {text[:100]!r}',
            type=TRAFFIC_UNSUPPORTED,
            non_retryable=True,
        )
    return value


class ManifestTrafficActivities:
    """Traffic of one account's ReplicaSets (built once by the account's worker)."""

    def __init__(self, client: KubernetesAccountClient) -> None:
        self.client = client

    def activities(self) -> list[Callable[..., Any]]:
        return [self.set_manifest_traffic, self.version_traffic_manifests, self.list_cluster_versions]

    def _selectors(
        self,
        namespace: str,
        services: list[str],
        owner: str,
        own_selector: dict[str, str],
        deploying: dict[str, dict[str, str]] | None = None,
    ) -> dict[str, str]:
        """The union of the Services' selectors; a Service being deployed with the workload counts
        as written, the others are read live."""
        labels: dict[str, str] = {}
        for name in services:
            if deploying is not None and name in deploying:
                selector = dict(deploying[name])
            else:
                service: Any = self.client.call(
                    self.client.core.read_namespaced_service, name, namespace, what=f"read Service {namespace}/{name}"
                )
                selector = dict(service.spec.selector or {})
            if not selector:
                raise ApplicationError(
                    f"Service {namespace}/{name} has no selector, so traffic to {owner} cannot be switched by labels",
                    type=TRAFFIC_UNSUPPORTED,
                    non_retryable=True,
                )
            shared = sorted(set(selector) & set(own_selector))
            if shared:
                raise ApplicationError(
                    f"Service {namespace}/{name} selects on {', '.join(shared)}, which {owner}'s own selector also "
                    "uses: removing it would orphan the pods. Give the Service a label of its own, e.g. "
                    f"{{'frontedBy': '{name}'}}",
                    type=TRAFFIC_UNSUPPORTED,
                    non_retryable=True,
                )
            labels.update(selector)
        return labels

    @activity.defn
    def set_manifest_traffic(self, input: ManifestTrafficInput) -> ManifestTrafficResult:
        """Enable or disable a ReplicaSet behind its load balancers, then watch the Endpoints agree.
        Writes absolute label states, so a retry changes nothing more."""
        ref, client = input.ref, self.client
        if ref.kind != "ReplicaSet":
            raise ApplicationError(
                f"{ref}: traffic can be switched only on ReplicaSets (a Deployment's template change would roll "
                "it out); deploy versioned ReplicaSets with trafficManagement",
                type=TRAFFIC_UNSUPPORTED,
                non_retryable=True,
            )
        client.check_namespace(ref.namespace)
        try:
            rs: Any = client.call(client.apps.read_namespaced_replica_set, ref.name, ref.namespace, what=f"read {ref}")
        except ApplicationError as exc:
            if exc.type != NOT_FOUND:
                raise
            raise ApplicationError(f"{ref} does not exist", type=TARGET_NOT_FOUND, non_retryable=True) from None
        own_selector = dict(rs.spec.selector.match_labels or {})
        annotations = dict(rs.metadata.annotations or {})
        declared = input.loadBalancers or annotated_load_balancers(annotations)
        template_labels = dict(rs.spec.template.metadata.labels or {}) if rs.spec.template.metadata else {}
        remembered = annotated_load_balancers(annotations, DISABLED_LOAD_BALANCERS_ANNOTATION)
        if not declared and input.enabled:
            declared = remembered
        if not declared and not input.enabled:
            declared = [f"service {s}" for s in self._selecting_services(ref.namespace, template_labels)]
        if not declared:
            raise ApplicationError(
                f"{ref} has no load balancers: annotate it with {LOAD_BALANCERS_ANNOTATION}: "
                "'[\"service <name>\"]' (or deploy it with trafficManagement.options.services)",
                type=TRAFFIC_UNSUPPORTED,
                non_retryable=True,
            )
        services = service_names(declared)
        labels = self._selectors(ref.namespace, services, str(ref), own_selector)
        note = None if LOAD_BALANCERS_ANNOTATION in annotations else json.dumps(declared)
        patch = {
            "metadata": {"annotations": {DISABLED_LOAD_BALANCERS_ANNOTATION: None if input.enabled else note}},
            "spec": {
                "template": {"metadata": {"labels": {k: (v if input.enabled else None) for k, v in labels.items()}}}
            },
        }
        heartbeat(f"{'enabling' if input.enabled else 'disabling'} {ref}")
        client.call(
            client.apps.patch_namespaced_replica_set,
            ref.name,
            ref.namespace,
            patch,
            _content_type=MERGE_PATCH,
            what=f"{'enable' if input.enabled else 'disable'} {ref}",
        )
        pods = self._pods(ref, rs)
        for pod in pods:
            current = pod.metadata.labels or {}
            has = all(current.get(k) == v for k, v in labels.items())
            if has == input.enabled:
                continue
            body = {"metadata": {"labels": {k: (v if input.enabled else None) for k, v in labels.items()}}}
            try:
                client.call(
                    client.core.patch_namespaced_pod,
                    pod.metadata.name,
                    ref.namespace,
                    body,
                    _content_type=MERGE_PATCH,
                    what=f"relabel pod {pod.metadata.name}",
                )
            except ApplicationError as exc:
                if exc.type != NOT_FOUND:  # a pod that went away meanwhile needs no label
                    raise
        names = {p.metadata.name for p in pods}
        # Endpoints list only pods that have an address; a pod still being scheduled joins later.
        addressed = {p.metadata.name for p in pods if p.status is not None and p.status.pod_ip}
        on, off = (addressed, set()) if input.enabled else (set(), names)
        for service in services:
            self._wait_endpoints(ref.namespace, service, on, off, input.timeoutSeconds)
        return ManifestTrafficResult(
            ref=ref,
            loadBalancers=[f"service {s}" for s in services],
            labels=labels,
            enabledPods=sorted(names if input.enabled else set()),
            disabledPods=sorted(off),
        )

    def _selecting_services(self, namespace: str, pod_labels: dict[str, str]) -> list[str]:
        listing: Any = self.client.call(self.client.core.list_namespaced_service, namespace, what="list Services")
        return sorted(
            s.metadata.name
            for s in listing.items
            if s.spec.selector and all(pod_labels.get(k) == v for k, v in s.spec.selector.items())
        )

    def _pods(self, ref: ManifestRef, rs: Any) -> list[Any]:
        selector = ",".join(f"{k}={v}" for k, v in sorted((rs.spec.selector.match_labels or {}).items()))
        listing: Any = self.client.call(
            self.client.core.list_namespaced_pod, ref.namespace, label_selector=selector, what=f"list pods of {ref}"
        )
        return [
            p
            for p in listing.items
            if not p.metadata.deletion_timestamp
            and any(o.uid == rs.metadata.uid for o in p.metadata.owner_references or [])
        ]

    def _wait_endpoints(self, namespace: str, service: str, on: set[str], off: set[str], timeout: float) -> None:
        client = self.client

        def judge(endpoints: Any) -> Verdict:
            listed: set[str] = set()
            for subset in endpoints.subsets or []:
                for address in [*(subset.addresses or []), *(subset.not_ready_addresses or [])]:
                    if address.target_ref is not None:
                        listed.add(address.target_ref.name)
            stale, missing = off & listed, on - listed
            done = not stale and not missing
            return Verdict(
                done=done, progress=f"Service {service}: {len(stale)} pod(s) still listed, {len(missing)} missing"
            )

        wait_for_object(client, client.core.list_namespaced_endpoints, namespace, service, judge, timeout, "Endpoints")

    @activity.defn
    def version_traffic_manifests(self, input: VersionTrafficInput) -> VersionedManifests:
        """Name each ReplicaSet `<name>-v<NNN>` (the next free version, or the one this stage already
        made), annotate its load balancers, and add their selector labels if traffic starts enabled.
        Read-only: the workflow records the result once, so a retried apply uses the same names."""
        services = service_names(input.services)
        deploying = {
            str(m.get("metadata", {}).get("name")): dict((m.get("spec") or {}).get("selector") or {})
            for m in input.manifests
            if m.get("kind") == "Service"
        }
        out: list[dict[str, Any]] = []
        refs: list[ManifestRef] = []
        clusters: dict[str, str] = {}
        for index, original in enumerate(input.manifests):
            manifest = copy.deepcopy(original)
            out.append(manifest)
            if manifest.get("kind") != "ReplicaSet":
                continue
            meta = manifest.setdefault("metadata", {})
            namespace = str(meta.get("namespace") or input.namespace)
            cluster = str(meta.get("name") or "")
            if not cluster:
                raise ApplicationError(f"manifests[{index}] has no metadata.name", type=INVALID, non_retryable=True)
            self.client.check_namespace(namespace)
            name = f"{cluster}-v{self._version(namespace, cluster, input):03d}"
            meta["name"] = name
            meta.setdefault("annotations", {})[LOAD_BALANCERS_ANNOTATION] = json.dumps(
                [f"service {s}" for s in services]
            )
            spec = manifest.setdefault("spec", {})
            version = name.rsplit("-", 1)[1]
            selector = spec.setdefault("selector", {}).setdefault("matchLabels", {})
            selector[VERSION_LABEL] = version
            template_meta = spec.setdefault("template", {}).setdefault("metadata", {})
            template_labels = template_meta.setdefault("labels", {})
            template_labels[VERSION_LABEL] = version
            labels = self._selectors(namespace, services, f"ReplicaSet {namespace}/{name}", dict(selector), deploying)
            if input.enableTraffic:
                template_labels.update(labels)
            refs.append(ManifestRef(kind="ReplicaSet", name=name, namespace=namespace))
            clusters[name] = cluster
        if not refs:
            raise ApplicationError(
                "trafficManagement needs at least one ReplicaSet among the manifests (Spinnaker manages traffic "
                "of ReplicaSets only)",
                type=TRAFFIC_UNSUPPORTED,
                non_retryable=True,
            )
        return VersionedManifests(manifests=out, replicaSets=refs, clusters=clusters)

    def _versions(self, namespace: str, cluster: str) -> list[tuple[int, Any]]:
        listing: Any = self.client.call(
            self.client.apps.list_namespaced_replica_set, namespace, what=f"list ReplicaSets of cluster {cluster}"
        )
        found = []
        for rs in listing.items:
            match = _VERSIONED.match(rs.metadata.name)
            if match and match.group("cluster") == cluster:
                found.append((int(match.group("version")), rs))
        return sorted(found, key=lambda pair: pair[0])

    def _version(self, namespace: str, cluster: str, input: VersionTrafficInput) -> int:
        versions = self._versions(namespace, cluster)
        for number, rs in versions:
            annotations = rs.metadata.annotations or {}
            if (
                annotations.get(EXECUTION_ANNOTATION) == input.executionId
                and annotations.get(STAGE_ANNOTATION) == input.stage
            ):
                return number  # made by an earlier attempt of this very stage
        return versions[-1][0] + 1 if versions else 0

    @activity.defn
    def list_cluster_versions(self, input: ClusterVersionsInput) -> list[ManifestRef]:
        """The cluster's versioned ReplicaSets `<cluster>-v<NNN>`, oldest first."""
        self.client.check_namespace(input.namespace)
        return [
            ManifestRef(kind="ReplicaSet", name=rs.metadata.name, namespace=input.namespace)
            for _, rs in self._versions(input.namespace, input.cluster)
        ]
