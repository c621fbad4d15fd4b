"""The intake service: receives the systems' webhooks, checks them, and journals them durably.

- ``POST /webhooks/crm``: HubSpot's webhook (a JSON array of events), signed with
  ``X-HubSpot-Signature-v3`` over method, URL, body and ``X-HubSpot-Request-Timestamp``; a request
  older than five minutes is refused, as HubSpot's documentation asks of receivers.
- ``POST /webhooks/marketing``: a Marketo webhook (a JSON object about one lead) carrying the shared
  secret in ``X-Marketo-Webhook-Secret``.
- ``POST /v1/batch``, ``POST /v1/{track,identify,page,...}``: website events in Segment's HTTP
  Tracking API shape, the write key as the HTTP Basic username (see ``segment.py``); they land in
  the web landing zone the web ingest source reads, once per ``messageId`` (see ``landing.py``).
- ``GET /health``: up, and how many events each source has kept.

Bad input gets a 4xx whose ``message`` says what is wrong, and nothing of it is kept. An accepted
request is answered 200 only after its events are on disk (see ``journal.py`` and ``landing.py``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from pipeline.intake.body import (
    INTEGER,
    INTEGERS,
    OBJECT,
    STRING,
    Kind,
    check_fields,
    check_json_content_type,
    parsed_json,
    plain_int,
    read_body_within,
)
from pipeline.intake.errors import Refused
from pipeline.intake.journal import IntakeJournal
from pipeline.intake.landing import WebEventLanding
from pipeline.intake.segment import as_received, tracking_calls
from pipeline.settings import load_settings

MAX_BODY_BYTES = 1024 * 1024  # HubSpot batches at most 100 events per request, far below this
SIGNATURE_MAX_AGE_MS = 5 * 60 * 1000
MARKETO_SECRET_HEADER = "X-Marketo-Webhook-Secret"
# HubSpot's v3 signature is over the URI with these characters decoded (its documented table).
_SIGNED_URI_DECODING = {
    "%3A": ":",
    "%2F": "/",
    "%3F": "?",
    "%40": "@",
    "%21": "!",
    "%24": "$",
    "%27": "'",
    "%28": "(",
    "%29": ")",
    "%2A": "*",
    "%2C": ",",
    "%3B": ";",
}
_ENCODED_IN_URI = re.compile("|".join(_SIGNED_URI_DECODING), re.IGNORECASE)
TIMESTAMP_MAX_DIGITS = 16  # milliseconds since 1970 have 13 digits until the year 2286
# What each source's events must carry, and the type of what they may carry (ids, names) when they do.
CRM_EVENT_FIELDS = {"eventId": INTEGER, "subscriptionType": STRING, "objectId": INTEGER, "occurredAt": INTEGER}
CRM_EVENT_OPTIONAL_FIELDS = {
    "subscriptionId": INTEGER,
    "portalId": INTEGER,
    "appId": INTEGER,
    "attemptNumber": INTEGER,
    "changeSource": STRING,
    "changeFlag": STRING,
    "propertyName": STRING,
    "propertyValue": STRING,
    "objectTypeId": STRING,
    "primaryObjectId": INTEGER,
    "newObjectId": INTEGER,
    "mergedObjectIds": INTEGERS,
    "numberOfPropertiesMoved": INTEGER,
}
MARKETING_EVENT_FIELDS = {"webhookId": STRING, "event": STRING, "leadId": INTEGER}
MARKETING_EVENT_OPTIONAL_FIELDS = {"email": STRING, "changedFields": OBJECT, "occurredAt": STRING}


@dataclass(frozen=True)
class WebhookSecrets:
    """The secrets the systems sign their webhooks with, and the website's write key; kept out of
    ``repr`` so they are never logged."""

    crm_client_secret: str | None = field(default=None, repr=False)
    marketing_secret: str | None = field(default=None, repr=False)
    web_write_key: str | None = field(default=None, repr=False)

    @classmethod
    def load(cls, connection_file: Path) -> WebhookSecrets:
        """From the connection file (``crm.webhook_client_secret``, ``marketing.webhook_secret``,
        ``web.write_key``), with ``HANDOFF_CRM_WEBHOOK_CLIENT_SECRET``,
        ``HANDOFF_MARKETING_WEBHOOK_SECRET`` and ``HANDOFF_WEB_WRITE_KEY`` on top."""
        settings = load_settings(connection_file=connection_file)
        return cls(
            *(
                secret.get_secret_value() if secret else None
                for secret in (
                    settings.crm_webhook_client_secret,
                    settings.marketing_webhook_secret,
                    settings.web_write_key,
                )
            )
        )


def hubspot_signature_v3(client_secret: str, method: str, uri: str, body: bytes, timestamp: str) -> str:
    """HubSpot's v3 signature, as its documentation defines it. The sandbox's stand-in signs with its
    own implementation on purpose: the tests check this receiver against that sender."""
    uri = _ENCODED_IN_URI.sub(lambda match: _SIGNED_URI_DECODING[match.group(0).upper()], uri)
    message = f"{method}{uri}".encode() + body + timestamp.encode()
    return base64.b64encode(hmac.new(client_secret.encode(), message, hashlib.sha256).digest()).decode()


def check_hubspot_timestamp(timestamp: str | None, signature: str | None, now_ms: int) -> str:
    """The request's timestamp, once the signature headers are there and it is recent: all of it
    known before the body is read."""
    if not signature or not timestamp:
        raise Refused(401, "missing X-HubSpot-Signature-v3 or X-HubSpot-Request-Timestamp")
    sent_ms = plain_int(timestamp, max_digits=TIMESTAMP_MAX_DIGITS)
    if sent_ms is None:
        raise Refused(401, "X-HubSpot-Request-Timestamp is not a time in milliseconds (ASCII digits)")
    if abs(now_ms - sent_ms) > SIGNATURE_MAX_AGE_MS:
        raise Refused(401, "X-HubSpot-Request-Timestamp is more than five minutes from now: refused as a replay")
    return timestamp


def check_hubspot_signature(
    client_secret: str, method: str, uri: str, body: bytes, timestamp: str, signature: str
) -> None:
    expected = hubspot_signature_v3(client_secret, method, uri, body, timestamp)
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        raise Refused(401, "X-HubSpot-Signature-v3 does not match the request")


def signed_uri(request: Request, public_url: str | None) -> str:
    """The URL HubSpot called, as it signed it."""
    if public_url:
        return f"{public_url.rstrip('/')}{request.url.path}"
    try:
        return str(request.url)
    except UnicodeDecodeError as error:  # a query string that is not UTF-8
        raise Refused(400, "the request's URL is not UTF-8") from error


def checked_event(event: object, where: str, required: dict[str, Kind], optional: dict[str, Kind]) -> dict:
    if not isinstance(event, dict):
        raise Refused(400, f"{where} is not a JSON object")
    check_fields(event, where, required, optional)
    return event


async def read_body(request: Request) -> bytes:
    return await read_body_within(
        request, MAX_BODY_BYTES, Refused(413, f"the body is larger than {MAX_BODY_BYTES // 1024} KB")
    )


def _compact(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def create_intake_app(
    journal: IntakeJournal,
    secrets: WebhookSecrets,
    public_url: str | None = None,
    web_landing: WebEventLanding | None = None,
) -> FastAPI:
    """``public_url``: the base URL the systems post to, when a proxy in front changes what this
    service sees; HubSpot signs the URL it called. Without ``web_landing`` or a write key, website
    events are not received.

    Every endpoint checks, in this order, what costs least and needs least trust first: its
    credentials (as early as the sender's protocol allows), then the declared content type, the
    body's size, its nesting depth, the JSON itself, and the types of the fields that identify its
    events (see ``body.py``)."""
    app = FastAPI(title="Handoff intake", docs_url=None, redoc_url=None)

    @app.exception_handler(Refused)
    def refused(_: Request, error: Refused) -> JSONResponse:
        return JSONResponse({"status": "error", "message": error.message}, status_code=error.status_code)

    def stored(source: str, events: list[tuple[str, str]]) -> JSONResponse:
        new = journal.append(source, events)
        return JSONResponse({"status": "ok", "accepted": len(events), "new": new})

    @app.post("/webhooks/crm")
    async def crm_webhook(request: Request) -> JSONResponse:
        if not secrets.crm_client_secret:
            raise Refused(404, "no CRM webhook secret is configured, so CRM webhooks are not received")
        signature = request.headers.get("x-hubspot-signature-v3")
        timestamp = check_hubspot_timestamp(
            request.headers.get("x-hubspot-request-timestamp"), signature, int(time.time() * 1000)
        )
        # The signature covers the body: it is read (within the size limit), not parsed, before it is checked.
        body = await read_body(request)
        check_hubspot_signature(
            secrets.crm_client_secret, request.method, signed_uri(request, public_url), body, timestamp, signature or ""
        )
        check_json_content_type(request)
        events = parsed_json(body)
        if not isinstance(events, list) or not events:
            raise Refused(400, "the body must be a non-empty JSON array of events")
        checked = [
            checked_event(event, f"event {index}", CRM_EVENT_FIELDS, CRM_EVENT_OPTIONAL_FIELDS)
            for index, event in enumerate(events)
        ]
        # A redelivery carries a higher attemptNumber; the event is the same.
        return stored("crm", [(str(event["eventId"]), _compact({**event, "attemptNumber": 0})) for event in checked])

    @app.post("/webhooks/marketing")
    async def marketing_webhook(request: Request) -> JSONResponse:
        if not secrets.marketing_secret:
            raise Refused(404, "no marketing webhook secret is configured, so marketing webhooks are not received")
        presented = request.headers.get(MARKETO_SECRET_HEADER, "")
        if not hmac.compare_digest(presented.encode(), secrets.marketing_secret.encode()):
            raise Refused(401, f"missing or wrong {MARKETO_SECRET_HEADER}")
        check_json_content_type(request)
        event = checked_event(
            parsed_json(await read_body(request)), "the body", MARKETING_EVENT_FIELDS, MARKETING_EVENT_OPTIONAL_FIELDS
        )
        return stored("marketing", [(event["webhookId"], _compact(event))])

    @app.post("/v1/{endpoint}")
    async def web_events(endpoint: str, request: Request) -> JSONResponse:
        if web_landing is None or not secrets.web_write_key:
            raise Refused(404, "no website write key is configured, so website events are not received")
        calls = await tracking_calls(request, endpoint, secrets.web_write_key)
        received_at = datetime.now(UTC)
        new = await run_in_threadpool(web_landing.land, as_received(calls, received_at), received_at)
        return JSONResponse({"success": True, "accepted": len(calls), "new": new})

    @app.get("/health")
    def health() -> dict:
        web_events = web_landing.count() if web_landing else 0
        return {"status": "ok", "events": journal.counts() | ({"web": web_events} if web_events else {})}

    return app
