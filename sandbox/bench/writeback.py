"""What the write-back benchmark writes: a field of every live CRM contact and marketing lead of
the company, changed in each pass, so every pass sends every record once."""

from __future__ import annotations

from sandbox.dataset import Dataset

FEEDBACK_FILE = "bench-writeback-{system}.json"  # in the measured process's data home: the record ids
WRITEBACK_OF_SYSTEM = {"crm": "crm_contacts", "marketing": "marketing_leads"}
# Per system: the feedback model's id column, and the field each pass sets, to the next of its values.
PASS_FIELDS = {
    "crm": ("crm_contact_id", "handoff_sla_state", ("open", "at_risk", "breached")),
    "marketing": ("marketing_lead_id", "handoffSalesOutcome", ("accepted", "sql", "opportunity")),
}


def live_record_ids(dataset: Dataset) -> dict[str, list[str]]:
    """The records a write-back can reach: contacts not archived or merged away, leads not deleted
    or merged away."""
    contacts = [
        c["id"]
        for c in dataset.rows("crm_objects")
        if c["objectType"] == "contacts" and not c["archived"] and c.get("mergedInto") is None
    ]
    leads = [
        str(lead["id"])
        for lead in dataset.rows("marketing_leads")
        if lead.get("deletedAt") is None and lead.get("mergedInto") is None
    ]
    return {"crm": contacts, "marketing": leads}


def passes_of_feedback(record_ids: list[str], system: str, passes: int) -> list[list[dict]]:
    id_column, field, values = PASS_FIELDS[system]
    return [
        [{id_column: record_id, field: values[number % len(values)]} for record_id in record_ids]
        for number in range(passes)
    ]
