"""Endpoints controller: each Service with a selector gets an Endpoints object listing its pods.

Follows kubernetes/kubernetes `pkg/controller/endpoint/endpoints_controller.go`: ready pods go to
`addresses`, running-but-not-ready ones to `notReadyAddresses`, terminating and finished pods are
left out; a named `targetPort` is resolved against the pod's container ports. An Endpoints object
with no pods has no `subsets` field at all. So traffic switching is visible as pods become ready or
their labels stop matching the selector.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from kubesim.controllers.base import Context, is_terminating, pod_is_ready
from kubesim.controllers.kubelet import NODE_NAME
from kubesim.resources import ENDPOINTS, POD, SERVICE
from kubesim.selectors import match_map_selector

Obj = dict[str, Any]


def _resolve_port(port: Obj, pods: list[Obj]) -> int:
    target = port.get("targetPort", port.get("port"))
    if isinstance(target, int):
        return target
    if isinstance(target, str) and target.isdigit():
        return int(target)
    for pod in pods:
        for container in pod["spec"].get("containers") or []:
            for cport in container.get("ports") or []:
                if cport.get("name") == target:
                    return int(cport["containerPort"])
    return int(port.get("port", 0))


@dataclass
class EndpointsController:
    ctx: Context
    _managed: set[tuple[str, str]] = field(default_factory=set)

    def reconcile(self) -> None:
        pods_by_ns: dict[str, list[Obj]] = {}
        for pod in self.ctx.store.list(POD.key):
            pods_by_ns.setdefault(pod["metadata"]["namespace"], []).append(pod)
        wanted: set[tuple[str, str]] = set()
        for svc in self.ctx.store.list(SERVICE.key):
            selector = svc["spec"].get("selector")
            if not selector:
                continue
            ns, name = svc["metadata"]["namespace"], svc["metadata"]["name"]
            wanted.add((ns, name))
            self._sync(svc, [p for p in pods_by_ns.get(ns, [])
                             if match_map_selector(selector, p["metadata"].get("labels") or {})])
        for ns, name in self._managed - wanted:
            self.ctx.store.delete(ENDPOINTS.key, ns, name)
        self._managed = wanted

    def _sync(self, svc: Obj, pods: list[Obj]) -> None:
        ns, name = svc["metadata"]["namespace"], svc["metadata"]["name"]
        ready: list[Obj] = []
        not_ready: list[Obj] = []
        for pod in pods:
            ip = (pod.get("status") or {}).get("podIP")
            phase = (pod.get("status") or {}).get("phase")
            if not ip or is_terminating(pod) or phase in ("Succeeded", "Failed"):
                continue
            address = {
                "ip": ip,
                "nodeName": pod["spec"].get("nodeName", NODE_NAME),
                "targetRef": {"kind": "Pod", "namespace": ns, "name": pod["metadata"]["name"],
                              "uid": pod["metadata"]["uid"]},
            }
            (ready if pod_is_ready(pod) else not_ready).append(address)
        subsets: list[Obj] = []
        if ready or not_ready:
            ports = []
            for port in svc["spec"].get("ports") or []:
                entry: Obj = {"port": _resolve_port(port, pods), "protocol": port.get("protocol", "TCP")}
                if port.get("name"):
                    entry["name"] = port["name"]
                ports.append(entry)
            subset: Obj = {}
            if ready:
                subset["addresses"] = sorted(ready, key=lambda a: a["ip"])
            if not_ready:
                subset["notReadyAddresses"] = sorted(not_ready, key=lambda a: a["ip"])
            subset["ports"] = ports
            subsets.append(subset)
        existing = self.ctx.store.get(ENDPOINTS.key, ns, name)
        labels = dict(svc["metadata"].get("labels") or {})
        if existing is None:
            obj: Obj = {"kind": "Endpoints", "apiVersion": "v1", "metadata": {"name": name, "namespace": ns}}
            if labels:
                obj["metadata"]["labels"] = labels
            if subsets:
                obj["subsets"] = subsets
            self.ctx.store.create(ENDPOINTS.key, obj)
            return
        changed = copy.deepcopy(existing)
        if labels:
            changed["metadata"]["labels"] = labels
        else:
            changed["metadata"].pop("labels", None)
        if subsets:
            changed["subsets"] = subsets
        else:
            changed.pop("subsets", None)
        if changed != existing:
            self.ctx.store.update(ENDPOINTS.key, changed)
