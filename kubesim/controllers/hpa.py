"""HorizontalPodAutoscaler "controller": stores and reports, never scales (kubesim has no metrics).

Status and condition shapes follow autoscaling/v2 `HorizontalPodAutoscalerStatus` in kubernetes/api
`autoscaling/v2/types.go`; the condition reasons are the ones the real controller uses when it can read
the target's scale (SucceededGetScale / FailedGetScale) but no metrics (FailedGetResourceMetric).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kubesim.controllers.base import Context, condition, merge_conditions
from kubesim.resources import HPA

Obj = dict[str, Any]


@dataclass
class HorizontalPodAutoscalerController:
    ctx: Context

    def reconcile(self) -> None:
        for hpa in self.ctx.store.list(HPA.key):
            self._sync(hpa)

    def _sync(self, hpa: Obj) -> None:
        ref = hpa["spec"].get("scaleTargetRef") or {}
        rt = self.ctx.api.registry.by_kind(str(ref.get("apiVersion", "apps/v1")), str(ref.get("kind", "")))
        target = self.ctx.store.get(rt.key, hpa["metadata"]["namespace"], str(ref.get("name", ""))) if rt else None
        old = hpa.get("status") or {}
        if target is None:
            current = int(old.get("currentReplicas", 0))
            conditions = [condition("AbleToScale", "False", "FailedGetScale",
                                    f"the HPA controller was unable to get the target's current scale: "
                                    f"{ref.get('kind')} {ref.get('name')} not found")]
        else:
            current = int((target.get("status") or {}).get("replicas", target["spec"].get("replicas", 0)))
            conditions = [
                condition("AbleToScale", "True", "SucceededGetScale",
                          "the HPA controller was able to get the target's current scale"),
                condition("ScalingActive", "False", "FailedGetResourceMetric",
                          "the HPA was unable to compute the replica count: kubesim serves no metrics"),
            ]
        status: Obj = {
            "currentReplicas": current,
            "desiredReplicas": current,
            "conditions": merge_conditions(old.get("conditions") or [], conditions),
        }
        if "lastScaleTime" in old:
            status["lastScaleTime"] = old["lastScaleTime"]
        self.ctx.write_status(HPA, hpa, status)
