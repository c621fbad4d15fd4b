"""HubSpot's own Python SDK (``hubspot-api-client``) pointed at the CRM stand-in works as against HubSpot.

The SDK validates what it reads against HubSpot's published models (required fields, types, status
values), so these tests hold the stand-in's response shapes to HubSpot's. They run on the generated
company and assert relative to its dataset, whatever its size.
"""

import pytest
from hubspot import HubSpot
from hubspot.crm.associations.v4 import (
    BatchInputPublicFetchAssociationsBatchRequest,
    PublicFetchAssociationsBatchRequest,
)
from hubspot.crm.contacts import (
    ApiException,
    BatchInputSimplePublicObjectBatchInput,
    BatchResponseSimplePublicObject,
    BatchResponseSimplePublicObjectWithErrors,
    Filter,
    FilterGroup,
    PublicObjectSearchRequest,
    SimplePublicObjectBatchInput,
)

from sandbox.dataset import Dataset, parse_iso
from sandbox.faults import Faults
from sandbox.server import SandboxServer, build_sandbox


@pytest.fixture
def client(tiny_dataset, tmp_path):
    # Room in the request budget for paging through the company however large it grows.
    sandbox = build_sandbox(tmp_path, dataset_dir=tiny_dataset, faults=Faults(pressure=100))
    with SandboxServer(sandbox) as server:
        connection = server.connections()["crm"]
        # The SDK's base URL is its configuration's host; the SDK appends /crm/v3/... to it.
        yield HubSpot(access_token=connection["access_token"], host=connection["base_url"])


@pytest.fixture
def live_contacts(tiny_dataset) -> list[dict]:
    return [
        r
        for r in Dataset(tiny_dataset).rows("crm_objects")
        if r["objectType"] == "contacts" and not r.get("archived") and r.get("mergedInto") is None
    ]


def test_listing_contacts_page_by_page_and_all_at_once(client, live_contacts):
    seen, after = [], None
    while True:
        page = client.crm.contacts.basic_api.get_page(limit=50, after=after, properties=["email", "lifecyclestage"])
        seen += page.results
        if page.paging is None:
            break
        after = page.paging.next.after
    expected = {c["id"]: c["properties"]["email"] for c in live_contacts}
    assert {c.id: c.properties["email"] for c in seen} == expected
    assert len(seen) == len(expected)
    assert all(c.updated_at.tzinfo is not None and set(c.properties) == {"email", "lifecyclestage"} for c in seen)
    assert sorted(c.id for c in client.crm.contacts.get_all()) == sorted(expected)


def test_searching_contacts_modified_since_a_moment(client, live_contacts):
    moments = sorted(parse_iso(c["updatedAt"]) for c in live_contacts)
    since = moments[len(moments) // 2]
    request = PublicObjectSearchRequest(
        filter_groups=[
            FilterGroup(
                filters=[
                    Filter(property_name="lastmodifieddate", operator="GTE", value=str(int(since.timestamp() * 1000)))
                ]
            )
        ],
        sorts=[{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
        properties=["email", "lastmodifieddate"],
        limit=100,
    )
    found = []
    while True:
        page = client.crm.contacts.search_api.do_search(public_object_search_request=request)
        found += page.results
        if page.paging is None:
            break
        request.after = page.paging.next.after
    assert page.total == len(found) == sum(parse_iso(c["updatedAt"]) >= since for c in live_contacts)
    assert [c.updated_at for c in found] == sorted(c.updated_at for c in found)
    assert all(c.updated_at >= since for c in found)


def test_batch_update_of_contacts_changes_what_a_later_read_returns(client, live_contacts):
    first, second = live_contacts[0]["id"], live_contacts[1]["id"]
    response = client.crm.contacts.batch_api.update(
        BatchInputSimplePublicObjectBatchInput(
            inputs=[
                SimplePublicObjectBatchInput(id=first, properties={"handoff_funnel_stage": "mql"}),
                SimplePublicObjectBatchInput(id=second, properties={"handoff_funnel_stage": "sal"}),
            ]
        )
    )
    assert isinstance(response, BatchResponseSimplePublicObject) and response.status == "COMPLETE"
    assert sorted(r.id for r in response.results) == sorted([first, second])
    read = client.crm.contacts.basic_api.get_by_id(
        first, properties=["handoff_funnel_stage"], properties_with_history=["handoff_funnel_stage"]
    )
    assert read.properties["handoff_funnel_stage"] == "mql"
    assert read.properties_with_history["handoff_funnel_stage"][0].source_type == "INTEGRATION"


def test_a_partial_batch_failure_reads_as_hubspots_207(client, live_contacts):
    response = client.crm.contacts.batch_api.update(
        BatchInputSimplePublicObjectBatchInput(
            inputs=[
                SimplePublicObjectBatchInput(id=live_contacts[0]["id"], properties={"handoff_funnel_stage": "sql"}),
                SimplePublicObjectBatchInput(id="987654321", properties={"handoff_funnel_stage": "sql"}),
            ]
        )
    )
    assert isinstance(response, BatchResponseSimplePublicObjectWithErrors)
    assert response.num_errors == 1 and response.errors[0].context == {"ids": ["987654321"]}


def test_errors_reach_the_sdk_as_hubspot_errors(client):
    with pytest.raises(ApiException) as missing:
        client.crm.contacts.basic_api.get_by_id("987654321")
    assert missing.value.status == 404
    with pytest.raises(ApiException) as invalid:
        client.crm.contacts.batch_api.update(
            BatchInputSimplePublicObjectBatchInput(
                inputs=[SimplePublicObjectBatchInput(id="1", properties={"lifecyclestage": "astronaut"})]
            )
        )
    assert invalid.value.status == 400 and "INVALID_OPTION" in invalid.value.body


def test_property_definitions_read_through_the_sdk(client):
    names = {p.name: p for p in client.crm.properties.core_api.get_all("contacts").results}
    assert names["lastmodifieddate"].type == "datetime"
    assert {o.value for o in names["hs_lead_status"].options} >= {"NEW", "OPEN", "IN_PROGRESS", "BAD_TIMING"}


def test_owners_read_through_the_sdk_list_and_one_by_one(client, tiny_dataset):
    owners = client.crm.owners.owners_api.get_page(limit=500).results  # the SDK calls /crm/v3/owners/
    expected = [o for o in Dataset(tiny_dataset).rows("owners") if not o.get("archived")]
    assert sorted(o.id for o in owners) == sorted(str(o["id"]) for o in expected)
    one = client.crm.owners.owners_api.get_by_id(owners[0].id)
    assert (one.email, one.user_id) == (owners[0].email, owners[0].user_id)
    by_user = client.crm.owners.owners_api.get_by_id(str(owners[0].user_id), id_property="userId")
    assert by_user.id == owners[0].id


def test_deal_and_ticket_pipelines_read_through_the_sdk(client, tiny_dataset):
    deal_pipelines = client.crm.pipelines.pipelines_api.get_all("deals").results
    assert {p.id for p in deal_pipelines} == {str(p["id"]) for p in Dataset(tiny_dataset).rows("crm_pipelines")}
    assert all(p.stages for p in deal_pipelines)
    tickets = client.crm.pipelines.pipelines_api.get_all("tickets").results
    assert [(p.id, len(p.stages)) for p in tickets] == [("0", 4)]


def test_history_and_associations_read_through_the_sdk(client, live_contacts):
    contact = live_contacts[0]
    read = client.crm.contacts.basic_api.get_by_id(
        contact["id"], properties_with_history=["email", "lifecyclestage"], associations=["companies"]
    )
    assert read.properties_with_history["email"][0].value == contact["properties"]["email"]
    associations = client.crm.associations.v4.batch_api.get_page(
        "contacts",
        "companies",
        BatchInputPublicFetchAssociationsBatchRequest(
            inputs=[PublicFetchAssociationsBatchRequest(id=c["id"]) for c in live_contacts[:50]]
        ),
    )
    assert associations.results and all(r.to for r in associations.results)


@pytest.mark.parametrize("object_type", ["tickets", "products", "line_items", "quotes"])
def test_standard_objects_the_company_keeps_none_of_read_empty_through_the_sdk(client, object_type):
    api = getattr(client.crm, object_type)
    assert api.basic_api.get_page(limit=10).results == []
    assert api.get_all() == []
