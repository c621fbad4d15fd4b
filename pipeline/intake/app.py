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
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from pipeline.intake.errors import Refused, read_body_within
from pipeline.intake.journal import IntakeJournal
from pipeline.intake.landing import WebEventLanding
from pipeline.intake.segment import (
    CALL_TYPES,
    MAX_BATCH_BYTES,
    MAX_CALL_BYTES,
    as_received,
    batch_calls,
    checked_call,
    read_tracking_payload,
)

MAX_BODY_BYTES = 1024 * 1024  # HubSpot batches at most 100 events per request, far below this
SIGNATURE_MAX_AGE_MS = 5 * 60 * 1000
MARKETO_SECRET_HEADER = "X-Marketo-Webhook-Secret"
# HubSpot's v3 signature is over the URI with these characters decoded (its documented table).
_SIGNED_URI_DECODING = {"%3A": ":", "%2F": "/", "%3F": "?", "%40": "@", "%21": "!", "%24": "$", "%27": "'",
                        "%28": "(", "%29": ")", "%2A": "*", "%2C": ",", "%3B": ";"}
_ENCODED_IN_URI = re.compile("|".join(_SIGNED_URI_DECODING), re.IGNORECASE)
# What each source's events must carry: a name and a type per required field.
CRM_EVENT_FIELDS = {"eventId": int, "subscriptionType": str, "objectId": int, "occurredAt": int}
MARKETING_EVENT_FIELDS = {"webhookId": str, "event": str, "leadId": int}


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
        described = json.loads(connection_file.read_text()) if connection_file.exists() else {}
        return cls(
            crm_client_secret=os.environ.get("HANDOFF_CRM_WEBHOOK_CLIENT_SECRET",
                                             described.get("crm", {}).get("webhook_client_secret")),
            marketing_secret=os.environ.get("HANDOFF_MARKETING_WEBHOOK_SECRET",
                                            described.get("marketing", {}).get("webhook_secret")),
            web_write_key=os.environ.get("HANDOFF_WEB_WRITE_KEY", described.get("web", {}).get("write_key")))


def hubspot_signature_v3(client_secret: str, method: str, uri: str, body: bytes, timestamp: str) -> str:
    """HubSpot's v3 signature, as its documentation defines it. The sandbox's stand-in signs with its
    own implementation on purpose: the tests check this receiver against that sender."""
    uri = _ENCODED_IN_URI.sub(lambda match: _SIGNED_URI_DECODING[match.group(0).upper()], uri)
    message = f"{method}{uri}".encode() + body + timestamp.encode()
    return base64.b64encode(hmac.new(client_secret.encode(), message, hashlib.sha256).digest()).decode()


def check_hubspot_signature(client_secret: str, method: str, uri: str, body: bytes, timestamp: str | None,
                            signature: str | None, now_ms: int) -> None:
    if not signature or not timestamp:
        raise Refused(401, "missing X-HubSpot-Signature-v3 or X-HubSpot-Request-Timestamp")
    if not timestamp.isdigit():
        raise Refused(401, "X-HubSpot-Request-Timestamp is not a time in milliseconds")
    if abs(now_ms - int(timestamp)) > SIGNATURE_MAX_AGE_MS:
        raise Refused(401, "X-HubSpot-Request-Timestamp is more than five minutes from now: refused as a replay")
    expected = hubspot_signature_v3(client_secret, method, uri, body, timestamp)
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        raise Refused(401, "X-HubSpot-Signature-v3 does not match the request")


def checked_event(event: object, fields: dict[str, type], where: str) -> dict:
    if not isinstance(event, dict):
        raise Refused(400, f"{where} is not a JSON object")
    for name, kind in fields.items():
        value = event.get(name)
        # JSON has no integer type of its own, and booleans are ints to Python.
        if not isinstance(value, kind) or isinstance(value, bool) or value == "":
            raise Refused(400, f"{where} needs {name} as {'an integer' if kind is int else 'a string'}")
    return event


def parsed_json(body: bytes) -> object:
    try:
        return json.loads(body)
    except ValueError as error:
        raise Refused(400, f"the body is not valid JSON: {error}") from error


async def read_body(request: Request) -> bytes:
    return await read_body_within(request, MAX_BODY_BYTES,
                                  Refused(413, f"the body is larger than {MAX_BODY_BYTES // 1024} KB"))


def _compact(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def create_intake_app(journal: IntakeJournal, secrets: WebhookSecrets, public_url: str | None = None,
                      web_landing: WebEventLanding | None = None) -> FastAPI:
    """``public_url``: the base URL the systems post to, when a proxy in front changes what this
    service sees; HubSpot signs the URL it called. Without ``web_landing`` or a write key, website
    events are not received."""
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
        body = await read_body(request)
        uri = f"{public_url.rstrip('/')}{request.url.path}" if public_url else str(request.url)
        check_hubspot_signature(secrets.crm_client_secret, request.method, uri, body,
                                request.headers.get("x-hubspot-request-timestamp"),
                                request.headers.get("x-hubspot-signature-v3"), int(time.time() * 1000))
        events = parsed_json(body)
        if not isinstance(events, list) or not events:
            raise Refused(400, "the body must be a non-empty JSON array of events")
        checked = [checked_event(event, CRM_EVENT_FIELDS, f"event {index}") for index, event in enumerate(events)]
        # A redelivery carries a higher attemptNumber; the event is the same.
        return stored("crm", [(str(event["eventId"]), _compact({**event, "attemptNumber": 0})) for event in checked])

    @app.post("/webhooks/marketing")
    async def marketing_webhook(request: Request) -> JSONResponse:
        if not secrets.marketing_secret:
            raise Refused(404, "no marketing webhook secret is configured, so marketing webhooks are not received")
        presented = request.headers.get(MARKETO_SECRET_HEADER, "")
        if not hmac.compare_digest(presented.encode(), secrets.marketing_secret.encode()):
            raise Refused(401, f"missing or wrong {MARKETO_SECRET_HEADER}")
        event = checked_event(parsed_json(await read_body(request)), MARKETING_EVENT_FIELDS, "the body")
        return stored("marketing", [(event["webhookId"], _compact(event))])

    async def land_web_events(request: Request, limit: int, calls_of: Callable[[dict], list[dict]]) -> JSONResponse:
        if web_landing is None or not secrets.web_write_key:
            raise Refused(404, "no website write key is configured, so website events are not received")
        calls = calls_of(await read_tracking_payload(request, limit, secrets.web_write_key))
        received_at = datetime.now(timezone.utc)
        new = await run_in_threadpool(web_landing.land, as_received(calls, received_at), received_at)
        return JSONResponse({"success": True, "accepted": len(calls), "new": new})

    @app.post("/v1/batch")
    async def web_batch(request: Request) -> JSONResponse:
        return await land_web_events(request, MAX_BATCH_BYTES, batch_calls)

    @app.post("/v1/{call_type}")
    async def web_call(call_type: str, request: Request) -> JSONResponse:
        if call_type not in CALL_TYPES:
            raise Refused(404, f"no such endpoint /v1/{call_type}")
        return await land_web_events(request, MAX_CALL_BYTES,
                                     lambda payload: [checked_call(payload, "the call", call_type)])

    @app.get("/health")
    def health() -> dict:
        web_events = web_landing.count() if web_landing else 0
        return {"status": "ok", "events": journal.counts() | ({"web": web_events} if web_events else {})}

    return app
