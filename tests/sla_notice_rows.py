"""A row of ``alerts.alerts_sla_notices``, which the alert tests build their notices from."""

from datetime import datetime


def notice_row(handoff_id: str = "h1", kind: str = "at_risk", **changes) -> dict:
    """Ada Lovelace, handed over on the demo-request policy, waiting for Grace Hopper's first touch."""
    return {
        "notice_key": f"{handoff_id}:{kind}",
        "notice_kind": kind,
        "handoff_id": handoff_id,
        "person_id": "lead-1",
        "crm_contact_id": "42",
        "person_email": "ada@example.com",
        "person_name": "Ada Lovelace",
        "owner_id": "7",
        "owner_name": "Grace Hopper",
        "owner_email": "grace@example.com",
        "team_name": "East",
        "policy": "demo_request",
        "mql_reason": "hand_raise",
        "mql_at": datetime(2026, 3, 4, 15),
        "due_at": datetime(2026, 3, 4, 16),
        "as_of": datetime(2026, 3, 4, 15, 50),
        **changes,
    }
