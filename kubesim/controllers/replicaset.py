"""ReplicaSet controller: keep `spec.replicas` active pods, adopt and release by selector, report status.

Follows kubernetes/kubernetes `pkg/controller/replicaset/replica_set.go` and `replica_set_utils.go`:
pods are named `<rs>-<5 random>` (generateName), carry the template's labels and a controller
ownerReference; failed or succeeded pods are not active and get replaced; pods whose labels stop
matching the selector are released (ownerReference removed), matching orphans are adopted; scale-down
deletes not-ready before ready and newest first. Status fields are omitted when zero, like the real
API (`readyReplicas` absent, not 0), except `replicas`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from kubesim.api import random_suffix
from kubesim.controllers.base import (
    Context,
    controller_ref,
    controller_uid,
    is_terminating,
    pod_is_active,
    pod_is_ready,
)
from kubesim.errors import ApiError
from kubesim.resources import POD, REPLICASET
from kubesim.selectors import match_label_selector

Obj = dict[str, Any]


@dataclass
class ReplicaSetController:
    ctx: Context

    def reconcile(self) -> None:
        pods_by_ns: dict[str, list[Obj]] = {}
        for pod in self.ctx.store.list(POD.key):
            pods_by_ns.setdefault(pod["metadata"]["namespace"], []).append(pod)
        for rs in self.ctx.store.list(REPLICASET.key):
            self._sync(rs, pods_by_ns.get(rs["metadata"]["namespace"], []))

    def _sync(self, rs: Obj, pods: list[Obj]) -> None:
        uid = rs["metadata"]["uid"]
        selector = rs["spec"].get("selector") or {}
        owned: list[Obj] = []
        for pod in pods:
            labels = pod["metadata"].get("labels") or {}
            owner = controller_uid(pod)
            matches = match_label_selector(selector, labels)
            if owner == uid and not matches:
                self._release(pod, uid)
            elif owner == uid:
                owned.append(pod)
            elif owner is None and matches and not is_terminating(pod) and not is_terminating(rs) \
                    and pod_is_active(pod):
                owned.append(self._adopt(pod, rs))
        active = [p for p in owned if pod_is_active(p)]
        desired = int(rs["spec"].get("replicas", 1))
        if not is_terminating(rs):
            if len(active) < desired:
                for _ in range(desired - len(active)):
                    created = self._create_pod(rs)
                    if created is not None:
                        active.append(created)
            elif len(active) > desired:
                doomed = sorted(active, key=_deletion_rank)[: len(active) - desired]
                for pod in doomed:
                    self.ctx.store.delete(POD.key, pod["metadata"]["namespace"], pod["metadata"]["name"])
                    self.ctx.event(rs, "SuccessfulDelete", f"Deleted pod: {pod['metadata']['name']}",
                                   component="replicaset-controller")
                gone = {p["metadata"]["uid"] for p in doomed}
                active = [p for p in active if p["metadata"]["uid"] not in gone]
        self._write_status(rs, active)

    def _write_status(self, rs: Obj, active: list[Obj]) -> None:
        template_labels = ((rs["spec"].get("template") or {}).get("metadata") or {}).get("labels") or {}
        ready = sum(1 for p in active if pod_is_ready(p))
        labelled = sum(
            1 for p in active
            if all((p["metadata"].get("labels") or {}).get(k) == v for k, v in template_labels.items())
        )
        status: Obj = {"replicas": len(active)}
        for field_name, value in (("fullyLabeledReplicas", labelled), ("readyReplicas", ready),
                                  ("availableReplicas", ready)):
            if value:
                status[field_name] = value
        status["observedGeneration"] = rs["metadata"].get("generation", 1)
        old = rs.get("status") or {}
        if old.get("conditions"):
            status["conditions"] = old["conditions"]
        self.ctx.write_status(REPLICASET, rs, status)

    def _create_pod(self, rs: Obj) -> Obj | None:
        template = copy.deepcopy(rs["spec"].get("template") or {})
        tmeta = template.get("metadata") or {}
        pod: Obj = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": f"{rs['metadata']['name']}-{random_suffix()}",
                "generateName": f"{rs['metadata']['name']}-",
                "labels": tmeta.get("labels") or {},
                "ownerReferences": [controller_ref(rs)],
            },
            "spec": template.get("spec") or {},
        }
        if tmeta.get("annotations"):
            pod["metadata"]["annotations"] = tmeta["annotations"]
        try:
            created = self.ctx.api.create(POD, rs["metadata"]["namespace"], pod)
        except ApiError as exc:
            self.ctx.event(rs, "FailedCreate", f"Error creating: {exc.message}", "Warning", "replicaset-controller")
            return None
        self.ctx.event(rs, "SuccessfulCreate", f"Created pod: {created['metadata']['name']}",
                       component="replicaset-controller")
        return created

    def _release(self, pod: Obj, uid: str) -> None:
        refs = [r for r in pod["metadata"].get("ownerReferences") or [] if r.get("uid") != uid]
        if refs:
            pod["metadata"]["ownerReferences"] = refs
        else:
            pod["metadata"].pop("ownerReferences", None)
        self.ctx.store.update(POD.key, pod)

    def _adopt(self, pod: Obj, rs: Obj) -> Obj:
        pod["metadata"]["ownerReferences"] = [*pod["metadata"].get("ownerReferences", []), controller_ref(rs)]
        return self.ctx.store.update(POD.key, pod)


def _deletion_rank(pod: Obj) -> tuple[int, int, str]:
    """Which pods go first on scale-down: unscheduled, then not ready, then the newest."""
    status = pod.get("status") or {}
    scheduled = 1 if pod["spec"].get("nodeName") else 0
    ready = 1 if pod_is_ready(pod) else 0
    created = pod["metadata"].get("creationTimestamp", "")
    # Newer first: invert the timestamp ordering by negating character codes.
    newest_first = "".join(chr(0x10FFFF - ord(c)) for c in created) + str(status.get("podIP", ""))
    return scheduled, ready, newest_first
