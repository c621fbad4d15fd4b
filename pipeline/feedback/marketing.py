"""Write sales outcomes onto marketing-automation leads with Marketo's ``leads.json`` updateOnly
(300 per call, looked up by lead id)."""

from __future__ import annotations

from pipeline.feedback.ledger import Plan, PropertyChange, RecordOutcome, as_text
from pipeline.feedback.writeback import BatchAnswer, by_record
from pipeline.ingest.marketing import LEADS_PER_CALL, MarketoClient

# The allow-list: only these lead fields (REST names) may ever be written.
WRITABLE_LEAD_FIELDS = frozenset(
    {"handoffSalesOutcome", "handoffRejectionReason", "handoffOpportunityStage", "handoffWonRevenue"}
)


class MissingLeadFields(RuntimeError):
    """The marketing-automation instance lacks lead fields the write-back fills."""


def interpret(results: list[dict], records: list[str], batch: list[PropertyChange]) -> list[RecordOutcome]:
    """Each change's outcome from the per-record results, which Marketo answers in input order: a
    record ``skipped`` keeps Marketo's reasons."""
    reasons = {}
    for record_id, result in zip(records, results, strict=True):
        if result.get("status") == "skipped":
            reasons[record_id] = (
                "; ".join(f"{reason.get('code')}: {reason.get('message')}" for reason in result.get("reasons", []))
                or "skipped"
            )
    return [
        RecordOutcome(
            change,
            accepted=change.record_id not in reasons,
            reason=reasons.get(change.record_id),
            outcome="skipped" if change.record_id in reasons else "",
        )
        for change in batch
    ]


class MarketingLeads:
    """Marketo leads as a write-back target. Marketo's own errors (token expiry, 606 rate and 615
    concurrency limits, the daily quota) are handled by the same client the ingest uses."""

    system, object_type, id_column, batch_size = "marketing", "leads", "marketing_lead_id", LEADS_PER_CALL
    writable = WRITABLE_LEAD_FIELDS

    def __init__(self, client: MarketoClient):
        self.client = client

    def prepare(self, plan: Plan) -> None:
        """Marketo skips every record of a call naming a field it does not have; say so once instead."""
        described = self.client.call("/rest/v1/leads/describe.json")
        existing = {field.get("rest", {}).get("name") for field in described.get("result", [])}
        missing = sorted({change.property for change in plan.changes} - existing)
        if missing:
            raise MissingLeadFields(
                f"marketing automation has no lead fields {', '.join(missing)}: "
                "create them as custom fields (Admin → Field Management) first"
            )

    def send(self, batch: list[PropertyChange]) -> BatchAnswer:
        records = by_record(batch)
        body = self.client.call(
            "/rest/v1/leads.json",
            method="POST",
            json={
                "action": "updateOnly",
                "lookupField": "id",
                "input": [{"id": int(record_id), **fields} for record_id, fields in records.items()],
            },
        )
        return BatchAnswer(200, "success", interpret(body.get("result", []), list(records), batch))

    def read_back(self, changes: list[PropertyChange]) -> dict[tuple[str, str], str | None]:
        held: dict[tuple[str, str], str | None] = {}
        records = list(by_record(changes))
        names = sorted({change.property for change in changes})
        for start in range(0, len(records), LEADS_PER_CALL):
            body = self.client.call(
                "/rest/v1/leads.json",
                params={
                    "filterType": "id",
                    "filterValues": ",".join(records[start : start + LEADS_PER_CALL]),
                    "fields": ",".join(["id", *names]),
                },
            )
            for lead in body.get("result", []):
                for name in names:
                    held[(str(lead["id"]), name)] = as_text(lead.get(name))
        return held
