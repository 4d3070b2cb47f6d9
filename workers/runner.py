"""Building the worker that runs pipeline workflows and the activities that need no credentials."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.cluster_lease import ClusterLeaseActivities
from activities.gate import GateActivities
from activities.jenkins import JenkinsActivities
from activities.notify import NotifyActivities
from activities.pipelines import SavedPipelineActivities
from activities.prior_artifacts import PriorArtifactActivities
from activities.script import ScriptActivities
from activities.triggers import PipelineTriggerActivities
from activities.webhook import WebhookActivities
from core.settings import DEFAULT_TASK_QUEUE
from core.store import PipelineStore
from workers.config import WorkerConfig
from workers.providers import artifact_activities
from workflows.accounts import AccountDirectory
from workflows.cluster_lease import ClusterLease
from workflows.gate import PipelineGate
from workflows.pipeline import PipelineWorkflow
from workflows.reads import ClusterReadWorkflow

__all__ = ["DEFAULT_TASK_QUEUE", "pipeline_worker", "workflow_runner"]

# Third-party modules, plus `workflows`, are passed through rather than re-imported into every
# workflow's sandbox. `workflows` must stay: re-importing it (and the activity request models its
# stages reference) into each run cost ~5 s per workflow against 0.05-0.3 s passed through
# (replaying the 10 recorded histories, 2026-12-01, on a loaded 2-core machine), and the stage
# registry must be one object (the benchmark and any plugin register stage types into it).
# `activities` is not listed: workflow code imports it only inside imports_passed_through() (activity
# references), and `python -m bench overhead` showed no difference without it. Determinism in
# workflows/ is kept by ruff's banned-api rules (pyproject.toml), which cover all workflow code, and
# by replaying recorded histories in the test suite.
PASSTHROUGH_MODULES = ("workflows", "pydantic", "pydantic_core", "annotated_types", "cel", "yaml")


def workflow_runner() -> SandboxedWorkflowRunner:
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH_MODULES)
    )


def generic_activities(config: WorkerConfig) -> list[Callable[..., Any]]:
    """Activities that need no account: notifications, Jenkins, scripts, webhooks. Clients (Docker,
    HTTP) are made when an activity runs, so a worker without Docker still starts."""
    notify = NotifyActivities(
        config.notifications, config.temporal_ui_url, gateway_url=config.gateway_url, egress=config.egress
    )
    webhook = WebhookActivities(config.egress)
    return [
        notify.send_notification,
        JenkinsActivities(config.jenkins, config.egress).run_jenkins_build,
        ScriptActivities(config.scripts).run_script,
        webhook.call_webhook,
        webhook.poll_webhook_status,
    ]


def pipeline_worker(
    client: Client,
    store: PipelineStore,
    *,
    task_queue: str = DEFAULT_TASK_QUEUE,
    config: WorkerConfig | None = None,
    extra_activities: Sequence[Callable[..., Any]] = (),
    extra_workflows: Sequence[type] = (),
    activity_threads: int = 32,
) -> Worker:
    config = config or WorkerConfig()
    saved = SavedPipelineActivities(store)
    gate = GateActivities(client)
    lease = ClusterLeaseActivities(client)
    triggers = PipelineTriggerActivities(client, config.model_copy(update={"task_queue": task_queue}), store)
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[
            PipelineWorkflow,
            PipelineGate,
            ClusterLease,
            AccountDirectory,
            ClusterReadWorkflow,
            *extra_workflows,
        ],
        activities=[
            saved.load_saved_pipeline,
            gate.request_gate,
            lease.request_cluster_lease,
            lease.holder_running,
            triggers.fire_pipeline_triggers,
            *generic_activities(config),
            # Bakes without an account run here; usePriorArtifact reads the last run through visibility.
            *artifact_activities(config),
            *PriorArtifactActivities(client).activities(),
            *extra_activities,
        ],
        activity_executor=ThreadPoolExecutor(max_workers=activity_threads, thread_name_prefix="activity"),
        workflow_runner=workflow_runner(),
        graceful_shutdown_timeout=timedelta(seconds=10),
        # After a worker crash its cached workflows move to another worker only when this expires.
        sticky_queue_schedule_to_start_timeout=timedelta(seconds=config.sticky_timeout_seconds),
    )
