"""The hot path and what follows it.

A webhook's run carries only what the CRM, marketing automation and the alerts read (``HOT_PATH``):
a lead handed to sales reaches its owner's record without waiting for attribution or plan pacing.
The rest (``FOLLOWERS``: the dbt models tagged ``analytics`` and the copy of the marts for BI tools)
follows with Dagster's declarative automation, in runs of its own, at most every
``HANDOFF_ANALYTICS_MINUTES`` and only once something it reads has changed. Full syncs (nightly,
``handoff sync``) still build everything.
"""

from __future__ import annotations

from typing import cast

import dagster as dg

from pipeline.settings import Settings

ANALYTICS_TAG = "analytics"
HOT_PATH = dg.AssetSelection.key_prefixes(["writeback"], ["alerting"], ["alerts"]).upstream()
FOLLOWERS = HOT_PATH.downstream() - HOT_PATH


def follows_changes(settings: Settings) -> dg.AutomationCondition:
    """True once a tick of the analytics cadence has passed and something the asset reads has been
    updated since it was last built, while nothing it reads is being built: a webhook's run never
    shares the warehouse with a rebuild of the analytics it started, and a burst of webhooks makes
    one rebuild."""
    cadence = f"*/{settings.analytics_minutes} * * * *"
    # Typed for asset keys alone, where since_last_handled wants a condition on assets and checks.
    tick: dg.AutomationCondition = cast(
        dg.AutomationCondition, dg.AutomationCondition.cron_tick_passed(cadence, settings.timezone)
    )
    return (
        dg.AutomationCondition.in_latest_time_window()
        & tick.since_last_handled()
        & dg.AutomationCondition.any_deps_updated().since_last_handled()
        & ~dg.AutomationCondition.any_deps_missing()
        & ~dg.AutomationCondition.any_deps_in_progress()
        & ~dg.AutomationCondition.in_progress()
    ).with_label(f"follows changes every {settings.analytics_minutes} min")


def build_analytics_defs(settings: Settings) -> dg.Definitions:
    sensor = dg.AutomationConditionSensorDefinition(
        "analytics_follow_changes",
        target=FOLLOWERS,
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=settings.sensor_interval_seconds,
        run_tags={"handoff/trigger": "analytics_follow_changes"},
        description=f"Rebuilds the analytics marts, the quality flags and the copy for BI tools at most every "
        f"{settings.analytics_minutes} minutes (HANDOFF_ANALYTICS_MINUTES), once what they read has changed: "
        "the webhooks' runs leave them out.",
    )
    return dg.Definitions(sensors=[sensor])
