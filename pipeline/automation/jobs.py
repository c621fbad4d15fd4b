"""The full sync job, the SLA clock, and the schedules that run them."""

from __future__ import annotations

import dagster as dg

from pipeline.settings import MissingConnectionError, Settings, load_connections

FCT_HANDOFFS = dg.AssetKey(["marts", "fct_handoffs"])
IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]

# Everything: ingest every source, build and test every model, validate, write back, alert.
full_sync_job = dg.define_asset_job(
    name="full_sync",
    selection=dg.AssetSelection.all(),
    description="Ingest every source, build the funnel, run the quality gate, write feedback back and alert.",
)

# Only the write-back, from the feedback models the last sync built (`handoff feedback`).
writeback_job = dg.define_asset_job(
    name="writeback",
    selection=dg.AssetSelection.key_prefixes(["writeback"]),
    description="Send the feedback models' changed values to the CRM and marketing automation.",
)

# Clocks move without any event: re-evaluating fct_handoffs as of now turns open handoffs at risk
# or breached on time. What reads the SLA state follows (the CRM's SLA fields, the SLA mart and its
# copy for BI tools, the alerts); the rest of the funnel does not change with the clock and is left to the syncs.
SLA_STATE_READERS = [
    FCT_HANDOFFS,
    dg.AssetKey(["intermediate", "int_alerts__waiting_handoffs"]),
    dg.AssetKey(["marts", "mart_sla_performance"]),
    dg.AssetKey(["feedback", "feedback_crm_contacts"]),
    dg.AssetKey(["writeback", "crm_contacts"]),
]
sla_clock_job = dg.define_asset_job(
    name="sla_clock",
    # By group, the copy for BI tools: it exists on DuckDB only.
    selection=dg.AssetSelection.assets(*SLA_STATE_READERS) | dg.AssetSelection.groups("alerts", "serving"),
    description="Re-evaluate every handoff's SLA clock as of now, then update the CRM's SLA fields and send "
    "the at-risk, breached and escalation notices that became due.",
)


def unconfigured_systems() -> dg.SkipReason | None:
    """Why a run that talks to the systems cannot start, or None when it can: a tick without a
    connection skips with the reason instead of starting a run that fails."""
    try:
        load_connections()
    except MissingConnectionError as error:
        return dg.SkipReason(str(error))
    return None


def waiting_run(instance: dg.DagsterInstance, trigger: str) -> dg.DagsterRun | None:
    """A run this trigger started that has not started loading yet. A sensor adds no run behind
    it: a run loads whatever changed up to the moment it starts, so the waiting run will load the
    newer changes too, and a burst of events makes one run rather than a queue that never drains."""
    waiting = instance.get_runs(
        filters=dg.RunsFilter(
            tags={"handoff/trigger": trigger},
            statuses=[dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING],
        ),
        limit=1,
    )
    return waiting[0] if waiting else None


def skip_while_in_flight(
    name: str, job: dg.UnresolvedAssetJobDefinition, cron: str, timezone: str, description: str
) -> dg.ScheduleDefinition:
    """A schedule that starts ``job`` unless the systems are not configured or a run of it is still
    queued or running."""

    @dg.schedule(
        name=name,
        job=job,
        cron_schedule=cron,
        description=description,
        execution_timezone=timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING,
    )
    def start_unless_running(context: dg.ScheduleEvaluationContext):
        if unconfigured := unconfigured_systems():
            return unconfigured
        in_flight = context.instance.get_runs(filters=dg.RunsFilter(job_name=job.name, statuses=IN_FLIGHT), limit=1)
        if in_flight:
            return dg.SkipReason(f"{job.name} run {in_flight[0].run_id} is still in flight")
        return dg.RunRequest()

    return start_unless_running


def build_automation_defs(settings: Settings) -> dg.Definitions:
    clock_minutes = settings.sla_clock_minutes
    return dg.Definitions(
        jobs=[full_sync_job, writeback_job, sla_clock_job],
        schedules=[
            skip_while_in_flight(
                "nightly_full_sync",
                full_sync_job,
                settings.nightly_cron,
                settings.timezone,
                "Nightly full sync at HANDOFF_NIGHTLY_CRON (default 02:00) in HANDOFF_TIMEZONE.",
            ),
            skip_while_in_flight(
                "sla_clock_schedule",
                sla_clock_job,
                f"*/{clock_minutes} * * * *",
                settings.timezone,
                f"Re-evaluates SLA clocks every {clock_minutes} minutes (HANDOFF_SLA_CLOCK_MINUTES).",
            ),
        ],
    )
