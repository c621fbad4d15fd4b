"""The CRM stand-in over real HTTP, held to HubSpot's documented v3 behaviour."""

import httpx
import pytest

from sandbox.server import SandboxServer, build_sandbox


@pytest.fixture
def crm(crm_sandbox):
    connection = crm_sandbox.connections()["crm"]
    with httpx.Client(base_url=connection["base_url"],
                      headers={"Authorization": f"Bearer {connection['access_token']}"}) as client:
        yield client


def test_paging_to_the_end_returns_every_contact_exactly_once(crm, crm_sandbox):
    seen, after = [], None
    while True:
        page = crm.get("/crm/v3/objects/contacts", params={"limit": 37, **({"after": after} if after else {})}).json()
        seen += [record["id"] for record in page["results"]]
        if "paging" not in page:
            break
        after = page["paging"]["next"]["after"]
        assert f"after={after}" in page["paging"]["next"]["link"]
    expected = [c["id"] for c in crm_sandbox.sandbox.dataset.rows("crm_objects") if c["objectType"] == "contacts"]
    assert sorted(seen, key=int) == sorted(expected, key=int)
    assert len(seen) == len(set(seen))


def test_only_requested_properties_are_returned_as_strings(crm):
    record = crm.get("/crm/v3/objects/contacts", params={"limit": 1, "properties": "email,hs_object_id,nope"}).json()["results"][0]
    assert set(record["properties"]) == {"email", "hs_object_id"}
    assert record["properties"]["hs_object_id"] == record["id"]
    assert set(record) == {"id", "properties", "createdAt", "updatedAt", "archived"}


def test_missing_token_gets_hubspots_401(crm_sandbox):
    response = httpx.get(crm_sandbox.connections()["crm"]["base_url"] + "/crm/v3/objects/contacts")
    assert response.status_code == 401
    assert response.json()["category"] == "INVALID_AUTHENTICATION"
    assert {"status", "message", "correlationId"} <= set(response.json())


def test_batch_update_changes_what_a_later_read_returns_with_history(crm):
    response = crm.post("/crm/v3/objects/contacts/batch/update",
                        json={"inputs": [{"id": "5", "properties": {"handoff_funnel_stage": "mql"}}]})
    assert response.status_code == 200 and response.json()["status"] == "COMPLETE"
    record = crm.get("/crm/v3/objects/contacts/5", params={"properties": "handoff_funnel_stage",
                                                             "propertiesWithHistory": "handoff_funnel_stage"}).json()
    assert record["properties"]["handoff_funnel_stage"] == "mql"
    assert record["propertiesWithHistory"]["handoff_funnel_stage"][0]["sourceType"] == "INTEGRATION"


def test_unknown_ids_give_a_207_naming_them(crm):
    response = crm.post("/crm/v3/objects/contacts/batch/update", json={"inputs": [
        {"id": "5", "properties": {"handoff_funnel_stage": "sql"}},
        {"id": "999999", "properties": {"handoff_funnel_stage": "sql"}}]})
    assert response.status_code == 207
    body = response.json()
    assert [r["id"] for r in body["results"]] == ["5"]
    assert body["errors"][0]["category"] == "OBJECT_NOT_FOUND"
    assert body["errors"][0]["context"]["ids"] == ["999999"]


@pytest.mark.parametrize("properties, error", [
    ({"no_such_property": "x"}, "PROPERTY_DOESNT_EXIST"),
    ({"hs_object_id": "7"}, "READ_ONLY_VALUE"),
    ({"lifecyclestage": "astronaut"}, "INVALID_OPTION"),
])
def test_invalid_property_values_fail_the_batch_with_a_validation_error(crm, properties, error):
    response = crm.post("/crm/v3/objects/contacts/batch/update", json={"inputs": [{"id": "5", "properties": properties}]})
    assert response.status_code == 400
    assert response.json()["category"] == "VALIDATION_ERROR" and error in response.json()["message"]


@pytest.mark.parametrize("body", [{"inputz": []}, {"inputs": []}, {"inputs": [{"properties": {}}]},
                                  {"inputs": [{"id": str(i), "properties": {}} for i in range(101)]}])
def test_malformed_batches_get_hubspots_400_not_a_crash(crm, body):
    response = crm.post("/crm/v3/objects/contacts/batch/update", json=body)
    assert response.status_code == 400
    assert response.json()["category"] == "VALIDATION_ERROR"


def test_paging_limits_are_enforced(crm):
    assert crm.get("/crm/v3/objects/contacts", params={"limit": 101}).status_code == 400
    assert crm.get("/crm/v3/objects/contacts", params={"after": "abc"}).status_code == 400


def test_writes_survive_a_restart_when_the_sandbox_keeps_state(tmp_path, tiny_dataset):
    for expected in (None, "closed_won"):
        with SandboxServer(build_sandbox(tmp_path, dataset_dir=tiny_dataset)) as server:
            connection = server.connections()["crm"]
            headers = {"Authorization": f"Bearer {connection['access_token']}"}
            url = connection["base_url"] + "/crm/v3/objects/contacts"
            held = httpx.get(f"{url}/3", params={"properties": "handoff_funnel_stage"}, headers=headers).json()
            assert held["properties"]["handoff_funnel_stage"] == expected
            httpx.post(f"{url}/batch/update", headers=headers,
                       json={"inputs": [{"id": "3", "properties": {"handoff_funnel_stage": "closed_won"}}]})
