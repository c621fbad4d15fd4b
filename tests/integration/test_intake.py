"""The intake service over real HTTP: signed webhooks are journaled once and website events land once,
bad ones get a 4xx and leave nothing behind, what was acknowledged survives kill -9, and the sensors
turn it into runs."""

import base64
import gzip
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import httpx
import pytest
import uvicorn
from segment import analytics

from pipeline.automation.jobs import build_automation_defs
from pipeline.automation.sensors import WEBHOOK_JOBS, build_sensor_defs, web_event_files, webhooks
from pipeline.ingest.assets import system_pipeline
from pipeline.ingest.web import invalid_event_reason, web_source
from pipeline.intake import landing as landing_module
from pipeline.intake.app import MAX_BODY_BYTES, WebhookSecrets, create_intake_app
from pipeline.intake.journal import IntakeJournal
from pipeline.intake.landing import WebEventLanding
from pipeline.intake.segment import MAX_BATCH_BYTES
from pipeline.settings import PROJECT_DIR, DataHome, load_settings
from sandbox.webhooks import MARKETO_SECRET_HEADER, contact_created, hubspot_signature_v3, property_changed
from sandbox.website import segment_batches, send_batch

CRM_SECRET, MARKETING_SECRET, WRITE_KEY = "crm-app-client-secret", "marketing-shared-secret", "website-write-key"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def intake(tmp_path):
    """The intake app served over HTTP from a thread, landing website events in ``tmp_path/web``;
    yields (base URL, journal)."""
    journal = IntakeJournal(tmp_path / "intake.sqlite")
    web_landing = WebEventLanding(tmp_path / "web", tmp_path / "web-messages.sqlite")
    port = free_port()
    app = create_intake_app(journal, WebhookSecrets(CRM_SECRET, MARKETING_SECRET, WRITE_KEY), web_landing=web_landing)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}", journal
    server.should_exit = True
    thread.join(timeout=10)
    web_landing.close()
    journal.close()


def crm_events(*events: dict, first_id: int = 100) -> list[dict]:
    """Events as HubSpot wraps them (the sandbox's own event builders inside)."""
    return [
        {
            "eventId": first_id + n,
            "subscriptionId": 1001,
            "portalId": 62515,
            "appId": 54321,
            "occurredAt": int(time.time() * 1000),
            "attemptNumber": 0,
            **event,
        }
        for n, event in enumerate(events)
    ]


def post_crm(
    url: str,
    events: object,
    secret: str = CRM_SECRET,
    age_ms: int = 0,
    body: bytes | None = None,
    content_type: str = "application/json",
    timestamp: bytes | None = None,
    content_encoding: str = "",
):
    """Signed as HubSpot signs; ``timestamp`` sent as given (raw bytes) instead of the current time."""
    body = json.dumps(events).encode() if body is None else body
    if content_encoding == "gzip":
        body = gzip.compress(body)
    signed = timestamp.decode("latin-1") if timestamp else str(int(time.time() * 1000) - age_ms)
    return httpx.post(
        url,
        content=body,
        headers={
            "Content-Type": content_type,
            "X-HubSpot-Request-Timestamp": timestamp or signed,
            "X-HubSpot-Signature-v3": hubspot_signature_v3(secret, "POST", url, body, signed),
            **({"Content-Encoding": content_encoding} if content_encoding else {}),
        },
    )


def post_marketing(
    url: str,
    event: object,
    secret: str = MARKETING_SECRET,
    body: bytes | None = None,
    content_type: str = "application/json",
):
    body = json.dumps(event).encode() if body is None else body
    return httpx.post(url, content=body, headers={MARKETO_SECRET_HEADER: secret, "Content-Type": content_type})


def test_signed_webhooks_are_journaled_once_and_a_redelivery_is_recognised(intake):
    base_url, journal = intake
    events = crm_events(
        contact_created(7, "CRM_UI"), property_changed(7, "lifecyclestage", "marketingqualifiedlead", "CRM_UI")
    )
    first = post_crm(f"{base_url}/webhooks/crm", events)
    assert first.status_code == 200 and first.json() == {"status": "ok", "accepted": 2, "new": 2}
    redelivered = post_crm(f"{base_url}/webhooks/crm", [{**event, "attemptNumber": 1} for event in events])
    assert redelivered.json()["new"] == 0
    lead = MARKETING_WEBHOOK
    assert post_marketing(f"{base_url}/webhooks/marketing", lead).status_code == 200
    assert httpx.get(f"{base_url}/health").json() == {"status": "ok", "events": {"crm": 2, "marketing": 1}}
    stored = [json.loads(event.body) for event in journal.after("crm", 0)]
    assert [event["propertyName"] for event in stored if "propertyName" in event] == ["lifecyclestage"]


@pytest.mark.parametrize(
    "case", ["wrong secret", "stale timestamp", "not JSON", "not an array", "no eventId", "too large"]
)
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
    expected = {
        "wrong secret": (401, "does not match"),
        "stale timestamp": (401, "five minutes"),
        "not JSON": (400, "not valid JSON"),
        "not an array": (400, "JSON array"),
        "no eventId": (400, "eventId"),
        "too large": (413, "larger than"),
    }[case]
    assert (response.status_code, expected[1] in response.json()["message"]) == (expected[0], True)
    assert journal.counts() == {}


def test_a_marketing_webhook_without_the_shared_secret_or_a_lead_is_refused(intake):
    base_url, journal = intake
    url = f"{base_url}/webhooks/marketing"
    assert post_marketing(url, {"webhookId": "w", "event": "e", "leadId": 1}, secret="guess").status_code == 401
    refused = post_marketing(url, {"webhookId": "w", "event": "e", "leadId": "one"})
    assert refused.status_code == 400 and "leadId" in refused.json()["message"]
    assert journal.counts() == {}


def web_call(n: int, **overrides) -> dict:
    return {
        "type": "track",
        "event": "Demo Requested",
        "messageId": f"m-{n}",
        "anonymousId": f"anon-{n % 7}",
        "timestamp": "2026-12-04T10:00:00.000Z",
        "context": {"page": {"path": "/pricing"}},
        **overrides,
    }


def post_web_batch(base_url: str, calls: list[dict], write_key: str = WRITE_KEY) -> httpx.Response:
    return httpx.post(f"{base_url}/v1/batch", json={"batch": calls}, auth=(write_key, ""))


def landed(folder: Path) -> list[dict]:
    return [json.loads(line) for path in sorted(folder.rglob("*.ndjson")) for line in path.read_text().splitlines()]


def test_website_events_land_once_where_the_web_source_reads_them(intake, tmp_path):
    base_url, _ = intake
    calls = [web_call(n) for n in range(1200)]
    # The sandbox website's own emitter, batching as Segment's limits require, then a redelivery.
    with httpx.Client() as client:
        for _ in range(2):
            for batch in segment_batches(json.dumps(call).encode() for call in calls):
                send_batch(client, base_url, WRITE_KEY, batch)
    single = httpx.post(
        f"{base_url}/v1/identify",
        auth=(WRITE_KEY, ""),
        json={"messageId": "m-identify", "userId": "42", "traits": {"email": "ada@example.com"}},
    )
    assert single.status_code == 200 and single.json()["new"] == 1
    assert (
        httpx.post(
            f"{base_url}/v1/identify", json={"messageId": "m-identify", "userId": "42", "writeKey": WRITE_KEY}
        ).json()["new"]
        == 0
    )

    events = landed(tmp_path / "web")
    assert [event["messageId"] for event in events] == [call["messageId"] for call in calls] + ["m-identify"]
    assert all(invalid_event_reason(event) is None for event in events)
    assert all("writeKey" not in event and event["receivedAt"] for event in events)
    assert events[-1]["type"] == "identify" and events[-1]["timestamp"] == events[-1]["receivedAt"]
    hour = datetime.now(UTC).strftime("%Y-%m-%d/%H.ndjson")
    assert [path.relative_to(tmp_path / "web").as_posix() for path in (tmp_path / "web").rglob("*.ndjson")] == [hour]
    assert httpx.get(f"{base_url}/health").json()["events"] == {"web": 1201}


def test_segments_own_sdk_delivers_to_the_intake(intake, tmp_path):
    base_url, _ = intake
    errors = []
    analytics.default_client = None
    analytics.write_key, analytics.host, analytics.gzip, analytics.max_retries = WRITE_KEY, base_url, True, 0
    analytics.on_error = lambda error, _batch: errors.append(error)
    try:
        analytics.identify("user-7", {"email": "ada@example.com"})
        analytics.track("user-7", "Demo Requested", {"source": "pricing page"})
        analytics.page(anonymous_id="anon-3", name="Pricing", context={"campaign": {"source": "linkedin"}})
        analytics.flush()
    finally:
        analytics.shutdown()
        analytics.default_client = None
    assert errors == []
    assert [event["type"] for event in landed(tmp_path / "web")] == ["identify", "track", "page"]


@pytest.mark.parametrize(
    "case",
    [
        "no write key",
        "wrong write key",
        "not JSON",
        "not an object",
        "empty batch",
        "no messageId",
        "no user",
        "track without event",
        "wrong endpoint type",
        "call over 32 KB",
        "batch over 500 KB",
        "bad timestamp",
    ],
)
def test_a_bad_website_call_gets_a_4xx_with_the_reason_and_lands_nothing(intake, tmp_path, case):
    base_url, _ = intake
    good = web_call(1)
    response = {
        "no write key": lambda: httpx.post(f"{base_url}/v1/batch", json={"batch": [good]}),
        "wrong write key": lambda: post_web_batch(base_url, [good], write_key="guess"),
        "not JSON": lambda: httpx.post(
            f"{base_url}/v1/track", content=b"{nope", auth=(WRITE_KEY, ""), headers={"Content-Type": "application/json"}
        ),
        "not an object": lambda: httpx.post(f"{base_url}/v1/track", json=[good], auth=(WRITE_KEY, "")),
        "empty batch": lambda: post_web_batch(base_url, []),
        "no messageId": lambda: post_web_batch(base_url, [good, {**good, "messageId": None}]),
        "no user": lambda: post_web_batch(base_url, [good, web_call(2, anonymousId=None)]),
        "track without event": lambda: post_web_batch(base_url, [web_call(2, event="")]),
        "wrong endpoint type": lambda: httpx.post(f"{base_url}/v1/page", json=good, auth=(WRITE_KEY, "")),
        "call over 32 KB": lambda: post_web_batch(base_url, [good, web_call(2, properties={"x": "y" * 33_000})]),
        "batch over 500 KB": lambda: post_web_batch(
            base_url, [web_call(n, properties={"x": "y" * 30_000}) for n in range(MAX_BATCH_BYTES // 30_000 + 1)]
        ),
        "bad timestamp": lambda: post_web_batch(base_url, [web_call(2, timestamp="yesterday")]),
    }[case]()
    expected = {
        "no write key": (401, "write key"),
        "wrong write key": (401, "invalid write key"),
        "not JSON": (400, "not valid JSON"),
        "not an object": (400, "JSON object"),
        "empty batch": (400, "non-empty"),
        "no messageId": (400, "batch[1]: messageId"),
        "no user": (400, "userId or an anonymousId"),
        "track without event": (400, "needs event"),
        "wrong endpoint type": (400, "sent to /v1/page"),
        "call over 32 KB": (400, "32 KB"),
        "batch over 500 KB": (413, "500 KB"),
        "bad timestamp": (400, "ISO 8601"),
    }[case]
    assert (response.status_code, expected[1] in response.json()["message"]) == (expected[0], True)
    assert landed(tmp_path / "web") == []
    assert "web" not in httpx.get(f"{base_url}/health").json()["events"]


# Hostile input: each refused with the 4xx that says why, before anything is kept. (The fuzz in
# test_intake_fuzz.py throws thousands more at every endpoint.)
# A Marketo webhook about one lead, as the intake accepts it.
MARKETING_WEBHOOK = {
    "webhookId": "w-1",
    "event": "leadStatusChanged",
    "leadId": 42,
    "email": "a@b.example",
    "changedFields": {"leadStatus": "MQL"},
    "occurredAt": "2026-12-04T10:00:00Z",
}
DEEP = b"[" * 1000 + b"]" * 1000  # a RecursionError in a recursive parser, without a depth limit first


class Containing(str):
    """Equal to any string that contains it, so an assertion shows the whole message when it fails."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and str(self) in other

    __hash__ = str.__hash__


def nothing_kept(base_url: str, journal: IntakeJournal, folder: Path) -> bool:
    return journal.counts() == {} and landed(folder) == [] and httpx.get(f"{base_url}/health").json()["events"] == {}


@pytest.mark.parametrize(
    "case, status, reason",
    [
        ("nested 1000 deep", 400, "levels deep; at most 32"),
        ("a lone surrogate", 400, "lone UTF-16 surrogate"),
        ("NaN", 400, "NaN and Infinity are not JSON numbers"),
        ("Infinity", 400, "NaN and Infinity are not JSON numbers"),
        ("a number beyond a double", 400, "too large to be finite"),
        ("a timestamp of ²", 401, "not a time in milliseconds"),
        ("a timestamp of 5000 digits", 401, "not a time in milliseconds"),
        ("text/plain", 415, "Content-Type application/json"),
        ("charset=latin-1", 415, "UTF-8"),
        ("a gzipped body", 415, "Content-Encoding 'gzip' is not supported: send the body plain"),
        ("eventId as an array", 400, "event 0 needs eventId as an integer, not an array"),
        ("objectId as an object", 400, "event 1 needs objectId as an integer, not an object"),
        ("eventId beyond 64 bits", 400, "event 0 needs eventId as an integer"),
        ("propertyName as an array", 400, "event 1: propertyName must be a string, not an array"),
        ("mergedObjectIds holding a string", 400, "event 0: mergedObjectIds must be an array of integers"),
    ],
)
def test_a_hostile_crm_webhook_gets_the_4xx_that_says_why_and_leaves_nothing(intake, tmp_path, case, status, reason):
    base_url, journal = intake
    url = f"{base_url}/webhooks/crm"
    good = crm_events(contact_created(7, "CRM_UI"), property_changed(7, "lifecyclestage", "lead", "CRM_UI"))
    first, second = good

    def signed(body: bytes, **headers) -> httpx.Response:
        return post_crm(url, None, body=body, **headers)

    response = {
        "nested 1000 deep": lambda: signed(b'[{"eventId": 1, "x": ' + DEEP + b"}]"),
        "a lone surrogate": lambda: post_crm(url, [{**first, "changeSource": "\ud800"}]),
        "NaN": lambda: post_crm(url, [{**first, "occurredAt": float("nan")}]),
        "Infinity": lambda: post_crm(url, [{**first, "occurredAt": float("inf")}]),
        "a number beyond a double": lambda: signed(
            json.dumps([first]).replace('"objectId": 7', '"objectId": 1e400').encode()
        ),
        "a timestamp of ²": lambda: post_crm(url, good, timestamp=b"\xb2"),
        "a timestamp of 5000 digits": lambda: post_crm(url, good, timestamp=b"1" * 5000),
        "text/plain": lambda: post_crm(url, good, content_type="text/plain"),
        "charset=latin-1": lambda: post_crm(url, good, content_type="application/json; charset=latin-1"),
        "a gzipped body": lambda: post_crm(url, good, content_encoding="gzip"),
        "eventId as an array": lambda: post_crm(url, [{**first, "eventId": [1]}, second]),
        "objectId as an object": lambda: post_crm(url, [first, {**second, "objectId": {"id": 7}}]),
        "eventId beyond 64 bits": lambda: post_crm(url, [{**first, "eventId": 2**64}]),
        "propertyName as an array": lambda: post_crm(url, [first, {**second, "propertyName": ["lifecyclestage"]}]),
        "mergedObjectIds holding a string": lambda: post_crm(url, [{**first, "mergedObjectIds": [1, "2"]}]),
    }[case]()
    assert (response.status_code, response.json()["message"]) == (status, Containing(reason))
    assert nothing_kept(base_url, journal, tmp_path / "web")


@pytest.mark.parametrize(
    "case, status, reason",
    [
        ("nested 1000 deep", 400, "levels deep; at most 32"),
        ("nested 1000 deep, without the secret", 401, "X-Marketo-Webhook-Secret"),
        ("a lone surrogate", 400, "lone UTF-16 surrogate"),
        ("NaN", 400, "NaN and Infinity are not JSON numbers"),
        ("a form", 415, "Content-Type application/json"),
        ("leadId as an array", 400, "the body needs leadId as an integer, not an array"),
        ("webhookId as an object", 400, "the body needs webhookId as a string, not an object"),
        ("event as an array", 400, "the body needs event as a string, not an array"),
        ("email as a number", 400, "the body: email must be a string, not a number"),
    ],
)
def test_a_hostile_marketing_webhook_gets_the_4xx_that_says_why_and_leaves_nothing(
    intake, tmp_path, case, status, reason
):
    base_url, journal = intake
    url = f"{base_url}/webhooks/marketing"
    good = MARKETING_WEBHOOK
    response = {
        "nested 1000 deep": lambda: post_marketing(url, None, body=b'{"webhookId": "w", "x": ' + DEEP + b"}"),
        "nested 1000 deep, without the secret": lambda: post_marketing(url, None, secret="guess", body=DEEP),
        "a lone surrogate": lambda: post_marketing(url, {**good, "email": "\udfff@b.example"}),
        "NaN": lambda: post_marketing(url, {**good, "changedFields": {"leadScore": float("nan")}}),
        "a form": lambda: post_marketing(
            url, None, body=b"webhookId=w&leadId=1", content_type="application/x-www-form-urlencoded"
        ),
        "leadId as an array": lambda: post_marketing(url, {**good, "leadId": [42]}),
        "webhookId as an object": lambda: post_marketing(url, {**good, "webhookId": {"id": "w-1"}}),
        "event as an array": lambda: post_marketing(url, {**good, "event": ["leadStatusChanged"]}),
        "email as a number": lambda: post_marketing(url, {**good, "email": 7}),
    }[case]()
    assert (response.status_code, response.json()["message"]) == (status, Containing(reason))
    assert nothing_kept(base_url, journal, tmp_path / "web")


@pytest.mark.parametrize(
    "case, status, reason",
    [
        ("nested 1000 deep", 400, "levels deep; at most 32"),
        ("nested 1000 deep, with a wrong write key", 401, "invalid write key"),
        ("nested 1000 deep, with the write key only in it", 400, "levels deep; at most 32"),
        ("a lone surrogate", 400, "lone UTF-16 surrogate"),
        ("a lone surrogate in a key", 400, "lone UTF-16 surrogate"),
        ("NaN", 400, "NaN and Infinity are not JSON numbers"),
        ("-Infinity", 400, "NaN and Infinity are not JSON numbers"),
        ("a number beyond a double", 400, "too large to be finite"),
        ("no Content-Type", 415, "this request has none"),
        ("a form", 415, "Content-Type application/json or text/plain"),
        ("charset=utf-16", 415, "UTF-8"),
        ("a brotli body", 415, "Content-Encoding 'br'"),
        ("messageId as an array", 400, "batch[0]: messageId must be a string, not an array"),
        ("userId as an object", 400, "batch[0]: userId must be a string or a number, not an object"),
        ("anonymousId as an array", 400, "batch[0]: anonymousId must be a string, not an array"),
        ("anonymousId as a boolean", 400, "batch[0]: anonymousId must be a string, not a boolean"),
        ("event as an object", 400, "batch[1]: event must be a string, not an object"),
        ("a page name as an array", 400, "the call: name must be a string, not an array"),
        ("type as an array", 400, "batch[0]: type must be a string, not an array"),
        ("2,501 calls", 400, "at most 2500 calls"),
        ("a body over the limit, with a wrong write key", 401, "invalid write key"),
    ],
)
def test_a_hostile_website_call_gets_the_4xx_that_says_why_and_lands_nothing(intake, tmp_path, case, status, reason):
    base_url, journal = intake
    good = web_call(1)

    def raw(
        body: bytes,
        path: str = "/v1/batch",
        write_key: str | None = WRITE_KEY,
        content_type: str | None = "application/json",
        **headers,
    ) -> httpx.Response:
        headers = {**({"Content-Type": content_type} if content_type else {}), **headers}
        return httpx.post(
            f"{base_url}{path}", content=body, headers=headers, auth=(write_key, "") if write_key else None
        )

    def batch(*calls: dict) -> bytes:
        return json.dumps({"batch": list(calls)}).encode()

    response = {
        "nested 1000 deep": lambda: raw(b'{"batch": ' + DEEP + b"}"),
        "nested 1000 deep, with a wrong write key": lambda: raw(DEEP, write_key="guess"),
        "nested 1000 deep, with the write key only in it": lambda: raw(
            b'{"writeKey": "%s", "batch": %s}' % (WRITE_KEY.encode(), DEEP), write_key=None
        ),
        "a lone surrogate": lambda: raw(batch(web_call(1, userId="\ud800"))),
        "a lone surrogate in a key": lambda: raw(batch(web_call(1, properties={"\udc00": 1}))),
        "NaN": lambda: raw(batch(web_call(1, properties={"score": float("nan")}))),
        "-Infinity": lambda: raw(batch(web_call(1, properties={"score": float("-inf")}))),
        "a number beyond a double": lambda: raw(
            b'{"batch": [%s]}'
            % json.dumps(good).replace('"context"', '"properties": {"score": -1e400}, "context"').encode()
        ),
        "no Content-Type": lambda: raw(batch(good), content_type=None),
        "a form": lambda: raw(b"batch=1", content_type="application/x-www-form-urlencoded"),
        "charset=utf-16": lambda: raw(
            json.dumps({"batch": [good]}).encode("utf-16"), content_type="application/json; charset=utf-16"
        ),
        "a brotli body": lambda: raw(batch(good), **{"Content-Encoding": "br"}),
        "messageId as an array": lambda: raw(batch(web_call(1, messageId=["m-1"]))),
        "userId as an object": lambda: raw(batch(web_call(1, userId={"id": "u"}))),
        "anonymousId as an array": lambda: raw(batch(web_call(1, anonymousId=["a"]))),
        "anonymousId as a boolean": lambda: raw(batch(web_call(1, anonymousId=True))),
        "event as an object": lambda: raw(batch(good, web_call(2, event={"name": "Demo Requested"}))),
        "a page name as an array": lambda: raw(
            json.dumps({"messageId": "m-p", "anonymousId": "a", "name": ["Pricing"]}).encode(), path="/v1/page"
        ),
        "type as an array": lambda: raw(batch(web_call(1, type=["track"]))),
        "2,501 calls": lambda: raw(batch(*(web_call(n, context=None) for n in range(2501)))),
        "a body over the limit, with a wrong write key": lambda: raw(b" " * (MAX_BATCH_BYTES + 1), write_key="guess"),
    }[case]()
    assert (response.status_code, response.json()["message"]) == (status, Containing(reason))
    assert nothing_kept(base_url, journal, tmp_path / "web")


def test_what_segments_libraries_send_is_accepted(intake, tmp_path):
    """analytics.js posts ``text/plain`` (no CORS preflight) with the write key in the body; server
    libraries post ``application/json``, some with a charset, some with a numeric userId."""
    base_url, _ = intake
    browser = httpx.post(
        f"{base_url}/v1/batch",
        headers={"Content-Type": "text/plain"},
        content=json.dumps({"batch": [web_call(1)], "writeKey": WRITE_KEY}).encode(),
    )
    server = httpx.post(
        f"{base_url}/v1/track",
        auth=(WRITE_KEY, ""),
        headers={"Content-Type": "application/json; charset=UTF-8"},
        content=json.dumps(web_call(2, userId=42, anonymousId=None)).encode(),
    )
    assert (browser.status_code, server.status_code) == (200, 200)
    assert [event["messageId"] for event in landed(tmp_path / "web")] == ["m-1", "m-2"]


def test_the_service_answers_while_a_body_stalls(intake):
    base_url, journal = intake
    host, port = base_url.removeprefix("http://").split(":")
    credentials = base64.b64encode(f"{WRITE_KEY}:".encode())
    with socket.create_connection((host, int(port))) as stalled:
        stalled.sendall(
            b"POST /v1/batch HTTP/1.1\r\nHost: intake\r\nContent-Type: application/json\r\n"
            b"Authorization: Basic " + credentials + b'\r\nContent-Length: 1000\r\n\r\n{"batch": ['
        )
        started = time.monotonic()
        assert httpx.get(f"{base_url}/health", timeout=5).json() == {"status": "ok", "events": {}}
        assert time.monotonic() - started < 2
    assert journal.counts() == {}


@pytest.mark.parametrize("dies", ["before the append", "after the append"])
def test_a_batch_interrupted_by_a_crash_is_in_the_file_exactly_once_after_a_restart(tmp_path, monkeypatch, dies):
    folder, index = tmp_path / "web", tmp_path / "web-messages.sqlite"
    received_at = datetime(2026, 12, 4, 10, 30, tzinfo=UTC)
    first = WebEventLanding(folder, index)
    assert first.land([web_call(1), web_call(2)], received_at) == 2
    write_at = landing_module._write_at

    def crash(path, offset, lines):
        if dies == "after the append":
            write_at(path, offset, lines)
        raise SystemExit("killed")

    monkeypatch.setattr(landing_module, "_write_at", crash)
    with pytest.raises(SystemExit):
        first.land([web_call(3), web_call(4)], received_at)
    first.close()
    monkeypatch.setattr(landing_module, "_write_at", write_at)

    restarted = WebEventLanding(folder, index)
    assert restarted.land([web_call(3), web_call(5)], received_at) == 1
    assert [event["messageId"] for event in landed(folder)] == ["m-1", "m-2", "m-3", "m-4", "m-5"]
    restarted.close()


def test_acknowledged_events_survive_a_kill_9_of_the_intake(tmp_path):
    connection_file = tmp_path / "connection.json"
    connection_file.write_text(
        json.dumps({"crm": {"webhook_client_secret": CRM_SECRET}, "web": {"write_key": WRITE_KEY}})
    )
    port = free_port()
    env = {**os.environ, "HANDOFF_HOME": str(tmp_path / "home")}
    command = [
        sys.executable,
        "-m",
        "pipeline.cli",
        "intake",
        "serve",
        "--port",
        str(port),
        "--connection-file",
        str(connection_file),
    ]
    base_url = f"http://127.0.0.1:{port}"
    url = f"{base_url}/webhooks/crm"

    def serve() -> subprocess.Popen:
        process = subprocess.Popen(
            command, cwd=PROJECT_DIR, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
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
    acknowledged = web_acknowledged = 0
    for batch in range(20):
        events = crm_events(*(contact_created(n, "CRM_UI") for n in range(5)), first_id=batch * 5)
        acknowledged += post_crm(url, events).status_code == 200
        web_batch = [web_call(batch * 10 + n) for n in range(10)]
        web_acknowledged += post_web_batch(base_url, web_batch).status_code == 200
    intake.send_signal(signal.SIGKILL)
    intake.wait()

    intake = serve()
    try:
        assert httpx.get(f"{base_url}/health").json()["events"] == {
            "crm": acknowledged * 5,
            "web": web_acknowledged * 10,
        }
        assert (acknowledged, web_acknowledged) == (20, 20)
        assert post_web_batch(base_url, web_batch).json()["new"] == 0  # redelivered after the restart
        assert len(landed(tmp_path / "home" / "landing" / "web")) == 200
    finally:
        intake.terminate()
        intake.wait()


def with_a_crm_connection(monkeypatch, tmp_path) -> DataHome:
    """A data home whose CRM is configured (the sensors start no run without one); nothing is called."""
    home = DataHome(tmp_path / "home")
    monkeypatch.setenv("HANDOFF_HOME", str(home.root))
    monkeypatch.setenv("HANDOFF_CRM_BASE_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("HANDOFF_CRM_ACCESS_TOKEN", "token")
    return home


def test_new_webhooks_start_one_run_of_the_systems_they_came_from_and_no_more(tmp_path, monkeypatch):
    home = with_a_crm_connection(monkeypatch, tmp_path)
    instance = dg.DagsterInstance.ephemeral()
    assert isinstance(webhooks(dg.build_sensor_context(instance=instance)), dg.SkipReason)  # no journal yet

    journal = IntakeJournal(home.intake_journal)
    journal.append("crm", [("1", "{}"), ("2", "{}")])
    journal.append("marketing", [("w", "{}")])
    context = dg.build_sensor_context(instance=instance)
    request = webhooks(context)
    assert request.job_name == "crm_and_marketing_changes" and request.run_key == f"webhooks-{context.cursor}"
    assert (request.tags["handoff/crm_events"], request.tags["handoff/marketing_events"]) == ("2", "1")

    assert isinstance(webhooks(dg.build_sensor_context(instance=instance, cursor=context.cursor)), dg.SkipReason)
    journal.append("crm", [("3", "{}")])
    later = webhooks(dg.build_sensor_context(instance=instance, cursor=context.cursor))
    assert later.job_name == "crm_changes" and later.tags["handoff/crm_events"] == "1"
    assert "handoff/marketing_events" not in later.tags and later.run_key != request.run_key
    journal.close()


def test_a_webhook_burst_adds_no_run_behind_one_that_has_not_started_and_is_asked_for_once_it_has(
    tmp_path, monkeypatch
):
    home = with_a_crm_connection(monkeypatch, tmp_path)
    instance = dg.DagsterInstance.ephemeral()
    journal = IntakeJournal(home.intake_journal)
    journal.append("crm", [("1", "{}")])
    waiting = dg.DagsterRun(
        job_name="crm_changes",
        run_id=str(uuid.uuid4()),
        status=dg.DagsterRunStatus.NOT_STARTED,  # queued runs need a code location's origin
        tags={"handoff/trigger": "webhooks"},
    )
    instance.add_run(waiting)
    skipped = webhooks(dg.build_sensor_context(instance=instance))
    assert isinstance(skipped, dg.SkipReason) and waiting.run_id in skipped.skip_message
    instance.handle_run_event(
        waiting.run_id, dg.DagsterEvent(dg.DagsterEventType.RUN_START.value, job_name="crm_changes")
    )
    started = webhooks(dg.build_sensor_context(instance=instance))
    assert isinstance(started, dg.RunRequest) and started.tags["handoff/crm_events"] == "1"
    journal.close()


def test_each_systems_changes_job_loads_it_and_rebuilds_what_the_systems_and_the_alerts_read():
    from pipeline.definitions import defs

    loads = {
        job.name: {
            key.path[0]
            for key in defs.resolve_job_def(job.name).asset_layer.selected_asset_keys
            if key.path[0].startswith("raw_")
        }
        for job in WEBHOOK_JOBS.values()
    }
    assert loads == {
        "crm_changes": {"raw_crm"},
        "marketing_changes": {"raw_marketing"},
        "crm_and_marketing_changes": {"raw_crm", "raw_marketing"},
    }
    analytics = {dg.AssetKey(["marts", "mart_campaign_revenue"]), dg.AssetKey(["serving", "marts"])}
    for job in WEBHOOK_JOBS.values():
        selected = defs.resolve_job_def(job.name).asset_layer.selected_asset_keys
        assert {dg.AssetKey(["marts", "fct_handoffs"]), dg.AssetKey(["writeback", "crm_contacts"])} <= selected
        assert {dg.AssetKey(["alerting", "sla_notices"]), dg.AssetKey(["alerts", "alerts_sla_notices"])} <= selected
        assert not analytics & selected, "the analytics marts follow in runs of their own"


def test_website_event_files_that_appear_or_grow_start_a_run(tmp_path, monkeypatch):
    home = with_a_crm_connection(monkeypatch, tmp_path)
    monkeypatch.delenv("HANDOFF_WEB_EVENT_DIRS", raising=False)
    hour = home.web_landing / "2026-12-04" / "10.ndjson"
    hour.parent.mkdir(parents=True)
    hour.write_text('{"messageId": "m1"}\n')
    instance = dg.DagsterInstance.ephemeral()
    context = dg.build_sensor_context(instance=instance)
    first = web_event_files(context)
    [sensor] = [sensor for sensor in build_sensor_defs(load_settings()).sensors if sensor.name == "web_event_files"]
    assert isinstance(first, dg.RunRequest) and sensor.job_name == "web_changes"
    assert isinstance(web_event_files(dg.build_sensor_context(instance=instance, cursor=context.cursor)), dg.SkipReason)
    with open(hour, "a") as late:
        late.write('{"messageId": "m2"}\n')
    grown = web_event_files(dg.build_sensor_context(instance=instance, cursor=context.cursor))
    assert isinstance(grown, dg.RunRequest) and grown.run_key != first.run_key


def test_a_new_sensor_starts_where_the_last_load_of_the_landing_files_stopped(tmp_path, monkeypatch):
    home = with_a_crm_connection(monkeypatch, tmp_path)
    monkeypatch.delenv("HANDOFF_WEB_EVENT_DIRS", raising=False)
    hour = home.web_landing / "2026-12-04" / "10.ndjson"
    hour.parent.mkdir(parents=True)
    hour.write_text(
        json.dumps({"type": "page", "messageId": "m1", "anonymousId": "a", "timestamp": "2026-12-04T10:00:00Z"}) + "\n"
    )
    # A demo or a sync from the terminal loaded the file before the UI's sensor ever looked.
    system_pipeline("web", home).run(web_source(folders=[str(folder) for folder in home.web_event_folders()]))
    instance = dg.DagsterInstance.ephemeral()
    context = dg.build_sensor_context(instance=instance)
    assert isinstance(web_event_files(context), dg.SkipReason)
    with open(hour, "a") as late:
        late.write(
            json.dumps({"type": "page", "messageId": "m2", "anonymousId": "a", "timestamp": "2026-12-04T10:01:00Z"})
            + "\n"
        )
    assert isinstance(web_event_files(dg.build_sensor_context(instance=instance, cursor=context.cursor)), dg.RunRequest)


def test_without_a_crm_connection_sensors_and_schedules_skip_saying_so(tmp_path, monkeypatch):
    home = DataHome(tmp_path / "home")
    monkeypatch.setenv("HANDOFF_HOME", str(home.root))
    journal = IntakeJournal(home.intake_journal)
    journal.append("crm", [("1", "{}")])
    journal.close()
    hour = home.web_landing / "2026-12-04" / "10.ndjson"
    hour.parent.mkdir(parents=True)
    hour.write_text('{"messageId": "m1"}\n')
    instance = dg.DagsterInstance.ephemeral()
    for sensor in (webhooks, web_event_files):
        skipped = sensor(dg.build_sensor_context(instance=instance))
        assert isinstance(skipped, dg.SkipReason) and "no CRM connection" in skipped.skip_message, sensor
    for schedule in build_automation_defs(load_settings()).schedules:
        with dg.build_schedule_context(instance=instance) as context:
            ticked = schedule.evaluate_tick(context)
        assert ticked.run_requests == [] and "HANDOFF_CRM_BASE_URL" in ticked.skip_message, schedule.name
