"""Marketo's own Python SDK (``marketorestpython``) against the marketing stand-in: it must not tell
the difference for the calls Handoff makes. The stand-in serves the hand-made ``marketo_company``
(tests/conftest.py)."""

import time

import pytest
from marketorestpython.client import MarketoClient

from sandbox.faults import Faults
from sandbox.server import SandboxServer, build_sandbox


def sdk_client(server: SandboxServer) -> MarketoClient:
    connection = server.connections()["marketing"]
    client = MarketoClient(
        "000-SBX-000", client_id=connection["client_id"], client_secret=connection["client_secret"], max_retry_time=5
    )
    # The SDK builds every URL, the identity endpoint's included, as ``host + path`` with
    # host = "https://<munchkin id>.mktorest.com"; the stand-in's base URL takes that place.
    client.host = connection["base_url"]
    return client


@pytest.fixture
def marketo(tmp_path, marketo_company):
    with SandboxServer(build_sandbox(tmp_path, dataset_dir=marketo_company.folder)) as server:
        yield sdk_client(server)


def test_the_sdk_gets_a_token(marketo):
    marketo.authenticate()
    assert marketo.token and marketo.token_type == "bearer" and 0 < marketo.expires_in <= 3600


def test_the_sdk_reads_leads_by_filter(marketo):
    leads = marketo.execute(
        method="get_multiple_leads_by_filter_type",
        filterType="email",
        filterValues=["ava@acme.com", "liam@globex.io"],
        fields=["id", "email", "leadStatus"],
    )
    assert leads == [
        {"id": 1, "email": "ava@acme.com", "leadStatus": "MQL"},
        {"id": 2, "email": "liam@globex.io", "leadStatus": "Lead"},
    ]


def test_the_sdk_reads_activities_through_a_paging_token(marketo, marketo_company):
    token = marketo.execute(method="get_paging_token", sinceDatetime="2025-01-01T00:00:00Z")
    expected = marketo_company.in_listing_order(
        [a for a in marketo_company.activities if a["activityTypeId"] in (1, 2, 13)]
    )
    listed = marketo.execute(
        method="get_lead_activities", activityTypeIds=["1", "2", "13"], nextPageToken=token, batchSize=10
    )
    assert [a["id"] for a in listed] == expected
    pages = marketo.execute(
        method="get_lead_activities_yield", activityTypeIds=["1", "2", "13"], nextPageToken=token, batchSize=10
    )
    assert [a["id"] for page in pages for a in page] == expected


def test_the_sdk_updates_leads_and_hears_which_were_skipped(marketo):
    results = marketo.execute(
        method="create_update_leads",
        action="updateOnly",
        lookupField="id",
        leads=[
            {"id": 1, "handoffSalesOutcome": "accepted", "handoffOpportunityStage": "discovery"},
            {"id": 999, "handoffSalesOutcome": "rejected"},
        ],
    )
    assert results == [
        {"id": 1, "status": "updated"},
        {"status": "skipped", "reasons": [{"code": "1004", "message": "Lead not found"}]},
    ]
    assert marketo.execute(
        method="get_lead_by_id", id=1, fields=["handoffSalesOutcome", "handoffOpportunityStage"]
    ) == [{"handoffSalesOutcome": "accepted", "handoffOpportunityStage": "discovery"}]


def test_the_sdk_renews_an_expired_token_by_itself(tmp_path, marketo_company):
    with SandboxServer(
        build_sandbox(tmp_path, dataset_dir=marketo_company.folder, faults=Faults(token_ttl_s=1))
    ) as server:
        marketo = sdk_client(server)
        first = marketo.execute(method="get_lead_by_id", id=3, fields=["email"])
        token = marketo.token
        time.sleep(1.1)
        assert marketo.execute(method="get_lead_by_id", id=3, fields=["email"]) == first
        assert marketo.token != token


def test_the_sdk_runs_bulk_extracts_of_leads_and_activities(marketo):
    january = {"startAt": "2025-01-01T00:00:00Z", "endAt": "2025-02-01T00:00:00Z"}
    (lead_job,) = marketo.execute(
        method="create_leads_export_job", fields=["id", "email"], filters={"createdAt": january}
    )
    (activity_job,) = marketo.execute(
        method="create_activities_export_job", filters={"createdAt": january, "activityTypeIds": [12]}
    )
    for entity, job in (("leads", lead_job), ("activities", activity_job)):
        assert marketo.execute(method=f"enqueue_{entity}_export_job", job_id=job["exportId"])[0]["status"] == "Queued"
        statuses = [
            marketo.execute(method=f"get_{entity}_export_job_status", job_id=job["exportId"])[0]["status"]
            for _ in range(2)
        ]
        assert statuses == ["Processing", "Completed"]
    leads = marketo.execute(method="get_leads_export_job_file", job_id=lead_job["exportId"]).decode().splitlines()
    assert leads[0] == "id,email" and leads[1] == "1,ava@acme.com" and len(leads) == 1 + 6  # lead 5 is deleted
    activities = marketo.execute(method="get_activities_export_job_file", job_id=activity_job["exportId"])
    assert [line.split(",")[:2] for line in activities.decode().splitlines()[1:]] == [
        [str(100 + lead_id), str(lead_id)] for lead_id in range(1, 8)
    ]  # each lead's "New Lead", the deleted one's too: its activities stay
    listed = marketo.execute(method="get_leads_export_jobs_list")
    assert [(job["exportId"], job["status"]) for job in listed] == [(lead_job["exportId"], "Completed")]
    (spare,) = marketo.execute(method="create_leads_export_job", fields=["id"], filters={"createdAt": january})
    (cancelled,) = marketo.execute(method="cancel_leads_export_job", job_id=spare["exportId"])
    assert cancelled["status"] == "Cancelled"
