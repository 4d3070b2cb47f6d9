"""A cron run acts as its pipeline's serviceAccount under the policy, as webhook and pipeline-trigger
runs do (issue 11 item 1, "Triggered runs act as the pipeline's serviceAccount").

A cron trigger is a Temporal Schedule whose action is built when the pipeline is saved
(core/schedules.py): the save resolves the tenancy with the gateway's policy the way
core/launch.start_execution does, so the action records the serviceAccount and its grants.
"""

from __future__ import annotations

import uuid

import httpx
import pytest
from temporalio.client import Client, ScheduleActionStartWorkflow
from temporalio.service import RPCError, RPCStatusCode

from tests.integration.test_auth import Tokens, api, bearer, oidc_key, settings, tokens  # noqa: F401
from workflows.state import PipelineRunInput


async def test_a_cron_schedule_records_the_service_account_and_grants(
    api: httpx.AsyncClient,  # noqa: F811
    tokens: Tokens,  # noqa: F811
    client: Client,
) -> None:
    """A saved authz pipeline with a cron trigger and a serviceAccount."""
    name = "cron-" + uuid.uuid4().hex[:6]
    pipeline = {
        "application": "authz",
        "name": name,
        "serviceAccount": "authz-bot",
        "triggers": [{"type": "cron", "cron": "0 3 * * *", "id": "nightly"}],
        "stages": [{"refId": "w", "type": "wait", "waitTime": 0}],
    }
    saved = await api.put(f"/applications/authz/pipelines/{name}", json=pipeline, headers=bearer(tokens.root))
    assert saved.status_code == 201, saved.text
    try:
        described = await client.get_schedule_handle(f"cron.authz.{name}.nightly").describe()
        action = described.schedule.action
        assert isinstance(action, ScheduleActionStartWorkflow)
        [run_input] = await client.data_converter.decode(action.args, [PipelineRunInput])  # type: ignore[arg-type]
        assert isinstance(run_input, PipelineRunInput)
        assert run_input.submitter is not None and run_input.submitter.subject == "authz-bot"
        assert run_input.grants is not None and run_input.grants.rule != "recorded before tenancy"
    finally:
        await api.delete(f"/applications/authz/pipelines/{name}", headers=bearer(tokens.root))


async def test_a_cron_pipeline_whose_service_account_may_not_run_a_named_application_is_not_saved(
    api: httpx.AsyncClient,  # noqa: F811
    tokens: Tokens,  # noqa: F811
    client: Client,
) -> None:
    """Saving is where a cron run's rights are decided: a child pipeline of another application that
    the serviceAccount may not EXECUTE is refused then (403 naming the field), and no schedule exists."""
    name = "cron-" + uuid.uuid4().hex[:6]
    pipeline = {
        "application": "authz",
        "name": name,
        "serviceAccount": "authz-bot",
        "triggers": [{"type": "cron", "cron": "0 3 * * *", "id": "nightly"}],
        "stages": [
            {
                "refId": "child",
                "type": "pipeline",
                "pipelineConfig": {
                    "application": "other-team",
                    "name": "grab",
                    "stages": [{"refId": "w", "type": "wait", "waitTime": 0}],
                },
            }
        ],
    }
    saved = await api.put(f"/applications/authz/pipelines/{name}", json=pipeline, headers=bearer(tokens.root))
    assert saved.status_code == 403, saved.text
    error = saved.json()["error"]
    assert "other-team" in error["message"] and "authz-bot" in error["message"], error
    assert error["field"] == "stages[child].pipelineConfig.application", error
    with pytest.raises(RPCError) as gone:
        await client.get_schedule_handle(f"cron.authz.{name}.nightly").describe()
    assert gone.value.status == RPCStatusCode.NOT_FOUND
    missing = await api.get(f"/applications/authz/pipelines/{name}", headers=bearer(tokens.root))
    assert missing.status_code == 404, missing.text
