"""The marketing stand-in's Bulk Extract over real HTTP, held to Marketo's documented behaviour and to
the REST API's numbers. Every test serves the hand-made ``marketo_company`` (tests/conftest.py)."""

import csv
import hashlib
import io
import json
from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from marketo_api import ALL_BUT_DELETE, Marketo, error_of, listed, page_through, serving

# An activity file's columns, in Marketo's documented order.
ACTIVITY_COLUMNS = [
    "marketoGUID",
    "leadId",
    "activityDate",
    "activityTypeId",
    "campaignId",
    "primaryAttributeValueId",
    "primaryAttributeValue",
    "attributes",
]
LEAD_FIELDS = ["id", "email", "firstName", "leadScore", "createdAt", "handoffSalesOutcome"]
JANUARY = {"startAt": "2025-01-01T00:00:00Z", "endAt": "2025-02-01T00:00:00Z"}
# Three windows of at most 31 days covering every activity of the company, back to back.
WINDOWS = [
    ("2025-01-01T00:00:00Z", "2025-02-01T00:00:00Z"),
    ("2025-02-01T00:00:00Z", "2025-03-01T00:00:00Z"),
    ("2025-03-01T00:00:00Z", "2025-04-01T00:00:00Z"),
]


@pytest.fixture
def api(tmp_path, marketo_company):
    with serving(tmp_path, marketo_company.folder) as marketo:
        yield marketo


@pytest.fixture(scope="module")
def refusing_api(tmp_path_factory, marketo_company):
    """One sandbox for calls that are all refused, so change nothing (nor count against the limits)."""
    with serving(tmp_path_factory.mktemp("refusals"), marketo_company.folder) as marketo:
        yield marketo


def created(api: Marketo, entity: str, body: dict) -> str:
    answer = api.post(f"/bulk/v1/{entity}/export/create.json", body)
    assert answer["success"] is True, answer
    (job,) = answer["result"]
    assert job["status"] == "Created" and job["format"] == body.get("format", "CSV")
    return job["exportId"]


def exported(api: Marketo, entity: str, body: dict) -> tuple[dict, bytes]:
    """Create, enqueue, poll until completed, download: a bulk extract as a connector runs one."""
    export_id = created(api, entity, body)
    (queued,) = api.post(f"/bulk/v1/{entity}/export/{export_id}/enqueue.json")["result"]
    assert queued["status"] == "Queued" and "queuedAt" in queued
    polled = [api.get(f"/bulk/v1/{entity}/export/{export_id}/status.json")["result"][0] for _ in range(2)]
    assert [job["status"] for job in polled] == ["Processing", "Completed"]
    response = api.http.get(f"/bulk/v1/{entity}/export/{export_id}/file.json", headers=api._auth(None))
    assert response.status_code == 200, response.text
    return polled[-1], response.content


def rows_of(content: bytes, delimiter: str = ",") -> list[list[str]]:
    return list(csv.reader(io.StringIO(content.decode()), delimiter=delimiter))


def test_a_lead_export_holds_what_the_rest_api_returns(api):
    status, content = exported(api, "leads", {"fields": LEAD_FIELDS, "format": "CSV", "filter": {"createdAt": JANUARY}})
    header, *rows = rows_of(content)
    assert header == LEAD_FIELDS
    rest = api.get("/rest/v1/leads.json", filterType="id", filterValues="1,2,3,4,5,6,7", fields=",".join(LEAD_FIELDS))
    # The REST API leaves empty fields out; the export writes them as "null".
    assert rows == [[str(lead.get(name, "null")) for name in LEAD_FIELDS] for lead in rest["result"]]
    assert [row[0] for row in rows] == ["1", "2", "3", "4", "6", "7"]  # 5 is deleted
    assert status["numberOfRecords"] == 6 and status["fileSize"] == len(content)
    assert status["fileChecksum"] == f"sha256:{hashlib.sha256(content).hexdigest()}"
    assert status["queuedAt"] <= status["startedAt"] <= status["finishedAt"]


def test_a_window_includes_its_start_and_excludes_its_end(api):
    # Leads 1 and 2 were created at 09:00 on January 2nd and 3rd, activity 50 at 10:00 on February 7th.
    second_day = {"startAt": "2025-01-02T09:00:00Z", "endAt": "2025-01-03T09:00:00Z"}
    _, leads = exported(api, "leads", {"fields": ["id"], "filter": {"createdAt": second_day}})
    assert rows_of(leads) == [["id"], ["1"]]
    up_to_the_change = {"startAt": "2025-02-07T00:00:00Z", "endAt": "2025-02-07T10:00:00Z"}
    _, activities = exported(api, "activities", {"filter": {"createdAt": up_to_the_change, "activityTypeIds": [13]}})
    assert rows_of(activities) == [ACTIVITY_COLUMNS]


def test_the_update_window_follows_writes(api):
    api.post("/rest/v1/leads.json", {"action": "updateOnly", "lookupField": "id", "input": [{"id": 4, "title": "CFO"}]})
    (lead,) = api.get("/rest/v1/lead/4.json", fields="updatedAt")["result"]
    updated = datetime.fromisoformat(lead["updatedAt"])
    day = timedelta(days=1)

    def updated_between(start: datetime, end: datetime) -> list[list[str]]:
        window = {"startAt": start.isoformat(), "endAt": end.isoformat()}
        return rows_of(exported(api, "leads", {"fields": ["id", "title"], "filter": {"updatedAt": window}})[1])

    assert updated_between(updated, updated + day) == [["id", "title"], ["4", "CFO"]]
    assert updated_between(updated - day, updated - timedelta(seconds=1)) == [["id", "title"]]


def as_export_row(activity: dict) -> list[str]:
    """A REST activity as the export writes it: empty fields as "null", attributes as one JSON object."""
    attributes = {attribute["name"]: attribute["value"] for attribute in activity["attributes"]}
    values = [activity.get(column) for column in ACTIVITY_COLUMNS[:-1]]
    values.append(json.dumps(attributes, separators=(",", ":")) if attributes else None)
    return ["null" if value is None else str(value) for value in values]


def test_an_activity_export_holds_what_the_rest_api_returns_window_by_window(api):
    type_ids = [int(type_id) for type_id in ALL_BUT_DELETE.split(",")]
    rest = listed(page_through(api, "/rest/v1/activities.json", activityTypeIds=ALL_BUT_DELETE))
    exported_rows = []
    for start, end in WINDOWS:
        filters = {"createdAt": {"startAt": start, "endAt": end}, "activityTypeIds": type_ids}
        status, content = exported(api, "activities", {"format": "CSV", "filter": filters})
        header, *rows = rows_of(content)
        assert header == ACTIVITY_COLUMNS and status["numberOfRecords"] == len(rows) > 0
        exported_rows += rows
    assert exported_rows == [as_export_row(activity) for activity in rest]


def test_an_activity_row_is_written_as_marketo_documents_it(api):
    february = {
        "createdAt": {"startAt": "2025-02-07T00:00:00Z", "endAt": "2025-02-08T00:00:00Z"},
        "activityTypeIds": [13],
    }
    _, content = exported(api, "activities", {"filter": february, "format": "TSV"})
    assert content.decode().splitlines()[1].split("\t") == [
        "50",
        "1",
        "2025-02-07T10:00:00Z",
        "13",
        "null",
        "57",
        "Lead Status",
        '"{""New Value"":""MQL"",""Old Value"":""Lead"",""Reason"":""Score reached 40""}"',
    ]
    fields = ["leadId", "actionResult"]
    _, chosen = exported(
        api, "activities", {"filter": february, "fields": fields, "columnHeaderNames": {"leadId": "Lead"}}
    )
    assert rows_of(chosen) == [["Lead", "actionResult"], ["1", "succeeded"]]


def test_without_type_ids_every_type_but_delete_lead_is_exported(api, marketo_company):
    march = {"createdAt": {"startAt": "2025-03-01T00:00:00Z", "endAt": "2025-04-01T00:00:00Z"}}
    _, content = exported(api, "activities", {"filter": march, "format": "SSV"})
    expected = [a for a in marketo_company.activities if a["activityDate"] >= "2025-03" and a["activityTypeId"] != 37]
    assert [row[0] for row in rows_of(content, ";")[1:]] == [str(i) for i in marketo_company.in_listing_order(expected)]


def test_a_file_is_served_in_byte_ranges(api):
    _, content = exported(api, "leads", {"fields": ["id", "email"], "filter": {"createdAt": JANUARY}})
    export_id = api.get("/bulk/v1/leads/export.json", status="Completed")["result"][0]["exportId"]
    url, size = f"/bulk/v1/leads/export/{export_id}/file.json", len(content)
    first = api.http.get(url, headers={**api._auth(None), "Range": "bytes=0-9"})
    assert first.status_code == 206 and first.content == content[:10]
    assert first.headers["content-range"] == f"bytes 0-9/{size}" and first.headers["accept-ranges"] == "bytes"
    rest = api.http.get(url, headers={**api._auth(None), "Range": "bytes=10-"})
    assert first.content + rest.content == content
    beyond = api.http.get(url, headers={**api._auth(None), "Range": f"bytes={size}-"})
    assert beyond.status_code == 416 and beyond.headers["content-range"] == f"bytes */{size}"


def test_jobs_are_listed_by_status_and_cancelled(api):
    done, _ = exported(api, "leads", {"fields": ["id"], "filter": {"createdAt": JANUARY}})
    waiting = created(api, "leads", {"fields": ["id"], "filter": {"createdAt": JANUARY}})
    activity_job = created(api, "activities", {"filter": {"createdAt": JANUARY}})
    listing = api.get("/bulk/v1/leads/export.json")["result"]
    assert [job["exportId"] for job in listing] == [done["exportId"], waiting]  # leads only
    assert api.get("/bulk/v1/leads/export.json", status="Created")["result"][0]["exportId"] == waiting
    (cancelled,) = api.post(f"/bulk/v1/leads/export/{waiting}/cancel.json")["result"]
    assert cancelled["status"] == "Cancelled"
    assert [j["exportId"] for j in api.get("/bulk/v1/leads/export.json", status="Canceled")["result"]] == [waiting]
    paged = api.get("/bulk/v1/leads/export.json", batchSize=1)
    assert len(paged["result"]) == 1 and "nextPageToken" in paged
    rest = api.get("/bulk/v1/leads/export.json", batchSize=1, nextPageToken=paged["nextPageToken"])
    assert rest["result"][0]["exportId"] == waiting and "nextPageToken" not in rest
    assert error_of(api.post(f"/bulk/v1/leads/export/{waiting}/enqueue.json"))["code"] == "1029"
    assert error_of(api.post(f"/bulk/v1/leads/export/{done['exportId']}/cancel.json"))["code"] == "1003"
    assert error_of(api.post(f"/bulk/v1/leads/export/{activity_job}/enqueue.json"))["code"] == "1013"  # not a lead job


def test_two_jobs_process_at_once_and_the_queue_holds_ten(api):
    jobs = [created(api, "leads", {"fields": ["id"], "filter": {"createdAt": JANUARY}}) for _ in range(11)]
    for export_id in jobs[:10]:
        assert api.post(f"/bulk/v1/leads/export/{export_id}/enqueue.json")["success"] is True
    assert error_of(api.post(f"/bulk/v1/leads/export/{jobs[10]}/enqueue.json")) == {
        "code": "1029",
        "message": "Too many jobs in queue",
    }
    api.get(f"/bulk/v1/leads/export/{jobs[0]}/status.json")
    statuses = [job["status"] for job in api.get("/bulk/v1/leads/export.json")["result"]]
    assert statuses == ["Processing"] * 2 + ["Queued"] * 8 + ["Created"]
    api.get(f"/bulk/v1/leads/export/{jobs[0]}/status.json")  # two complete, two more start
    assert api.post(f"/bulk/v1/leads/export/{jobs[10]}/enqueue.json")["result"][0]["status"] == "Queued"


def test_the_daily_export_allocation_answers_1029(api):
    exported(api, "leads", {"fields": ["id"], "filter": {"createdAt": JANUARY}})
    marketing = api.server.sandbox.marketing
    marketing.limits = replace(marketing.limits, marketing_daily_export_bytes=10)
    assert error_of(
        api.post("/bulk/v1/leads/export/create.json", {"fields": ["id"], "filter": {"createdAt": JANUARY}})
    ) == {
        "code": "1029",
        "message": "Export daily quota exceeded",
    }


def test_unknown_jobs_and_unfinished_files(api):
    assert error_of(api.get("/bulk/v1/leads/export/no-such-job/status.json"))["code"] == "1013"
    assert error_of(api.post("/bulk/v1/activities/export/no-such-job/cancel.json"))["code"] == "1013"
    unknown = api.http.get("/bulk/v1/leads/export/no-such-job/file.json", headers=api._auth(None))
    assert unknown.status_code == 404 and unknown.headers["content-type"].startswith("text/plain")
    waiting = created(api, "leads", {"fields": ["id"], "filter": {"createdAt": JANUARY}})
    assert api.http.get(f"/bulk/v1/leads/export/{waiting}/file.json", headers=api._auth(None)).status_code == 404
    assert error_of(api.get("/bulk/v1/programs/export.json"))["code"] == "610"
    assert error_of(api.get("/bulk/v1/leads/export/create.json"))["code"] == "605"


def test_bulk_calls_pass_the_token_check(api):
    response = api.http.post(
        "/bulk/v1/leads/export/create.json", json={"fields": ["id"], "filter": {"createdAt": JANUARY}}
    )
    assert error_of(api._answer(response))["code"] == "600"


@pytest.mark.parametrize(
    "entity, body, code",
    [
        ("leads", {"fields": ["id"], "filter": {"createdAt": {**JANUARY, "endAt": "2025-02-02T00:00:01Z"}}}, "1003"),
        (
            "leads",
            {
                "fields": ["id"],
                "filter": {"createdAt": {"startAt": "2025-02-01T00:00:00Z", "endAt": "2025-01-01T00:00:00Z"}},
            },
            "1003",
        ),
        ("leads", {"fields": ["id"]}, "701"),
        ("leads", {"filter": {"createdAt": JANUARY}}, "701"),
        ("leads", {"fields": ["id", "shoeSize"], "filter": {"createdAt": JANUARY}}, "1006"),
        ("leads", {"fields": ["id"], "filter": {"createdAt": JANUARY, "updatedAt": JANUARY}}, "1003"),
        ("leads", {"fields": ["id"], "filter": {"staticListId": 1001}}, "1035"),
        ("leads", {"fields": ["id"], "filter": {"createdAt": {"startAt": "last week", "endAt": "now"}}}, "704"),
        ("leads", {"fields": ["id"], "filter": {"createdAt": JANUARY}, "format": "XLSX"}, "1003"),
        (
            "leads",
            {"fields": ["id"], "filter": {"createdAt": JANUARY}, "columnHeaderNames": {"email": "E-mail"}},
            "1003",
        ),
        ("activities", {"filter": {"activityTypeIds": [1]}}, "701"),
        ("activities", {"filter": {"createdAt": {**JANUARY, "endAt": "2025-03-01T00:00:00Z"}}}, "1003"),
        ("activities", {"filter": {"createdAt": JANUARY, "activityTypeIds": [37]}}, "1003"),
        ("activities", {"filter": {"createdAt": JANUARY, "primaryAttributeValueIds": [57]}}, "1035"),
        ("activities", {"filter": {"createdAt": JANUARY}, "fields": ["leadId", "email"]}, "1003"),
    ],
)
def test_bad_export_requests_get_marketo_errors(refusing_api, entity, body, code):
    assert error_of(refusing_api.post(f"/bulk/v1/{entity}/export/create.json", body))["code"] == code
