"""Starting pipelines whose `pipeline` trigger waits for the execution that just ended.

The activity runs the same trigger dispatch the gateway runs for webhooks (core/triggers.py), with
the worker's own Temporal client, settings, store and access policy. With the policy a triggered run
acts as its pipeline's `serviceAccount` under the same rules as a webhook's: the execution records
that identity and its application's grants, and `application:` fields are checked against what the
serviceAccount may EXECUTE (docs/security.md "Triggered runs"). The pipeline worker reads the
gateway's policy file (`auth_policy_file`, env GENNAKER_AUTH_POLICY_FILE); without one it is a
single-tenant installation and the runs are open, as everything else is there.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel
from temporalio import activity

if TYPE_CHECKING:
    from temporalio.client import Client

    from core.policy import Policy
    from core.settings import GennakerSettings
    from core.store import PipelineStore


class PipelineFinished(BaseModel):
    application: str
    pipeline: str
    executionId: str
    status: str


class PipelineTriggerActivities:
    def __init__(
        self, client: Client, settings: GennakerSettings, store: PipelineStore, policy: Policy | None = None
    ) -> None:
        self._client = client
        self._settings = settings
        self._store = store
        # Read once, at worker start: a policy file that does not parse stops the worker (PolicyError)
        # instead of letting triggered runs start with open grants.
        from core.policy import Policy  # core imports workflows, which import this module

        policy_file: Path | None = getattr(settings, "auth_policy_file", None)
        self._policy = policy if policy is not None else (Policy.load(policy_file) if policy_file else None)

    @activity.defn(name="fire_pipeline_triggers")
    async def fire_pipeline_triggers(self, event: PipelineFinished) -> list[str]:
        """Ids of the executions started (or already started by an earlier attempt)."""
        # Imported here, not at the top: workflows/pipeline.py imports this module for
        # PipelineFinished, and core.triggers imports workflows/pipeline.py to start executions.
        from core.triggers import dispatch_pipeline_finished

        result = await dispatch_pipeline_finished(
            self._client,
            self._settings,
            self._store.aio,
            application=event.application,
            pipeline=event.pipeline,
            execution_id=event.executionId,
            status=event.status,
            policy=self._policy,
        )
        for refused in result.notStarted:  # a policy refusal is logged as a warning: the operator's only trace
            log = activity.logger.warning if refused.reason.startswith("policy") else activity.logger.info
            log("pipeline trigger of %s/%s not started: %s", refused.application, refused.pipeline, refused.reason)
        return [started.id for started in result.started]
