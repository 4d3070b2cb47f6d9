"""PodDisruptionBudget controller: counts healthy pods and how many may be disrupted.

Status shape and arithmetic follow kubernetes/kubernetes `pkg/controller/disruption/disruption.go`:
`expectedPods` are the pods the selector matches, `currentHealthy` the Ready ones, `desiredHealthy`
from `minAvailable` (or `expectedPods - maxUnavailable`; percentages rounded up), `disruptionsAllowed`
the surplus, and the `DisruptionAllowed` condition (reasons SufficientPods / InsufficientPods).
kubesim has no eviction API, so nothing consumes the budget.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from kubesim.controllers.base import Context, condition, merge_conditions, pod_is_active, pod_is_ready
from kubesim.resources import PDB, POD
from kubesim.selectors import match_label_selector

Obj = dict[str, Any]


def _count(value: Any, total: int) -> int:
    if isinstance(value, str) and value.endswith("%"):
        return math.ceil(total * int(value[:-1]) / 100)
    return int(value)


@dataclass
class DisruptionController:
    ctx: Context

    def reconcile(self) -> None:
        for pdb in self.ctx.store.list(PDB.key):
            selector = pdb["spec"].get("selector")
            pods = [] if selector is None else [
                p for p in self.ctx.store.list(POD.key, pdb["metadata"]["namespace"])
                if pod_is_active(p) and match_label_selector(selector, p["metadata"].get("labels") or {})
            ]
            expected = len(pods)
            healthy = sum(1 for p in pods if pod_is_ready(p))
            spec = pdb["spec"]
            if "maxUnavailable" in spec:
                desired = max(expected - _count(spec["maxUnavailable"], expected), 0)
            else:
                desired = _count(spec.get("minAvailable", 1), expected)
            allowed = max(healthy - desired, 0)
            old = pdb.get("status") or {}
            cond = condition("DisruptionAllowed", "True", "SufficientPods", "") if allowed else \
                condition("DisruptionAllowed", "False", "InsufficientPods", "")
            status: Obj = {
                "observedGeneration": pdb["metadata"].get("generation", 1),
                "disruptionsAllowed": allowed,
                "currentHealthy": healthy,
                "desiredHealthy": desired,
                "expectedPods": expected,
                "conditions": merge_conditions(old.get("conditions") or [], [cond]),
            }
            self.ctx.write_status(PDB, pdb, status)
