"""Write the funnel's context onto CRM contacts with HubSpot's batch update (100 per call)."""

from __future__ import annotations

from dataclasses import dataclass

from dlt.sources.helpers.rest_client import RESTClient

from pipeline.feedback.ledger import Plan, PropertyChange, RecordOutcome
from pipeline.feedback.writeback import BatchAnswer, by_record

BATCH_SIZE = 100  # HubSpot's limit of inputs per batch call
PROPERTY_GROUP = "contactinformation"  # a group every HubSpot account has, for properties Handoff creates


@dataclass(frozen=True)
class ContactProperty:
    label: str
    type: str
    field_type: str

    def definition(self, name: str) -> dict:
        return {
            "name": name,
            "label": self.label,
            "type": self.type,
            "fieldType": self.field_type,
            "groupName": PROPERTY_GROUP,
            "description": "Written by Handoff from the shared funnel.",
        }


# The allow-list: only these contact properties may ever be written, and this is how Handoff
# creates them in an account that does not have them yet.
WRITABLE_CONTACT_PROPERTIES = {
    "handoff_funnel_stage": ContactProperty("Funnel stage (Handoff)", "string", "text"),
    "handoff_sla_state": ContactProperty("SLA state (Handoff)", "string", "text"),
    "handoff_sla_due_at": ContactProperty("SLA due at (Handoff)", "datetime", "date"),
    "handoff_mql_reason": ContactProperty("MQL reason (Handoff)", "string", "text"),
    "handoff_engagement_score": ContactProperty("Engagement score (Handoff)", "number", "number"),
    "handoff_first_touch_campaign": ContactProperty("First-touch campaign (Handoff)", "string", "text"),
    "handoff_last_touch_campaign": ContactProperty("Last-touch campaign (Handoff)", "string", "text"),
    "handoff_recent_content": ContactProperty("Recent content (Handoff)", "string", "textarea"),
}


class MissingCrmProperties(RuntimeError):
    """The CRM account lacks contact properties the write-back fills."""


def interpret(status_code: int, body: dict, batch: list[PropertyChange]) -> list[RecordOutcome]:
    """Each change's outcome from a batch-update answer: 200 all accepted, 207 some records not
    found, anything else the whole batch rejected with the CRM's message."""
    if status_code == 200:
        return [RecordOutcome(change, accepted=True) for change in batch]
    if status_code == 207:
        reasons = {
            record_id: f"{error.get('category')}: {error.get('message')}"
            for error in body.get("errors", [])
            for record_id in error.get("context", {}).get("ids", [])
        }
        return [
            RecordOutcome(change, accepted=change.record_id not in reasons, reason=reasons.get(change.record_id))
            for change in batch
        ]
    reason = f"HTTP {status_code} {body.get('category', '')}: {body.get('message', '')}".strip()
    return [RecordOutcome(change, accepted=False, reason=reason) for change in batch]


class CrmContacts:
    """HubSpot contacts as a write-back target."""

    system, object_type, id_column, batch_size = "crm", "contacts", "crm_contact_id", BATCH_SIZE
    writable = frozenset(WRITABLE_CONTACT_PROPERTIES)

    def __init__(self, client: RESTClient, create_missing_properties: bool = False):
        self.client = client
        self.create_missing_properties = create_missing_properties

    def prepare(self, plan: Plan) -> None:
        """Every property the plan writes exists in the account, or is created when configured to:
        HubSpot fails a whole batch naming one property it does not have."""
        response = self.client.get("/crm/v3/properties/contacts")
        response.raise_for_status()
        existing = {prop["name"] for prop in response.json().get("results", [])}
        missing = sorted({change.property for change in plan.changes} - existing)
        if missing and not self.create_missing_properties:
            raise MissingCrmProperties(
                f"the CRM has no contact properties {', '.join(missing)}: create them in the CRM, or run the "
                "write-back with create_missing_properties (handoff feedback --create-missing-properties)"
            )
        for name in missing:
            created = self.client.post(
                "/crm/v3/properties/contacts", json=WRITABLE_CONTACT_PROPERTIES[name].definition(name)
            )
            if created.status_code not in (201, 409):  # 409: created meanwhile by someone else
                raise MissingCrmProperties(
                    f"could not create contact property {name}: HTTP {created.status_code} {created.text[:300]}"
                )

    def send(self, batch: list[PropertyChange]) -> BatchAnswer:
        inputs = [
            {"id": record_id, "properties": {name: value or "" for name, value in properties.items()}}
            for record_id, properties in by_record(batch).items()
        ]
        response = self.client.post("/crm/v3/objects/contacts/batch/update", json={"inputs": inputs})
        body = response.json() if response.content else {}
        return BatchAnswer(response.status_code, body.get("status"), interpret(response.status_code, body, batch))

    def read_back(self, changes: list[PropertyChange]) -> dict[tuple[str, str], str | None]:
        held: dict[tuple[str, str], str | None] = {}
        records = list(by_record(changes))
        names = sorted({change.property for change in changes})
        for start in range(0, len(records), BATCH_SIZE):
            response = self.client.post(
                "/crm/v3/objects/contacts/batch/read",
                json={
                    "inputs": [{"id": record_id} for record_id in records[start : start + BATCH_SIZE]],
                    "properties": names,
                },
            )
            if response.status_code not in (200, 207):
                response.raise_for_status()
            for result in response.json().get("results", []):
                for name in names:
                    held[(str(result["id"]), name)] = result.get("properties", {}).get(name)
        return held
