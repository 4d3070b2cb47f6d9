"""What every simulated controller shares: the store, timers, and small helpers over objects."""

from __future__ import annotations

import asyncio
import copy
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from kubesim.api import Api, random_suffix
from kubesim.resources import EVENT, ResourceType
from kubesim.store import Store, now_rfc3339

Obj = dict[str, Any]


class Controller(Protocol):
    def reconcile(self) -> None:
        """Bring what the controller owns one step closer to what specs ask; write only on change."""


@dataclass
class Context:
    store: Store
    api: Api
    ready_delay: float = 0.2
    jitter: float = 0.25  # each pod waits ready_delay * uniform(1 - jitter, 1 + jitter)
    rng: random.Random = field(default_factory=random.Random)
    timers: set[asyncio.TimerHandle] = field(default_factory=set)
    record_events: bool = True
    wake: Callable[[], None] = lambda: None  # ask for another reconcile pass (set by the manager)

    def later(self, delay: float, callback: Callable[[], None]) -> None:
        """Run `callback` on the event loop after `delay` seconds (the loop is the store's thread)."""
        loop = asyncio.get_running_loop()
        handle: asyncio.TimerHandle | None = None

        def fire() -> None:
            if handle is not None:
                self.timers.discard(handle)
            callback()

        handle = loop.call_later(max(delay, 0.0), fire)
        self.timers.add(handle)

    def cancel_timers(self) -> None:
        for handle in self.timers:
            handle.cancel()
        self.timers.clear()

    def jittered(self, base: float | None = None) -> float:
        delay = self.ready_delay if base is None else base
        return delay * self.rng.uniform(1 - self.jitter, 1 + self.jitter)

    def write_status(self, rt: ResourceType, obj: Obj, status: Obj) -> Obj:
        """Store `status` on `obj` if it differs from what is stored; controllers never loop on no-ops."""
        if obj.get("status") == status:
            return obj
        changed = copy.deepcopy(obj)
        changed["status"] = status
        return self.store.update(rt.key, changed)

    def event(self, involved: Obj, reason: str, message: str, type_: str = "Normal", component: str = "") -> None:
        """Record a core/v1 Event about `involved`, as controllers and the kubelet do."""
        if not self.record_events:
            return
        meta = involved["metadata"]
        now = now_rfc3339()
        namespace = meta.get("namespace", "default")
        name = f"{meta['name']}.{random_suffix(10)}"
        self.store.create(EVENT.key, {
            "kind": "Event",
            "apiVersion": "v1",
            "metadata": {"name": name, "namespace": namespace},
            "involvedObject": {
                "kind": involved.get("kind"),
                "apiVersion": involved.get("apiVersion"),
                "namespace": namespace,
                "name": meta["name"],
                "uid": meta.get("uid"),
                "resourceVersion": meta.get("resourceVersion"),
            },
            "reason": reason,
            "message": message,
            "type": type_,
            "source": {"component": component or "kubesim"},
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
            "reportingComponent": component or "kubesim",
            "reportingInstance": "kubesim",
        })


def controller_ref(owner: Obj) -> Obj:
    meta = owner["metadata"]
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def controller_uid(obj: Obj) -> str | None:
    for ref in obj["metadata"].get("ownerReferences") or []:
        if ref.get("controller"):
            return str(ref.get("uid"))
    return None


def is_terminating(obj: Obj) -> bool:
    return bool(obj["metadata"].get("deletionTimestamp"))


def pod_is_ready(pod: Obj) -> bool:
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return bool(cond.get("status") == "True")
    return False


def pod_is_active(pod: Obj) -> bool:
    phase = (pod.get("status") or {}).get("phase")
    return phase not in ("Succeeded", "Failed") and not is_terminating(pod)


def condition(type_: str, status: str, reason: str, message: str, *, probe_time: bool = False) -> Obj:
    now = now_rfc3339()
    cond: Obj = {"type": type_, "status": status}
    if probe_time:
        cond["lastProbeTime"] = None
    cond.update(lastTransitionTime=now, reason=reason, message=message)
    return cond


def merge_conditions(old: list[Obj], new: list[Obj], update_time: bool = False) -> list[Obj]:
    """Keep each condition's timestamps while its status is unchanged, like the real controllers do."""
    by_type = {c.get("type"): c for c in old}
    out: list[Obj] = []
    for cond in new:
        previous = by_type.get(cond["type"])
        merged = dict(cond)
        if previous is not None and previous.get("status") == cond.get("status"):
            merged["lastTransitionTime"] = previous.get("lastTransitionTime", cond.get("lastTransitionTime"))
            if update_time and "lastUpdateTime" in previous and previous.get("reason") == cond.get("reason") \
                    and previous.get("message") == cond.get("message"):
                merged["lastUpdateTime"] = previous["lastUpdateTime"]
        out.append(merged)
    return out
