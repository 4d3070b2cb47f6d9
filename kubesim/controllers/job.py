"""Job controller: run pods until `completions` succeed or more than `backoffLimit` fail.

Follows kubernetes/kubernetes `pkg/controller/job/job_controller.go` for the NonIndexed mode: up to
`parallelism` active pods, `status.active/succeeded/failed/ready`, `startTime`, `completionTime`, and
the terminal conditions `Complete` (reason CompletionsReached) and `Failed` (reason
BackoffLimitExceeded, "Job has reached the specified backoff limit"); `spec.suspend` deletes active
pods and sets `Suspended`. Unlike a real cluster there is no exponential back-off between retries:
a failed pod is replaced on the next pass. Pods with restartPolicy OnFailure are treated as Never
(a failing container fails its pod).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from kubesim.api import random_suffix
from kubesim.controllers.base import Context, condition, controller_ref, controller_uid, is_terminating, pod_is_ready
from kubesim.errors import ApiError
from kubesim.resources import JOB, POD
from kubesim.store import now_rfc3339

Obj = dict[str, Any]


def _phase(pod: Obj) -> str:
    return str((pod.get("status") or {}).get("phase", "Pending"))


def _finished(status: Obj) -> str | None:
    for cond in status.get("conditions") or []:
        if cond.get("type") in ("Complete", "Failed") and cond.get("status") == "True":
            return str(cond["type"])
    return None


@dataclass
class JobController:
    ctx: Context

    def reconcile(self) -> None:
        pods_by_owner: dict[str, list[Obj]] = {}
        for pod in self.ctx.store.list(POD.key):
            owner = controller_uid(pod)
            if owner:
                pods_by_owner.setdefault(owner, []).append(pod)
        for job in self.ctx.store.list(JOB.key):
            if not is_terminating(job):
                self._sync(job, pods_by_owner.get(job["metadata"]["uid"], []))

    def _sync(self, job: Obj, pods: list[Obj]) -> None:
        spec = job["spec"]
        old = job.get("status") or {}
        status: Obj = copy.deepcopy(old)
        active = [p for p in pods if _phase(p) not in ("Succeeded", "Failed") and not is_terminating(p)]
        succeeded = sum(1 for p in pods if _phase(p) == "Succeeded")
        failed = sum(1 for p in pods if _phase(p) == "Failed")
        completions = int(spec.get("completions") or 1)
        finished = _finished(old)
        conditions: list[Obj] = list(old.get("conditions") or [])
        if finished is None:
            if succeeded >= completions:
                finished = "Complete"
                conditions.append(condition("Complete", "True", "CompletionsReached",
                                            "Reached expected number of succeeded pods", probe_time=True))
                status["completionTime"] = now_rfc3339()
                self.ctx.event(job, "Completed", "Job completed", component="job-controller")
            elif failed > int(spec.get("backoffLimit", 6)):
                finished = "Failed"
                conditions.append(condition("Failed", "True", "BackoffLimitExceeded",
                                            "Job has reached the specified backoff limit", probe_time=True))
                self.ctx.event(job, "BackoffLimitExceeded", "Job has reached the specified backoff limit",
                               "Warning", "job-controller")
        suspended = bool(spec.get("suspend"))
        if finished or suspended:
            for pod in active:
                self.ctx.store.delete(POD.key, pod["metadata"]["namespace"], pod["metadata"]["name"])
            active = []
        else:
            status.setdefault("startTime", now_rfc3339())
            want = min(int(spec.get("parallelism", 1)), completions - succeeded) - len(active)
            for _ in range(max(want, 0)):
                new_pod = self._create_pod(job)
                if new_pod is not None:
                    active.append(new_pod)
        was_suspended = next((c for c in conditions if c.get("type") == "Suspended"), None)
        conditions = [c for c in conditions if c.get("type") != "Suspended"]
        if suspended and not finished:
            conditions.append(was_suspended or condition("Suspended", "True", "JobSuspended", "Job suspended",
                                                         probe_time=True))
        status["conditions"] = conditions
        if not conditions:
            del status["conditions"]
        for name, value in (("active", len(active)), ("succeeded", succeeded), ("failed", failed)):
            if value:
                status[name] = value
            else:
                status.pop(name, None)
        status["ready"] = sum(1 for p in active if pod_is_ready(p))
        status["terminating"] = 0
        status["uncountedTerminatedPods"] = {}
        self.ctx.write_status(JOB, job, status)

    def _create_pod(self, job: Obj) -> Obj | None:
        template = copy.deepcopy(job["spec"].get("template") or {})
        tmeta = template.get("metadata") or {}
        name = job["metadata"]["name"]
        pod: Obj = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": f"{name}-{random_suffix()}",
                "generateName": f"{name}-",
                "labels": tmeta.get("labels") or {},
                "ownerReferences": [controller_ref(job)],
            },
            "spec": template.get("spec") or {},
        }
        if tmeta.get("annotations"):
            pod["metadata"]["annotations"] = tmeta["annotations"]
        try:
            created = self.ctx.api.create(POD, job["metadata"]["namespace"], pod)
        except ApiError as exc:
            self.ctx.event(job, "FailedCreate", f"Error creating: {exc.message}", "Warning", "job-controller")
            return None
        self.ctx.event(job, "SuccessfulCreate", f"Created pod: {created['metadata']['name']}",
                       component="job-controller")
        return created
