"""The full sync job and its nightly schedule."""

from __future__ import annotations

import os

import dagster as dg

# Everything: ingest every source, build and test every model, validate, write back.
full_sync_job = dg.define_asset_job(
    name="full_sync",
    selection=dg.AssetSelection.all(),
    description="Ingest every source, build the funnel, run the quality gate and write feedback back.",
)

# Only the write-back, from the feedback models the last sync built (`handoff feedback`).
writeback_job = dg.define_asset_job(
    name="writeback",
    selection=dg.AssetSelection.key_prefixes(["writeback"]),
    description="Send the feedback models' changed values to the CRM and marketing automation.",
)


def nightly_full_sync() -> dg.ScheduleDefinition:
    """Nightly at ``HANDOFF_NIGHTLY_CRON`` (default 02:00) in ``HANDOFF_TIMEZONE`` (default UTC)."""
    return dg.ScheduleDefinition(
        name="nightly_full_sync",
        job=full_sync_job,
        cron_schedule=os.environ.get("HANDOFF_NIGHTLY_CRON", "0 2 * * *"),
        execution_timezone=os.environ.get("HANDOFF_TIMEZONE", "UTC"),
        default_status=dg.DefaultScheduleStatus.RUNNING,
    )


def build_automation_defs() -> dg.Definitions:
    return dg.Definitions(jobs=[full_sync_job, writeback_job], schedules=[nightly_full_sync()])
