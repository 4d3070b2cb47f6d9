"""Waiting until applied objects are stable, per kind (`stability.py`), by watching each in turn.

One deadline for the whole set. The outputs say per object why it is stable (`states`); when the
wait fails or times out, the message says for every object why it is or is not yet stable, so a
stage failure reads "Deployment shop/web: 1 of 3 updated replicas available; Service shop/web:
waiting for the load balancer to get an ingress address".
"""

from __future__ import annotations

import time
from typing import Any

from pydantic import BaseModel
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.kubernetes.manifest_kinds import ManifestObjects, ManifestRef, ManifestRefs, verdict_of
from activities.kubernetes.stability import stability
from activities.kubernetes.waiting import WAIT_FAILED, WAIT_TIMEOUT, wait_for_resource


class StableInput(BaseModel):
    refs: list[ManifestRef]
    timeoutSeconds: float = 600


class WaitForStable(ManifestObjects):
    @activity.defn
    def wait_for_manifests_stable(self, input: StableInput) -> ManifestRefs:
        """Watch each object until it is stable; a failed state (Job out of retries, stalled
        rollout) or the deadline fails the activity naming every object's state."""
        deadline = time.monotonic() + input.timeoutSeconds
        result = ManifestRefs(refs=input.refs)
        for ref in input.refs:
            resolved, served = self.resolved(ref)
            try:
                obj = wait_for_resource(
                    self.discovery,
                    served,
                    resolved.namespace,
                    resolved.name,
                    verdict_of,
                    max(1.0, deadline - time.monotonic()),
                )
            except ApplicationError as exc:
                if exc.type not in (WAIT_FAILED, WAIT_TIMEOUT):
                    raise
                states = self._snapshot(input.refs)
                raise ApplicationError(
                    f"{exc.message}. Every object: " + "; ".join(f"{k}: {v}" for k, v in states.items()),
                    {"states": states},
                    type=exc.type,
                    non_retryable=True,
                ) from None
            judged = stability(obj)
            result.states[str(resolved)] = judged.reason
            result.stable[str(resolved)] = judged.stable
        return result

    def _snapshot(self, refs: list[ManifestRef]) -> dict[str, str]:
        """Each object's state now, for a failure message (read once, no waiting)."""
        states: dict[str, str] = {}
        for ref in refs:
            try:
                resolved, served = self.resolved(ref)
                obj: dict[str, Any] | None = self.read(resolved, served)
            except ApplicationError as exc:
                states[str(ref)] = f"unknown ({exc.message})"
                continue
            judged = stability(obj) if obj is not None else None
            states[str(resolved)] = judged.reason if judged else "does not exist"
        return states
