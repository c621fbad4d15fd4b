"""The funnel's headline numbers as metadata on the marts' materializations.

Dagster plots a numeric metadata value run over run on the asset's page, so SLA performance, lead
acceptance and plan pacing can be watched there without opening a table. The numbers are read from
the marts once dbt has built them, with the same definitions the marts document.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import dagster as dg
import pandas as pd
import sqlalchemy as sa

from pipeline.warehouse import Reader, Warehouse

Headlines = dict[str, float | int | None]


def handoff_headlines(reader: Reader) -> Headlines:
    """SLA met rate and breaches by policy, time to first touch, acceptance and the rejection mix."""
    handoffs = reader.frame(
        "select policy, sla_state, business_minutes_to_first_touch, decision, rejection_reason "
        f"from {reader.table('marts', 'fct_handoffs')}"
    )
    states = handoffs["sla_state"]
    # As mart_sla_performance: of the clocks that stopped, met or breached.
    stopped = int(states.isin(["met", "breached"]).sum())
    decided = handoffs["decision"].dropna()
    first_touch = pd.to_numeric(handoffs["business_minutes_to_first_touch"]).dropna()
    headlines: Headlines = {
        "handoffs": len(handoffs),
        "sla_met_rate": _share(int((states == "met").sum()), stopped),
        "sla_breached": int((states == "breached").sum()),
        "first_touch_business_minutes_p50": _quantile(first_touch, 0.5),
        "first_touch_business_minutes_p90": _quantile(first_touch, 0.9),
        "acceptance_rate": _share(int((decided == "accepted").sum()), len(decided)),
    }
    breached = handoffs[states == "breached"].groupby("policy").size()
    headlines |= {
        f"sla_breached_by_policy/{policy}": int(breached.get(policy, 0)) for policy in handoffs["policy"].unique()
    }
    rejections = handoffs["rejection_reason"].dropna().value_counts()
    headlines |= {f"rejections_by_reason/{reason}": int(count) for reason, count in rejections.items()}
    return headlines


def plan_headlines(reader: Reader) -> Headlines:
    """The quarter under way (the latest that has started) against its plan: MQLs and won revenue."""
    started = reader.rows(
        "select mqls, mql_target, expected_mqls_to_date, mql_pacing, won_revenue, revenue_target, "
        "expected_revenue_to_date, revenue_pacing "
        f"from {reader.table('marts', 'mart_revenue_plan')} where elapsed_share > 0 order by quarter_start"
    )
    if not started:
        return {}
    return {f"current_quarter/{name}": float(value) for name, value in started[-1].items() if value is not None}


HEADLINES: dict[dg.AssetKey, Callable[[Reader], Headlines]] = {
    dg.AssetKey(["marts", "fct_handoffs"]): handoff_headlines,
    dg.AssetKey(["marts", "mart_revenue_plan"]): plan_headlines,
}


def headline_asset(event: object) -> dg.AssetKey | None:
    """The mart with headlines that a dbt event reports on (its materialization or a test of it)."""
    if isinstance(event, dg.Output):
        return next((key for key in HEADLINES if key.to_python_identifier() == event.output_name), None)
    if isinstance(event, dg.AssetCheckResult) and event.asset_key in HEADLINES:
        return event.asset_key
    return None


def with_headlines(events: list, warehouse: Warehouse, log: logging.Logger) -> list:
    """``events`` of a dbt build, the materializations of the marts with headlines carrying their
    numbers. Headlines that cannot be read are left out with a warning: the build itself succeeded."""
    built = {key for event in events if isinstance(event, dg.Output) and (key := headline_asset(event))}
    if not built:
        return events
    try:
        with warehouse.read() as reader:
            numbers = {key: HEADLINES[key](reader) for key in built}
    except sa.exc.SQLAlchemyError as error:
        log.warning(f"headline numbers not read: {error}")
        return events
    return [
        event.with_metadata({**event.metadata, **_present(numbers[key])})
        if isinstance(event, dg.Output) and (key := headline_asset(event))
        else event
        for event in events
    ]


def _present(headlines: Headlines) -> Headlines:
    # A rate with nothing to divide yet is left out rather than plotted as zero.
    return {name: value for name, value in headlines.items() if value is not None}


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _quantile(values: pd.Series, q: float) -> float | None:
    # Linear interpolation, as the marts' percentile_cont.
    return round(float(values.quantile(q)), 2) if len(values) else None
