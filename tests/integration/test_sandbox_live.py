"""Live mode and webhooks over real HTTP: the company keeps changing, the stand-ins serve the changes,
and signed webhooks announce them to a receiver, retried when it fails."""

import json
import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from hubspot.utils.signature import Signature

from sandbox.dataset import DatasetWriter, iso
from sandbox.live import LiveCompany, LiveSettings
from sandbox.server import SandboxServer, build_sandbox
from sandbox.webhooks import (
    MARKETO_SECRET_HEADER,
    WebhookSender,
    WebhookSettings,
    contact_created,
    hubspot_signature_v3,
    verify_hubspot_signature_v3,
)

CREATED = "2026-01-05T10:00:00.000Z"
OWNER_IDS = ["1000", "1001", "1002"]
KNOWN_EMAIL = "ada.known@acme.example"
SEEDED_CONTACTS = 3


def _contact(contact_id: int, email: str, stage: str, owner: str | None = None) -> dict:
    properties = {
        "email": email,
        "firstname": "Ada",
        "lastname": "Known",
        "lifecyclestage": stage,
        "hubspot_owner_id": owner,
        "createdate": CREATED,
        "lastmodifieddate": CREATED,
        "hs_object_id": str(contact_id),
    }
    return {
        "objectType": "contacts",
        "id": str(contact_id),
        "properties": properties,
        "createdAt": CREATED,
        "updatedAt": CREATED,
        "archived": False,
        "archivedAt": None,
        "mergedInto": None,
    }


@pytest.fixture(scope="module")
def live_company(tmp_path_factory):
    """Three owners, a contact still at 'lead' whose marketing lead has not qualified yet, an open MQL."""
    folder = tmp_path_factory.mktemp("live-company")
    with DatasetWriter(folder, scale="custom", seed=None, now=datetime(2026, 1, 6, tzinfo=UTC)) as writer:
        for owner_id in OWNER_IDS:
            writer.write(
                "owners",
                {
                    "id": owner_id,
                    "email": f"rep{owner_id}@handoff-demo.example",
                    "firstName": "Rep",
                    "lastName": owner_id,
                    "userId": int(owner_id),
                    "archived": False,
                    "teams": [],
                    "createdAt": CREATED,
                    "updatedAt": CREATED,
                    "timeZone": "Europe/Berlin",
                    "country": "DE",
                    "workingHours": {"start": 9, "end": 17},
                    "team": "sales",
                    "managerId": None,
                },
            )
        writer.write_all(
            "crm_objects",
            [
                _contact(1, KNOWN_EMAIL, "lead"),
                _contact(2, "grace.open@initech.example", "marketingqualifiedlead", "1001"),
                _contact(3, "lin.cold@globex.example", "subscriber"),
            ],
        )
        writer.write(
            "marketing_leads",
            {
                "id": 1,
                "email": KNOWN_EMAIL,
                "firstName": "Ada",
                "lastName": "Known",
                "company": "Acme",
                "leadScore": 40,
                "leadStatus": "New",
                "leadSource": "Webinar",
                "createdAt": CREATED,
                "updatedAt": CREATED,
                "deletedAt": None,
            },
        )
    return folder


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body)


class Receiver:
    """A webhook receiver that answers each request with the next scripted status (then 204)."""

    def __init__(self):
        self.requests: list[Received] = []
        self.statuses: list[int] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.lock:
                    receiver.requests.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                    status = receiver.statuses.pop(0) if receiver.statuses else 204
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}{path}"

    def received(self, path: str) -> list[Received]:
        with self.lock:
            return [request for request in self.requests if request.path == path]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def receiver():
    receiver = Receiver()
    yield receiver
    receiver.close()


def _eventually(check: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "the condition did not come true in time"
        time.sleep(0.05)


def _signed_correctly(request: Received, client_secret: str) -> bool:
    return verify_hubspot_signature_v3(
        client_secret,
        "POST",
        f"http://{request.headers['host']}{request.path}",
        request.body,
        request.headers.get("x-hubspot-request-timestamp"),
        request.headers.get("x-hubspot-signature-v3"),
        now_ms=int(time.time() * 1000),
    )


def _count(store, sql: str, params: tuple = ()) -> int:
    return store.query_one(sql, params)[0]


ENGAGEMENTS = ("calls", "emails", "meetings", "tasks")


def _marketo(connection: dict) -> httpx.Client:
    token = httpx.get(
        f"{connection['base_url']}/identity/oauth/token",
        params={
            "grant_type": "client_credentials",
            "client_id": connection["client_id"],
            "client_secret": connection["client_secret"],
        },
    ).json()["access_token"]
    return httpx.Client(base_url=connection["base_url"], headers={"Authorization": f"Bearer {token}"})


def _marketo_activities(marketo: httpx.Client, since: str, type_ids: str) -> list[dict]:
    token = marketo.get("/rest/v1/activities/pagingtoken.json", params={"sinceDatetime": since}).json()["nextPageToken"]
    activities = []
    for _ in range(20):
        page = marketo.get(
            "/rest/v1/activities.json", params={"nextPageToken": token, "activityTypeIds": type_ids}
        ).json()
        activities += page.get("result", [])
        if not page["moreResult"]:
            break
        token = page["nextPageToken"]
    return activities


def test_live_mode_changes_the_company_through_the_stand_ins_and_stops_cleanly(live_company, receiver, tmp_path):
    started = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    sandbox = build_sandbox(
        tmp_path / "state",
        dataset_dir=live_company,
        webhooks=WebhookSettings(
            crm_url=receiver.url("/crm"), marketing_url=receiver.url("/marketing"), first_retry_s=0.05
        ),
    )
    store = sandbox.store
    with SandboxServer(sandbox, live=LiveSettings(pace=3000, seed=3)) as server:
        connections = server.connections()
        events_dir = Path(connections["web"]["events_dir"])
        _eventually(
            lambda: (
                _count(
                    store,
                    "select count(*) from crm_objects where object_type = 'contacts' "
                    "and id > ? and json_extract(properties, '$.lifecyclestage') = ?",
                    (SEEDED_CONTACTS, "marketingqualifiedlead"),
                )
                >= 2
                and _count(
                    store,
                    "select count(*) from crm_objects where object_type in ('calls', 'emails', 'meetings', 'tasks')",
                )
                >= 3
                and _count(store, "select count(*) from marketing_activities where activity_type_id = 22") >= 2
                and {"page", "identify", "track"}
                <= {
                    json.loads(line)["type"]
                    for path in events_dir.glob("*/*.ndjson")
                    for line in path.read_text().splitlines()
                }
                and len(receiver.received("/crm")) >= 3
                and len(receiver.received("/marketing")) >= 3
            )
        )

        with httpx.Client(
            base_url=connections["crm"]["base_url"],
            headers={"Authorization": f"Bearer {connections['crm']['access_token']}"},
        ) as crm:
            contacts = crm.get(
                "/crm/v3/objects/contacts",
                params={
                    "limit": 50,
                    "properties": "lifecyclestage,hubspot_owner_id",
                    "propertiesWithHistory": "lifecyclestage",
                },
            ).json()["results"]
            touches = {
                kind: crm.get(f"/crm/v3/objects/{kind}", params={"properties": "hubspot_owner_id"}).json()["results"]
                for kind in ENGAGEMENTS
            }
            kind, touch = next((kind, records[0]) for kind, records in touches.items() if records)
            touched = crm.get(f"/crm/v4/objects/{kind}/{touch['id']}/associations/contacts").json()["results"]
        with _marketo(connections["marketing"]) as marketo:
            new_lead_id = store.query_one("select min(id) from marketing_leads where id > 1")[0]
            lead = marketo.get(
                f"/rest/v1/lead/{new_lead_id}.json", params={"fields": "email,leadSource,leadStatus"}
            ).json()["result"][0]
            activities = _marketo_activities(marketo, started, "2,12,22")
    assert [thread.name for thread in threading.enumerate() if thread.name in ("live-company", "webhooks")] == []
    totals = [_count(store, f"select count(*) from {table}") for table in ("crm_objects", "marketing_leads")]
    time.sleep(0.2)
    assert [_count(store, f"select count(*) from {table}") for table in ("crm_objects", "marketing_leads")] == totals

    # The handoff: MQL contacts with an owner from the owners table, and the stage change in their history.
    handed_off = [
        contact
        for contact in contacts
        if int(contact["id"]) > SEEDED_CONTACTS and contact["properties"]["lifecyclestage"] == "marketingqualifiedlead"
    ]
    assert len(handed_off) >= 2
    assert all(contact["properties"]["hubspot_owner_id"] in OWNER_IDS for contact in handed_off)
    assert handed_off[0]["propertiesWithHistory"]["lifecyclestage"][0]["value"] == "marketingqualifiedlead"
    # Sales touches carry their owner and belong to a contact.
    assert touch["properties"]["hubspot_owner_id"] in OWNER_IDS and len(touched) == 1
    # Form fills became Marketo leads, with their activities.
    assert lead["leadSource"] == "Website" and lead["email"]
    assert {2, 12, 22} <= {activity["activityTypeId"] for activity in activities}

    crm_secret = connections["crm"]["webhook_client_secret"]
    crm_events = [event for request in receiver.received("/crm") for event in request.json()]
    assert all(_signed_correctly(request, crm_secret) for request in receiver.received("/crm"))
    assert {"contact.creation", "contact.propertyChange", "object.creation"} <= {
        event["subscriptionType"] for event in crm_events
    }
    assert all(
        {"eventId", "subscriptionId", "portalId", "appId", "occurredAt", "attemptNumber", "objectId", "changeSource"}
        <= set(event)
        for event in crm_events
    )
    marketing = receiver.received("/marketing")
    assert {request.headers[MARKETO_SECRET_HEADER.lower()] for request in marketing} == {
        connections["marketing"]["webhook_secret"]
    }
    assert {"lead.created", "lead.updated"} <= {request.json()["event"] for request in marketing}


def test_an_mql_updates_the_contact_the_crm_already_has(live_company, tmp_path):
    sandbox = build_sandbox(tmp_path / "state", dataset_dir=live_company)
    with SandboxServer(sandbox) as server:
        live = LiveCompany(
            sandbox, LiveSettings(seed=5), server.connections()["web"]["tracking_url"], sandbox.website.write_key
        )
        live.open_leads = [1]
        for _ in range(300):
            if not live.open_leads:
                break
            live.step()
        live.stop()

    contact = json.loads(
        sandbox.store.query_one("select properties from crm_objects where object_type = 'contacts' and id = 1")[
            "properties"
        ]
    )
    assert contact["lifecyclestage"] == "marketingqualifiedlead" and contact["hubspot_owner_id"] in OWNER_IDS
    assert (
        _count(
            sandbox.store,
            "select count(*) from crm_objects where object_type = 'contacts' "
            "and json_extract(properties, '$.email') = ?",
            (KNOWN_EMAIL,),
        )
        == 1
    )
    lead = json.loads(sandbox.store.query_one("select body from marketing_leads where id = 1")["body"])
    assert lead["leadStatus"] == "MQL" and lead["leadScore"] >= 100


_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d")


def _without_times(value):
    if isinstance(value, dict):
        return {key: _without_times(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_without_times(item) for item in value]
    if isinstance(value, str) and value.startswith(("{", "[")):
        return _without_times(json.loads(value))
    return "<time>" if isinstance(value, str) and _TIME.match(value) else value


def _live_run(company: Path, state: Path, seed: int, steps: int = 120):
    sandbox = build_sandbox(state, dataset_dir=company)
    with SandboxServer(sandbox) as server:
        web = server.connections()["web"]
        live = LiveCompany(sandbox, LiveSettings(seed=seed), web["tracking_url"], web["write_key"])
        for _ in range(steps):
            live.step()
        live.stop()
        tables = ("crm_objects", "crm_property_history", "crm_associations", "marketing_leads", "marketing_activities")
        rows = {
            table: [dict(row) for row in sandbox.store.query(f"select * from {table} order by rowid")]
            for table in tables
        }
        web_events = [
            json.loads(line)
            for path in sorted(Path(web["events_dir"]).glob("*/*.ndjson"))
            for line in path.read_text().splitlines()
        ]
    return _without_times({**rows, "web": web_events})


def test_the_same_seed_lives_the_same_life(live_company, tmp_path):
    first = _live_run(live_company, tmp_path / "a", seed=11)
    assert first == _live_run(live_company, tmp_path / "b", seed=11)
    assert first != _live_run(live_company, tmp_path / "c", seed=12)
    assert len(first["marketing_leads"]) > 1 and len(first["web"]) > 50


@pytest.mark.parametrize(
    "statuses, max_attempts, expected_attempts",
    [
        ([500, 503], 10, 3),  # retried until it succeeds
        ([429], 10, 2),  # a rate-limited delivery is retried too
        ([404], 10, 1),  # HubSpot treats 400/401/403/404/405 as final
        ([500] * 6, 3, 3),  # gives up after max_attempts
    ],
)
def test_failed_deliveries_are_retried_with_back_off_and_a_fresh_signature(
    receiver, statuses, max_attempts, expected_attempts
):
    receiver.statuses = list(statuses)
    sender = WebhookSender(
        WebhookSettings(crm_url=receiver.url("/crm"), max_attempts=max_attempts, first_retry_s=0.05),
        crm_client_secret="app-secret",
        marketing_secret="unused",
    )
    sender.start()
    sender.notify_crm([contact_created(42, "CRM_UI")], occurred_at_ms=1_767_000_000_000)
    _eventually(lambda: len(receiver.received("/crm")) >= expected_attempts)
    time.sleep(0.4)  # long enough for one more attempt, were there to be one
    sender.stop()

    requests = receiver.received("/crm")
    assert [request.json()[0]["attemptNumber"] for request in requests] == list(range(expected_attempts))
    assert len({request.json()[0]["eventId"] for request in requests}) == 1
    assert all(_signed_correctly(request, "app-secret") for request in requests)


# HubSpot's published test vector for v3 signatures (hubspot-api-python, tests/spec/utils/test_signature.py).
HUBSPOT_EXAMPLE = {
    "client_secret": "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy",
    "method": "POST",
    "uri": "https://www.example.com/webhook_uri",
    "body": "{'example_field':'example_value'}",
    "timestamp": 15000000,
}
HUBSPOT_EXAMPLE_SIGNATURE = "HPW73RUtKmcYoEDADG0s6MmGFWUzWJKAW07r8RDgcQw="


def test_the_v3_signature_matches_hubspots_example_and_sdk():
    assert hubspot_signature_v3(**HUBSPOT_EXAMPLE) == HUBSPOT_EXAMPLE_SIGNATURE
    assert verify_hubspot_signature_v3(**HUBSPOT_EXAMPLE, signature=HUBSPOT_EXAMPLE_SIGNATURE, now_ms=15_060_000)
    rng = random.Random(1)
    for _ in range(20):
        secret, body = f"secret-{rng.random()}", json.dumps([{"objectId": rng.randrange(10**6), "name": "Zoë"}])
        uri, timestamp = f"https://intake.example/hooks/{rng.randrange(100)}?portal=62515", str(rng.randrange(10**13))
        assert hubspot_signature_v3(secret, "POST", uri, body, timestamp) == Signature.get_signature(
            secret, body, "v3", http_uri=uri, http_method="POST", timestamp=timestamp
        )


@pytest.mark.parametrize(
    "change, valid",
    [
        ({}, True),
        ({"uri": "https%3A%2F%2Fwww.example.com%2Fwebhook_uri"}, True),  # HubSpot decodes these before signing
        ({"body": "{'example_field':'tampered'}"}, False),
        ({"client_secret": "another-apps-secret"}, False),
        ({"method": "GET"}, False),
        ({"now_ms": 15000000 + 5 * 60 * 1000 + 1}, False),  # older than five minutes
        ({"timestamp": None}, False),
        ({"timestamp": "not-a-number"}, False),
        ({"signature": None}, False),
    ],
)
def test_verifying_a_v3_signature(change, valid):
    request = {**HUBSPOT_EXAMPLE, "signature": HUBSPOT_EXAMPLE_SIGNATURE, "now_ms": 15_000_500, **change}
    assert verify_hubspot_signature_v3(**request) is valid


def test_webhook_secrets_are_in_the_connection_file_shape(live_company, tmp_path):
    connections = build_sandbox(tmp_path / "state", dataset_dir=live_company).connections("http://127.0.0.1:1")
    assert connections["crm"]["webhook_client_secret"] and connections["marketing"]["webhook_secret"]
    assert connections["web"]["tracking_url"] == "http://127.0.0.1:1/segment" and connections["web"]["write_key"]


def test_a_burst_of_live_changes_stops_once_enough_records_changed(tiny_dataset, tmp_path):
    sandbox = build_sandbox(tmp_path / "state", dataset_dir=tiny_dataset)
    with SandboxServer(sandbox) as server:
        web = server.connections()["web"]
        live = LiveCompany(sandbox, LiveSettings(seed=3), web["tracking_url"], web["write_key"])
        before = sandbox.store.query_one("select count(*) as n from marketing_activities")["n"]
        started = iso(datetime.now(UTC))
        live.change_records(25)
        live.stop()
        changed = live.records_changed_since(started)
    assert 25 <= changed <= 26
    assert sandbox.store.query_one("select count(*) as n from marketing_activities")["n"] > before
    assert list(Path(web["events_dir"]).glob("*/*.ndjson"))
