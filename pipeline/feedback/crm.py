"""Write the funnel's context onto CRM contacts with HubSpot's batch update (100 per call)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from dlt.sources.helpers.rest_client import RESTClient

from pipeline.feedback.ledger import Ledger, PropertyChange, RecordOutcome, changes_to_send

BATCH_SIZE = 100  # HubSpot's limit of inputs per batch call
# Only these contact properties may ever be written; anything else is refused before sending.
WRITABLE_CONTACT_PROPERTIES = frozenset({
    "handoff_funnel_stage", "handoff_sla_state", "handoff_sla_due_at", "handoff_mql_reason", "handoff_engagement_score",
    "handoff_first_touch_campaign", "handoff_last_touch_campaign", "handoff_recent_content",
})


@dataclass(frozen=True)
class WritebackSummary:
    changes: int
    records_sent: int
    batches: int
    accepted: int
    rejected: int


def batches_of_records(changes: list[PropertyChange], size: int) -> Iterator[list[PropertyChange]]:
    """Group changes by record, ``size`` records per batch, keeping each record's properties together."""
    by_record: dict[str, list[PropertyChange]] = {}
    for change in changes:
        by_record.setdefault(change.record_id, []).append(change)
    record_ids = list(by_record)
    for start in range(0, len(record_ids), size):
        yield [change for record_id in record_ids[start:start + size] for change in by_record[record_id]]


def interpret(status_code: int, body: dict, batch: list[PropertyChange]) -> list[RecordOutcome]:
    """Each change's outcome from a batch-update answer: 200 all accepted, 207 some records not
    found, anything else the whole batch rejected with the CRM's message."""
    if status_code == 200:
        return [RecordOutcome(change, accepted=True) for change in batch]
    if status_code == 207:
        reasons = {record_id: f"{error.get('category')}: {error.get('message')}"
                   for error in body.get("errors", [])
                   for record_id in error.get("context", {}).get("ids", [])}
        return [RecordOutcome(change, accepted=change.record_id not in reasons,
                              reason=reasons.get(change.record_id)) for change in batch]
    reason = f"HTTP {status_code} {body.get('category', '')}: {body.get('message', '')}".strip()
    return [RecordOutcome(change, accepted=False, reason=reason) for change in batch]


def write_contacts(client: RESTClient, ledger: Ledger, desired: list[dict]) -> WritebackSummary:
    changes = changes_to_send(desired, "crm_contact_id", WRITABLE_CONTACT_PROPERTIES,
                              ledger.last_accepted())
    records_sent = batches = accepted = rejected = 0
    for batch in batches_of_records(changes, BATCH_SIZE):
        inputs: dict[str, dict] = {}
        for change in batch:
            inputs.setdefault(change.record_id, {})[change.property] = change.value or ""
        response = client.post("/crm/v3/objects/contacts/batch/update",
                               json={"inputs": [{"id": record_id, "properties": properties}
                                                for record_id, properties in inputs.items()]})
        body = response.json() if response.content else {}
        outcomes = interpret(response.status_code, body, batch)
        ledger.record_batch(str(uuid.uuid4()), response.status_code, body.get("status"), outcomes)
        batches += 1
        records_sent += len(inputs)
        accepted += sum(outcome.accepted for outcome in outcomes)
        rejected += sum(not outcome.accepted for outcome in outcomes)
    return WritebackSummary(changes=len(changes), records_sent=records_sent, batches=batches,
                            accepted=accepted, rejected=rejected)
