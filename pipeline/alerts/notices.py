"""Notices composed from the alert models' rows: what a person reads in Slack, a webhook or a mail."""

from __future__ import annotations

from datetime import datetime

from pipeline.alerts.channels import Notice
from pipeline.settings import load_settings

SLA_TITLES = {
    "at_risk": "SLA at risk: {person} is waiting for a first touch",
    "breached": "SLA breached: {person} was not touched in time",
    "escalated": "Escalation: {person} is still untouched after the SLA breached",
}


def _utc(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "unknown"


def crm_record_link(crm_base_url: str | None, contact_id: str | None) -> str | None:
    # By default the record in the API the pipeline reads, which the sandbox answers too.
    template = load_settings().crm_record_url
    if not contact_id or ("{crm_base_url}" in template and not crm_base_url):
        return None
    return template.format(crm_base_url=(crm_base_url or "").rstrip("/"), contact_id=contact_id)


def sla_notice(row: dict, crm_base_url: str | None) -> Notice:
    """A notice for one alerts_sla_notices row, addressed to the handoff's owner."""
    person = row["person_name"] or row["person_email"] or f"person {row['person_id']}"
    return Notice(
        key=row["notice_key"],
        kind=row["notice_kind"],
        title=SLA_TITLES[row["notice_kind"]].format(person=person),
        fields={
            "Person": person,
            "E-mail": row["person_email"] or "unknown",
            "Owner": row["owner_name"] or f"owner {row['owner_id']}",
            "Team": row["team_name"] or "none",
            "Policy": row["policy"],
            "MQL reason": row["mql_reason"] or "unknown",
            "Handed over": _utc(row["mql_at"]),
            "First touch due": _utc(row["due_at"]),
        },
        link=crm_record_link(crm_base_url, row["crm_contact_id"]),
        recipients=(row["owner_email"],) if row["owner_email"] else (),
    )


def digest_notice(row: dict, day: str) -> Notice:
    """One owner's or one team's daily digest; keyed by day, so it goes out once a day."""
    whom = row["recipient_name"] or row["recipient_id"]
    return Notice(
        key=f"digest:{row['recipient_kind']}:{row['recipient_id']}:{day}",
        kind="digest",
        title=f"SLA digest for {whom}, {day}: {row['waiting_handoffs']} waiting for a first touch",
        fields={
            "Open": str(row["open_handoffs"]),
            "At risk": str(row["at_risk_handoffs"]),
            "Breached": str(row["breached_handoffs"]),
            "Escalated": str(row["escalated_handoffs"]),
            "Next due": _utc(row["next_due_at"]),
            "Team": row["team_name"] or "none",
        },
        recipients=(row["recipient_email"],) if row["recipient_email"] else (),
    )


def run_failure_notice(
    job: str, run_id: str, message: str, failed_checks: dict[str, str], run_url: str | None
) -> Notice:
    """An operators' notice: a run failed, or a blocking quality check stopped it (each check with
    what it says failed)."""
    title = (
        f"Blocking quality check failed in {job}: nothing was written back or alerted"
        if failed_checks
        else f"Run of {job} failed"
    )
    fields = {"Job": job, "Run": run_id, "Error": message[:500] or "see the run's logs"}
    if failed_checks:
        fields["Failed checks"] = ", ".join(failed_checks)
        fields.update({f"Why {name}": why[:1000] for name, why in failed_checks.items() if why})
    return Notice(key=f"run:{run_id}", kind="run_failure", title=title, fields=fields, link=run_url)
