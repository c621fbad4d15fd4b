"""The CRM stand-in over real HTTP, held to HubSpot's documented v3 (and associations v4) behaviour.

Most tests serve a small hand-made company, so every assertion is exact; one pages through the
generated company, whatever its size, to show paging returns each record once.
"""

import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from sandbox.crm import RequestBudget
from sandbox.crm_search import SearchRequest, compile_search
from sandbox.dataset import Dataset, DatasetWriter, iso
from sandbox.faults import Faults
from sandbox.server import SandboxServer, build_sandbox

OBJECT_TYPES = ("contacts", "companies", "deals", "calls", "emails", "meetings", "tasks")
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def day(days: float) -> str:
    return iso(T0 + timedelta(days=days))


def millis(days: float) -> str:
    return str(int((T0 + timedelta(days=days)).timestamp() * 1000))


# id, email, first name, last name, lifecycle stage, lead status, owner, engagement score, modified (day)
CONTACTS = [
    (1, "alice@acme.com", "Alice", "Adams", "lead", "NEW", None, "15", 3),
    (2, "bob@globex.io", "Bob", "Brown", "marketingqualifiedlead", "OPEN", "101", "80", 5),
    (3, "carol@acme.com", "Carol", "Clark", "salesqualifiedlead", "IN_PROGRESS", "102", "55.5", 1),
    (4, "dan@initech.com", "Dan", "Davis", "subscriber", None, None, None, 2),
    (5, "erin@acme.com", "Erin", "Evans", "opportunity", "CONNECTED", "101", "120", 4),
    (6, "frank@globex.io", "Frank", "Fisher", "customer", "OPEN_DEAL", "102", "9", 4),
    (7, "grace@hooli.com", "Grace", "Green", "lead", "UNQUALIFIED", "101", "30", 6),
    (8, "heidi@acme.com", "Heidi", "Hill", "marketingqualifiedlead", "ATTEMPTED_TO_CONTACT", "103", "70", 7),
]
LIVE_CONTACTS = [c[0] for c in CONTACTS]
DEAL_STAGES = (
    ("appointmentscheduled", "Appointment Scheduled", "0.2", "false"),
    ("closedwon", "Closed Won", "1.0", "true"),
    ("closedlost", "Closed Lost", "0.0", "true"),
)
ARCHIVED_CONTACT, MERGED_CONTACT, SURVIVOR = 9, 10, 2


def crm_object(object_type: str, object_id: int, properties: dict, modified: float, **envelope) -> dict:
    return {
        "objectType": object_type,
        "id": str(object_id),
        "properties": properties,
        "createdAt": day(0),
        "updatedAt": day(modified),
        "archived": False,
        "archivedAt": None,
        "mergedInto": None,
        **envelope,
    }


def write_company(folder) -> None:
    with DatasetWriter(folder, scale="custom", seed=None, now=T0 + timedelta(days=10)) as data:
        for owner_id, first, last in (("101", "Ava", "Brooks"), ("102", "Liam", "Carter"), ("103", "Mia", "Schneider")):
            data.write(
                "owners",
                {
                    "id": owner_id,
                    "email": f"{first.lower()}@handoff-demo.example",
                    "firstName": first,
                    "lastName": last,
                    "userId": int(owner_id) * 7,
                    "archived": False,
                    "teams": [],
                    "createdAt": day(0),
                    "updatedAt": day(0),
                    "timeZone": "Europe/Berlin",
                    "country": "DE",
                    "workingHours": {"start": 9, "end": 17},
                },
            )
        stages = [
            {
                "id": stage,
                "label": label,
                "displayOrder": order,
                "metadata": {"probability": probability, "isClosed": closed},
            }
            for order, (stage, label, probability, closed) in enumerate(DEAL_STAGES)
        ]
        data.write(
            "crm_pipelines",
            {"id": "default", "label": "Sales Pipeline", "displayOrder": 0, "objectType": "deals", "stages": stages},
        )
        for object_id, email, first, last, stage, status, owner, score, modified in CONTACTS:
            properties = {
                "email": email,
                "firstname": first,
                "lastname": last,
                "lifecyclestage": stage,
                "hs_lead_status": status,
                "hubspot_owner_id": owner,
                "handoff_engagement_score": score,
                "createdate": day(0),
                "lastmodifieddate": day(modified),
                "hs_object_id": str(object_id),
            }
            data.write("crm_objects", crm_object("contacts", object_id, properties, modified))
        data.write(
            "crm_objects",
            crm_object("contacts", ARCHIVED_CONTACT, {"email": "ivan@gone.com"}, 2, archived=True, archivedAt=day(8)),
        )
        data.write(
            "crm_objects",
            crm_object("contacts", MERGED_CONTACT, {"email": "robert@globex.io"}, 2, mergedInto=str(SURVIVOR)),
        )
        for object_id, name, domain, industry, employees in (
            (1, "Acme", "acme.com", "COMPUTER_SOFTWARE", "250"),
            (2, "Globex", "globex.io", "FINANCIAL_SERVICES", "1200"),
            (3, "Initech", "initech.com", "COMPUTER_SOFTWARE", "40"),
        ):
            data.write(
                "crm_objects",
                crm_object(
                    "companies",
                    object_id,
                    {
                        "name": name,
                        "domain": domain,
                        "industry": industry,
                        "numberofemployees": employees,
                        "country": "US",
                    },
                    object_id,
                ),
            )
        data.write(
            "crm_objects",
            crm_object(
                "deals",
                1,
                {
                    "dealname": "Acme renewal",
                    "amount": "50000",
                    "dealstage": "closedwon",
                    "pipeline": "default",
                    "closedate": day(20),
                    "hubspot_owner_id": "101",
                },
                2,
            ),
        )
        data.write(
            "crm_objects",
            crm_object(
                "deals",
                2,
                {
                    "dealname": "Globex pilot",
                    "amount": "12500.50",
                    "dealstage": "appointmentscheduled",
                    "pipeline": "default",
                    "closedate": day(30),
                    "hubspot_owner_id": "102",
                },
                3,
            ),
        )
        for object_id, direction, status in ((1, "OUTBOUND", "COMPLETED"), (2, "INBOUND", "NO_ANSWER")):
            data.write(
                "crm_objects",
                crm_object(
                    "calls",
                    object_id,
                    {
                        "hs_timestamp": day(object_id),
                        "hubspot_owner_id": "101",
                        "hs_call_title": "Intro call",
                        "hs_call_direction": direction,
                        "hs_call_status": status,
                        "hs_call_duration": "60000",
                    },
                    object_id,
                ),
            )
        data.write(
            "crm_objects",
            crm_object(
                "emails", 1, {"hs_timestamp": day(1), "hs_email_direction": "EMAIL", "hs_email_subject": "Welcome"}, 1
            ),
        )
        data.write(
            "crm_objects",
            crm_object(
                "meetings",
                1,
                {"hs_timestamp": day(2), "hs_meeting_title": "Demo", "hs_meeting_outcome": "COMPLETED"},
                2,
            ),
        )
        data.write(
            "crm_objects",
            crm_object(
                "tasks",
                1,
                {
                    "hs_timestamp": day(3),
                    "hs_task_subject": "Follow up",
                    "hs_task_status": "NOT_STARTED",
                    "hs_task_type": "CALL",
                },
                3,
            ),
        )
        for from_type, from_id, to_type, to_id, kind in (
            ("contacts", 1, "companies", 1, "contact_to_company"),
            ("contacts", 3, "companies", 1, "contact_to_company_unlabeled"),
            ("contacts", 2, "companies", 2, "contact_to_company"),
            ("deals", 1, "contacts", 1, "deal_to_contact"),
            ("deals", 1, "companies", 1, "deal_to_company"),
            ("calls", 1, "contacts", 1, "call_to_contact"),
            ("calls", 2, "contacts", 2, "call_to_contact"),
        ):
            data.write(
                "crm_associations",
                {
                    "fromType": from_type,
                    "fromId": str(from_id),
                    "toType": to_type,
                    "toId": str(to_id),
                    "associationType": kind,
                },
            )
        for value, moment in (("subscriber", 1), ("lead", 3)):
            data.write(
                "crm_property_history",
                {
                    "objectType": "contacts",
                    "id": "1",
                    "property": "lifecyclestage",
                    "value": value,
                    "timestamp": day(moment),
                    "sourceType": "CRM_UI",
                },
            )


@pytest.fixture(scope="module")
def hand_made_company(tmp_path_factory):
    """The small hand-made CRM company ``write_company`` writes."""
    folder = tmp_path_factory.mktemp("hand-made-company")
    write_company(folder)
    return folder


@contextmanager
def serving(state_dir, dataset_dir, faults: Faults | None = None):
    with SandboxServer(build_sandbox(state_dir, dataset_dir=dataset_dir, faults=faults)) as server:
        connection = server.connections()["crm"]
        with httpx.Client(
            base_url=connection["base_url"], headers={"Authorization": f"Bearer {connection['access_token']}"}
        ) as client:
            yield client


@pytest.fixture(scope="module")
def crm(hand_made_company, tmp_path_factory):
    """One sandbox for the tests that only read (or are refused), with room for all their requests."""
    with serving(tmp_path_factory.mktemp("reader"), hand_made_company, Faults(pressure=100)) as client:
        yield client


@pytest.fixture(scope="module")
def generated(tiny_dataset, tmp_path_factory):
    """The generated company, read-only, with room for paging through all of it however large it grows."""
    with serving(tmp_path_factory.mktemp("generated"), tiny_dataset, Faults(pressure=100)) as client:
        yield client


@pytest.fixture
def fresh_crm(hand_made_company, tmp_path):
    """A sandbox of its own, for a test that writes."""
    with serving(tmp_path / "state", hand_made_company) as client:
        yield client


def ids(records: list[dict]) -> list[int]:
    return [int(record["id"]) for record in records]


def page_through(crm, path: str, **params) -> list[dict]:
    seen, after = [], None
    while True:
        page = crm.get(path, params={**params, **({"after": after} if after else {})}).json()
        seen += page["results"]
        if "paging" not in page:
            return seen
        after = page["paging"]["next"]["after"]
        assert f"after={after}" in page["paging"]["next"]["link"]


def search(crm, object_type: str = "contacts", **body) -> dict:
    response = crm.post(f"/crm/v3/objects/{object_type}/search", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def found(crm, *filters: dict, **body) -> list[int]:
    return ids(search(crm, filterGroups=[{"filters": list(filters)}], limit=200, **body)["results"])


# -- listing and reading ------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/crm/v3/owners/", "/crm/v3/objects/contacts/", "/crm/v3/properties/deals/"])
def test_a_trailing_slash_reads_the_same_as_none(crm, path):
    with_slash, without = crm.get(path), crm.get(path.rstrip("/"))
    assert with_slash.status_code == 200
    assert with_slash.json()["results"] == without.json()["results"]


@pytest.mark.parametrize(
    "object_type", ["tickets", "products", "line_items", "quotes", "notes", "communications", "postal_mail"]
)
def test_standard_objects_the_company_has_none_of_answer_empty_with_their_properties(crm, object_type):
    assert crm.get(f"/crm/v3/objects/{object_type}").json() == {"results": []}
    assert search(crm, object_type)["total"] == 0
    properties = {p["name"] for p in crm.get(f"/crm/v3/properties/{object_type}").json()["results"]}
    assert {"hs_object_id", "hs_lastmodifieddate"} <= properties


def test_tickets_have_the_default_support_pipeline_and_associations(crm):
    pipelines = crm.get("/crm/v3/pipelines/tickets").json()["results"]
    assert [(p["id"], p["label"]) for p in pipelines] == [("0", "Support Pipeline")]
    assert [s["label"] for s in pipelines[0]["stages"]] == ["New", "Waiting on contact", "Waiting on us", "Closed"]
    stages = crm.get("/crm/v3/properties/tickets/hs_pipeline_stage").json()["options"]
    assert [o["value"] for o in stages] == ["1", "2", "3", "4"]
    response = crm.get("/crm/v4/objects/contacts/1/associations/tickets")
    assert response.status_code == 200 and response.json()["results"] == []


def test_paging_to_the_end_returns_every_live_record_once_for_every_object_type(generated, tiny_dataset):
    for object_type in OBJECT_TYPES:
        seen = ids(page_through(generated, f"/crm/v3/objects/{object_type}", limit=37))
        expected = [
            int(r["id"])
            for r in Dataset(tiny_dataset).rows("crm_objects")
            if r["objectType"] == object_type and not r.get("archived") and r.get("mergedInto") is None
        ]
        assert sorted(seen) == sorted(expected), object_type
        assert len(seen) == len(set(seen)), object_type


def test_every_property_the_generated_company_holds_is_defined(generated, tiny_dataset):
    held: dict[str, set[str]] = {}
    for record in Dataset(tiny_dataset).rows("crm_objects"):
        held.setdefault(record["objectType"], set()).update(record["properties"])
    for object_type, names in held.items():
        defined = {p["name"] for p in generated.get(f"/crm/v3/properties/{object_type}").json()["results"]}
        assert names <= defined, object_type


def test_each_object_type_pages_to_the_end_in_small_pages(crm):
    assert ids(page_through(crm, "/crm/v3/objects/contacts", limit=3)) == LIVE_CONTACTS
    assert ids(page_through(crm, "/crm/v3/objects/companies", limit=1)) == [1, 2, 3]
    for object_type in ("calls", "deals"):
        assert ids(page_through(crm, f"/crm/v3/objects/{object_type}", limit=1)) == [1, 2]
    for object_type in ("emails", "meetings", "tasks"):
        assert ids(page_through(crm, f"/crm/v3/objects/{object_type}")) == [1]


def test_only_requested_properties_are_returned_as_strings(crm):
    params = {"limit": 1, "properties": "email,hs_object_id,nope"}
    record = crm.get("/crm/v3/objects/contacts", params=params).json()["results"][0]
    assert record["properties"] == {"email": "alice@acme.com", "hs_object_id": "1"}
    assert set(record) == {"id", "properties", "createdAt", "updatedAt", "archived"}


def test_properties_may_be_repeated_as_the_sdk_sends_them(crm):
    record = crm.get("/crm/v3/objects/contacts/5?properties=email&properties=firstname,lastname").json()
    assert record["properties"] == {"email": "erin@acme.com", "firstname": "Erin", "lastname": "Evans"}


@pytest.mark.parametrize(
    "object_type, expected",
    [
        ("contacts", {"createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname"}),
        ("companies", {"createdate", "domain", "hs_lastmodifieddate", "hs_object_id", "name"}),
        (
            "deals",
            {
                "amount",
                "closedate",
                "createdate",
                "dealname",
                "dealstage",
                "hs_lastmodifieddate",
                "hs_object_id",
                "pipeline",
            },
        ),
        ("calls", {"hs_createdate", "hs_lastmodifieddate", "hs_object_id"}),
    ],
)
def test_a_read_without_properties_returns_hubspots_defaults(crm, object_type, expected):
    record = crm.get(f"/crm/v3/objects/{object_type}/1").json()
    assert set(record["properties"]) == expected
    modified = "lastmodifieddate" if object_type == "contacts" else "hs_lastmodifieddate"
    assert record["properties"][modified] == record["updatedAt"]
    assert record["properties"]["hs_object_id"] == "1"


def test_numbers_are_strings_in_values(crm):
    assert crm.get("/crm/v3/objects/deals/2").json()["properties"]["amount"] == "12500.50"


def test_history_comes_newest_first(crm):
    record = crm.get("/crm/v3/objects/contacts/1", params={"propertiesWithHistory": "lifecyclestage"}).json()
    assert [(v["value"], v["timestamp"]) for v in record["propertiesWithHistory"]["lifecyclestage"]] == [
        ("lead", day(3)),
        ("subscriber", day(1)),
    ]
    assert record["properties"]["email"] == "alice@acme.com"  # defaults still come along


def test_a_realistic_catalogue_with_stage_timestamps_read_from_history(crm):
    names = {p["name"] for p in crm.get("/crm/v3/properties/contacts").json()["results"]}
    assert len(names) > 200
    assert {"hs_v2_date_entered_lead", "hs_lifecyclestage_customer_date", "hs_analytics_num_visits"} <= names
    deal_names = {p["name"] for p in crm.get("/crm/v3/properties/deals").json()["results"]}
    assert {f"hs_v2_date_entered_{stage}" for stage, *_ in DEAL_STAGES} <= deal_names

    stamps = "hs_v2_date_entered_subscriber,hs_v2_date_exited_subscriber,hs_v2_date_entered_lead,hs_v2_date_exited_lead"
    alice = crm.get("/crm/v3/objects/contacts/1", params={"properties": stamps}).json()["properties"]
    # Her history: subscriber on day 1, lead on day 3, and a lead still.
    assert alice == {
        "hs_v2_date_entered_subscriber": day(1),
        "hs_v2_date_exited_subscriber": day(3),
        "hs_v2_date_entered_lead": day(3),
        "hs_v2_date_exited_lead": None,
    }
    # Without history, a record has been in its stage since it was created.
    bob = crm.get("/crm/v3/objects/contacts/2", params={"properties": "hs_v2_date_entered_marketingqualifiedlead"})
    assert bob.json()["properties"] == {"hs_v2_date_entered_marketingqualifiedlead": day(0)}
    entered_lead = {"propertyName": "hs_v2_date_entered_lead", "operator": "GTE", "value": millis(2)}
    assert found(crm, entered_lead) == [1]


def test_listing_with_history_reads_at_most_fifty_a_page(crm):
    params = {"propertiesWithHistory": "lifecyclestage"}
    assert crm.get("/crm/v3/objects/contacts", params={**params, "limit": 50}).status_code == 200
    assert crm.get("/crm/v3/objects/contacts", params={**params, "limit": 51}).status_code == 400


def test_archived_listing_returns_only_archived_records_with_when(crm):
    archived = crm.get("/crm/v3/objects/contacts", params={"archived": "true"}).json()["results"]
    assert ids(archived) == [ARCHIVED_CONTACT]
    assert archived[0]["archived"] is True and archived[0]["archivedAt"] == day(8)
    assert crm.get(f"/crm/v3/objects/contacts/{ARCHIVED_CONTACT}").status_code == 404
    assert crm.get(f"/crm/v3/objects/contacts/{ARCHIVED_CONTACT}", params={"archived": "true"}).status_code == 200


def test_merged_away_records_are_not_listed_and_read_as_their_survivor(crm):
    assert MERGED_CONTACT not in ids(page_through(crm, "/crm/v3/objects/contacts"))
    assert MERGED_CONTACT not in ids(crm.get("/crm/v3/objects/contacts", params={"archived": "true"}).json()["results"])
    record = crm.get(
        f"/crm/v3/objects/contacts/{MERGED_CONTACT}", params={"properties": "email,hs_merged_object_ids"}
    ).json()
    assert record["id"] == str(SURVIVOR)
    assert record["properties"] == {"email": "bob@globex.io", "hs_merged_object_ids": str(MERGED_CONTACT)}


def test_reading_by_a_unique_property(crm):
    record = crm.get("/crm/v3/objects/contacts/Heidi@Acme.com", params={"idProperty": "email"}).json()
    assert record["id"] == "8"
    assert crm.get("/crm/v3/objects/companies/acme.com", params={"idProperty": "domain"}).status_code == 400


# -- associations -------------------------------------------------------------------------------


def test_reads_carry_v3_associations_from_either_side(crm):
    contact = crm.get("/crm/v3/objects/contacts/1", params={"associations": "companies,deals,calls,tasks"}).json()
    assert contact["associations"] == {
        "companies": {
            "results": [{"id": "1", "type": "contact_to_company"}, {"id": "1", "type": "contact_to_company_unlabeled"}]
        },
        "deals": {"results": [{"id": "1", "type": "contact_to_deal"}]},
        "calls": {"results": [{"id": "1", "type": "contact_to_call"}]},
    }
    company = crm.get("/crm/v3/objects/companies/1", params={"associations": "contacts"}).json()
    assert company["associations"]["contacts"]["results"] == [
        {"id": "1", "type": "company_to_contact"},
        {"id": "1", "type": "company_to_contact_unlabeled"},
        {"id": "3", "type": "company_to_contact_unlabeled"},
    ]
    listed = crm.get("/crm/v3/objects/calls", params={"associations": "contacts"}).json()["results"]
    assert [c["associations"]["contacts"]["results"] for c in listed] == [
        [{"id": "1", "type": "call_to_contact"}],
        [{"id": "2", "type": "call_to_contact"}],
    ]


def test_v4_associations_of_one_record_with_type_ids_and_paging(crm):
    response = crm.get("/crm/v4/objects/contact/1/associations/company").json()
    assert response == {
        "results": [
            {
                "toObjectId": 1,
                "associationTypes": [
                    {"category": "HUBSPOT_DEFINED", "typeId": 1, "label": "Primary"},
                    {"category": "HUBSPOT_DEFINED", "typeId": 279, "label": None},
                ],
            }
        ]
    }
    first = crm.get("/crm/v4/objects/companies/1/associations/contacts", params={"limit": 1}).json()
    assert [r["toObjectId"] for r in first["results"]] == [1]
    second = crm.get(
        "/crm/v4/objects/companies/1/associations/contacts",
        params={"limit": 1, "after": first["paging"]["next"]["after"]},
    ).json()
    assert second["results"] == [
        {"toObjectId": 3, "associationTypes": [{"category": "HUBSPOT_DEFINED", "typeId": 280, "label": None}]}
    ]
    assert "paging" not in second


def test_v4_batch_read_reports_records_without_associations_as_207_errors(crm):
    response = crm.post(
        "/crm/v4/associations/contacts/companies/batch/read", json={"inputs": [{"id": "1"}, {"id": "3"}, {"id": "4"}]}
    )
    assert response.status_code == 207
    body = response.json()
    assert [(r["from"]["id"], [t["toObjectId"] for t in r["to"]]) for r in body["results"]] == [("1", [1]), ("3", [1])]
    assert body["numErrors"] == 1
    assert body["errors"][0]["subCategory"] == "crm.associations.NO_ASSOCIATIONS_FOUND"
    assert body["errors"][0]["context"]["fromObjectId"] == ["4"]
    deals = crm.post("/crm/v4/associations/deals/contacts/batch/read", json={"inputs": [{"id": "1"}]})
    assert deals.status_code == 200
    assert deals.json()["results"][0]["to"][0]["associationTypes"][0]["typeId"] == 3


# -- search -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "search_filter, expected",
    [
        ({"propertyName": "firstname", "operator": "EQ", "value": "ALICE"}, [1]),  # text ignores case
        ({"propertyName": "lifecyclestage", "operator": "EQ", "value": "LEAD"}, []),  # enumerations do not
        ({"propertyName": "lifecyclestage", "operator": "EQ", "value": "lead"}, [1, 7]),
        ({"propertyName": "hs_lead_status", "operator": "NEQ", "value": "OPEN"}, [1, 3, 4, 5, 6, 7, 8]),
        ({"propertyName": "handoff_engagement_score", "operator": "LT", "value": "30"}, [1, 6]),  # as numbers
        ({"propertyName": "handoff_engagement_score", "operator": "LTE", "value": "30"}, [1, 6, 7]),
        ({"propertyName": "handoff_engagement_score", "operator": "GTE", "value": "70"}, [2, 5, 8]),
        ({"propertyName": "handoff_engagement_score", "operator": "GT", "value": 70}, [2, 5]),
        (
            {"propertyName": "handoff_engagement_score", "operator": "BETWEEN", "value": "10", "highValue": "60"},
            [1, 3, 7],
        ),
        ({"propertyName": "lifecyclestage", "operator": "IN", "values": ["lead", "customer"]}, [1, 6, 7]),
        ({"propertyName": "email", "operator": "IN", "values": ["alice@acme.com", "dan@initech.com"]}, [1, 4]),
        ({"propertyName": "email", "operator": "IN", "values": ["ALICE@ACME.COM"]}, []),  # HubSpot wants lowercase
        ({"propertyName": "hs_lead_status", "operator": "NOT_IN", "values": ["NEW", "OPEN"]}, [3, 4, 5, 6, 7, 8]),
        ({"propertyName": "hubspot_owner_id", "operator": "HAS_PROPERTY"}, [2, 3, 5, 6, 7, 8]),
        ({"propertyName": "hs_lead_status", "operator": "NOT_HAS_PROPERTY"}, [4]),
        ({"propertyName": "email", "operator": "CONTAINS_TOKEN", "value": "*@acme.com"}, [1, 3, 5, 8]),
        ({"propertyName": "lastname", "operator": "CONTAINS_TOKEN", "value": "clark"}, [3]),
        ({"propertyName": "email", "operator": "NOT_CONTAINS_TOKEN", "value": "*@acme.com"}, [2, 4, 6, 7]),
        ({"propertyName": "hs_object_id", "operator": "GT", "value": "6"}, [7, 8]),
        ({"propertyName": "lastmodifieddate", "operator": "GT", "value": millis(4)}, [2, 7, 8]),
        ({"propertyName": "lastmodifieddate", "operator": "GT", "value": day(4)}, [2, 7, 8]),
        ({"propertyName": "lastmodifieddate", "operator": "EQ", "value": "2026-01-05T00:00:00+00:00"}, [5, 6]),
        ({"propertyName": "lastmodifieddate", "operator": "LTE", "value": "2026-01-03"}, [3, 4]),  # midnight UTC
        (
            {"propertyName": "lastmodifieddate", "operator": "BETWEEN", "value": millis(2), "highValue": millis(4)},
            [1, 4, 5, 6],
        ),
    ],
)
def test_search_filters_follow_hubspots_operator_semantics(crm, search_filter, expected):
    assert found(crm, search_filter) == expected


def test_search_ands_filters_within_a_group_and_ors_groups(crm):
    body = search(
        crm,
        filterGroups=[
            {
                "filters": [
                    {"propertyName": "lifecyclestage", "operator": "EQ", "value": "lead"},
                    {"propertyName": "handoff_engagement_score", "operator": "LT", "value": "20"},
                ]
            },
            {"filters": [{"propertyName": "firstname", "operator": "EQ", "value": "bob"}]},
        ],
    )
    assert ids(body["results"]) == [1, 2] and body["total"] == 2


def test_search_matches_other_object_types_by_their_own_properties(crm):
    assert found(crm, {"propertyName": "amount", "operator": "GT", "value": "20000"}, object_type="deals") == [1]
    assert found(
        crm, {"propertyName": "hs_call_direction", "operator": "EQ", "value": "INBOUND"}, object_type="calls"
    ) == [2]
    assert found(
        crm, {"propertyName": "hs_lastmodifieddate", "operator": "GTE", "value": millis(2)}, object_type="companies"
    ) == [2, 3]


@pytest.mark.parametrize(
    "sort, expected",
    [
        ({"propertyName": "handoff_engagement_score", "direction": "DESCENDING"}, [5, 2, 8, 3, 7, 1, 6, 4]),
        ({"propertyName": "handoff_engagement_score", "direction": "ASCENDING"}, [6, 1, 7, 3, 8, 2, 5, 4]),
        ({"propertyName": "lastmodifieddate", "direction": "DESCENDING"}, [8, 7, 2, 6, 5, 1, 4, 3]),
        ("-firstname", [8, 7, 6, 5, 4, 3, 2, 1]),  # the SDKs' shorthand
        ("lastname", [1, 2, 3, 4, 5, 6, 7, 8]),
    ],
)
def test_search_sorts_by_one_property_missing_values_last(crm, sort, expected):
    assert ids(search(crm, sorts=[sort], limit=100)["results"]) == expected


def test_search_returns_default_or_requested_properties(crm):
    default = search(crm, limit=1)["results"][0]
    assert set(default["properties"]) == {
        "createdate",
        "email",
        "firstname",
        "hs_object_id",
        "lastmodifieddate",
        "lastname",
    }
    asked = search(crm, limit=1, properties=["hs_lead_status", "nope"])["results"][0]
    assert asked["properties"] == {"hs_lead_status": "NEW"}


def test_search_never_finds_archived_or_merged_away_records(crm):
    body = search(crm, limit=100)
    assert ids(body["results"]) == LIVE_CONTACTS and body["total"] == len(LIVE_CONTACTS)


def test_free_text_query_looks_in_default_searchable_properties(crm):
    assert ids(search(crm, query="ACME")["results"]) == [1, 3, 5, 8]


def test_reading_incrementally_by_modification_date_sees_each_change_once(fresh_crm):
    def changed_since(cursor: str) -> list[dict]:
        records, after = [], None
        while True:
            body = search(
                fresh_crm,
                filterGroups=[{"filters": [{"propertyName": "lastmodifieddate", "operator": "GTE", "value": cursor}]}],
                sorts=[{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
                limit=2,
                properties=["lastmodifieddate"],
                **({"after": after} if after else {}),
            )
            records += body["results"]
            if "paging" not in body:
                return records
            after = body["paging"]["next"]["after"]

    first = changed_since(millis(4))
    assert ids(first) == [5, 6, 2, 7, 8]  # equal modification times keep record order
    assert all(r["properties"]["lastmodifieddate"] == r["updatedAt"] for r in first)
    fresh_crm.post(
        "/crm/v3/objects/contacts/batch/update",
        json={"inputs": [{"id": "3", "properties": {"handoff_sla_state": "met"}}]},
    )
    again = changed_since(first[-1]["updatedAt"])
    assert ids(again) == [8, 3]
    assert again[-1]["updatedAt"] > day(7)


def test_search_pages_by_offset_and_reports_the_total(crm):
    first = search(crm, limit=3)
    assert ids(first["results"]) == [1, 2, 3] and first["total"] == 8
    assert first["paging"] == {"next": {"after": "3"}}
    last = search(crm, limit=3, after="6")
    assert ids(last["results"]) == [7, 8] and "paging" not in last


def test_search_stops_at_hubspots_ten_thousand_results():
    request = SearchRequest(after="9900", limit=200)
    assert compile_search(request, lambda name: None, []).limit == 100


@pytest.mark.parametrize(
    "body",
    [
        {"limit": 201},
        {"limit": 0},
        {"after": "abc"},
        {"after": "10000"},
        {"filterGroups": [{"filters": [{"propertyName": "email", "operator": "HAS_PROPERTY"}]}] * 6},
        {"filterGroups": [{"filters": [{"propertyName": "email", "operator": "HAS_PROPERTY"}] * 7}]},
        {"filterGroups": [{"filters": [{"propertyName": "email", "operator": "LIKE", "value": "x"}]}]},
        {"filterGroups": [{"filters": [{"propertyName": "no_such_property", "operator": "EQ", "value": "x"}]}]},
        {"filterGroups": [{"filters": [{"propertyName": "email", "operator": "EQ"}]}]},
        {"filterGroups": [{"filters": [{"propertyName": "email", "operator": "IN"}]}]},
        {
            "filterGroups": [
                {"filters": [{"propertyName": "handoff_engagement_score", "operator": "BETWEEN", "value": "1"}]}
            ]
        },
        {
            "filterGroups": [
                {"filters": [{"propertyName": "handoff_engagement_score", "operator": "GT", "value": "lots"}]}
            ]
        },
        {"filterGroups": [{"filters": [{"propertyName": "lastmodifieddate", "operator": "GT", "value": "yesterday"}]}]},
        {"sorts": ["email", "firstname"]},
        {"sorts": [{"propertyName": "email", "direction": "SIDEWAYS"}]},
        {"filterGroups": "everything"},
    ],
)
def test_malformed_searches_get_hubspots_400(crm, body):
    response = crm.post("/crm/v3/objects/contacts/search", json=body)
    assert response.status_code == 400
    assert response.json()["category"] == "VALIDATION_ERROR"


# -- batch endpoints ----------------------------------------------------------------------------


def test_batch_read_by_id_and_by_email_with_207_for_the_missing(crm):
    response = crm.post(
        "/crm/v3/objects/contacts/batch/read",
        json={"inputs": [{"id": "1"}, {"id": "7"}, {"id": "999"}], "properties": ["email"]},
    )
    assert response.status_code == 207
    body = response.json()
    assert sorted(ids(body["results"])) == [1, 7]
    assert body["results"][0]["properties"] == {"email": "alice@acme.com"}
    assert body["errors"][0]["category"] == "OBJECT_NOT_FOUND" and body["errors"][0]["context"]["ids"] == ["999"]
    by_email = crm.post(
        "/crm/v3/objects/contacts/batch/read",
        json={"idProperty": "email", "inputs": [{"id": "ALICE@acme.com"}, {"id": "grace@hooli.com"}], "properties": []},
    )
    assert by_email.status_code == 200 and sorted(ids(by_email.json()["results"])) == [1, 7]


def test_batch_read_resolves_merged_ids_and_can_send_history(crm):
    body = crm.post(
        "/crm/v3/objects/contacts/batch/read",
        json={
            "inputs": [{"id": str(MERGED_CONTACT)}, {"id": "1"}],
            "properties": [],
            "propertiesWithHistory": ["lifecyclestage"],
        },
    ).json()
    assert sorted(ids(body["results"])) == [1, SURVIVOR]
    alice = next(r for r in body["results"] if r["id"] == "1")
    assert [v["value"] for v in alice["propertiesWithHistory"]["lifecyclestage"]] == ["lead", "subscriber"]


def test_batch_update_changes_what_a_later_read_returns_with_history(fresh_crm):
    response = fresh_crm.post(
        "/crm/v3/objects/contacts/batch/update",
        json={
            "inputs": [
                {
                    "id": "5",
                    "properties": {
                        "handoff_funnel_stage": "mql",
                        "handoff_sla_due_at": millis(9),
                        "handoff_engagement_score": 42,
                        "hs_lead_status": "IN_PROGRESS",
                    },
                }
            ]
        },
    )
    assert response.status_code == 200 and response.json()["status"] == "COMPLETE"
    assert response.json()["results"][0]["properties"]["handoff_sla_due_at"] == day(9)  # stored as ISO 8601
    names = "handoff_funnel_stage,handoff_sla_due_at,handoff_engagement_score,hs_lead_status"
    record = fresh_crm.get(
        "/crm/v3/objects/contacts/5", params={"properties": names, "propertiesWithHistory": "handoff_funnel_stage"}
    ).json()
    assert record["properties"] == {
        "handoff_funnel_stage": "mql",
        "handoff_sla_due_at": day(9),
        "handoff_engagement_score": "42",
        "hs_lead_status": "IN_PROGRESS",
    }
    assert record["propertiesWithHistory"]["handoff_funnel_stage"][0]["sourceType"] == "INTEGRATION"
    assert record["updatedAt"] > day(10)


def test_an_update_that_changes_nothing_leaves_the_record_alone(fresh_crm):
    fresh_crm.post(
        "/crm/v3/objects/contacts/batch/update", json={"inputs": [{"id": "4", "properties": {"firstname": "Dan"}}]}
    )
    record = fresh_crm.get("/crm/v3/objects/contacts/4", params={"propertiesWithHistory": "firstname"}).json()
    assert record["updatedAt"] == day(2)
    # The one version it has had since it was created, and no new one.
    since_created = [{"value": "Dan", "timestamp": day(0), "sourceType": "CRM_UI"}]
    assert record["propertiesWithHistory"]["firstname"] == since_created


def test_unknown_archived_and_merged_ids_give_a_207_naming_them(fresh_crm):
    response = fresh_crm.post(
        "/crm/v3/objects/contacts/batch/update",
        json={
            "inputs": [
                {"id": str(i), "properties": {"handoff_funnel_stage": "sql"}}
                for i in (5, 999999, ARCHIVED_CONTACT, MERGED_CONTACT)
            ]
        },
    )
    assert response.status_code == 207
    body = response.json()
    assert ids(body["results"]) == [5]
    assert body["numErrors"] == 1 and body["errors"][0]["category"] == "OBJECT_NOT_FOUND"
    assert body["errors"][0]["context"]["ids"] == ["999999", str(ARCHIVED_CONTACT), str(MERGED_CONTACT)]


def test_history_lists_every_version_of_every_property_the_current_one_included(fresh_crm):
    names = "email,firstname,createdate,hs_object_id,lastmodifieddate,jobtitle"
    record = fresh_crm.get("/crm/v3/objects/contacts/4", params={"propertiesWithHistory": names}).json()
    history = record["propertiesWithHistory"]
    for name in ("email", "firstname", "createdate", "hs_object_id"):
        assert [v["value"] for v in history[name]] == [
            fresh_crm.get("/crm/v3/objects/contacts/4").json()["properties"][name]
        ], name
        assert history[name][0]["timestamp"] == record["createdAt"]
    assert history["lastmodifieddate"][0]["timestamp"] == record["updatedAt"]
    assert history["jobtitle"] == []  # never had a value

    fresh_crm.post(
        "/crm/v3/objects/contacts/batch/update", json={"inputs": [{"id": "4", "properties": {"firstname": "Daniel"}}]}
    )
    changed = fresh_crm.get("/crm/v3/objects/contacts/4", params={"propertiesWithHistory": "firstname"}).json()
    assert [(v["value"], v["sourceType"]) for v in changed["propertiesWithHistory"]["firstname"]] == [
        ("Daniel", "INTEGRATION"),
        ("Dan", "CRM_UI"),  # the value it replaced, as of the record's creation
    ]


def test_upsert_by_email_updates_known_contacts_and_creates_the_others(fresh_crm):
    response = fresh_crm.post(
        "/crm/v3/objects/contacts/batch/upsert",
        json={
            "inputs": [
                {"id": "Alice@Acme.com", "idProperty": "email", "properties": {"handoff_mql_reason": "demo request"}},
                {
                    "id": "new.person@newco.com",
                    "idProperty": "email",
                    "properties": {"firstname": "New", "lifecyclestage": "lead"},
                },
            ]
        },
    )
    assert response.status_code == 200
    results = {r["properties"]["email"]: r for r in response.json()["results"]}
    assert results["alice@acme.com"]["id"] == "1" and results["alice@acme.com"]["new"] is False
    created = results["new.person@newco.com"]
    assert created["new"] is True and int(created["id"]) > MERGED_CONTACT
    assert created["properties"]["lifecyclestage"] == "lead"
    read = fresh_crm.get(
        "/crm/v3/objects/contacts/new.person@newco.com",
        params={"idProperty": "email", "properties": "firstname,createdate"},
    ).json()
    assert read["id"] == created["id"] and read["properties"]["firstname"] == "New"
    assert read["properties"]["createdate"] == read["createdAt"]
    assert (
        fresh_crm.get("/crm/v3/objects/contacts/1", params={"properties": "handoff_mql_reason"}).json()["properties"][
            "handoff_mql_reason"
        ]
        == "demo request"
    )
    assert found(fresh_crm, {"propertyName": "email", "operator": "EQ", "value": "new.person@newco.com"}) == [
        int(created["id"])
    ]


@pytest.mark.parametrize(
    "properties, error",
    [
        ({"no_such_property": "x"}, "PROPERTY_DOESNT_EXIST"),
        ({"hs_object_id": "7"}, "READ_ONLY_VALUE"),
        ({"lastmodifieddate": "1700000000000"}, "READ_ONLY_VALUE"),
        ({"lifecyclestage": "astronaut"}, "INVALID_OPTION"),
        ({"hs_lead_status": "open"}, "INVALID_OPTION"),
        ({"hubspot_owner_id": "999"}, "INVALID_OPTION"),
        ({"handoff_engagement_score": "high"}, "INVALID_INTEGER"),
        ({"handoff_sla_due_at": "soon"}, "INVALID_DATE"),
        ({"email": "not-an-email"}, "INVALID_EMAIL"),
    ],
)
def test_invalid_property_values_fail_the_batch_with_a_validation_error(crm, properties, error):
    response = crm.post(
        "/crm/v3/objects/contacts/batch/update", json={"inputs": [{"id": "5", "properties": properties}]}
    )
    assert response.status_code == 400
    body = response.json()
    assert body["category"] == "VALIDATION_ERROR" and error in body["message"]
    assert body["errors"][0]["code"] == error
    assert body["errors"][0]["context"]["propertyName"] == [next(iter(properties))]


@pytest.mark.parametrize(
    "path, body",
    [
        ("batch/update", {"inputz": []}),
        ("batch/update", {"inputs": []}),
        ("batch/update", {"inputs": [{"properties": {}}]}),
        ("batch/update", {"inputs": [{"id": str(i), "properties": {}} for i in range(101)]}),
        ("batch/update", {"inputs": [{"id": "5", "properties": {}}, {"id": "5", "properties": {}}]}),
        ("batch/read", {"inputs": [{"id": str(i)} for i in range(101)]}),
        ("batch/read", {"inputs": [{"id": "x@y.com"}], "idProperty": "firstname"}),
        ("batch/upsert", {"inputs": [{"id": "a@b.com", "properties": {}}]}),
    ],
)
def test_malformed_batches_get_hubspots_400_not_a_crash(crm, path, body):
    response = crm.post(f"/crm/v3/objects/contacts/{path}", json=body)
    assert response.status_code == 400
    assert response.json()["category"] == "VALIDATION_ERROR"


# -- properties, owners, pipelines --------------------------------------------------------------


def test_properties_define_every_property_the_records_hold(crm, hand_made_company):
    for object_type in OBJECT_TYPES:
        definitions = {p["name"]: p for p in crm.get(f"/crm/v3/properties/{object_type}").json()["results"]}
        held = {
            name
            for r in Dataset(hand_made_company).rows("crm_objects")
            if r["objectType"] == object_type
            for name in r["properties"]
        }
        assert held <= set(definitions), object_type
        assert {"hs_object_id", "hubspot_owner_id"} <= set(definitions), object_type
        assert all(
            {"name", "label", "type", "fieldType", "groupName", "options"} <= set(p) for p in definitions.values()
        )


def test_property_definitions_carry_hubspots_types_and_options(crm):
    contacts = {p["name"]: p for p in crm.get("/crm/v3/properties/contacts").json()["results"]}
    assert [o["value"] for o in contacts["hs_lead_status"]["options"]] == [
        "NEW",
        "OPEN",
        "IN_PROGRESS",
        "OPEN_DEAL",
        "UNQUALIFIED",
        "ATTEMPTED_TO_CONTACT",
        "CONNECTED",
        "BAD_TIMING",
    ]
    assert [(o["value"], o["label"]) for o in contacts["hubspot_owner_id"]["options"]] == [
        ("101", "Ava Brooks"),
        ("102", "Liam Carter"),
        ("103", "Mia Schneider"),
    ]
    assert [o["value"] for o in contacts["rejection_reason"]["options"]] == [
        "bad_fit",
        "bad_timing",
        "no_budget",
        "duplicate",
        "no_response",
        "competitor",
    ]
    modified = contacts["lastmodifieddate"]
    assert (modified["type"], modified["modificationMetadata"]["readOnlyValue"]) == ("datetime", True)
    handoff = {name: p["type"] for name, p in contacts.items() if p["groupName"] == "handoff"}
    assert handoff == {
        "handoff_funnel_stage": "string",
        "handoff_sla_state": "string",
        "handoff_sla_due_at": "datetime",
        "handoff_mql_reason": "string",
        "handoff_engagement_score": "number",
        "handoff_first_touch_campaign": "string",
        "handoff_last_touch_campaign": "string",
        "handoff_recent_content": "string",
    }
    deals = {p["name"]: p for p in crm.get("/crm/v3/properties/deals").json()["results"]}
    assert [o["value"] for o in deals["dealstage"]["options"]] == ["appointmentscheduled", "closedwon", "closedlost"]
    assert (deals["amount"]["type"], deals["closedate"]["type"]) == ("number", "datetime")
    calls = {p["name"]: p for p in crm.get("/crm/v3/properties/0-48").json()["results"]}
    assert {"INBOUND", "OUTBOUND"} == {o["value"] for o in calls["hs_call_direction"]["options"]}
    assert crm.get("/crm/v3/properties/contacts/hs_lead_status").json()["label"] == "Lead Status"


def test_a_created_custom_property_is_kept_and_takes_values(fresh_crm):
    definition = {
        "name": "handoff_owner_note",
        "label": "Owner note",
        "type": "enumeration",
        "fieldType": "select",
        "groupName": "handoff",
        "options": [{"label": "Hot", "value": "hot"}, {"label": "Cold", "value": "cold"}],
    }
    response = fresh_crm.post("/crm/v3/properties/contacts", json=definition)
    assert response.status_code == 201
    assert response.json()["hubspotDefined"] is False
    assert [o["value"] for o in response.json()["options"]] == ["hot", "cold"]
    assert fresh_crm.post("/crm/v3/properties/contacts", json=definition).status_code == 409
    update = {"inputs": [{"id": "2", "properties": {"handoff_owner_note": "hot"}}]}
    assert fresh_crm.post("/crm/v3/objects/contacts/batch/update", json=update).status_code == 200
    wrong = {"inputs": [{"id": "2", "properties": {"handoff_owner_note": "lukewarm"}}]}
    assert fresh_crm.post("/crm/v3/objects/contacts/batch/update", json=wrong).status_code == 400
    assert found(fresh_crm, {"propertyName": "handoff_owner_note", "operator": "EQ", "value": "hot"}) == [2]


@pytest.mark.parametrize(
    "definition",
    [
        {"name": "Bad Name", "label": "x", "type": "string", "fieldType": "text", "groupName": "handoff"},
        {"name": "x_score", "label": "x", "type": "number", "fieldType": "select", "groupName": "handoff"},
        {"name": "x_score", "label": "x", "type": "integer", "fieldType": "number", "groupName": "handoff"},
        {"name": "x_score", "type": "number", "fieldType": "number", "groupName": "handoff"},
    ],
)
def test_invalid_property_definitions_get_a_400(crm, definition):
    assert crm.post("/crm/v3/properties/contacts", json=definition).status_code == 400


def test_owners_page_with_after_and_filter_by_email(crm):
    owners = page_through(crm, "/crm/v3/owners", limit=2)
    assert [o["id"] for o in owners] == ["101", "102", "103"]
    assert set(owners[0]) == {
        "id",
        "email",
        "type",
        "firstName",
        "lastName",
        "userId",
        "userIdIncludingInactive",
        "createdAt",
        "updatedAt",
        "archived",
        "teams",
    }
    by_email = crm.get("/crm/v3/owners", params={"email": "Mia@handoff-demo.example"}).json()["results"]
    assert [o["id"] for o in by_email] == ["103"]


def test_deal_pipelines_come_with_their_stages_in_order(crm):
    pipelines = crm.get("/crm/v3/pipelines/deals").json()["results"]
    assert [p["id"] for p in pipelines] == ["default"] and "objectType" not in pipelines[0]
    assert [s["id"] for s in pipelines[0]["stages"]] == ["appointmentscheduled", "closedwon", "closedlost"]
    assert pipelines[0]["stages"][1]["metadata"] == {"probability": "1.0", "isClosed": "true"}
    assert crm.get("/crm/v3/pipelines/deals/default").json()["label"] == "Sales Pipeline"
    assert crm.get("/crm/v3/pipelines/deals/nope").status_code == 404


def test_the_legacy_reads_connectors_use_shape_the_same_definitions(crm):
    """Properties v2 and pipelines v1, which HubSpot still serves, and custom object schemas (none)."""
    v3 = crm.get("/crm/v3/properties/contacts").json()["results"]
    v2 = crm.get("/properties/v2/contact/properties").json()
    assert [(p["name"], p["type"]) for p in v2] == [(p["name"], p["type"]) for p in v3]
    owner = next(p for p in v2 if p["name"] == "hubspot_owner_id")
    assert owner["referencedObjectType"] == "OWNER" and owner["deleted"] is False
    assert "modificationMetadata" not in owner and owner["readOnlyDefinition"] is True
    leads = crm.get("/properties/v2/leads/properties").json()
    assert {p["name"] for p in leads} == {"hs_object_id", "hs_createdate", "hs_lastmodifieddate"}
    (pipeline,) = crm.get("/crm-pipelines/v1/pipelines/deals").json()["results"]
    assert {k: pipeline[k] for k in ("pipelineId", "objectType", "active", "default")} == {
        "pipelineId": "default",
        "objectType": "DEAL",
        "active": True,
        "default": True,
    }
    assert [s["stageId"] for s in pipeline["stages"]] == ["appointmentscheduled", "closedwon", "closedlost"]
    assert pipeline["stages"][1]["metadata"] == {"probability": "1.0", "isClosed": "true"}
    (tickets,) = crm.get("/crm-pipelines/v1/pipelines/tickets").json()["results"]
    assert (tickets["pipelineId"], tickets["objectType"], tickets["default"]) == ("0", "TICKET", True)
    assert crm.get("/crm-pipelines/v1/pipelines/contacts").status_code == 400
    assert crm.get("/crm/v3/schemas").json() == {"results": []}


# -- authentication, rate limits, errors --------------------------------------------------------


def test_missing_or_wrong_token_gets_hubspots_401(crm):
    for headers in ({"Authorization": ""}, {"Authorization": "Bearer wrong"}):
        response = crm.get("/crm/v3/objects/contacts", headers=headers)
        assert response.status_code == 401
        assert response.json()["category"] == "INVALID_AUTHENTICATION"
        assert {"status", "message", "correlationId"} <= set(response.json())


def test_past_the_request_budget_hubspot_answers_429_with_its_body_and_headers(hand_made_company, tmp_path):
    with serving(tmp_path, hand_made_company, Faults(pressure=0.03)) as crm:  # 3 requests per 10 seconds
        remaining = [crm.get("/crm/v3/owners").headers["X-HubSpot-RateLimit-Remaining"] for _ in range(3)]
        assert remaining == ["2", "1", "0"]
        refused = crm.post("/crm/v3/objects/contacts/search", json={})
    assert refused.status_code == 429
    body = refused.json()
    assert {k: body[k] for k in ("status", "message", "errorType", "policyName")} == {
        "status": "error",
        "message": "You have reached your secondly limit.",
        "errorType": "RATE_LIMIT",
        "policyName": "SECONDLY",
    }
    assert body["correlationId"] and body["groupName"]
    assert refused.headers["X-HubSpot-RateLimit-Max"] == "3"
    assert refused.headers["X-HubSpot-RateLimit-Remaining"] == "0"
    assert refused.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
    assert "Retry-After" not in refused.headers


def test_search_has_a_budget_of_its_own_besides_the_burst_limit(hand_made_company, tmp_path):
    # A fifth of the vendor's limits: one search a second, 20 requests per 10 seconds.
    with serving(tmp_path, hand_made_company, Faults(pressure=0.2)) as crm:
        first = crm.post("/crm/v3/objects/contacts/search", json={})
        second = crm.post("/crm/v3/objects/companies/search", json={})
        listed = crm.get("/crm/v3/objects/contacts")
    assert first.status_code == 200 and listed.status_code == 200
    assert second.status_code == 429 and second.json()["errorType"] == "RATE_LIMIT"


def test_the_request_budget_is_a_sliding_ten_second_window():
    now = [0.0]
    budget = RequestBudget(2, clock=lambda: now[0])

    def admit_at(moment: float) -> int | None:
        now[0] = moment
        return budget.admit()

    assert [admit_at(0), admit_at(5), admit_at(6), admit_at(9.9)] == [1, 0, None, None]  # refusals do not count
    assert admit_at(10) == 0  # the request at 0 has left the window, the one at 5 has not
    assert admit_at(12) is None
    assert [admit_at(30), admit_at(30)] == [1, 0]


@pytest.mark.parametrize(
    "method, path, kwargs, status",
    [
        ("get", "/crm/v3/objects/unicorns", {}, 400),
        ("get", "/crm/v3/objects/contacts/abc", {}, 404),
        ("get", "/crm/v3/objects/contacts/²", {}, 404),
        ("get", "/crm/v3/objects/contacts/99999999999999999999999", {}, 404),
        ("get", "/crm/v3/objects/contacts", {"params": {"after": "99999999999999999999999"}}, 400),
        ("post", "/crm/v3/objects/contacts/search", {"json": {"after": "²"}}, 400),
        ("get", "/crm/v3/objects/contacts/424242", {}, 404),
        ("get", "/crm/v3/objects/contacts", {"params": {"limit": 101}}, 400),
        ("get", "/crm/v3/objects/contacts", {"params": {"limit": "many"}}, 400),
        ("get", "/crm/v3/objects/contacts", {"params": {"after": "abc"}}, 400),
        ("get", "/crm/v3/objects/contacts", {"params": {"archived": "perhaps"}}, 400),
        ("get", "/crm/v3/properties/contacts/no_such_property", {}, 404),
        ("get", "/crm/v3/owners", {"params": {"limit": 501}}, 400),
        ("get", "/crm/v3/no/such/endpoint", {}, 404),
        ("get", "/crm/v3/objects/unicorns/", {}, 400),
        ("delete", "/crm/v3/objects/contacts/1/nothing", {}, 404),
        (
            "post",
            "/crm/v3/objects/contacts/search",
            {"content": b"{not json", "headers": {"Content-Type": "application/json"}},
            400,
        ),
        (
            "post",
            "/crm/v3/objects/contacts/batch/read",
            {"content": b"\xff{", "headers": {"Content-Type": "application/json"}},
            400,
        ),
        ("post", "/crm/v3/objects/contacts/batch/update", {"json": ["not", "an", "object"]}, 400),
        ("get", "/crm/v4/objects/contacts/1/associations/emails/extra", {}, 404),
        ("get", "/crm/v4/objects/calls/1/associations/emails", {}, 400),
        ("post", "/crm/v4/associations/contacts/companies/batch/read", {"json": {"inputs": []}}, 400),
    ],
)
def test_malformed_requests_get_hubspot_error_shapes_never_a_500(crm, method, path, kwargs, status):
    response = getattr(crm, method)(path, **kwargs)
    assert response.status_code == status
    assert response.json()["status"] == "error" and response.json()["category"]


# -- faults -------------------------------------------------------------------------------------


def test_schema_drift_adds_a_contact_property_after_some_requests(hand_made_company, tmp_path):
    with serving(tmp_path, hand_made_company, Faults(schema_drift=True, seed=3)) as crm:
        before = {p["name"] for p in crm.get("/crm/v3/properties/contacts").json()["results"]}
        for _ in range(10):
            crm.get("/crm/v3/owners")
        definitions = {p["name"]: p for p in crm.get("/crm/v3/properties/contacts").json()["results"]}
        colours = {
            int(r["id"]): r["properties"]["favorite_color"]
            for r in crm.get("/crm/v3/objects/contacts", params={"properties": "favorite_color"}).json()["results"]
        }
        searched = found(crm, {"propertyName": "favorite_color", "operator": "HAS_PROPERTY"})
    assert "favorite_color" not in before
    options = {o["value"] for o in definitions["favorite_color"]["options"]}
    assert {colour for colour in colours.values() if colour} <= options
    assert searched == [i for i, colour in colours.items() if colour]
    assert 0 < len(searched) < len(colours)


def modified_by_paging(state_dir, company, faults: Faults) -> list[int]:
    with serving(state_dir, company, faults) as crm:
        served = crm.get("/crm/v3/objects/contacts", params={"limit": 100}).json()["results"]
        again = crm.get("/crm/v3/objects/contacts", params={"limit": 100}).json()["results"]
    after = {r["id"]: r["updatedAt"] for r in again}
    return [int(r["id"]) for r in served if after[r["id"]] != r["updatedAt"]]


def test_churn_modifies_a_seeded_share_of_each_page_served(hand_made_company, tmp_path):
    assert modified_by_paging(tmp_path / "all", hand_made_company, Faults(churn=1.0)) == LIVE_CONTACTS
    some = modified_by_paging(tmp_path / "a", hand_made_company, Faults(churn=0.5, seed=11))
    assert some == modified_by_paging(tmp_path / "b", hand_made_company, Faults(churn=0.5, seed=11))
    assert 0 < len(some) < len(LIVE_CONTACTS)
    assert modified_by_paging(tmp_path / "none", hand_made_company, Faults()) == []


def test_writes_survive_a_restart_when_the_sandbox_keeps_state(tmp_path, hand_made_company):
    for expected in (None, "closed_won"):
        with serving(tmp_path, hand_made_company) as crm:
            held = crm.get("/crm/v3/objects/contacts/3", params={"properties": "handoff_funnel_stage"}).json()
            assert held["properties"]["handoff_funnel_stage"] == expected
            crm.post(
                "/crm/v3/objects/contacts/batch/update",
                json={"inputs": [{"id": "3", "properties": {"handoff_funnel_stage": "closed_won"}}]},
            )


def test_a_request_sent_before_the_server_runs_is_answered_once_it_does(tiny_dataset, tmp_path):
    # `sandbox serve` writes the connection file before serving: a client quick to read it must wait, not fail.
    server = SandboxServer(build_sandbox(tmp_path / "state", dataset_dir=tiny_dataset))
    with ThreadPoolExecutor(1) as client:
        health = client.submit(httpx.get, f"{server.base_url}/health", timeout=30)
        time.sleep(0.2)
        with server:
            assert health.result().status_code == 200
