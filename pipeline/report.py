"""`handoff report`: the marts as one HTML page people open instead of reading tables.

Charts are plotly figures; plotly.js is written into the page once, so the file needs no network to
be viewed, mailed or attached to a ticket. The page reads what BI tools read: the served copy of
the marts on DuckDB (readable while a run writes), the marts themselves on PostgreSQL.
"""

from __future__ import annotations

import dataclasses
import html
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from pipeline.settings import DataHome, Settings
from pipeline.warehouse import Reader, Warehouse

FUNNEL_STAGES = (
    ("mqls", "MQL"),
    ("accepted", "Accepted"),
    ("sqls", "SQL"),
    ("opportunities", "Opportunity"),
    ("won", "Won"),
)
TOP_CAMPAIGNS = 15
PREFERRED_ATTRIBUTION_MODEL = "w_shaped"  # credits lead and opportunity creation: what marketing is asked for


class NothingToReport(RuntimeError):
    """The marts are not there yet."""


@dataclass(frozen=True)
class Chart:
    title: str
    explanation: str
    figure: go.Figure


def served_warehouse(settings: Settings) -> Warehouse:
    """Where the report reads the marts: the served DuckDB copy, or the PostgreSQL warehouse."""
    warehouse = Warehouse.of(settings)
    if settings.dbt_target == "duckdb":
        return dataclasses.replace(warehouse, duckdb_path=DataHome.of(settings).served_marts)
    return warehouse


def sla_by_team_and_month(reader: Reader) -> Chart:
    frame = reader.frame(
        """select period_month, coalesce(team_name, 'no team') as team, sum(met) as met,
                  sum(breached) as breached, sum(handoffs) as handoffs
           from marts.mart_sla_performance group by 1, 2 order by 1, 2"""
    )
    decided = frame["met"] + frame["breached"]
    frame["met_rate"] = (frame["met"] / decided.where(decided > 0)).astype(float)
    figure = px.bar(
        frame,
        x="period_month",
        y="met_rate",
        color="team",
        barmode="group",
        hover_data=["met", "breached", "handoffs"],
        labels={"period_month": "month of the MQL", "met_rate": "SLA met rate", "team": "team"},
    )
    figure.update_yaxes(tickformat=".0%", range=[0, 1])
    return Chart(
        "SLA performance by team and month",
        "Share of handoffs touched within their first-touch allowance, of those met or breached.",
        figure,
    )


def time_to_first_touch(reader: Reader) -> Chart:
    frame = reader.frame(
        """select business_minutes_to_first_touch as minutes from marts.fct_handoffs
           where business_minutes_to_first_touch is not null"""
    )
    minutes = frame["minutes"].astype(float)
    figure = px.histogram(minutes, nbins=40, labels={"value": "business minutes from MQL to first touch"})
    figure.update_layout(showlegend=False, yaxis_title="handoffs")
    for quantile, dash in ((0.5, "solid"), (0.9, "dash")):
        value = minutes.quantile(quantile)
        figure.add_vline(x=value, line_dash=dash, annotation_text=f"p{int(quantile * 100)} {value:,.0f} min")
    return Chart(
        "Time to first touch",
        "Business minutes (in the owner's working hours) from the MQL to the first sales touch.",
        figure,
    )


def funnel_waterfall(reader: Reader) -> Chart:
    cohorts = reader.frame(
        """select mqls, accepted, sqls, opportunities, won, mql_to_sql_days_p50, mql_to_won_days_p50
           from marts.mart_funnel_conversion where period_type = 'month' and dimension = 'all'"""
    ).astype(float)
    row = {column: cohorts[column].sum() for column, _ in FUNNEL_STAGES}
    row |= {
        "mql_to_sql_days": cohorts["mql_to_sql_days_p50"].median(),
        "mql_to_won_days": cohorts["mql_to_won_days_p50"].median(),
    }
    figure = go.Figure(
        go.Funnel(
            y=[label for _, label in FUNNEL_STAGES],
            x=[row[column] for column, _ in FUNNEL_STAGES],
            textinfo="value+percent previous",
        )
    )
    velocity = ", ".join(
        f"{label} in {float(days):.0f} days"
        for label, days in (("MQL → SQL", row["mql_to_sql_days"]), ("MQL → won", row["mql_to_won_days"]))
        if pd.notna(days)
    )
    return Chart(
        "The funnel",
        "Every MQL cohort, stage by stage, with the conversion from the stage before"
        + (f"; median velocity of the monthly cohorts: {velocity}." if velocity else "."),
        figure,
    )


def _current_plan(reader: Reader) -> pd.Series:
    frame = reader.frame("select * from marts.mart_revenue_plan order by quarter_start")
    current = frame[pd.to_datetime(frame["quarter_start"]) <= pd.to_datetime(frame["as_of"])]
    return (current if not current.empty else frame).iloc[-1]


def plan_pacing(reader: Reader) -> Chart:
    plan = _current_plan(reader)
    measures = ("won so far", "expected by now", "quarter's target")
    revenue = [plan["won_revenue"], plan["expected_revenue_to_date"], plan["revenue_target"]]
    mqls = [plan["mqls"], plan["expected_mqls_to_date"], plan["mql_target"]]
    figure = go.Figure(
        [
            # Two axes, so each trace needs its own offset group to stand beside the other.
            go.Bar(name="revenue", x=measures, y=[float(v or 0) for v in revenue], yaxis="y", offsetgroup=0),
            go.Bar(name="MQLs", x=measures, y=[float(v or 0) for v in mqls], yaxis="y2", offsetgroup=1),
        ]
    )
    figure.update_layout(
        barmode="group",
        yaxis={"title": "revenue"},
        yaxis2={"title": "MQLs", "overlaying": "y", "side": "right"},
    )
    quarter = pd.to_datetime(plan["quarter_start"]).date()
    return Chart(
        f"Plan pacing, quarter from {quarter}",
        f"{float(plan['elapsed_share'] or 0):.0%} of the quarter has passed; revenue pacing "
        f"{float(plan['revenue_pacing'] or 0):.0%}, MQL pacing {float(plan['mql_pacing'] or 0):.0%} of the "
        "linear pace the targets need.",
        figure,
    )


def reverse_waterfall(reader: Reader) -> Chart:
    plan = _current_plan(reader)
    steps = (
        ("mqls_needed", "MQLs"),
        ("sqls_needed", "SQLs"),
        ("opportunities_needed", "opportunities"),
        ("won_deals_needed", "won deals"),
    )
    figure = go.Figure(
        go.Bar(
            x=[label for _, label in steps],
            y=[float(plan[column] or 0) for column, _ in steps],
            text=[f"{float(plan[column] or 0):,.0f}" for column, _ in steps],
        )
    )
    figure.update_layout(yaxis_title="needed this quarter")
    return Chart(
        "What the revenue target needs",
        "Walked back from the quarter's revenue target at the trailing conversion rates and deal size: "
        "this many won deals, opportunities, SQLs and MQLs.",
        figure,
    )


def lead_quality_by_source(reader: Reader) -> Chart:
    frame = reader.frame(
        """select dimension_value as source, coalesce(rejection_reason_label, decision) as outcome,
                  share_of_handoffs, handoffs
           from marts.mart_lead_quality where dimension = 'source' order by 1, 2"""
    )
    figure = px.bar(
        frame,
        x="source",
        y="share_of_handoffs",
        color="outcome",
        hover_data=["handoffs"],
        labels={"share_of_handoffs": "share of the source's handoffs", "outcome": "sales' decision"},
    )
    figure.update_yaxes(tickformat=".0%")
    return Chart(
        "Lead quality by source",
        "What sales decided about each source's handoffs: accepted, pending, or rejected and why.",
        figure,
    )


def campaign_revenue(reader: Reader) -> Chart:
    models = [
        row["model"]
        for row in reader.rows("select distinct attribution_model as model from marts.mart_campaign_revenue order by 1")
    ]
    model = PREFERRED_ATTRIBUTION_MODEL if PREFERRED_ATTRIBUTION_MODEL in models else (models or [""])[0]
    frame = reader.frame(
        f"""select coalesce(campaign, '(none)') as campaign, sum(attributed_revenue) as revenue
            from marts.mart_campaign_revenue where attribution_model = :model
            group by 1 order by 2 desc limit {TOP_CAMPAIGNS}""",
        model=model,
    )
    figure = px.bar(
        frame.iloc[::-1],
        x="revenue",
        y="campaign",
        orientation="h",
        labels={"revenue": "attributed won revenue", "campaign": ""},
    )
    return Chart(
        "Campaign revenue",
        f"Won revenue credited to each campaign's touches ({model.replace('_', '-')} attribution), "
        f"the top {TOP_CAMPAIGNS}.",
        figure,
    )


CHARTS: tuple[Callable[[Reader], Chart], ...] = (
    sla_by_team_and_month,
    time_to_first_touch,
    funnel_waterfall,
    plan_pacing,
    reverse_waterfall,
    lead_quality_by_source,
    campaign_revenue,
)


def read_charts(warehouse: Warehouse) -> list[Chart]:
    if not warehouse.exists:
        raise NothingToReport(f"No marts at {warehouse.duckdb_path} yet: run `handoff sync` first.")
    with warehouse.read() as reader:
        if not reader.has_table("marts", "fct_handoffs"):
            raise NothingToReport(f"No marts in {warehouse.describe()} yet: run `handoff sync` first.")
        return [chart(reader) for chart in CHARTS]


def render(charts: list[Chart], generated_at: datetime) -> str:
    sections = []
    for position, chart in enumerate(charts):
        chart.figure.update_layout(margin={"t": 30}, height=420, template="plotly_white")
        body = chart.figure.to_html(full_html=False, include_plotlyjs=position == 0, div_id=f"chart-{position}")
        sections.append(
            f"<section><h2>{html.escape(chart.title)}</h2><p>{html.escape(chart.explanation)}</p>{body}</section>"
        )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Handoff: the funnel and its hand-offs</title>
<style>body{{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}}
section{{margin-bottom:2.5em}}h2{{margin-bottom:.2em}}p{{color:#555;margin-top:0}}</style></head>
<body><h1>The funnel and its hand-offs</h1>
<p>Generated {generated_at:%Y-%m-%d %H:%M} UTC from the marts by <code>handoff report</code>.</p>
{"".join(sections)}
</body></html>
"""


def write_report(settings: Settings, out: Path) -> list[str]:
    """Write the report to ``out``; the titles of its charts."""
    charts = read_charts(served_warehouse(settings))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(charts, datetime.now(UTC)), encoding="utf-8")
    return [chart.title for chart in charts]
