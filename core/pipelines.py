"""Saved pipelines (Spinnaker's front50) as a service: saving keeps cron schedules in step, deleting
removes them, running starts the saved revision. Callers have authorised the caller already.
The store is read and written off the event loop (core/store/aio.py)."""

from __future__ import annotations

from typing import Any, Unpack

from temporalio.client import Client

from core.errors import ServiceError, not_found
from core.launch import ExecutionStarted, StartOptions, start_execution
from core.policy import Identity, Policy
from core.schedules import delete_pipeline_schedules, require_cron_floor, sync_schedules
from core.settings import GennakerSettings
from core.store import AsyncPipelineStore
from core.tenancy import require_run_as, require_trigger_sources
from core.triggers import require_trigger_secrets
from workflows.model import parse_pipeline
from workflows.spel_lint import reject_spel
from workflows.state import TriggerInfo


async def save_pipeline(
    client: Client,
    settings: GennakerSettings,
    store: AsyncPipelineStore,
    application: str,
    name: str,
    data: dict[str, Any],
    author: str,
    *,
    policy: Policy | None = None,
    saver: Identity | None = None,
) -> tuple[int, bool]:
    """Store `data` as the next revision; returns (revision, created: no earlier revision). With a
    `policy` (auth on), its cron schedules run as the pipeline's serviceAccount under that policy,
    and `saver` (who saves) must hold every right of the identity triggered runs act as."""
    for field, expected in (("application", application), ("name", name)):
        given = data.setdefault(field, expected)
        if given != expected:
            raise ServiceError(
                422, "path_mismatch", f"body says {field} {given!r} but the URL says {expected!r}", field
            )
    reject_spel(data)  # a leftover SpEL `${ }` is an error, not literal text (DESIGN.md §3)
    spec = parse_pipeline(data)
    require_trigger_secrets(spec, settings)
    require_cron_floor(spec, settings)
    require_run_as(spec, policy, saver)
    require_trigger_sources(spec, policy, saver)
    previous_revision = await store.get(application, name)
    previous = parse_pipeline(previous_revision.config) if previous_revision else None
    # Schedules first: if the server refuses one, the save fails whole and nothing was stored.
    next_revision = await store.next_revision(application, name)
    await sync_schedules(client, settings, spec, next_revision, previous, policy=policy)
    # Store what the person wrote (validated), not a re-serialisation: it reads back the same, and
    # fields with defaults stay implicit so later default changes apply.
    revision = await store.save(application, name, data, author=author)
    if revision != next_revision:  # a concurrent save won the race for that revision
        await sync_schedules(client, settings, spec, revision, spec, policy=policy)
    return revision, previous_revision is None


async def delete_pipeline(client: Client, store: AsyncPipelineStore, application: str, name: str, author: str) -> int:
    """Write the tombstone revision (history stays) after removing the pipeline's schedules."""
    live = await store.get(application, name)
    if live is None:
        raise not_found(f"pipeline {application}/{name}")
    await delete_pipeline_schedules(client, parse_pipeline(live.config))
    revision = await store.delete(application, name, author=author)
    if revision is None:
        raise not_found(f"pipeline {application}/{name}")
    return revision


async def run_saved_pipeline(
    client: Client,
    settings: GennakerSettings,
    store: AsyncPipelineStore,
    application: str,
    name: str,
    parameters: dict[str, Any],
    trigger: TriggerInfo,
    *,
    revision: int | None = None,
    **options: Unpack[StartOptions],
) -> ExecutionStarted:
    """Start the saved pipeline's `revision` (default: the newest) with start_execution's options."""
    found = await store.get(application, name, revision)
    if found is None:
        which = f" revision {revision}" if revision else ""
        raise not_found(f"pipeline {application}/{name}{which}")
    return await start_execution(
        client, settings, parse_pipeline(found.config), parameters, trigger, revision=found.revision, **options
    )
