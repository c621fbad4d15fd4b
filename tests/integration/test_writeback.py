"""Write-back against the sandbox over HTTP: only changes are sent, refusals are kept and retried,
the allow-list and the CRM's properties are respected, limits are survived and a killed run resumes."""

import json
import math
import signal
import subprocess
import sys
import time

import httpx
import pytest
import sqlalchemy as sa

from pipeline.feedback import crm
from pipeline.feedback.crm import ContactProperty, CrmContacts, MissingCrmProperties
from pipeline.feedback.ledger import MAX_ATTEMPTS, Ledger
from pipeline.feedback.marketing import MarketingLeads
from pipeline.feedback.writeback import write_back
from pipeline.ingest.crm import crm_client
from pipeline.ingest.marketing import MarketoClient
from pipeline.state import StateStore
from sandbox.faults import Faults
from sandbox.server import SandboxServer, build_sandbox, write_connection_file

MISSING_ID = "999999"


def requests_served(server: SandboxServer, system: str) -> int:
    return httpx.get(f"{server.base_url}/health").json()["requests_served"].get(system, 0)


def crm_target(server: SandboxServer, **options) -> CrmContacts:
    connection = server.connections()["crm"]
    return CrmContacts(crm_client(connection["base_url"], connection["access_token"]), **options)


def marketing_target(server: SandboxServer) -> MarketingLeads:
    connection = server.connections()["marketing"]
    return MarketingLeads(
        MarketoClient(
            connection["base_url"], connection["client_id"], connection["client_secret"], back_off_seconds=0.5
        )
    )


def live_contact_ids(server: SandboxServer) -> list[str]:
    rows = server.sandbox.store.query("""select id from crm_objects where object_type = 'contacts'
                                         and archived = 0 and merged_into is null order by id""")
    return [str(row["id"]) for row in rows]


def lead_ids(server: SandboxServer) -> list[str]:
    return [
        str(row["id"])
        for row in server.sandbox.store.query("select id from marketing_leads where deleted_at is null order by id")
    ]


def contact_feedback(contact_ids: list[str], stage: str = "mql") -> list[dict]:
    return [
        {
            "crm_contact_id": contact_id,
            "handoff_funnel_stage": stage,
            "handoff_sla_state": "open",
            "handoff_engagement_score": 40.0,
        }
        for contact_id in contact_ids
    ]


def lead_feedback(ids: list[str]) -> list[dict]:
    return [
        {"marketing_lead_id": lead_id, "handoffSalesOutcome": "accepted", "handoffWonRevenue": None} for lead_id in ids
    ]


def contact_properties(server: SandboxServer, contact_id: str) -> dict:
    row = server.sandbox.store.query_one(
        "select properties from crm_objects where object_type = 'contacts' and id = ?", (int(contact_id),)
    )
    return json.loads(row["properties"])


def test_each_record_is_written_once_then_nothing_then_exactly_the_change(crm_sandbox, state_store, monkeypatch):
    server = crm_sandbox
    # The tiny company has a score or so of live records: small batches make several of them.
    batch_size = 5
    monkeypatch.setattr(CrmContacts, "batch_size", batch_size)
    monkeypatch.setattr(MarketingLeads, "batch_size", batch_size)
    contacts, leads = live_contact_ids(server), lead_ids(server)
    assert len(contacts) > 2 * batch_size and len(leads) > 2 * batch_size

    crm_before, marketing_before = requests_served(server, "crm"), requests_served(server, "marketing")
    first, _ = write_back(crm_target(server), Ledger(state_store, "crm", "contacts"), contact_feedback(contacts))
    first_leads, _ = write_back(
        marketing_target(server), Ledger(state_store, "marketing", "leads"), lead_feedback(leads)
    )
    assert (first.records_sent, first.records_accepted, first.batches) == (
        len(contacts),
        len(contacts),
        math.ceil(len(contacts) / batch_size),
    )
    assert (first_leads.records_sent, first_leads.records_accepted) == (len(leads), len(leads))
    # One look at the properties, then one call per batch; Marketo adds its token and field list.
    assert requests_served(server, "crm") - crm_before == 1 + first.batches
    assert requests_served(server, "marketing") - marketing_before == 2 + first_leads.batches
    assert contact_properties(server, contacts[0])["handoff_funnel_stage"] == "mql"
    assert server.sandbox.marketing.records.lead(int(leads[-1]))["handoffSalesOutcome"] == "accepted"

    crm_before, marketing_before = requests_served(server, "crm"), requests_served(server, "marketing")
    again, _ = write_back(crm_target(server), Ledger(state_store, "crm", "contacts"), contact_feedback(contacts))
    again_leads, _ = write_back(
        marketing_target(server), Ledger(state_store, "marketing", "leads"), lead_feedback(leads)
    )
    assert again.records_sent == again_leads.records_sent == 0
    assert requests_served(server, "crm") == crm_before and requests_served(server, "marketing") == marketing_before

    changed = contact_feedback(contacts)
    changed[7]["handoff_sla_state"] = "breached"
    one, _ = write_back(crm_target(server), Ledger(state_store, "crm", "contacts"), changed)
    assert (one.records_sent, one.changes_planned, one.batches) == (1, 1, 1)
    assert contact_properties(server, contacts[7])["handoff_sla_state"] == "breached"


def test_refused_records_land_in_the_ledger_with_the_vendors_reason_and_are_retried_a_bounded_number_of_times(
    crm_sandbox, state_store
):
    server = crm_sandbox
    contacts = contact_feedback([*live_contact_ids(server)[:3], MISSING_ID])
    leads = lead_feedback([*lead_ids(server)[:3], MISSING_ID])
    summaries = []
    for _ in range(MAX_ATTEMPTS + 1):
        summaries.append(
            (
                write_back(crm_target(server), Ledger(state_store, "crm", "contacts"), contacts)[0],
                write_back(marketing_target(server), Ledger(state_store, "marketing", "leads"), leads)[0],
            )
        )
    first_crm, first_marketing = summaries[0]
    assert (first_crm.records_accepted, first_crm.records_refused) == (3, 1)
    assert (first_marketing.records_accepted, first_marketing.records_refused) == (3, 1)
    for crm_run, marketing_run in summaries[1:MAX_ATTEMPTS]:  # retried: only the refused record
        assert crm_run.records_sent == marketing_run.records_sent == 1
    last_crm, last_marketing = summaries[-1]
    assert last_crm.records_sent == last_marketing.records_sent == 0
    assert last_crm.changes_held_back == 3 and last_marketing.changes_held_back == 2

    with state_store.begin() as state:
        reasons = state.execute(
            sa.text("""select system, outcome, max(reason), count(distinct batch_id)
                       from writeback_record_outcomes where record_id = :record_id group by 1, 2 order by 1"""),
            {"record_id": MISSING_ID},
        ).all()
    assert [(system, outcome, batches) for system, outcome, _, batches in reasons] == [
        ("crm", "rejected", MAX_ATTEMPTS),
        ("marketing", "skipped", MAX_ATTEMPTS),
    ]
    assert "OBJECT_NOT_FOUND" in reasons[0][2] and reasons[1][2] == "1004: Lead not found"


def test_a_field_off_the_allow_list_is_refused_before_anything_is_sent(crm_sandbox, state_store):
    server = crm_sandbox
    before = requests_served(server, "crm")
    feedback = [{**contact_feedback(live_contact_ids(server)[:1])[0], "email": "someone@else.example"}]
    with pytest.raises(ValueError, match="allow-list.*email"):
        write_back(crm_target(server), Ledger(state_store, "crm", "contacts"), feedback)
    assert requests_served(server, "crm") == before


def test_a_missing_crm_property_is_reported_or_created_when_configured(crm_sandbox, state_store, monkeypatch):
    server = crm_sandbox
    monkeypatch.setitem(
        crm.WRITABLE_CONTACT_PROPERTIES, "handoff_owner_note", ContactProperty("Owner note (Handoff)", "string", "text")
    )
    monkeypatch.setattr(CrmContacts, "writable", frozenset(crm.WRITABLE_CONTACT_PROPERTIES))
    [contact] = live_contact_ids(server)[:1]
    feedback = [{"crm_contact_id": contact, "handoff_owner_note": "call back Tuesday"}]

    before = requests_served(server, "crm")
    with pytest.raises(MissingCrmProperties, match="handoff_owner_note.*create_missing_properties"):
        write_back(crm_target(server), Ledger(state_store, "crm", "contacts"), feedback)
    assert requests_served(server, "crm") == before + 1  # the properties were read; nothing was written

    summary, _ = write_back(
        crm_target(server, create_missing_properties=True), Ledger(state_store, "crm", "contacts"), feedback
    )
    assert summary.records_accepted == 1
    assert contact_properties(server, contact)["handoff_owner_note"] == "call back Tuesday"
    created = httpx.get(
        f"{server.connections()['crm']['base_url']}/crm/v3/properties/contacts/handoff_owner_note",
        headers={"Authorization": f"Bearer {server.connections()['crm']['access_token']}"},
    )
    assert created.status_code == 200 and created.json()["label"] == "Owner note (Handoff)"


def test_vendor_rate_limits_are_survived_without_losing_a_record(tiny_dataset, state_store, tmp_path, monkeypatch):
    """Handoff's pacing told the limits are far higher than the systems allow: HubSpot answers 429
    and Marketo 606 (past ten calls in 20 s; twelve one-lead batches and the token call are sure to
    pass it, where 615 for overlapping calls depends on how fast the sandbox answers), and every
    record still arrives, at the cost of one 20-second window."""
    monkeypatch.setenv("HANDOFF_CRM_REQUESTS_PER_10S", "1000")
    monkeypatch.setenv("HANDOFF_MARKETING_CALLS_PER_20S", "1000")
    monkeypatch.setattr(CrmContacts, "batch_size", 1)
    monkeypatch.setattr(MarketingLeads, "batch_size", 1)
    faults = Faults(pressure=0.1)  # HubSpot 10 requests per 10 s; Marketo 10 per 20 s, one at a time
    with SandboxServer(build_sandbox(tmp_path / "state", dataset_dir=tiny_dataset, faults=faults)) as server:
        contacts, leads = live_contact_ids(server)[:12], lead_ids(server)[:12]
        crm_run, _ = write_back(crm_target(server), Ledger(state_store, "crm", "contacts"), contact_feedback(contacts))
        marketing_run, _ = write_back(
            marketing_target(server), Ledger(state_store, "marketing", "leads"), lead_feedback(leads)
        )
        assert (crm_run.records_accepted, crm_run.records_refused) == (len(contacts), 0)
        assert (marketing_run.records_accepted, marketing_run.records_refused) == (len(leads), 0)
        # More requests reached the systems than batches were sent: the refusals were retried.
        assert requests_served(server, "crm") > 1 + crm_run.batches
        assert requests_served(server, "marketing") > 2 + marketing_run.batches
        assert all(contact_properties(server, c)["handoff_funnel_stage"] == "mql" for c in contacts)


WRITE_BACK = """
import json, sys
from pipeline.feedback.crm import CrmContacts
from pipeline.feedback.ledger import Ledger
from pipeline.feedback.writeback import write_back
from pipeline.ingest.crm import crm_client
from pipeline.state import StateStore
state_url, connection, feedback = sys.argv[1], json.load(open(sys.argv[2]))["crm"], json.load(open(sys.argv[3]))
CrmContacts.batch_size = 2
target = CrmContacts(crm_client(connection["base_url"], connection["access_token"]))
store = StateStore(state_url)
store.migrate()
write_back(target, Ledger(store, "crm", "contacts"), feedback)
"""


@pytest.fixture(params=["sqlite", "postgres"])
def state_url(request, tmp_path, new_postgres_database) -> str:
    """An operational store that outlives the process writing it, as a run's does: a SQLite file,
    or a PostgreSQL database of the test's own."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'handoff-state.sqlite'}"
    return f"postgresql+psycopg2://postgres@127.0.0.1:5432/{new_postgres_database()}"


def ledger_rows(state_url: str, sql: str) -> list[sa.Row]:
    """What ``sql`` finds in the store the write-back processes wrote."""
    store = StateStore(state_url)
    try:
        with store.engine.connect() as connection:
            return connection.execute(sa.text(sql)).all()
    finally:
        store.dispose()


@pytest.mark.parametrize("kill_after_requests", [3, 9])
def test_kill_9_mid_write_back_then_a_rerun_sends_no_accepted_record_again(
    tiny_dataset, tmp_path, state_url, kill_after_requests
):
    with SandboxServer(
        build_sandbox(tmp_path / "state", dataset_dir=tiny_dataset, faults=Faults(latency_s=0.2))
    ) as server:
        connection_file, feedback_file = tmp_path / "connection.json", tmp_path / "feedback.json"
        write_connection_file(connection_file, server.connections())
        contacts = live_contact_ids(server)
        feedback_file.write_text(json.dumps(contact_feedback(contacts)))
        command = [sys.executable, "-c", WRITE_BACK, state_url, str(connection_file), str(feedback_file)]
        before = requests_served(server, "crm")
        killed = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while requests_served(server, "crm") - before < kill_after_requests and time.monotonic() < deadline:
            time.sleep(0.01)
        killed.send_signal(signal.SIGKILL)
        killed.wait()
        [(accepted_before,)] = ledger_rows(
            state_url, "select count(distinct record_id) from writeback_record_outcomes where outcome = 'accepted'"
        )
        assert accepted_before < len(contacts)  # the kill landed mid-run

        rerun = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert rerun.returncode == 0, rerun.stderr[-2000:]
        accepted = ledger_rows(
            state_url,
            """select record_id, count(*) from writeback_record_outcomes
               where outcome = 'accepted' and property = 'handoff_funnel_stage'
               group by 1""",
        )
        assert sorted(record for record, _ in accepted) == sorted(contacts)
        # A record accepted before the kill, or settled by reading back, was not sent again.
        assert all(times == 1 for _, times in accepted)
        assert all(contact_properties(server, c)["handoff_funnel_stage"] == "mql" for c in contacts)
