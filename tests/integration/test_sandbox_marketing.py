"""The marketing stand-in over real HTTP, held to Marketo's documented REST behaviour.

Every test serves the hand-made ``marketo_company`` (tests/conftest.py), so every expectation is exact."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from marketo_api import ALL_BUT_DELETE, SINCE, error_of, listed, page_through, serving

from sandbox.dataset import iso
from sandbox.faults import Faults


@pytest.fixture
def api(tmp_path, marketo_company):
    with serving(tmp_path, marketo_company.folder) as marketo:
        yield marketo


# --- identity ---------------------------------------------------------------------------------------


def test_a_token_is_handed_out_again_while_it_lives(api):
    first, again = api.new_token(), api.new_token()
    assert first["token_type"] == "bearer" and first["scope"]
    assert 3590 <= first["expires_in"] <= 3600
    assert again["access_token"] == first["access_token"] and again["expires_in"] <= first["expires_in"]
    posted = api.http.post(
        "/identity/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": api.connection["client_id"],
            "client_secret": api.connection["client_secret"],
        },
    ).json()
    assert posted["access_token"] == first["access_token"]


@pytest.mark.parametrize(
    "overrides, status, error",
    [
        ({"client_secret": "wrong"}, 401, "invalid_client"),
        ({"client_id": "stranger"}, 401, "unauthorized"),
        ({"grant_type": "password"}, 400, "unsupported_grant_type"),
    ],
)
def test_bad_credentials_get_the_identity_endpoints_oauth_errors(api, overrides, status, error):
    credentials = {
        "grant_type": "client_credentials",
        "client_id": api.connection["client_id"],
        "client_secret": api.connection["client_secret"],
        **overrides,
    }
    response = api.http.get("/identity/oauth/token", params=credentials)
    assert response.status_code == status
    assert response.json()["error"] == error and response.json()["error_description"]


def test_an_expired_token_gets_602_and_a_new_token_works(tmp_path, marketo_company):
    with serving(tmp_path, marketo_company.folder, Faults(token_ttl_s=1)) as api:
        assert api.new_token()["expires_in"] <= 1
        assert api.get("/rest/v1/leads/describe.json")["success"] is True
        time.sleep(1.1)
        assert error_of(api.get("/rest/v1/leads/describe.json")) == {"code": "602", "message": "Access token expired"}
        renewed = api.new_token()["access_token"]
        assert renewed != api.token
        assert api.get("/rest/v1/leads/describe.json", token=renewed)["success"] is True


def test_calls_need_a_token_in_the_header_or_the_query(api):
    assert error_of(api._answer(api.http.get("/rest/v1/leads/describe.json")))["code"] == "600"
    assert error_of(api.get("/rest/v1/leads/describe.json", token="not-a-token")) == {
        "code": "601",
        "message": "Access token invalid",
    }
    by_query = api.http.get("/rest/v1/leads/describe.json", params={"access_token": api.token}).json()
    assert by_query["success"] is True


# --- activities -------------------------------------------------------------------------------------


def test_paging_returns_every_activity_once_in_order_with_short_pages(api, marketo_company):
    pages = page_through(api, "/rest/v1/activities.json", activityTypeIds=ALL_BUT_DELETE, batchSize=5)
    assert [a["id"] for a in listed(pages)] == marketo_company.in_listing_order(
        [a for a in marketo_company.activities if a["activityTypeId"] != 37]
    )
    # A page stops at the end of a month, so some pages are short although more follow.
    assert any(0 < len(page.get("result", [])) < 5 and page["moreResult"] for page in pages)
    assert all(len(page.get("result", [])) <= 5 for page in pages) and pages[-1]["moreResult"] is False
    caught_up = api.get(
        "/rest/v1/activities.json", nextPageToken=pages[-1]["nextPageToken"], activityTypeIds=ALL_BUT_DELETE
    )
    assert caught_up["moreResult"] is False and "result" not in caught_up
    assert caught_up["nextPageToken"] == pages[-1]["nextPageToken"]


def test_activities_come_in_marketos_shape(api):
    pages = page_through(api, "/rest/v1/activities.json", activityTypeIds="13")
    (change,) = listed(pages)
    assert change == {
        "id": 50,
        "marketoGUID": "50",
        "leadId": 1,
        "activityDate": "2025-02-07T10:00:00Z",
        "activityTypeId": 13,
        "primaryAttributeValueId": 57,
        "primaryAttributeValue": "Lead Status",
        "attributes": [
            {"name": "New Value", "value": "MQL"},
            {"name": "Old Value", "value": "Lead"},
            {"name": "Reason", "value": "Score reached 40"},
        ],
    }


def test_type_and_lead_filters_skip_what_was_not_asked_for(api, marketo_company):
    pages = page_through(api, "/rest/v1/activities.json", activityTypeIds="1,2", batchSize=5)
    assert [a["id"] for a in listed(pages)] == marketo_company.in_listing_order(
        [a for a in marketo_company.activities if a["activityTypeId"] in (1, 2)]
    )
    assert any("result" not in page and page["moreResult"] for page in pages)  # scanned, nothing matched
    of_lead_2 = page_through(api, "/rest/v1/activities.json", activityTypeIds=ALL_BUT_DELETE, leadIds="2")
    assert [a["id"] for a in listed(of_lead_2)] == marketo_company.in_listing_order(
        [a for a in marketo_company.activities if a["leadId"] == 2 and a["activityTypeId"] != 37]
    )


def test_activity_types_cover_the_datasets_types(api, marketo_company):
    types = {t["id"]: t for t in api.get("/rest/v1/activities/types.json")["result"]}
    assert {a["activityTypeId"] for a in marketo_company.activities} <= set(types)
    assert types[13]["primaryAttribute"] == {"name": "Attribute Name", "dataType": "integer"}
    assert {"name": "New Value", "dataType": "string"} in types[13]["attributes"]


def test_deleted_leads_are_listed_from_their_delete_activity(api):
    (deleted,) = listed(page_through(api, "/rest/v1/activities/deletedleads.json"))
    assert deleted["leadId"] == 5 and deleted["activityTypeId"] == 37


def test_lead_changes_list_new_leads_and_changes_of_the_asked_fields(api, marketo_company):
    pages = page_through(api, "/rest/v1/activities/leadchanges.json", fields="leadStatus")
    changes = listed(pages)
    assert [c["id"] for c in changes] == marketo_company.in_listing_order(
        [a for a in marketo_company.activities if a["activityTypeId"] in (12, 13)]
    )
    (status_change,) = [c for c in changes if c["activityTypeId"] == 13]
    assert status_change["fields"] == [{"id": 57, "name": "leadStatus", "newValue": "MQL", "oldValue": "Lead"}]
    assert status_change["attributes"] == [{"name": "Reason", "value": "Score reached 40"}]
    other_field = listed(page_through(api, "/rest/v1/activities/leadchanges.json", fields="firstName"))
    assert {c["activityTypeId"] for c in other_field} == {12}


@pytest.mark.parametrize(
    "params, code",
    [
        ({}, "701"),
        ({"activityTypeIds": "1,2,6,7,10,11,12,13,22,104,32"}, "1003"),
        ({"activityTypeIds": "999"}, "1003"),
        ({"activityTypeIds": "1", "leadIds": ",".join(map(str, range(1, 32)))}, "1003"),
        ({"activityTypeIds": "1", "batchSize": "301"}, "1003"),
        ({"activityTypeIds": "1", "nextPageToken": "not-a-token"}, "1003"),
        ({"activityTypeIds": "one"}, "1001"),
    ],
)
def test_bad_activity_requests_get_marketo_errors(api, params, code):
    token = api.get("/rest/v1/activities/pagingtoken.json", sinceDatetime=SINCE)["nextPageToken"]
    assert error_of(api.get("/rest/v1/activities.json", **{"nextPageToken": token, **params}))["code"] == code


def test_a_paging_token_needs_an_iso_datetime(api):
    assert error_of(api.get("/rest/v1/activities/pagingtoken.json", sinceDatetime="last tuesday"))["code"] == "704"
    assert error_of(api.get("/rest/v1/activities/pagingtoken.json"))["code"] == "701"


# --- leads ------------------------------------------------------------------------------------------


def test_leads_by_email_with_the_asked_fields(api):
    body = api.get(
        "/rest/v1/leads.json",
        filterType="email",
        filterValues="ava@acme.com,nobody@x.com,zoe@wonka.fr",
        fields="id,email,leadScore,leadStatus,createdAt,handoffSalesOutcome",
    )
    assert body["result"] == [
        {"id": 1, "email": "ava@acme.com", "leadScore": 10, "leadStatus": "MQL", "createdAt": "2025-01-02T09:00:00Z"}
    ]  # empty fields are left out
    assert "nextPageToken" not in body
    default = api.get("/rest/v1/leads.json", filterType="id", filterValues="2")["result"]
    assert default == [
        {
            "id": 2,
            "updatedAt": "2025-01-03T09:00:00Z",
            "lastName": "Carter",
            "email": "liam@globex.io",
            "createdAt": "2025-01-03T09:00:00Z",
            "firstName": "Liam",
        }
    ]


def test_filter_values_are_capped_at_300(api):
    three_hundred = ",".join(map(str, range(1, 301)))
    found = api.get("/rest/v1/leads.json", filterType="id", filterValues=three_hundred, fields="id")["result"]
    assert [lead["id"] for lead in found] == [1, 2, 3, 4, 6, 7]  # 5 is deleted
    assert (
        error_of(api.get("/rest/v1/leads.json", filterType="id", filterValues=three_hundred + ",301"))["code"] == "1003"
    )


def test_lead_pages_carry_a_token_until_the_last(api):
    pages, token = [], None
    while True:
        body = api.get(
            "/rest/v1/leads.json",
            filterType="id",
            filterValues="1,2,3,4,5,6,7",
            fields="id",
            batchSize=2,
            **({"nextPageToken": token} if token else {}),
        )
        pages.append([lead["id"] for lead in body["result"]])
        token = body.get("nextPageToken")
        if token is None:
            break
    assert pages == [[1, 2], [3, 4], [6, 7]]


def test_post_with_method_get_reads_like_get(api):
    form = {"_method": "GET", "filterType": "email", "filterValues": "mia@initech.de,noah@hooli.com", "fields": "id"}
    posted = api._answer(api.http.post("/rest/v1/leads.json", data=form, headers=api._auth(None)))
    assert posted["result"] == [{"id": 3}, {"id": 4}]


@pytest.mark.parametrize(
    "params, code",
    [
        ({"filterType": "favoriteColor", "filterValues": "blue"}, "1006"),
        ({"filterType": "firstName", "filterValues": "Ava"}, "1011"),
        ({"filterType": "email"}, "701"),
        ({"filterValues": "ava@acme.com"}, "701"),
        ({"filterType": "id", "filterValues": "one"}, "1001"),
        ({"filterType": "id", "filterValues": "1", "fields": "id,shoeSize"}, "1006"),
    ],
)
def test_bad_lead_filters_get_marketo_errors(api, params, code):
    assert error_of(api.get("/rest/v1/leads.json", **params))["code"] == code


def test_lead_by_id(api):
    assert api.get("/rest/v1/lead/4.json", fields="email")["result"] == [{"email": "noah@hooli.com"}]
    assert api.get("/rest/v1/lead/5.json")["result"] == []  # deleted
    assert api.get("/rest/v1/lead/999.json")["result"] == []
    assert error_of(api.get("/rest/v1/lead/four.json"))["code"] == "610"


def test_describe_lists_the_fields_handoff_writes(api):
    described = {f["rest"]["name"]: f for f in api.get("/rest/v1/leads/describe.json")["result"]}
    assert {
        "id",
        "email",
        "firstName",
        "lastName",
        "company",
        "title",
        "leadScore",
        "leadStatus",
        "leadSource",
        "createdAt",
        "updatedAt",
        "handoffSalesOutcome",
        "handoffRejectionReason",
        "handoffOpportunityStage",
        "handoffWonRevenue",
    } <= set(described)
    assert (
        described["updatedAt"]["rest"]["readOnly"] is True and described["handoffWonRevenue"]["dataType"] == "currency"
    )
    (lead,) = api.get("/rest/v1/leads/describe2.json")["result"]
    assert ["email"] in lead["searchableFields"] and ["handoffSalesOutcome"] in lead["searchableFields"]
    assert ["firstName"] not in lead["searchableFields"]


# --- writes -----------------------------------------------------------------------------------------


def test_update_only_updates_known_leads_skips_unknown_and_logs_the_changes(api, marketo_company):
    body = api.post(
        "/rest/v1/leads.json",
        {
            "action": "updateOnly",
            "lookupField": "id",
            "input": [
                {"id": 1, "handoffSalesOutcome": "won", "handoffWonRevenue": 1200.5},
                {"id": 999, "handoffSalesOutcome": "lost"},
            ],
        },
    )
    assert body["result"] == [
        {"id": 1, "status": "updated"},
        {"status": "skipped", "reasons": [{"code": "1004", "message": "Lead not found"}]},
    ]
    (lead,) = api.get("/rest/v1/lead/1.json", fields="handoffSalesOutcome,handoffWonRevenue,updatedAt")["result"]
    assert lead["handoffSalesOutcome"] == "won" and lead["handoffWonRevenue"] == 1200.5
    assert lead["updatedAt"] > "2026"  # written now, not in the dataset's past
    since_the_dataset = iso(marketo_company.now)
    changes = listed(
        page_through(
            api,
            "/rest/v1/activities/leadchanges.json",
            since=since_the_dataset,
            fields="handoffSalesOutcome,handoffWonRevenue",
        )
    )
    assert [c["fields"] for c in changes] == [
        [{"id": 3001, "name": "handoffSalesOutcome", "newValue": "won", "oldValue": None}],
        [{"id": 3004, "name": "handoffWonRevenue", "newValue": 1200.5, "oldValue": None}],
    ]
    logged = listed(page_through(api, "/rest/v1/activities.json", since=since_the_dataset, activityTypeIds="13"))
    assert [(a["leadId"], a["primaryAttributeValue"]) for a in logged] == [
        (1, "Handoff Sales Outcome"),
        (1, "Handoff Won Revenue"),
    ]


def test_sending_the_same_values_again_changes_nothing(api, marketo_company):
    update = {"action": "updateOnly", "lookupField": "id", "input": [{"id": 2, "handoffRejectionReason": "bad fit"}]}
    api.post("/rest/v1/leads.json", update)
    (before,) = api.get("/rest/v1/lead/2.json", fields="updatedAt")["result"]
    assert api.post("/rest/v1/leads.json", update)["result"] == [{"id": 2, "status": "updated"}]
    assert api.get("/rest/v1/lead/2.json", fields="updatedAt")["result"] == [before]
    logged = listed(page_through(api, "/rest/v1/activities.json", since=iso(marketo_company.now), activityTypeIds="13"))
    assert len(logged) == 1


def test_create_or_update_matches_by_email_and_creates_the_rest(api, marketo_company):
    body = api.post(
        "/rest/v1/leads.json",
        {
            "input": [
                {"email": "ava@acme.com", "title": "VP Engineering"},
                {"email": "new@lead.example", "firstName": "Nia"},
            ]
        },
    )
    assert body["result"] == [{"id": 1, "status": "updated"}, {"id": 8, "status": "created"}]
    assert api.get("/rest/v1/lead/1.json", fields="title")["result"] == [{"title": "VP Engineering"}]
    (created,) = api.get("/rest/v1/leads.json", filterType="email", filterValues="new@lead.example")["result"]
    assert created["id"] == 8 and created["firstName"] == "Nia" and created["createdAt"] == created["updatedAt"]
    (new_lead,) = listed(
        page_through(api, "/rest/v1/activities.json", since=iso(marketo_company.now), activityTypeIds="12")
    )
    assert new_lead["leadId"] == 8


@pytest.mark.parametrize(
    "action, lookup, record, code",
    [
        ("createOnly", "email", {"email": "ava@acme.com"}, "1005"),
        ("updateOnly", "email", {"email": "nobody@x.com", "title": "CEO"}, "1004"),
        ("createOrUpdate", "email", {"email": "ava@acme.com", "favoriteColor": "blue"}, "1006"),
        ("createOrUpdate", "email", {"email": "ava@acme.com", "leadScore": "lots"}, "1001"),
        ("createOnly", "email", {"id": 1, "email": "ava@acme.com"}, "1003"),
        ("updateOnly", "id", {"id": 1, "createdAt": "2020-01-01T00:00:00Z"}, "1003"),
        ("createOrUpdate", "email", {"email": "dup@hooli.com", "title": "CFO"}, "1007"),
    ],
)
def test_records_are_skipped_with_marketos_reasons(api, action, lookup, record, code):
    body = api.post(
        "/rest/v1/leads.json",
        {
            "action": action,
            "lookupField": lookup,
            "input": [
                record,
                {"id": 3, "title": "CTO"} if lookup == "id" else {"email": "mia@initech.de", "title": "CTO"},
            ],
        },
    )
    skipped, fine = body["result"]
    assert skipped["status"] == "skipped" and skipped["reasons"][0]["code"] == code and "id" not in skipped
    assert fine["status"] == ("updated" if action != "createOnly" else "skipped")


@pytest.mark.parametrize(
    "request_kwargs, code",
    [
        ({"content": b'{"input": [', "headers": {"Content-Type": "application/json"}}, "609"),
        ({"content": b'{"input": []}', "headers": {"Content-Type": "text/plain"}}, "612"),
        ({"json": {"action": "upsertMaybe", "input": [{"email": "a@b.c"}]}}, "1003"),
        ({"json": {"action": "createOnly", "input": []}}, "701"),
        ({"json": {"input": [{"email": f"l{n}@x.example"} for n in range(301)]}}, "1003"),
        ({"json": {"lookupField": "lastName", "input": [{"lastName": "Brooks"}]}}, "1011"),
    ],
)
def test_malformed_syncs_get_marketo_errors_not_crashes(api, request_kwargs, code):
    headers = {**api._auth(None), **request_kwargs.pop("headers", {})}
    assert (
        error_of(api._answer(api.http.post("/rest/v1/leads.json", headers=headers, **request_kwargs)))["code"] == code
    )


def test_writes_survive_a_restart(tmp_path, marketo_company):
    with serving(tmp_path, marketo_company.folder) as api:
        api.post(
            "/rest/v1/leads.json",
            {"action": "updateOnly", "lookupField": "id", "input": [{"id": 3, "handoffOpportunityStage": "proposal"}]},
        )
    with serving(tmp_path, marketo_company.folder) as api:
        assert api.get("/rest/v1/lead/3.json", fields="handoffOpportunityStage")["result"] == [
            {"handoffOpportunityStage": "proposal"}
        ]


# --- programs ---------------------------------------------------------------------------------------


def test_programs_page_by_offset_and_filter_by_update_time(api):
    first = api.get("/rest/asset/v1/programs.json", maxReturn=2)
    assert [p["id"] for p in first["result"]] == [1001, 1002] and first["warnings"] == []
    assert first["result"][0]["updatedAt"] == "2025-01-15T08:00:00Z+0000"  # the asset API's own format
    assert [p["id"] for p in api.get("/rest/asset/v1/programs.json", maxReturn=2, offset=2)["result"]] == [1003]
    past_the_end = api.get("/rest/asset/v1/programs.json", offset=3)
    assert "result" not in past_the_end and past_the_end["warnings"] == [
        "No assets found for the given search criteria."
    ]
    recent = api.get(
        "/rest/asset/v1/programs.json", earliestUpdatedAt="2025-02-01T00:00:00Z", latestUpdatedAt="2025-02-28T00:00:00Z"
    )
    assert [p["id"] for p in recent["result"]] == [1002]
    assert error_of(api.get("/rest/asset/v1/programs.json", maxReturn=201))["code"] == "1003"


def test_program_members_by_filter(api):
    by_lead = api.get("/rest/v1/programs/1001/members.json", filterType="leadId", filterValues="1,2")
    assert by_lead["result"] == [
        {
            "seq": 0,
            "leadId": 1,
            "reachedSuccess": True,
            "programId": 1001,
            "acquiredBy": False,
            "membershipDate": "2025-01-16T10:00:00Z",
        },
        {
            "seq": 1,
            "leadId": 2,
            "reachedSuccess": False,
            "programId": 1001,
            "acquiredBy": False,
            "membershipDate": "2025-01-17T10:00:00Z",
        },
    ]
    assert by_lead["moreResult"] is False
    attended = api.get(
        "/rest/v1/programs/1001/members.json",
        filterType="statusName",
        filterValues="Attended",
        fields="leadId,statusName",
    )
    assert attended["result"] == [
        {"seq": 0, "leadId": 1, "statusName": "Attended"},
        {"seq": 1, "leadId": 3, "statusName": "Attended"},
    ]
    window = api.get(
        "/rest/v1/programs/1001/members.json",
        filterType="updatedAt",
        startAt="2025-01-17T00:00:00Z",
        endAt="2025-01-22T00:00:00Z",
        fields="leadId",
    )
    assert [m["leadId"] for m in window["result"]] == [1, 2]


def test_program_members_page_with_a_token(api):
    pages, token = [], None
    while True:
        body = api.get(
            "/rest/v1/programs/1001/members.json",
            filterType="reachedSuccess",
            filterValues="true,false",
            fields="leadId",
            batchSize=2,
            **({"nextPageToken": token} if token else {}),
        )
        pages.append([m["leadId"] for m in body["result"]])
        if not body["moreResult"]:
            break
        token = body["nextPageToken"]
    assert pages == [[1, 2], [3]]


@pytest.mark.parametrize(
    "params, code",
    [
        ({}, "701"),
        ({"filterType": "leadId"}, "701"),
        ({"filterType": "membershipDate", "filterValues": "x"}, "1011"),
        ({"filterType": "updatedAt", "startAt": "2025-01-01T00:00:00Z", "endAt": "2025-01-09T00:00:00Z"}, "1003"),
        ({"filterType": "leadId", "filterValues": "1", "fields": "leadId,favoriteColor"}, "1006"),
    ],
)
def test_bad_member_queries_get_marketo_errors(api, params, code):
    assert error_of(api.get("/rest/v1/programs/1001/members.json", **params))["code"] == code


# --- limits and malformed calls ---------------------------------------------------------------------


def test_unknown_resources_and_wrong_methods_are_answered_in_http_200(api):
    assert error_of(api.get("/rest/v1/nothing.json")) == {"code": "610", "message": "Requested resource not found"}
    assert error_of(api._answer(api.http.delete("/rest/v1/leads.json", headers=api._auth(None)))) == {
        "code": "605",
        "message": "HTTP Method not supported",
    }
    assert error_of(api.get("/rest/v1/programs/webinars/members.json"))["code"] == "610"


def test_the_rate_limit_answers_606_and_errors_do_not_count(tmp_path, marketo_company):
    with serving(tmp_path, marketo_company.folder, Faults(pressure=0.05)) as api:  # 5 calls per 20 s
        assert error_of(api.get("/rest/v1/leads.json"))["code"] == "701"
        for _ in range(5):
            assert api.get("/rest/v1/activities/types.json")["success"] is True
        assert error_of(api.get("/rest/v1/activities/types.json")) == {
            "code": "606",
            "message": "Max rate limit '5' exceeded with in '20' secs",
        }


def test_the_daily_quota_answers_607(tmp_path, marketo_company):
    with serving(tmp_path, marketo_company.folder) as api:
        marketing = api.server.sandbox.marketing
        marketing.limits = replace(marketing.limits, marketing_daily_quota=3)
        for _ in range(3):
            assert api.get("/rest/v1/activities/types.json")["success"] is True
        assert error_of(api.get("/rest/v1/activities/types.json")) == {"code": "607", "message": "Daily quota reached"}
        assert "access_token" in api.new_token()  # the identity endpoint is not metered


def test_daily_usage_counts_the_days_calls_itself_included(api):
    for _ in range(2):
        assert api.get("/rest/v1/activities/types.json")["success"] is True
    api.new_token()  # the identity endpoint is not metered
    usage = api.get("/rest/v1/stats/usage.json")
    assert usage["success"] is True and "#" in usage["requestId"]
    (day,) = usage["result"]
    assert day == {
        "date": datetime.now(ZoneInfo("America/Chicago")).date().isoformat(),  # Marketo's quota day
        "total": 3,
        "users": [{"userId": "handoff-api@sandbox.example", "count": 3}],
    }


def test_calls_past_the_concurrency_limit_get_615(tmp_path, marketo_company, monkeypatch):
    with serving(tmp_path, marketo_company.folder, Faults(pressure=0.2)) as api:  # 2 calls in flight at most
        records = api.server.sandbox.marketing.records
        entered, release = threading.Semaphore(0), threading.Event()
        read_lead = records.lead

        def slow_read(lead_id: int):  # holds its call in flight until the test lets go
            entered.release()
            release.wait(10)
            return read_lead(lead_id)

        monkeypatch.setattr(records, "lead", slow_read)
        with ThreadPoolExecutor(2) as pool:
            held = [pool.submit(api.get, "/rest/v1/lead/1.json") for _ in range(2)]
            assert all(entered.acquire(timeout=10) for _ in held)
            refused = api.get("/rest/v1/activities/types.json")
            release.set()
            assert all(call.result()["success"] for call in held)
        assert error_of(refused) == {"code": "615", "message": "Concurrent access limit '2' reached"}
        assert api.get("/rest/v1/activities/types.json")["success"] is True
