"""PersistentVolumeClaim binder: every claim becomes Bound, as with a default StorageClass that binds
immediately. No PersistentVolume objects are made; `spec.volumeName` names an imaginary `pvc-<uid>`.
Status shape per core/v1 `PersistentVolumeClaimStatus` (phase, accessModes, capacity).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from kubesim.controllers.base import Context
from kubesim.resources import PVC

Obj = dict[str, Any]


@dataclass
class VolumeBinder:
    ctx: Context

    def reconcile(self) -> None:
        for claim in self.ctx.store.list(PVC.key):
            if (claim.get("status") or {}).get("phase") == "Bound" or claim["metadata"].get("deletionTimestamp"):
                continue
            bound = copy.deepcopy(claim)
            spec = bound["spec"]
            spec.setdefault("volumeName", f"pvc-{claim['metadata']['uid']}")
            spec.setdefault("storageClassName", "standard")
            annotations = bound["metadata"].setdefault("annotations", {})
            annotations.setdefault("pv.kubernetes.io/bind-completed", "yes")
            bound["status"] = {
                "phase": "Bound",
                "accessModes": list(spec.get("accessModes") or []),
                "capacity": {"storage": ((spec.get("resources") or {}).get("requests") or {}).get("storage", "1Gi")},
            }
            self.ctx.store.update(PVC.key, bound)
