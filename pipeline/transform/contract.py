"""The funnel contract (``dbt_project/funnel_contract.yml``) as dbt seeds and a docs block.

The contract is the one file sales and marketing edit; the SQL never hard-codes what it says.
Before every dbt invocation ``write_contract_seeds`` validates it (a mistake fails with the key
and the reason, before any model runs) and rewrites ``seeds/contract/*.csv`` and the rendered
``funnel_contract`` docs block, so a changed policy reaches results, alerts and docs together.
"""

from __future__ import annotations

import csv
import io
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Stage(Strict):
    stage: str
    order: int
    enters_when: str


class MqlRule(Strict):
    lifecycle_stage: str
    score_threshold: int = Field(gt=0)
    hand_raise_forms: list[str]
    hand_raise_window_minutes: int = Field(gt=0)


class Decision(Strict):
    accepted_lead_statuses: list[str]
    rejected_lead_statuses: list[str]


class TouchActivity(Strict):
    engagement_type: str
    direction: str | None = None
    status: str | None = None

    @field_validator("engagement_type")
    @classmethod
    def known_type(cls, value: str) -> str:
        if value not in ("call", "email", "meeting", "task"):
            raise ValueError("engagement_type must be one of call, email, meeting, task")
        return value


class SalesTouch(Strict):
    owner_teams: list[str]
    activities: list[TouchActivity]


class RejectionReason(Strict):
    reason: str
    label: str
    recyclable: bool


class Segment(Strict):
    segment: str
    min_employees: int = Field(ge=0)


class SlaPolicy(Strict):
    policy: str
    mql_reason: str | None = None
    segment: str | None = None
    first_touch_minutes: int = Field(gt=0)
    decision_minutes: int = Field(gt=0)


class DefaultCalendar(Strict):
    time_zone: str
    country: str
    start_hour: int = Field(ge=0, le=23)
    end_hour: int = Field(ge=1, le=24)

    @field_validator("time_zone")
    @classmethod
    def known_zone(cls, value: str) -> str:
        return _known_zone(value)


class BusinessCalendar(Strict):
    default: DefaultCalendar
    weekend_days: list[str]
    # A team that answers leads on public holidays (a round-the-clock desk) keeps its clocks running.
    public_holidays: bool = True

    @field_validator("weekend_days")
    @classmethod
    def known_days(cls, value: list[str]) -> list[str]:
        unknown = set(value) - set(WEEKDAYS)
        if unknown:
            raise ValueError(f"unknown weekday(s) {sorted(unknown)}; use {', '.join(WEEKDAYS)}")
        return value


class UShaped(Strict):
    first: float = Field(ge=0, le=1)
    last: float = Field(ge=0, le=1)


class WShaped(Strict):
    first: float = Field(ge=0, le=1)
    lead_creation: float = Field(ge=0, le=1)
    opportunity_creation: float = Field(ge=0, le=1)


class Attribution(Strict):
    window_days: int = Field(gt=0)
    u_shaped: UShaped
    w_shaped: WShaped
    time_decay_half_life_days: float = Field(gt=0)

    @model_validator(mode="after")
    def weights_leave_room(self) -> Attribution:
        if self.u_shaped.first + self.u_shaped.last > 1:
            raise ValueError("u_shaped first + last must not exceed 1")
        w = self.w_shaped
        if w.first + w.lead_creation + w.opportunity_creation > 1:
            raise ValueError("w_shaped first + lead_creation + opportunity_creation must not exceed 1")
        return self


class PlanQuarter(Strict):
    quarter_start: date
    revenue_target: float = Field(ge=0)
    mql_target: int = Field(ge=0)

    @field_validator("quarter_start")
    @classmethod
    def starts_a_quarter(cls, value: date) -> date:
        if value.day != 1 or value.month not in (1, 4, 7, 10):
            raise ValueError("quarter_start must be the first day of a quarter")
        return value


class Alerts(Strict):
    escalate_after_minutes: int = Field(gt=0)
    lookback_hours: int = Field(gt=0)


class FunnelContract(Strict):
    version: int
    reporting_time_zone: str
    stages: list[Stage]
    lifecycle_stages: dict[str, str]
    mql_rule: MqlRule
    decision: Decision
    sales_touch: SalesTouch
    rejection_reasons: list[RejectionReason]
    segments: list[Segment]
    sla_policies: list[SlaPolicy]
    at_risk_fraction: float = Field(gt=0, lt=1)
    alerts: Alerts
    business_calendar: BusinessCalendar
    attribution: Attribution
    plan: list[PlanQuarter]
    cohort_maturity_days: int = Field(ge=0)

    @field_validator("reporting_time_zone")
    @classmethod
    def known_zone(cls, value: str) -> str:
        return _known_zone(value)

    @model_validator(mode="after")
    def consistent(self) -> FunnelContract:
        stages = {s.stage for s in self.stages}
        unknown = sorted(set(self.lifecycle_stages.values()) - stages)
        if unknown:
            raise ValueError(f"lifecycle_stages map to stages not in `stages`: {unknown}")
        segments = {s.segment for s in self.segments}
        for policy in self.sla_policies:
            if policy.segment is not None and policy.segment not in segments:
                raise ValueError(f"sla policy {policy.policy!r} names unknown segment {policy.segment!r}")
        if self.sla_policies[-1].mql_reason is not None or self.sla_policies[-1].segment is not None:
            raise ValueError("the last sla policy must match every handoff (leave mql_reason and segment blank)")
        return self


class ContractError(ValueError):
    """The contract file is missing, not YAML, or breaks a rule; the message says where."""


def _known_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise ValueError(f"unknown time zone {value!r}") from error
    return value


def load_contract(path: Path) -> FunnelContract:
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise ContractError(f"cannot read the funnel contract {path}: {error}") from error
    try:
        return FunnelContract.model_validate(raw)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        raise ContractError(f"the funnel contract {path.name} is invalid: {problems}") from error


def _like(glob: str) -> str:
    """A team glob (``SDR *``) as a SQL LIKE pattern, so models match with plain ``like``."""
    return glob.replace("*", "%").replace("?", "_")


def contract_tables(contract: FunnelContract) -> dict[str, list[dict]]:
    """Seed name → rows. Column order is the seed's; every seed has at least one row."""
    mql, calendar, attribution = contract.mql_rule, contract.business_calendar, contract.attribution
    return {
        "contract_stages": [
            {"stage": s.stage, "stage_order": s.order, "enters_when": s.enters_when} for s in contract.stages
        ],
        "contract_lifecycle_stages": [
            {"lifecycle_stage": k, "funnel_stage": v} for k, v in contract.lifecycle_stages.items()
        ],
        "contract_hand_raise_forms": [{"form_name": name} for name in mql.hand_raise_forms],
        "contract_lead_statuses": (
            [{"lead_status": s, "decision": "accepted"} for s in contract.decision.accepted_lead_statuses]
            + [{"lead_status": s, "decision": "rejected"} for s in contract.decision.rejected_lead_statuses]
        ),
        "contract_sales_teams": [{"team_pattern": _like(glob)} for glob in contract.sales_touch.owner_teams],
        "contract_sales_touch_activities": [a.model_dump() for a in contract.sales_touch.activities],
        "contract_rejection_reasons": [r.model_dump() for r in contract.rejection_reasons],
        "contract_segments": [s.model_dump() for s in contract.segments],
        "contract_sla_policies": [
            p.model_dump() | {"precedence": n} for n, p in enumerate(contract.sla_policies, start=1)
        ],
        "contract_plan": [q.model_dump() for q in contract.plan],
        "contract_weekend_days": [{"iso_weekday": WEEKDAYS.index(d) + 1, "weekday": d} for d in calendar.weekend_days],
        "contract_settings": [
            {
                "contract_version": contract.version,
                "reporting_time_zone": contract.reporting_time_zone,
                "mql_lifecycle_stage": mql.lifecycle_stage,
                "mql_score_threshold": mql.score_threshold,
                "hand_raise_window_minutes": mql.hand_raise_window_minutes,
                "at_risk_fraction": contract.at_risk_fraction,
                "alert_escalate_after_minutes": contract.alerts.escalate_after_minutes,
                "alert_lookback_hours": contract.alerts.lookback_hours,
                "default_time_zone": calendar.default.time_zone,
                "default_country": calendar.default.country,
                "default_start_hour": calendar.default.start_hour,
                "default_end_hour": calendar.default.end_hour,
                "observe_public_holidays": calendar.public_holidays,
                "attribution_window_days": attribution.window_days,
                "u_shaped_first": attribution.u_shaped.first,
                "u_shaped_last": attribution.u_shaped.last,
                "w_shaped_first": attribution.w_shaped.first,
                "w_shaped_lead_creation": attribution.w_shaped.lead_creation,
                "w_shaped_opportunity_creation": attribution.w_shaped.opportunity_creation,
                "time_decay_half_life_days": attribution.time_decay_half_life_days,
                "cohort_maturity_days": contract.cohort_maturity_days,
            }
        ],
    }


def _csv(rows: list[dict], columns: list[str]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]) if rows else columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: "" if v is None else v for k, v in row.items()} for row in rows)
    return out.getvalue()


def render_docs(contract: FunnelContract, source_name: str) -> str:
    """The contract as a dbt docs block: what each definition says, in tables a reader can scan."""

    def table(rows: list[dict]) -> str:
        header = list(rows[0])
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join("any" if r[h] is None else str(r[h]) for h in header) + " |" for r in rows]
        return "\n".join(lines)

    tables = contract_tables(contract)
    settings = tables["contract_settings"][0]
    holidays = "public holidays of the owner's country" if settings["observe_public_holidays"] else "no public holidays"
    return "\n".join(
        [
            "{% docs funnel_contract %}",
            f"The funnel contract (version {contract.version}, from `{source_name}`): the definitions sales "
            "and marketing share. Edit that file, not these tables; they are regenerated before every run.",
            "",
            "**Stages**",
            "",
            table(tables["contract_stages"]),
            "",
            "**CRM lifecycle stages**",
            "",
            table(tables["contract_lifecycle_stages"]),
            "",
            f"**MQL rule**: lifecycle stage `{settings['mql_lifecycle_stage']}`; score threshold "
            f"{settings['mql_score_threshold']}; a hand-raise is one of "
            f"{', '.join(contract.mql_rule.hand_raise_forms)} within "
            f"{settings['hand_raise_window_minutes']} minutes before.",
            "",
            "**Sales touches** (owner teams " + ", ".join(contract.sales_touch.owner_teams) + ")",
            "",
            table(tables["contract_sales_touch_activities"]),
            "",
            "**Decisions** (CRM lead status)",
            "",
            table(tables["contract_lead_statuses"]),
            "",
            "**Rejection reasons**",
            "",
            table(tables["contract_rejection_reasons"]),
            "",
            "**Segments**",
            "",
            table(tables["contract_segments"]),
            "",
            f"**SLA policies** (first match wins; business minutes; at risk after "
            f"{settings['at_risk_fraction']:.0%} of the allowance)",
            "",
            table(
                [
                    {
                        k: p[k]
                        for k in (
                            "precedence",
                            "policy",
                            "mql_reason",
                            "segment",
                            "first_touch_minutes",
                            "decision_minutes",
                        )
                    }
                    for p in tables["contract_sla_policies"]
                ]
            ),
            "",
            f"**Alerts**: at-risk and breached notices go to the owner; a breach still untouched "
            f"{settings['alert_escalate_after_minutes']} minutes after its due time is escalated; only handoffs due "
            f"within the last {settings['alert_lookback_hours']} hours are alerted on.",
            "",
            f"**Business calendar**: default {settings['default_time_zone']}, {settings['default_country']}, "
            f"{settings['default_start_hour']}:00–{settings['default_end_hour']}:00; weekend "
            f"{', '.join(contract.business_calendar.weekend_days)}; {holidays}.",
            "",
            f"**Attribution**: window {settings['attribution_window_days']} days; U-shaped "
            f"{settings['u_shaped_first']}/{settings['u_shaped_last']}; W-shaped {settings['w_shaped_first']}/"
            f"{settings['w_shaped_lead_creation']}/{settings['w_shaped_opportunity_creation']}; time-decay half-life "
            f"{settings['time_decay_half_life_days']} days.",
            "",
            "**Plan**",
            "",
            table(tables["contract_plan"]),
            "",
            f"Periods are cut in {settings['reporting_time_zone']}; cohorts are mature "
            f"{settings['cohort_maturity_days']} days after their period ends.",
            "{% enddocs %}",
            "",
        ]
    )


def _write_if_changed(path: Path, text: str) -> None:
    # Unchanged files keep their modification time, so dbt's partial parsing stays warm.
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def _declared_columns(project_dir: Path, seed: str) -> list[str]:
    """A seed's columns as its properties declare their types: the header of a table the contract
    leaves empty (no weekend days, say), which dbt then creates empty with the declared types."""
    properties = yaml.safe_load((project_dir / "seeds" / "_seeds.yml").read_text())
    [declared] = [entry for entry in properties["seeds"] if entry["name"] == seed]
    return list(declared["config"]["column_types"])


def write_contract_seeds(project_dir: Path) -> FunnelContract:
    """Validate the project's contract and regenerate its seeds and docs block."""
    contract_path = project_dir / "funnel_contract.yml"
    contract = load_contract(contract_path)
    seed_dir = project_dir / "seeds" / "contract"
    seed_dir.mkdir(parents=True, exist_ok=True)
    for name, rows in contract_tables(contract).items():
        _write_if_changed(seed_dir / f"{name}.csv", _csv(rows, [] if rows else _declared_columns(project_dir, name)))
    _write_if_changed(project_dir / "models" / "funnel_contract.md", render_docs(contract, contract_path.name))
    return contract
