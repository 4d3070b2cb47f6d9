"""A scheduler and kubelet in one: binds pods, "runs" their containers, reports status and logs.

Pod status shapes (phase, conditions PodScheduled/Initialized/ContainersReady/Ready, containerStatuses
with state waiting/running/terminated, lastState, restartCount) follow kubernetes/api `core/v1/types.go`.
What a container prints and how it exits is the convention in `kubesim/programs.py`.
"""

from __future__ import annotations

import copy
import functools
import time
from dataclasses import dataclass, field
from typing import Any

from kubesim.controllers.base import Context, controller_uid
from kubesim.errors import bad_request
from kubesim.programs import Program, image_tag, program_for
from kubesim.resources import POD
from kubesim.store import now_rfc3339

Obj = dict[str, Any]
NODE_NAME = "kubesim-node"
HOST_IP = "10.0.0.10"


@dataclass
class Runtime:
    """In-memory facts about a started pod that the API object does not hold."""

    started_at: float
    programs: dict[str, Program]
    finished: bool = False
    restarts: int = 0
    outcome: str = "running"  # running, crashloop, failed, completes


@dataclass
class Kubelet:
    ctx: Context
    runtimes: dict[str, Runtime] = field(default_factory=dict)
    _tracked: set[str] = field(default_factory=set)
    _failed_once: set[str] = field(default_factory=set)  # owners whose first pod already failed
    _next_ip: int = 2

    def reconcile(self) -> None:
        live: set[str] = set()
        for pod in self.ctx.store.list(POD.key):
            uid = pod["metadata"]["uid"]
            live.add(uid)
            if uid in self._tracked:
                continue
            phase = (pod.get("status") or {}).get("phase", "Pending")
            self._tracked.add(uid)
            if phase in ("Succeeded", "Failed"):
                self.runtimes[uid] = Runtime(0.0, self._programs(pod), finished=True)
            elif phase == "Running":
                # Seen running without a runtime: loaded from a state file. Its output is all there.
                self.runtimes[uid] = Runtime(time.time() - 3600, self._programs(pod))
                if pod["spec"].get("restartPolicy") in ("Never", "OnFailure"):
                    self.ctx.later(0, functools.partial(self._finish, pod))
            else:
                self._schedule(pod)
        for uid in self._tracked - live:
            self._tracked.discard(uid)
            self.runtimes.pop(uid, None)

    @staticmethod
    def _programs(pod: Obj) -> dict[str, Program]:
        return {c["name"]: program_for(c) for c in pod["spec"].get("containers") or []}

    def _current(self, pod: Obj) -> Obj | None:
        meta = pod["metadata"]
        now = self.ctx.store.get(POD.key, meta["namespace"], meta["name"])
        if now is None or now["metadata"]["uid"] != meta["uid"] or now["metadata"].get("deletionTimestamp"):
            return None
        return now

    def _schedule(self, pod: Obj) -> None:
        spec = pod["spec"]
        pod = copy.deepcopy(pod)
        pod["spec"]["nodeName"] = spec.get("nodeName") or NODE_NAME
        pod["status"] = {
            "phase": "Pending",
            "conditions": [_cond("PodScheduled", "True")],
            "qosClass": "BestEffort",
            "hostIP": HOST_IP,
            "startTime": now_rfc3339(),
            "containerStatuses": [
                {
                    "name": c["name"], "image": c.get("image", ""), "imageID": "", "ready": False,
                    "restartCount": 0, "started": False,
                    "state": {"waiting": {"reason": "ContainerCreating"}}, "lastState": {},
                }
                for c in spec.get("containers") or []
            ],
        }
        stored = self.ctx.store.update(POD.key, pod)
        self.ctx.event(stored, "Scheduled", f"Successfully assigned {_ref(stored)} to {NODE_NAME}",
                       component="default-scheduler")
        self.ctx.later(self.ctx.jittered(), lambda: self._start(stored))

    def _outcome(self, pod: Obj) -> str:
        tags = {image_tag(str(c.get("image", ""))) for c in pod["spec"].get("containers") or []}
        if "crashloop" in tags:
            return "crashloop"
        if "fail-once" in tags:
            owner = controller_uid(pod) or pod["metadata"]["uid"]
            if owner not in self._failed_once:
                self._failed_once.add(owner)
                return "failed"
        if pod["spec"].get("restartPolicy") in ("Never", "OnFailure"):
            return "completes"
        return "running"

    def _start(self, pod: Obj) -> None:
        current = self._current(pod)
        if current is None:
            return
        uid = current["metadata"]["uid"]
        programs = self._programs(current)
        outcome = self._outcome(current)
        if outcome == "crashloop" and current["spec"].get("restartPolicy") == "Never":
            outcome = "failed"
        runtime = Runtime(time.time(), programs, outcome=outcome)
        self.runtimes[uid] = runtime
        ip = f"10.244.{self._next_ip // 250}.{self._next_ip % 250 + 1}"
        self._next_ip += 1
        status = current["status"]
        status.update(podIP=ip, podIPs=[{"ip": ip}])
        now = now_rfc3339()
        if outcome == "failed":
            self._terminate(current, runtime, exit_code=1)
            return
        ready = outcome != "crashloop"
        statuses = []
        for c in current["spec"].get("containers") or []:
            entry: Obj = {
                "name": c["name"], "image": c.get("image", ""), "imageID": f"kubesim://{c.get('image', '')}",
                "containerID": f"kubesim://{uid[:8]}-{c['name']}", "ready": ready, "started": ready,
                "restartCount": 0, "lastState": {}, "state": {"running": {"startedAt": now}},
            }
            if not ready:
                entry.update(restartCount=1, state=_backoff(c["name"], current),
                             lastState={"terminated": _terminated(1, now)})
            statuses.append(entry)
        status.update(
            phase="Running",
            containerStatuses=statuses,
            conditions=_pod_conditions(ready, "ContainersNotReady" if not ready else ""),
        )
        stored = self.ctx.store.update(POD.key, current)
        if ready:
            self.ctx.event(stored, "Started", "Started container", component="kubelet")
        else:
            self.ctx.event(stored, "BackOff", "Back-off restarting failed container", "Warning", "kubelet")
            runtime.restarts = 1
            self.ctx.later(self.ctx.jittered() * 2, lambda: self._crash_again(stored))
        if outcome == "completes":
            duration = max(programs[n].duration for n in programs) if programs else 0.0
            self.ctx.later(duration + self.ctx.jittered() / 2, lambda: self._finish(stored))

    def _crash_again(self, pod: Obj) -> None:
        current = self._current(pod)
        runtime = self.runtimes.get(pod["metadata"]["uid"])
        if current is None or runtime is None:
            return
        runtime.restarts += 1
        runtime.started_at = time.time()
        now = now_rfc3339()
        for entry in current["status"].get("containerStatuses") or []:
            entry["restartCount"] = runtime.restarts
            entry["lastState"] = {"terminated": _terminated(1, now)}
        self.ctx.store.update(POD.key, current)
        # Back off like the kubelet (doubling), capped so a long test does not see a frozen pod.
        delay = self.ctx.jittered() * min(2 ** runtime.restarts, 16)
        self.ctx.later(delay, lambda: self._crash_again(current))

    def _finish(self, pod: Obj) -> None:
        current = self._current(pod)
        runtime = self.runtimes.get(pod["metadata"]["uid"])
        if current is None or runtime is None:
            return
        codes = [p.exit_code for p in runtime.programs.values()] or [0]
        self._terminate(current, runtime, exit_code=max(codes))

    def _terminate(self, pod: Obj, runtime: Runtime, exit_code: int) -> None:
        runtime.finished = True
        now = now_rfc3339()
        statuses = []
        for c in pod["spec"].get("containers") or []:
            code = exit_code if exit_code else runtime.programs[c["name"]].exit_code
            statuses.append({
                "name": c["name"], "image": c.get("image", ""), "imageID": f"kubesim://{c.get('image', '')}",
                "containerID": f"kubesim://{pod['metadata']['uid'][:8]}-{c['name']}", "ready": False,
                "started": False, "restartCount": 0, "lastState": {}, "state": {"terminated": _terminated(code, now)},
            })
        pod["status"].update(
            phase="Failed" if exit_code else "Succeeded",
            containerStatuses=statuses,
            conditions=_pod_conditions(False, "PodFailed" if exit_code else "PodCompleted"),
        )
        self.ctx.store.update(POD.key, pod)

    # -- logs ----------------------------------------------------------------------------------------

    def log_lines(self, pod: Obj, container: str | None) -> tuple[Runtime, Program, str]:
        """Resolve which container's output a log request reads; 400 as the kubelet would otherwise."""
        meta = pod["metadata"]
        names = [c["name"] for c in pod["spec"].get("containers") or []]
        if container is None:
            if len(names) != 1:
                raise bad_request(
                    f"a container name must be specified for pod {meta['name']}, choose one of: [{' '.join(names)}]"
                )
            container = names[0]
        if container not in names:
            raise bad_request(f"container {container} is not valid for pod {meta['name']}")
        runtime = self.runtimes.get(meta["uid"])
        if runtime is None:
            raise bad_request(
                f'container "{container}" in pod "{meta["name"]}" is waiting to start: ContainerCreating'
            )
        return runtime, runtime.programs[container], container


def _ref(pod: Obj) -> str:
    return f"{pod['metadata']['namespace']}/{pod['metadata']['name']}"


def _cond(type_: str, status: str, reason: str = "") -> Obj:
    cond: Obj = {"type": type_, "status": status, "lastProbeTime": None, "lastTransitionTime": now_rfc3339()}
    if reason:
        cond["reason"] = reason
    return cond


def _pod_conditions(ready: bool, reason: str) -> list[Obj]:
    flag = "True" if ready else "False"
    return [
        _cond("PodReadyToStartContainers", "True"),
        _cond("Initialized", "True"),
        _cond("Ready", flag, reason),
        _cond("ContainersReady", flag, reason),
        _cond("PodScheduled", "True"),
    ]


def _terminated(code: int, now: str) -> Obj:
    return {
        "exitCode": code,
        "reason": "Completed" if code == 0 else "Error",
        "startedAt": now,
        "finishedAt": now,
        "containerID": "kubesim://terminated",
    }


def _backoff(name: str, pod: Obj) -> Obj:
    message = f"back-off 10s restarting failed container={name} pod={pod['metadata']['name']}_" \
              f"{pod['metadata']['namespace']}({pod['metadata']['uid']})"
    return {"waiting": {"reason": "CrashLoopBackOff", "message": message}}
