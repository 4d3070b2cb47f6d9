"""Cron triggers as Temporal Schedules, kept in step with saved pipelines.

One schedule per enabled cron trigger, id `cron.<app>.<pipeline>.<trigger id or index>`, visible
(and pausable, triggerable) in the Temporal UI. Saving a pipeline creates/updates its schedules with
the new revision as their action and deletes those its triggers no longer declare; deleting the
pipeline deletes them. A schedule the server refuses (bad cron, unknown timezone) fails the save with
a 422 and undoes the schedules created by that save, so nothing is half-applied.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.service import RPCError, RPCStatusCode

from core.errors import ServiceError
from core.policy import Identity, Policy
from core.settings import GennakerSettings
from core.tenancy import resolve_tenancy, submitter_of
from workflows.model import FieldError, PipelineInvalid, PipelineSpec, resolve_parameters
from workflows.search import initial_attributes
from workflows.state import PIPELINE_WORKFLOW, PipelineRunInput, TriggerInfo
from workflows.triggers import CronTrigger


def cron_triggers(spec: PipelineSpec, enabled_only: bool = True) -> dict[str, tuple[int, CronTrigger]]:
    found: dict[str, tuple[int, CronTrigger]] = {}
    for index, trigger in enumerate(spec.triggers):
        if isinstance(trigger, CronTrigger) and (trigger.enabled or not enabled_only):
            found[f"cron.{spec.application}.{spec.name}.{trigger.id or index}"] = (index, trigger)
    return found


def _overlap(spec: PipelineSpec) -> ScheduleOverlapPolicy:
    if not spec.limitConcurrent:
        return ScheduleOverlapPolicy.ALLOW_ALL
    return ScheduleOverlapPolicy.BUFFER_ONE if spec.keepWaitingPipelines else ScheduleOverlapPolicy.SKIP


def _schedule(
    settings: GennakerSettings,
    spec: PipelineSpec,
    revision: int,
    schedule_id: str,
    index: int,
    trigger: CronTrigger,
    policy: Policy | None,
) -> Schedule:
    try:
        parameters = resolve_parameters(spec, trigger.parameters)
    except PipelineInvalid as exc:
        raise ServiceError(
            422, "invalid_trigger", f"cron trigger {index}: {exc}", f"triggers[{index}].parameters"
        ) from None
    # A cron run acts as the pipeline's serviceAccount with its application's grants, like every
    # triggered run (docs/security.md). The action is written now, so the grants are those of the
    # policy at save time: saving again (or restarting the gateway with a new policy and re-saving)
    # refreshes them. A serviceAccount that may not EXECUTE an application the pipeline names fails
    # the save with the same 403 a submission would get.
    run_as = Identity(subject=spec.serviceAccount or "cron-trigger", via="trigger")
    grants, delegations = resolve_tenancy(spec, policy, run_as)
    seconds = trigger.interval_seconds()
    return Schedule(
        action=ScheduleActionStartWorkflow(
            PIPELINE_WORKFLOW,
            PipelineRunInput(
                pipeline=spec,
                parameters=parameters,
                revision=revision,
                trigger=TriggerInfo(
                    type="cron",
                    source=schedule_id,
                    payload={"cron": trigger.cron or trigger.interval},
                    runAs=run_as.subject,
                ),
                submitter=submitter_of(run_as),
                grants=grants,
                delegations=delegations,
            ),
            id=f"{spec.application}.{spec.name}.cron",  # the server appends the scheduled time
            task_queue=settings.task_queue,
            typed_search_attributes=initial_attributes(spec.application, spec.name, "cron"),
            static_summary=f"{spec.application}/{spec.name} r{revision} (cron {trigger.cron or trigger.interval})",
        ),
        spec=ScheduleSpec(
            cron_expressions=[trigger.cron] if trigger.cron else [],
            intervals=[ScheduleIntervalSpec(every=timedelta(seconds=seconds))] if seconds else [],
            time_zone_name=trigger.timezone if trigger.cron else None,
        ),
        policy=SchedulePolicy(overlap=_overlap(spec), catchup_window=timedelta(minutes=1)),
    )


async def sync_schedules(
    client: Client,
    settings: GennakerSettings,
    spec: PipelineSpec,
    revision: int,
    previous: PipelineSpec | None,
    *,
    policy: Policy | None = None,
) -> list[str]:
    """Make the pipeline's schedules match `spec`; returns the ids of its live schedules."""
    desired = cron_triggers(spec)
    created: list[str] = []
    try:
        for schedule_id, (index, trigger) in desired.items():
            schedule = _schedule(settings, spec, revision, schedule_id, index, trigger, policy)
            try:
                await client.create_schedule(
                    schedule_id,
                    schedule,
                    search_attributes=initial_attributes(spec.application, spec.name, "cron"),
                )
                created.append(schedule_id)
            except ScheduleAlreadyRunningError:

                def replace(_: ScheduleUpdateInput, schedule: Schedule = schedule) -> ScheduleUpdate:
                    return ScheduleUpdate(schedule=schedule)

                await client.get_schedule_handle(schedule_id).update(replace)
            except RPCError as exc:
                if exc.status in (RPCStatusCode.INVALID_ARGUMENT, RPCStatusCode.FAILED_PRECONDITION):
                    raise ServiceError(
                        422, "invalid_trigger", f"cron trigger {index}: {exc.message}", f"triggers[{index}]"
                    ) from None
                raise
    except BaseException:
        for schedule_id in created:
            await delete_schedule(client, schedule_id)
        raise
    stale = set(cron_triggers(previous, enabled_only=False)) - set(desired) if previous else set()
    for schedule_id in stale:
        await delete_schedule(client, schedule_id)
    return sorted(desired)


async def delete_schedule(client: Client, schedule_id: str) -> None:
    try:
        await client.get_schedule_handle(schedule_id).delete()
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise


async def delete_pipeline_schedules(client: Client, spec: PipelineSpec) -> None:
    for schedule_id in cron_triggers(spec, enabled_only=False):
        await delete_schedule(client, schedule_id)


def require_cron_floor(spec: PipelineSpec, settings: GennakerSettings) -> None:
    """PipelineInvalid (422) naming each cron trigger whose `interval` is shorter than the gateway's
    `min_cron_interval_seconds`: any WRITE user can save triggers, and every run they start takes a
    slot on the pipeline workers all applications share (a 5-field `cron` fires at most once a
    minute, the default floor)."""
    floor = settings.min_cron_interval_seconds
    errors = [
        FieldError(
            field=f"triggers[{index}].interval",
            message=f"interval {trigger.interval} is shorter than this gateway's minimum of {floor}s "
            "(GENNAKER_MIN_CRON_INTERVAL_SECONDS)",
        )
        for index, trigger in enumerate(spec.triggers)
        if isinstance(trigger, CronTrigger) and (seconds := trigger.interval_seconds()) is not None and seconds < floor
    ]
    if errors:
        raise PipelineInvalid(errors)
