"""StatefulSet controller: ordinal pods `<set>-<n>`, ordered start, partitioned rolling updates.

Follows kubernetes/kubernetes `pkg/controller/statefulset/stateful_set_control.go`: with
`podManagementPolicy: OrderedReady` pod n is created only when pods 0..n-1 are Running and Ready, and
scale-down removes the highest ordinal first; `Parallel` creates and removes all at once. Pods carry the
`controller-revision-hash`, `statefulset.kubernetes.io/pod-name` and `apps.kubernetes.io/pod-index`
labels. A RollingUpdate replaces, one at a time from the highest ordinal down to `partition`, the pods
not at `updateRevision` (waiting for each to be Ready); pods below the partition keep (and are recreated
from) `currentRevision`. `currentRevision` becomes `updateRevision` once every pod is updated and ready.
`volumeClaimTemplates` give each pod PersistentVolumeClaims `<claim>-<set>-<n>` (kept after the pod).
Status fields are omitted when zero except `replicas` and `availableReplicas`, as in apps/v1 types.go.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from kubesim.controllers.base import Context, controller_ref, controller_uid, pod_is_active, pod_is_ready
from kubesim.controllers.revisions import ensure_revision, revision_template
from kubesim.errors import ApiError
from kubesim.resources import POD, PVC, STATEFULSET

Obj = dict[str, Any]
REVISION_LABEL = "controller-revision-hash"


@dataclass
class StatefulSetController:
    ctx: Context

    def reconcile(self) -> None:
        for sts in self.ctx.store.list(STATEFULSET.key):
            if not sts["metadata"].get("deletionTimestamp"):
                self._sync(sts)

    def _sync(self, sts: Obj) -> None:
        meta, spec = sts["metadata"], sts["spec"]
        namespace, name = meta["namespace"], meta["name"]
        selector_labels = dict((spec.get("selector") or {}).get("matchLabels") or {})
        update_revision = ensure_revision(self.ctx, sts, selector_labels)
        current_revision = (sts.get("status") or {}).get("currentRevision") or update_revision
        pods: dict[int, Obj] = {}
        for pod in self.ctx.store.list(POD.key, namespace):
            ordinal = _ordinal(pod, name)
            if controller_uid(pod) == meta["uid"] and ordinal is not None:
                pods[ordinal] = pod
        replicas = int(spec.get("replicas", 1))
        ordered = spec.get("podManagementPolicy", "OrderedReady") == "OrderedReady"
        strategy = spec.get("updateStrategy") or {}
        partition = int((strategy.get("rollingUpdate") or {}).get("partition", 0)) \
            if strategy.get("type", "RollingUpdate") == "RollingUpdate" else replicas
        for ordinal in sorted((o for o in pods if o >= replicas), reverse=True):
            self._delete(sts, pods.pop(ordinal))
            if ordered:
                break
        for ordinal in range(replicas):
            current = pods.get(ordinal)
            if current is not None and not pod_is_active(current):
                self._delete(sts, pods.pop(ordinal))  # failed pods are replaced under the same name
                current = None
            if current is None:
                revision = current_revision if ordinal < partition else update_revision
                created = self._create_pod(sts, ordinal, revision)
                if created is not None:
                    pods[ordinal] = created
                if ordered:
                    break
            elif ordered and not pod_is_ready(current):
                break
        else:
            self._roll(sts, pods, replicas, partition, update_revision)
        self._write_status(sts, list(pods.values()), current_revision, update_revision)

    def _roll(self, sts: Obj, pods: dict[int, Obj], replicas: int, partition: int, update_revision: str) -> None:
        """Replace one out-of-date pod, from the highest ordinal down to the partition, when all are ready."""
        if (sts["spec"].get("updateStrategy") or {}).get("type", "RollingUpdate") != "RollingUpdate":
            return
        if not all(pod_is_ready(p) for p in pods.values()):
            return
        for ordinal in range(replicas - 1, partition - 1, -1):
            pod = pods.get(ordinal)
            if pod is not None and _revision(pod) != update_revision:
                self._delete(sts, pods.pop(ordinal))
                return

    def _write_status(self, sts: Obj, pods: list[Obj], current: str, update: str) -> None:
        ready = sum(1 for p in pods if pod_is_ready(p))
        updated = sum(1 for p in pods if _revision(p) == update)
        on_current = sum(1 for p in pods if _revision(p) == current)
        if updated == len(pods) == int(sts["spec"].get("replicas", 1)) and ready == len(pods):
            current, on_current = update, updated
        status: Obj = {"observedGeneration": sts["metadata"].get("generation", 1), "replicas": len(pods)}
        for field, value in (("readyReplicas", ready), ("currentReplicas", on_current), ("updatedReplicas", updated)):
            if value:
                status[field] = value
        status.update(currentRevision=current, updateRevision=update, collisionCount=0, availableReplicas=ready)
        self.ctx.write_status(STATEFULSET, sts, status)

    def _create_pod(self, sts: Obj, ordinal: int, revision: str) -> Obj | None:
        meta, spec = sts["metadata"], sts["spec"]
        template = revision_template(self.ctx, meta["namespace"], revision) or copy.deepcopy(spec["template"])
        tmeta = template.get("metadata") or {}
        name = f"{meta['name']}-{ordinal}"
        labels = {**(tmeta.get("labels") or {}), REVISION_LABEL: revision,
                  "statefulset.kubernetes.io/pod-name": name, "apps.kubernetes.io/pod-index": str(ordinal)}
        pod_spec = template.get("spec") or {}
        pod_spec.setdefault("hostname", name)
        if spec.get("serviceName"):
            pod_spec.setdefault("subdomain", spec["serviceName"])
        for claim in spec.get("volumeClaimTemplates") or []:
            claim_name = self._ensure_claim(sts, claim, ordinal)
            volumes = pod_spec.setdefault("volumes", [])
            if not any(v.get("name") == claim["metadata"]["name"] for v in volumes):
                volumes.append({"name": claim["metadata"]["name"], "persistentVolumeClaim": {"claimName": claim_name}})
        pod: Obj = {"metadata": {"name": name, "labels": labels, "ownerReferences": [controller_ref(sts)]},
                    "spec": pod_spec}
        if tmeta.get("annotations"):
            pod["metadata"]["annotations"] = tmeta["annotations"]
        try:
            created = self.ctx.api.create(POD, meta["namespace"], pod)
        except ApiError as exc:
            self.ctx.event(sts, "FailedCreate", f"create Pod {name} in StatefulSet {meta['name']} failed error: "
                           f"{exc.message}", "Warning", "statefulset-controller")
            return None
        self.ctx.event(sts, "SuccessfulCreate", f"create Pod {name} in StatefulSet {meta['name']} successful",
                       component="statefulset-controller")
        return created

    def _ensure_claim(self, sts: Obj, claim: Obj, ordinal: int) -> str:
        namespace = sts["metadata"]["namespace"]
        name = f"{claim['metadata']['name']}-{sts['metadata']['name']}-{ordinal}"
        if self.ctx.store.get(PVC.key, namespace, name) is None:
            body = copy.deepcopy(claim)
            labels = dict((sts["spec"].get("selector") or {}).get("matchLabels") or {})
            body["metadata"] = {"name": name, "labels": {**(claim["metadata"].get("labels") or {}), **labels}}
            try:
                self.ctx.api.create(PVC, namespace, body)
            except ApiError as exc:
                self.ctx.event(sts, "FailedCreate", f"create Claim {name} failed: {exc.message}", "Warning",
                               "statefulset-controller")
        return name

    def _delete(self, sts: Obj, pod: Obj) -> None:
        name = pod["metadata"]["name"]
        self.ctx.store.delete(POD.key, pod["metadata"]["namespace"], name)
        self.ctx.event(sts, "SuccessfulDelete", f"delete Pod {name} in StatefulSet {sts['metadata']['name']} "
                       "successful", component="statefulset-controller")


def _ordinal(pod: Obj, set_name: str) -> int | None:
    suffix = pod["metadata"]["name"][len(set_name) + 1:]
    return int(suffix) if pod["metadata"]["name"].startswith(set_name + "-") and suffix.isdigit() else None


def _revision(pod: Obj) -> str:
    return str((pod["metadata"].get("labels") or {}).get(REVISION_LABEL, ""))
