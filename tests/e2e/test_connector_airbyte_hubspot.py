"""Airbyte's ``source-hubspot`` against the sandbox, as its users run it (see ``connector_runs``):
check, discover, then read the CRM's contacts, companies, deals, owners and deal pipelines, with zero
errors and as many records per stream as the sandbox's API lists.

The source builds every URL on ``https://api.hubapi.com``, with no setting to move it, so it reaches the
sandbox through an intercepting proxy; its HTTP client trusts ``certifi``'s bundle alone, so the proxy's
CA reaches it through the system's store (``pip-system-certs``). It authenticates as a private app, with
the sandbox's access token as its bearer token.

What it reads beyond CRM v3, HubSpot serves, and so does the stand-in: property definitions through
properties v2 (for every object type it knows, deal splits, forms, goal targets and leads among them,
as discover builds every stream's schema), deal pipelines through pipelines v1, and custom object
schemas (none here) through ``/crm/v3/schemas``."""

import json
import subprocess
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from connector_runs import connector_command, vendor_host

from sandbox.dataset import DatasetWriter
from sandbox.server import SandboxServer, build_sandbox

HUBSPOT_HOST = "api.hubapi.com"
# The source keeps a record only if it was last modified between the start date and now.
START_DATE = "2025-01-01T00:00:00Z"
COMPANY_NOW = datetime(2025, 3, 31, tzinfo=UTC)
OBJECT_STREAMS = ("contacts", "companies", "deals")  # each named as its CRM object type
SELECTED = (*OBJECT_STREAMS, "owners", "deal_pipelines")


def moment(day: int, hour: int = 9) -> str:
    return f"2025-03-{day:02d}T{hour:02d}:00:00.000Z"


def crm_object(object_type: str, object_id: int, day: int, properties: dict, **state) -> dict:
    created = moment(day)
    modified = "lastmodifieddate" if object_type == "contacts" else "hs_lastmodifieddate"
    return {
        "objectType": object_type,
        "id": object_id,
        "properties": {"createdate": created, modified: created, "hs_object_id": object_id, **properties},
        "createdAt": created,
        "updatedAt": created,
        "archived": False,
        "archivedAt": None,
        "mergedInto": None,
        **state,
    }


def association(from_type: str, from_id: int, to_type: str, to_id: int, name: str) -> dict:
    return {"fromType": from_type, "fromId": from_id, "toType": to_type, "toId": to_id, "associationType": name}


def deal_stage(stage_id: str, label: str, order: int, probability: float, closed: bool) -> dict:
    return {
        "id": stage_id,
        "label": label,
        "displayOrder": order,
        "archived": False,
        "createdAt": moment(1),
        "updatedAt": moment(1),
        "metadata": {"probability": str(probability), "isClosed": str(closed).lower()},
    }


@pytest.fixture(scope="module")
def hubspot_company(tmp_path_factory) -> Path:
    """Three owners (one deactivated), two deal pipelines, three companies, six contacts (one archived,
    one merged into another) and three deals, associated as a sales team leaves them, all in March 2025."""
    owners = [
        {
            "id": str(owner_id),
            "email": f"owner{owner_id}@handoff.example",
            "firstName": f"Owner {owner_id}",
            "lastName": "Example",
            "userId": owner_id * 7,
            "archived": owner_id == 103,
            "createdAt": moment(1),
            "updatedAt": moment(2),
            "teams": [],
        }
        for owner_id in (101, 102, 103)
    ]
    pipelines = [
        {
            "id": pipeline_id,
            "objectType": "deals",
            "label": label,
            "displayOrder": order,
            "archived": False,
            "createdAt": moment(1),
            "updatedAt": moment(1),
            "stages": [
                deal_stage(f"{prefix}qualified", "Qualified", 0, 0.2, False),
                deal_stage(f"{prefix}closedwon", "Closed won", 1, 1.0, True),
                deal_stage(f"{prefix}closedlost", "Closed lost", 2, 0.0, True),
            ],
        }
        for pipeline_id, label, order, prefix in (
            ("default", "Sales Pipeline", 0, ""),
            ("renewals", "Renewals", 1, "r_"),
        )
    ]
    companies = [
        crm_object("companies", company_id, 3, {"name": f"Company {company_id}", "domain": f"c{company_id}.example"})
        for company_id in (1, 2, 3)
    ]
    contacts = [
        crm_object(
            "contacts",
            contact_id,
            3 + contact_id,
            {
                "email": f"person{contact_id}@c{contact_id % 3 + 1}.example",
                "firstname": f"Person {contact_id}",
                "lastname": "Example",
                "lifecyclestage": "lead",
                "hubspot_owner_id": "101",
            },
            **{5: {"archived": True, "archivedAt": moment(12)}, 6: {"mergedInto": 1}}.get(contact_id, {}),
        )
        for contact_id in range(1, 7)
    ]
    deals = [
        crm_object(
            "deals",
            deal_id,
            10 + deal_id,
            {
                "dealname": f"Deal {deal_id}",
                "amount": str(1000 * deal_id),
                "pipeline": pipeline,
                "dealstage": stage,
                "hubspot_owner_id": "102",
            },
        )
        for deal_id, pipeline, stage in (
            (1, "default", "qualified"),
            (2, "default", "closedwon"),
            (3, "renewals", "r_qualified"),
        )
    ]
    associations = [
        *(association("contacts", c, "companies", c % 3 + 1, "contact_to_company") for c in range(1, 7)),
        *(association("deals", d, "companies", d, "deal_to_company") for d in (1, 2, 3)),
        *(association("deals", d, "contacts", d, "deal_to_contact") for d in (1, 2, 3)),
    ]
    folder = tmp_path_factory.mktemp("hubspot-company")
    with DatasetWriter(folder, scale="custom", seed=None, now=COMPANY_NOW) as dataset:
        dataset.write_all("owners", owners)
        dataset.write_all("crm_pipelines", pipelines)
        dataset.write_all("crm_objects", [*companies, *contacts, *deals])
        dataset.write_all("crm_associations", associations)
    return folder


@pytest.fixture(scope="module")
def hubspot_sandbox(tmp_path_factory, hubspot_company) -> Iterator[SandboxServer]:
    with SandboxServer(build_sandbox(tmp_path_factory.mktemp("sandbox"), dataset_dir=hubspot_company)) as server:
        yield server


def served_by(server: SandboxServer) -> dict[str, set[str]]:
    """The ids of what the sandbox's CRM v3 API lists per stream: its live records, owners and pipelines."""
    connection = server.connections()["crm"]
    headers = {"Authorization": f"Bearer {connection['access_token']}"}
    served: dict[str, set[str]] = {}
    with httpx.Client(base_url=connection["base_url"], headers=headers, timeout=10) as api:

        def listed(path: str) -> set[str]:
            ids, after = set(), None
            while True:
                page = api.get(path, params={"limit": 100, **({"after": after} if after else {})}).raise_for_status()
                ids |= {item["id"] for item in page.json()["results"]}
                after = page.json().get("paging", {}).get("next", {}).get("after")
                if after is None:
                    return ids

        for stream in OBJECT_STREAMS:
            served[stream] = listed(f"/crm/v3/objects/{stream}")
        served["owners"] = listed("/crm/v3/owners")
        pipelines = api.get("/crm/v3/pipelines/deals").raise_for_status().json()["results"]
        served["deal_pipelines"] = {pipeline["id"] for pipeline in pipelines}
    return served


def run_source(command: Path, arguments: list[str], environment: dict[str, str]) -> list[dict]:
    """The source's messages, after checking it finished cleanly: an Airbyte source writes every
    message, its logs and errors among them, to standard output."""
    finished = subprocess.run([command, *arguments], env=environment, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stdout[-4000:] + finished.stderr[-4000:]
    messages = [json.loads(line) for line in finished.stdout.splitlines() if line.startswith("{")]
    failures = [
        message
        for message in messages
        if (message["type"] == "LOG" and message["log"]["level"] in ("ERROR", "FATAL"))
        or (message["type"] == "TRACE" and message["trace"]["type"] == "ERROR")
    ]
    assert not failures, json.dumps(failures, indent=1)[:4000]
    return messages


def only(messages: list[dict], kind: str, key: str) -> dict:
    (message,) = (message for message in messages if message["type"] == kind)
    return message[key]


def test_airbyte_source_hubspot_reads_every_record_the_sandbox_holds(tmp_path, hubspot_sandbox):
    command = connector_command("airbyte-source-hubspot", "source-hubspot")
    connection = hubspot_sandbox.connections()["crm"]
    config, catalog_file = tmp_path / "config.json", tmp_path / "catalog.json"
    config.write_text(
        json.dumps(
            {
                "credentials": {
                    "credentials_title": "Private App Credentials",
                    "access_token": connection["access_token"],
                },
                "start_date": START_DATE,
            }
        )
    )
    with vendor_host(HUBSPOT_HOST, connection["base_url"], tmp_path) as environment:
        status = only(
            run_source(command, ["check", "--config", str(config)], environment),
            "CONNECTION_STATUS",
            "connectionStatus",
        )
        assert status["status"] == "SUCCEEDED", status
        catalog = only(run_source(command, ["discover", "--config", str(config)], environment), "CATALOG", "catalog")
        streams = {stream["name"]: stream for stream in catalog["streams"]}
        assert set(SELECTED) <= set(streams)
        # As a user configures a connection: the chosen streams, each read whole and replaced.
        catalog_file.write_text(
            json.dumps(
                {
                    "streams": [
                        {"stream": streams[name], "sync_mode": "full_refresh", "destination_sync_mode": "overwrite"}
                        for name in SELECTED
                    ]
                }
            )
        )
        messages = run_source(command, ["read", "--config", str(config), "--catalog", str(catalog_file)], environment)
    records = [message["record"] for message in messages if message["type"] == "RECORD"]
    served = served_by(hubspot_sandbox)
    assert Counter(record["stream"] for record in records) == {stream: len(ids) for stream, ids in served.items()}
    for stream, ids in served.items():
        key = "pipelineId" if stream == "deal_pipelines" else "id"
        assert {str(record["data"][key]) for record in records if record["stream"] == stream} == ids, stream
