"""A tenant with WRITE on one application tries to flood the pipeline workers every application
shares: cron triggers firing every second, or a pipeline with hundreds of triggers. The gateway
refuses the save (422 naming the field and the limit) and creates no schedule."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from temporalio.client import Client
from temporalio.service import RPCError

from api.settings import GatewaySettings
from core.store import PipelineStore
from tests.support.trigger_rig import TriggerRig, save, unique
from workers.devserver import TemporalDevServer
from workflows.model import MAX_TRIGGERS

RIG = TriggerRig(secret_name="flood", secret="flood-secret-value")


@pytest.fixture
async def api(
    task_queue: str,
    worker: None,
    temporal_server: TemporalDevServer,
    client: Client,
    store: PipelineStore,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[httpx.AsyncClient]:
    settings = RIG.settings(temporal_server, task_queue, store, monkeypatch)
    # The product default, not the trigger tests' 1 s floor.
    floor = GatewaySettings.model_fields["min_cron_interval_seconds"].default
    settings = settings.model_copy(update={"min_cron_interval_seconds": floor})
    async with RIG.gateway(settings, client, store) as http:
        yield http


def pipeline(name: str, triggers: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "application": "trig",
        "name": name,
        "triggers": triggers,
        "stages": [{"refId": "w", "type": "evaluateVariables", "variables": [{"key": "k", "value": "v"}]}],
    }


async def schedule_exists(client: Client, schedule_id: str) -> bool:
    try:
        await client.get_schedule_handle(schedule_id).describe()
    except RPCError:
        return False
    return True


async def test_a_cron_interval_under_the_floor_is_refused_and_schedules_nothing(
    api: httpx.AsyncClient, client: Client, store: PipelineStore
) -> None:
    """Saving a pipeline with a valid `1m` trigger and a `1s` one, under the default 60 s floor."""
    name = unique("flood")
    triggers = [{"type": "cron", "interval": "1m", "id": "ok"}, {"type": "cron", "interval": "1s", "id": "tick"}]
    response = await save(api, pipeline(name, triggers))
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert "triggers[1].interval" in response.text and "minimum of 60s" in error["message"], error
    # Refused whole: neither the valid trigger's schedule nor the pipeline exists.
    assert not await schedule_exists(client, f"cron.trig.{name}.ok")
    assert not await schedule_exists(client, f"cron.trig.{name}.tick")
    assert store.get("trig", name) is None
    # At the floor it is accepted (the positive side of the same check).
    accepted = await save(api, pipeline(name, [{"type": "cron", "interval": "60s", "id": "ok"}]))
    assert accepted.status_code == 201, accepted.text
    assert await schedule_exists(client, f"cron.trig.{name}.ok")
    assert (await save(api, pipeline(name, []))).status_code == 200  # removes the schedule


async def test_more_triggers_than_the_limit_are_refused(api: httpx.AsyncClient, client: Client) -> None:
    """Saving a pipeline with one cron trigger more than MAX_TRIGGERS."""
    name = unique("flood")
    triggers = [{"type": "cron", "cron": "0 3 * * *", "id": f"t{i}"} for i in range(MAX_TRIGGERS + 1)]
    response = await save(api, pipeline(name, triggers))
    assert response.status_code == 422, response.text
    assert "triggers" in response.text and str(MAX_TRIGGERS) in response.text, response.text
    assert not await schedule_exists(client, f"cron.trig.{name}.t0")
