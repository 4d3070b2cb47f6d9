"""Deployment controller: ReplicaSets per pod template, RollingUpdate/Recreate, revisions, rollback.

Follows kubernetes/kubernetes `pkg/controller/deployment/` (`sync.go`, `rolling.go`, `recreate.go`,
`rollback.go`, `progress.go`, `util/deployment_util.go`): ReplicaSets are named
`<deployment>-<pod-template-hash>` and carry the `pod-template-hash` label; revisions live in the
`deployment.kubernetes.io/revision` annotation, and an old template coming back (what `kubectl rollout
undo` does by patching the template) reuses its ReplicaSet under a new revision. The legacy
`deprecated.deployment.rollback.to` annotation (revision, 0 = previous) is honoured too. Conditions and
their reasons/messages (NewReplicaSetCreated, ReplicaSetUpdated, NewReplicaSetAvailable,
ProgressDeadlineExceeded, MinimumReplicasAvailable/Unavailable) match `util/deployment_util.go`.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import time
from dataclasses import dataclass, field
from typing import Any

from kubesim.controllers.base import (
    Context,
    condition,
    controller_ref,
    controller_uid,
    is_terminating,
    merge_conditions,
)
from kubesim.resources import DEPLOYMENT, REPLICASET
from kubesim.store import now_rfc3339

Obj = dict[str, Any]

REVISION = "deployment.kubernetes.io/revision"
DESIRED = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
ROLLBACK_TO = "deprecated.deployment.rollback.to"
HASH_LABEL = "pod-template-hash"
_HASH_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def _strip_hash(template: Obj) -> Obj:
    t = copy.deepcopy(template)
    labels = (t.get("metadata") or {}).get("labels")
    if isinstance(labels, dict):
        labels.pop(HASH_LABEL, None)
    return t


def template_hash(template: Obj) -> str:
    digest = hashlib.sha256(json.dumps(_strip_hash(template), sort_keys=True).encode()).digest()
    return "".join(_HASH_ALPHABET[b % len(_HASH_ALPHABET)] for b in digest[:10])


def _scaled(value: Any, total: int, round_up: bool) -> int:
    """intstr: an int, or a percentage of `total` (maxSurge rounds up, maxUnavailable down)."""
    if isinstance(value, str) and value.endswith("%"):
        raw = float(value[:-1]) * total / 100
        return math.ceil(raw) if round_up else math.floor(raw)
    return int(value or 0)


def surge_and_unavailable(d: Obj) -> tuple[int, int]:
    desired = int(d["spec"].get("replicas", 1))
    rolling = (d["spec"].get("strategy") or {}).get("rollingUpdate") or {}
    surge = _scaled(rolling.get("maxSurge", "25%"), desired, True)
    unavailable = _scaled(rolling.get("maxUnavailable", "25%"), desired, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1  # what ResolveFenceposts does, so a rollout can always move
    return surge, min(unavailable, desired)


def _rev(rs: Obj) -> int:
    try:
        return int((rs["metadata"].get("annotations") or {}).get(REVISION, "0"))
    except ValueError:
        return 0


@dataclass
class DeploymentController:
    ctx: Context
    _last_progress: dict[str, float] = field(default_factory=dict)
    _wake_pending: set[str] = field(default_factory=set)

    def reconcile(self) -> None:
        all_rs = self.ctx.store.list(REPLICASET.key)
        for d in self.ctx.store.list(DEPLOYMENT.key):
            if is_terminating(d):
                continue
            owned = [rs for rs in all_rs if controller_uid(rs) == d["metadata"]["uid"]]
            self._sync(d, owned)

    def _sync(self, d: Obj, owned: list[Obj]) -> None:
        annotations = d["metadata"].get("annotations") or {}
        if ROLLBACK_TO in annotations:
            self._rollback(d, owned, annotations[ROLLBACK_TO])
            return
        new_rs = next((rs for rs in owned if _strip_hash(rs["spec"]["template"]) == _strip_hash(d["spec"]["template"])),
                      None)
        max_rev = max((_rev(rs) for rs in owned), default=0)
        created = False
        if new_rs is None and not d["spec"].get("paused"):
            new_rs = self._create_rs(d, max_rev + 1)
            created = True
        elif new_rs is not None and _rev(new_rs) < max_rev:
            new_rs = self._annotate_rs(new_rs, {REVISION: str(max_rev + 1)})
        olds = [rs for rs in owned if new_rs is None or rs["metadata"]["uid"] != new_rs["metadata"]["uid"]]
        if new_rs is not None:
            d = self._set_deployment_revision(d, str(_rev(new_rs)))
            if not d["spec"].get("paused"):
                if (d["spec"].get("strategy") or {}).get("type") == "Recreate":
                    new_rs = self._recreate(d, new_rs, olds)
                else:
                    new_rs = self._rolling(d, new_rs, olds)
        self._cleanup(d, olds)
        self._write_status(d, new_rs, olds, created)

    # -- strategies ----------------------------------------------------------------------------------

    def _recreate(self, d: Obj, new_rs: Obj, olds: list[Obj]) -> Obj:
        for rs in olds:
            if rs["spec"].get("replicas", 0) > 0:
                self._scale(d, rs, 0)
        if any((rs.get("status") or {}).get("replicas", 0) > 0 for rs in olds):
            return new_rs  # old pods still exist: Recreate waits for them to be gone
        return self._scale(d, new_rs, int(d["spec"].get("replicas", 1)))

    def _rolling(self, d: Obj, new_rs: Obj, olds: list[Obj]) -> Obj:
        desired = int(d["spec"].get("replicas", 1))
        surge, max_unavailable = surge_and_unavailable(d)
        new_replicas = int(new_rs["spec"].get("replicas", 0))
        every = [new_rs, *olds]
        # reconcileNewReplicaSet (rolling.go)
        if new_replicas > desired:
            new_rs = self._scale(d, new_rs, desired)
        elif new_replicas < desired:
            total = sum(int(rs["spec"].get("replicas", 0)) for rs in every)
            room = desired + surge - total
            if room > 0:
                new_rs = self._scale(d, new_rs, new_replicas + min(room, desired - new_replicas))
        # reconcileOldReplicaSets (rolling.go)
        old_total = sum(int(rs["spec"].get("replicas", 0)) for rs in olds)
        if old_total == 0:
            return new_rs
        all_total = int(new_rs["spec"].get("replicas", 0)) + old_total
        min_available = desired - max_unavailable
        new_available = int((new_rs.get("status") or {}).get("availableReplicas", 0))
        new_unavailable = int(new_rs["spec"].get("replicas", 0)) - new_available
        budget = all_total - min_available - new_unavailable
        if budget <= 0:
            return new_rs
        # First remove old pods that are not available anyway (cleanupUnhealthyReplicas).
        olds_sorted = sorted(olds, key=lambda rs: rs["metadata"].get("creationTimestamp", ""))
        for i, rs in enumerate(olds_sorted):
            spec = int(rs["spec"].get("replicas", 0))
            unhealthy = spec - int((rs.get("status") or {}).get("availableReplicas", 0))
            if budget <= 0 or unhealthy <= 0 or spec == 0:
                continue
            cut = min(budget, unhealthy)
            olds_sorted[i] = self._scale(d, rs, spec - cut)
            budget -= cut
        # Then scale down available old pods while enough stay available (scaleDownOldReplicaSetsForRollingUpdate).
        available = sum(int((rs.get("status") or {}).get("availableReplicas", 0)) for rs in [new_rs, *olds_sorted])
        available = min(available, sum(int(rs["spec"].get("replicas", 0)) for rs in [new_rs, *olds_sorted]))
        can_remove = available - min_available
        for rs in olds_sorted:
            spec = int(rs["spec"].get("replicas", 0))
            if can_remove <= 0 or spec == 0:
                continue
            cut = min(can_remove, spec)
            self._scale(d, rs, spec - cut)
            can_remove -= cut
        return new_rs

    # -- writes --------------------------------------------------------------------------------------

    def _create_rs(self, d: Obj, revision: int) -> Obj:
        template = copy.deepcopy(d["spec"]["template"])
        h = template_hash(template)
        template.setdefault("metadata", {}).setdefault("labels", {})[HASH_LABEL] = h
        selector = copy.deepcopy(d["spec"]["selector"])
        selector.setdefault("matchLabels", {})[HASH_LABEL] = h
        surge = surge_and_unavailable(d)[0]
        desired = int(d["spec"].get("replicas", 1))
        rs: Obj = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": f"{d['metadata']['name']}-{h}",
                "labels": dict(template["metadata"]["labels"]),
                "annotations": {REVISION: str(revision), DESIRED: str(desired), MAX_REPLICAS: str(desired + surge)},
                "ownerReferences": [controller_ref(d)],
            },
            "spec": {"replicas": 0, "selector": selector, "template": template,
                     "minReadySeconds": d["spec"].get("minReadySeconds", 0)},
        }
        created = self.ctx.api.create(REPLICASET, d["metadata"]["namespace"], rs)
        self.ctx.event(d, "ScalingReplicaSet", f"Created new replica set \"{created['metadata']['name']}\"",
                       component="deployment-controller")
        return created

    def _scale(self, d: Obj, rs: Obj, replicas: int) -> Obj:
        current = int(rs["spec"].get("replicas", 0))
        desired = int(d["spec"].get("replicas", 1))
        annotations = dict(rs["metadata"].get("annotations") or {})
        annotations.update({DESIRED: str(desired), MAX_REPLICAS: str(desired + surge_and_unavailable(d)[0])})
        if current == replicas and annotations == rs["metadata"].get("annotations"):
            return rs
        changed = copy.deepcopy(rs)
        changed["spec"]["replicas"] = replicas
        changed["metadata"]["annotations"] = annotations
        meta = rs["metadata"]
        updated = self.ctx.api.update(REPLICASET, meta["namespace"], meta["name"], changed)
        if current != replicas:
            direction = "up" if replicas > current else "down"
            self.ctx.event(d, "ScalingReplicaSet",
                           f"Scaled {direction} replica set {meta['name']} from {current} to {replicas}",
                           component="deployment-controller")
            self._last_progress[d["metadata"]["uid"]] = time.monotonic()
        return updated

    def _annotate_rs(self, rs: Obj, extra: dict[str, str]) -> Obj:
        changed = copy.deepcopy(rs)
        changed["metadata"].setdefault("annotations", {}).update(extra)
        return self.ctx.store.update(REPLICASET.key, changed)

    def _set_deployment_revision(self, d: Obj, revision: str) -> Obj:
        if (d["metadata"].get("annotations") or {}).get(REVISION) == revision:
            return d
        changed = copy.deepcopy(d)
        changed["metadata"].setdefault("annotations", {})[REVISION] = revision
        return self.ctx.store.update(DEPLOYMENT.key, changed)

    def _rollback(self, d: Obj, owned: list[Obj], target: str) -> None:
        changed = copy.deepcopy(d)
        del changed["metadata"]["annotations"][ROLLBACK_TO]
        revisions = sorted({_rev(rs) for rs in owned}, reverse=True)
        wanted = int(target) if target.isdigit() else 0
        if wanted == 0 and len(revisions) > 1:
            wanted = revisions[1]
        source = next((rs for rs in owned if _rev(rs) == wanted), None)
        if source is None:
            self.ctx.event(d, "DeploymentRollbackRevisionNotFound", "Unable to find the revision to rollback to.",
                           "Warning", "deployment-controller")
        else:
            changed["spec"]["template"] = _strip_hash(source["spec"]["template"])
            self.ctx.event(d, "DeploymentRollback", f"Rolled back deployment \"{d['metadata']['name']}\" to "
                           f"revision {wanted}", component="deployment-controller")
        meta = d["metadata"]
        self.ctx.api.update(DEPLOYMENT, meta["namespace"], meta["name"], changed)

    def _cleanup(self, d: Obj, olds: list[Obj]) -> None:
        limit = int(d["spec"].get("revisionHistoryLimit", 10))
        idle = [rs for rs in olds if rs["spec"].get("replicas", 0) == 0
                and (rs.get("status") or {}).get("replicas", 0) == 0]
        for rs in sorted(idle, key=_rev)[: max(len(idle) - limit, 0)]:
            self.ctx.store.delete(REPLICASET.key, rs["metadata"]["namespace"], rs["metadata"]["name"])

    # -- status --------------------------------------------------------------------------------------

    def _write_status(self, d: Obj, new_rs: Obj | None, olds: list[Obj], created: bool) -> None:
        uid = d["metadata"]["uid"]
        every = ([new_rs] if new_rs else []) + olds
        st = [rs.get("status") or {} for rs in every]
        desired = int(d["spec"].get("replicas", 1))
        replicas = sum(int(s.get("replicas", 0)) for s in st)
        ready = sum(int(s.get("readyReplicas", 0)) for s in st)
        available = sum(int(s.get("availableReplicas", 0)) for s in st)
        updated = int(((new_rs or {}).get("status") or {}).get("replicas", 0))
        old_status = d.get("status") or {}
        status: Obj = {"observedGeneration": d["metadata"].get("generation", 1)}
        for name, value in (("replicas", replicas), ("updatedReplicas", updated), ("readyReplicas", ready),
                            ("availableReplicas", available), ("unavailableReplicas", max(desired - available, 0))):
            if value:
                status[name] = value
        _, max_unavailable = surge_and_unavailable(d)
        if available >= desired - max_unavailable:
            avail = condition("Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability.")
        else:
            avail = condition("Available", "False", "MinimumReplicasUnavailable",
                              "Deployment does not have minimum availability.")
        progressing = self._progressing(d, new_rs, old_status, status, created, desired)
        old_conditions = old_status.get("conditions") or []
        conditions = [avail, progressing] if progressing else [avail]
        for cond in conditions:
            cond.setdefault("lastUpdateTime", now_rfc3339())
        status["conditions"] = merge_conditions(old_conditions, conditions, update_time=True)
        if status != old_status:
            if _progress_counts(status) != _progress_counts(old_status):
                self._last_progress[uid] = time.monotonic()
            self.ctx.write_status(DEPLOYMENT, d, status)

    def _progressing(self, d: Obj, new_rs: Obj | None, old_status: Obj, status: Obj, created: bool,
                     desired: int) -> Obj | None:
        uid = d["metadata"]["uid"]
        previous: Obj | None = next(
            (c for c in old_status.get("conditions") or [] if c.get("type") == "Progressing"), None
        )
        if new_rs is None:
            return previous
        name = new_rs["metadata"]["name"]
        complete = (status.get("updatedReplicas", 0) == desired and status.get("replicas", 0) == desired
                    and status.get("availableReplicas", 0) == desired)
        if complete:
            return condition("Progressing", "True", "NewReplicaSetAvailable",
                             f'ReplicaSet "{name}" has successfully progressed.')
        if created:
            self._last_progress[uid] = time.monotonic()
            return condition("Progressing", "True", "NewReplicaSetCreated", f'Created new replica set "{name}"')
        if previous is not None and previous.get("reason") == "ProgressDeadlineExceeded" \
                and _progress_counts(status) == _progress_counts(old_status):
            return previous
        deadline = d["spec"].get("progressDeadlineSeconds")
        since = time.monotonic() - self._last_progress.setdefault(uid, time.monotonic())
        if deadline is not None and since >= float(deadline) and \
                _progress_counts(status) == _progress_counts(old_status):
            return condition("Progressing", "False", "ProgressDeadlineExceeded",
                             f'ReplicaSet "{name}" has timed out progressing.')
        if deadline is not None and uid not in self._wake_pending:
            # Wake up when the deadline passes, in case nothing else changes meanwhile.
            self._wake_pending.add(uid)

            def wake() -> None:
                self._wake_pending.discard(uid)
                self.ctx.wake()

            self.ctx.later(float(deadline) - since + 0.05, wake)
        return condition("Progressing", "True", "ReplicaSetUpdated", f'ReplicaSet "{name}" is progressing.')


def _progress_counts(status: Obj) -> tuple[int, ...]:
    return tuple(int(status.get(k, 0)) for k in ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas"))
