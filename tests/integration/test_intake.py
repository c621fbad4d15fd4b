"""The intake service over real HTTP: signed webhooks are journaled once, bad ones get a 4xx and leave
nothing behind, what was acknowledged survives kill -9, and the sensors turn it into runs."""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import dagster as dg
import httpx
import pytest
import uvicorn

from pipeline.automation.sensors import web_event_files, webhook_sensor
from pipeline.intake.app import MAX_BODY_BYTES, WebhookSecrets, create_intake_app
from pipeline.intake.journal import IntakeJournal
from pipeline.settings import PROJECT_DIR, DataHome
from sandbox.webhooks import MARKETO_SECRET_HEADER, contact_created, hubspot_signature_v3, property_changed

CRM_SECRET, MARKETING_SECRET = "crm-app-client-secret", "marketing-shared-secret"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def intake(tmp_path):
    """The intake app served over HTTP from a thread; yields (base URL, journal)."""
    journal = IntakeJournal(tmp_path / "intake.sqlite")
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_intake_app(journal, WebhookSecrets(CRM_SECRET, MARKETING_SECRET)),
                                           host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}", journal
    server.should_exit = True
    thread.join(timeout=10)
    journal.close()


def crm_events(*events: dict, first_id: int = 100) -> list[dict]:
    """Events as HubSpot wraps them (the sandbox's own event builders inside)."""
    return [{"eventId": first_id + n, "subscriptionId": 1001, "portalId": 62515, "appId": 54321,
             "occurredAt": int(time.time() * 1000), "attemptNumber": 0, **event} for n, event in enumerate(events)]


def post_crm(url: str, events: object, secret: str = CRM_SECRET, age_ms: int = 0, body: bytes | None = None):
    body = json.dumps(events).encode() if body is None else body
    timestamp = str(int(time.time() * 1000) - age_ms)
    return httpx.post(url, content=body, headers={
        "Content-Type": "application/json", "X-HubSpot-Request-Timestamp": timestamp,
        "X-HubSpot-Signature-v3": hubspot_signature_v3(secret, "POST", url, body, timestamp)})


def post_marketing(url: str, event: object, secret: str = MARKETING_SECRET):
    return httpx.post(url, json=event, headers={MARKETO_SECRET_HEADER: secret})


def test_signed_webhooks_are_journaled_once_and_a_redelivery_is_recognised(intake):
    base_url, journal = intake
    events = crm_events(contact_created(7, "CRM_UI"), property_changed(7, "lifecyclestage", "marketingqualifiedlead",
                                                                      "CRM_UI"))
    first = post_crm(f"{base_url}/webhooks/crm", events)
    assert first.status_code == 200 and first.json() == {"status": "ok", "accepted": 2, "new": 2}
    redelivered = post_crm(f"{base_url}/webhooks/crm", [{**event, "attemptNumber": 1} for event in events])
    assert redelivered.json()["new"] == 0
    lead = {"webhookId": "w-1", "event": "leadStatusChanged", "leadId": 42, "email": "a@b.example",
            "changedFields": {"leadStatus": "MQL"}, "occurredAt": "2026-12-04T10:00:00Z"}
    assert post_marketing(f"{base_url}/webhooks/marketing", lead).status_code == 200
    assert httpx.get(f"{base_url}/health").json() == {"status": "ok", "events": {"crm": 2, "marketing": 1}}
    stored = [json.loads(event.body) for event in journal.after("crm", 0)]
    assert [event["propertyName"] for event in stored if "propertyName" in event] == ["lifecyclestage"]


@pytest.mark.parametrize("case", ["wrong secret", "stale timestamp", "not JSON", "not an array", "no eventId",
                                  "too large"])
def test_a_bad_crm_webhook_gets_a_4xx_with_the_reason_and_leaves_nothing(intake, case):
    base_url, journal = intake
    url = f"{base_url}/webhooks/crm"
    good = crm_events(contact_created(7, "CRM_UI"))
    response = {
        "wrong secret": lambda: post_crm(url, good, secret="someone-else"),
        "stale timestamp": lambda: post_crm(url, good, age_ms=6 * 60 * 1000),
        "not JSON": lambda: post_crm(url, None, body=b"{not json"),
        "not an array": lambda: post_crm(url, good[0]),
        "no eventId": lambda: post_crm(url, [{key: value for key, value in good[0].items() if key != "eventId"}]),
        "too large": lambda: post_crm(url, None, body=b"[" + b" " * MAX_BODY_BYTES + b"]"),
    }[case]()
    expected = {"wrong secret": (401, "does not match"), "stale timestamp": (401, "five minutes"),
                "not JSON": (400, "not valid JSON"), "not an array": (400, "JSON array"),
                "no eventId": (400, "eventId"), "too large": (413, "larger than")}[case]
    assert (response.status_code, expected[1] in response.json()["message"]) == (expected[0], True)
    assert journal.counts() == {}


def test_a_marketing_webhook_without_the_shared_secret_or_a_lead_is_refused(intake):
    base_url, journal = intake
    url = f"{base_url}/webhooks/marketing"
    assert post_marketing(url, {"webhookId": "w", "event": "e", "leadId": 1}, secret="guess").status_code == 401
    refused = post_marketing(url, {"webhookId": "w", "event": "e", "leadId": "one"})
    assert refused.status_code == 400 and "leadId" in refused.json()["message"]
    assert journal.counts() == {}


def test_acknowledged_events_survive_a_kill_9_of_the_intake(tmp_path):
    connection_file = tmp_path / "connection.json"
    connection_file.write_text(json.dumps({"crm": {"webhook_client_secret": CRM_SECRET}}))
    port = free_port()
    env = {**os.environ, "HANDOFF_HOME": str(tmp_path / "home")}
    command = [sys.executable, "-m", "pipeline.cli", "intake", "serve", "--port", str(port),
               "--connection-file", str(connection_file)]
    url = f"http://127.0.0.1:{port}/webhooks/crm"

    def serve() -> subprocess.Popen:
        process = subprocess.Popen(command, cwd=PROJECT_DIR, env=env, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                httpx.get(f"http://127.0.0.1:{port}/health")
                return process
            except httpx.TransportError:
                time.sleep(0.1)
        process.kill()
        raise AssertionError("the intake service did not start")

    intake = serve()
    acknowledged = 0
    for batch in range(20):
        events = crm_events(*(contact_created(n, "CRM_UI") for n in range(5)), first_id=batch * 5)
        acknowledged += post_crm(url, events).status_code == 200
    intake.send_signal(signal.SIGKILL)
    intake.wait()

    intake = serve()
    try:
        assert httpx.get(f"http://127.0.0.1:{port}/health").json()["events"] == {"crm": acknowledged * 5}
        assert acknowledged == 20
    finally:
        intake.terminate()
        intake.wait()


def test_new_webhooks_start_one_run_of_their_systems_changes_and_no_more(tmp_path, monkeypatch):
    home = DataHome(tmp_path / "home")
    monkeypatch.setenv("HANDOFF_HOME", str(home.root))
    sensor = webhook_sensor("crm")
    instance = dg.DagsterInstance.ephemeral()
    assert isinstance(sensor(dg.build_sensor_context(instance=instance)), dg.SkipReason)  # no journal yet

    journal = IntakeJournal(home.intake_journal)
    journal.append("crm", [("1", "{}"), ("2", "{}")])
    journal.append("marketing", [("w", "{}")])
    context = dg.build_sensor_context(instance=instance)
    request = sensor(context)
    assert isinstance(request, dg.RunRequest) and request.tags["handoff/events"] == "2"
    assert sensor.job_name == "crm_changes" and request.run_key == f"crm-webhooks-{context.cursor}"

    assert isinstance(sensor(dg.build_sensor_context(instance=instance, cursor=context.cursor)), dg.SkipReason)
    journal.append("crm", [("3", "{}")])
    later = sensor(dg.build_sensor_context(instance=instance, cursor=context.cursor))
    assert later.tags["handoff/events"] == "1" and later.run_key != request.run_key
    journal.close()


def test_website_event_files_that_appear_or_grow_start_a_run(tmp_path, monkeypatch):
    home = DataHome(tmp_path / "home")
    monkeypatch.setenv("HANDOFF_HOME", str(home.root))
    monkeypatch.delenv("HANDOFF_WEB_EVENT_DIRS", raising=False)
    hour = home.web_landing / "2026-12-04" / "10.ndjson"
    hour.parent.mkdir(parents=True)
    hour.write_text('{"messageId": "m1"}\n')
    instance = dg.DagsterInstance.ephemeral()
    context = dg.build_sensor_context(instance=instance)
    first = web_event_files(context)
    assert isinstance(first, dg.RunRequest) and web_event_files.job_name == "web_changes"
    assert isinstance(web_event_files(dg.build_sensor_context(instance=instance, cursor=context.cursor)), dg.SkipReason)
    with open(hour, "a") as late:
        late.write('{"messageId": "m2"}\n')
    grown = web_event_files(dg.build_sensor_context(instance=instance, cursor=context.cursor))
    assert isinstance(grown, dg.RunRequest) and grown.run_key != first.run_key
