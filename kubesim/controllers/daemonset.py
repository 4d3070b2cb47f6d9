"""DaemonSet controller: one pod per (matching) Node, rolling updates bounded by maxUnavailable.

Follows kubernetes/kubernetes `pkg/controller/daemon/daemon_controller.go` and `update.go`: a pod per node
whose labels match `spec.template.spec.nodeSelector`, bound to it by `spec.nodeName` (the real one uses a
node affinity on `metadata.name`), labelled `controller-revision-hash` and `pod-template-generation`; a
RollingUpdate deletes out-of-date pods while at most `maxUnavailable` pods are unavailable, and the next
pass creates their replacements. kubesim has one node, `kubesim-node`, unless more Node objects are
created. Status fields as in apps/v1 `DaemonSetStatus` (numberAvailable, numberUnavailable and
updatedNumberScheduled omitted when zero).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from kubesim.controllers.base import Context, controller_ref, controller_uid, pod_is_active, pod_is_ready
from kubesim.controllers.revisions import ensure_revision
from kubesim.errors import ApiError
from kubesim.resources import DAEMONSET, NODE, POD

Obj = dict[str, Any]
REVISION_LABEL = "controller-revision-hash"


@dataclass
class DaemonSetController:
    ctx: Context

    def reconcile(self) -> None:
        nodes = self.ctx.store.list(NODE.key)
        for ds in self.ctx.store.list(DAEMONSET.key):
            if not ds["metadata"].get("deletionTimestamp"):
                self._sync(ds, nodes)

    def _sync(self, ds: Obj, nodes: list[Obj]) -> None:
        meta, spec = ds["metadata"], ds["spec"]
        revision = ensure_revision(self.ctx, ds, dict((spec.get("selector") or {}).get("matchLabels") or {}))
        hash_value = revision[len(meta["name"]) + 1:]
        selector = ((spec.get("template") or {}).get("spec") or {}).get("nodeSelector") or {}
        wanted = [n["metadata"]["name"] for n in nodes
                  if all((n["metadata"].get("labels") or {}).get(k) == v for k, v in selector.items())]
        by_node: dict[str, Obj] = {}
        for pod in self.ctx.store.list(POD.key, meta["namespace"]):
            if controller_uid(pod) != meta["uid"]:
                continue
            node = pod["spec"].get("nodeName", "")
            if node not in wanted or node in by_node or not pod_is_active(pod):
                self._delete(ds, pod)  # misscheduled, duplicate or failed: the next pass replaces it
            else:
                by_node[node] = pod
        for node in wanted:
            if node not in by_node:
                created = self._create_pod(ds, node, hash_value)
                if created is not None:
                    by_node[node] = created
        self._roll(ds, by_node, hash_value, len(wanted))
        self._write_status(ds, list(by_node.values()), hash_value, len(wanted))

    def _roll(self, ds: Obj, by_node: dict[str, Obj], hash_value: str, desired: int) -> None:
        strategy = ds["spec"].get("updateStrategy") or {}
        if strategy.get("type", "RollingUpdate") != "RollingUpdate":
            return
        raw = (strategy.get("rollingUpdate") or {}).get("maxUnavailable", 1)
        budget = max(1, -(-desired * int(raw[:-1]) // 100)) if isinstance(raw, str) and raw.endswith("%") else int(raw)
        unavailable = sum(1 for p in by_node.values() if not pod_is_ready(p))
        for node, pod in sorted(by_node.items()):
            if unavailable >= budget:
                return
            if (pod["metadata"].get("labels") or {}).get(REVISION_LABEL) != hash_value:
                self._delete(ds, pod)
                del by_node[node]
                unavailable += 1

    def _write_status(self, ds: Obj, pods: list[Obj], hash_value: str, desired: int) -> None:
        ready = sum(1 for p in pods if pod_is_ready(p))
        updated = sum(1 for p in pods if (p["metadata"].get("labels") or {}).get(REVISION_LABEL) == hash_value)
        status: Obj = {"currentNumberScheduled": len(pods), "numberMisscheduled": 0,
                       "desiredNumberScheduled": desired, "numberReady": ready,
                       "observedGeneration": ds["metadata"].get("generation", 1)}
        for field, value in (("updatedNumberScheduled", updated), ("numberAvailable", ready),
                             ("numberUnavailable", desired - ready)):
            if value > 0:
                status[field] = value
        self.ctx.write_status(DAEMONSET, ds, status)

    def _create_pod(self, ds: Obj, node: str, hash_value: str) -> Obj | None:
        meta = ds["metadata"]
        template = copy.deepcopy(ds["spec"].get("template") or {})
        tmeta = template.get("metadata") or {}
        labels = {**(tmeta.get("labels") or {}), REVISION_LABEL: hash_value,
                  "pod-template-generation": str(meta.get("generation", 1))}
        pod_spec = template.get("spec") or {}
        pod_spec["nodeName"] = node
        pod: Obj = {"metadata": {"name": "", "generateName": f"{meta['name']}-", "labels": labels,
                                 "ownerReferences": [controller_ref(ds)]}, "spec": pod_spec}
        del pod["metadata"]["name"]
        if tmeta.get("annotations"):
            pod["metadata"]["annotations"] = tmeta["annotations"]
        try:
            created = self.ctx.api.create(POD, meta["namespace"], pod)
        except ApiError as exc:
            self.ctx.event(ds, "FailedCreate", f"Error creating: {exc.message}", "Warning", "daemonset-controller")
            return None
        self.ctx.event(ds, "SuccessfulCreate", f"Created pod: {created['metadata']['name']}",
                       component="daemonset-controller")
        return created

    def _delete(self, ds: Obj, pod: Obj) -> None:
        self.ctx.store.delete(POD.key, pod["metadata"]["namespace"], pod["metadata"]["name"])
        self.ctx.event(ds, "SuccessfulDelete", f"Deleted pod: {pod['metadata']['name']}",
                       component="daemonset-controller")
