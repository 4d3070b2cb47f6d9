"""Simulated controllers, run level-triggered on the server's event loop.

Any store change wakes the manager, which runs every controller once per pass until a pass changes
nothing; each controller writes only when what it computes differs from what is stored, so passes
converge. Timers (pod start, crash back-off, job completion, progress deadlines) wake it too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from kubesim.controllers.base import Context, Controller
from kubesim.controllers.crd import CustomResourceDefinitionController
from kubesim.controllers.daemonset import DaemonSetController
from kubesim.controllers.deployment import DeploymentController
from kubesim.controllers.disruption import DisruptionController
from kubesim.controllers.endpoints import EndpointsController
from kubesim.controllers.garbage import GarbageCollector
from kubesim.controllers.hpa import HorizontalPodAutoscalerController
from kubesim.controllers.job import JobController
from kubesim.controllers.kubelet import Kubelet
from kubesim.controllers.replicaset import ReplicaSetController
from kubesim.controllers.statefulset import StatefulSetController
from kubesim.controllers.volumes import VolumeBinder
from kubesim.store import Event

__all__ = ["Context", "ControllerManager", "Kubelet"]

log = logging.getLogger("kubesim.controllers")


class ControllerManager:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.kubelet = Kubelet(ctx)
        self.controllers: list[Controller] = [
            CustomResourceDefinitionController(ctx),
            GarbageCollector(ctx),
            DeploymentController(ctx),
            ReplicaSetController(ctx),
            StatefulSetController(ctx),
            DaemonSetController(ctx),
            VolumeBinder(ctx),
            DisruptionController(ctx),
            JobController(ctx),
            self.kubelet,
            EndpointsController(ctx),
            HorizontalPodAutoscalerController(ctx),
        ]
        self._wake = asyncio.Event()
        ctx.wake = self._wake.set
        ctx.store.add_listener(self._on_event)
        self._task: asyncio.Task[None] | None = None

    def _on_event(self, event: Event) -> None:
        if event.key != "events":  # Events are written by controllers and drive none of them
            self._wake.set()

    def start(self) -> None:
        self._wake.set()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="kubesim-controllers")

    async def stop(self) -> None:
        self.ctx.cancel_timers()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            for controller in self.controllers:
                try:
                    controller.reconcile()
                except Exception:  # a controller bug must not stop the others or the API
                    log.exception("controller %s failed", type(controller).__name__)
            # Let API requests in between passes.
            await asyncio.sleep(0)
