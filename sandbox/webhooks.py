"""Webhooks the stand-ins send when the company changes, as the real vendors send them.

- **CRM** (HubSpot): a JSON array of events (``eventId``, ``subscriptionId``, ``portalId``, ``appId``,
  ``occurredAt`` in ms, ``subscriptionType``, ``attemptNumber``, ``objectId``, ``changeSource``, and per
  type ``propertyName``/``propertyValue``, ``primaryObjectId``/``mergedObjectIds``/``newObjectId``/
  ``numberOfPropertiesMoved``), signed with ``X-HubSpot-Signature-v3`` + ``X-HubSpot-Request-Timestamp``
  (and the legacy v1 header). Engagements use HubSpot's generic ``object.creation`` with ``objectTypeId``.
- **Marketing** (Marketo): Marketo webhooks are HTTP calls the customer defines; the sandbox's is a JSON
  body (``webhookId``, ``event``, ``leadId``, ``email``, ``changedFields``, ``occurredAt``) with the shared
  secret in ``X-Marketo-Webhook-Secret``.

Deliveries run on one worker thread fed by a queue, so no API or live-mode thread waits on a receiver.
A failed delivery is retried with exponential back-off, up to ``max_attempts`` (HubSpot: 10); as HubSpot
does, a 400/401/403/404/405 answer is final, a 429 is retried after its ``Retry-After``.
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import hmac
import itertools
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

log = logging.getLogger(__name__)

PORTAL_ID = 62515
APP_ID = 54321
MARKETO_SECRET_HEADER = "X-Marketo-Webhook-Secret"
SIGNATURE_MAX_AGE_MS = 5 * 60 * 1000  # HubSpot: reject a request whose timestamp is older than 5 minutes
FINAL_STATUSES = {400, 401, 403, 404, 405}  # HubSpot does not retry these

# What the sandbox's HubSpot app subscribes to, as set in an app's webhook settings; a property change
# subscription names its property. Changes to anything else send nothing.
SUBSCRIPTIONS = {
    ("contact.creation", None): 1001,
    ("contact.deletion", None): 1002,
    ("contact.merge", None): 1003,
    ("contact.propertyChange", "lifecyclestage"): 1004,
    ("contact.propertyChange", "hubspot_owner_id"): 1005,
    ("object.creation", None): 1006,
}
# HubSpot's object type ids, which generic webhooks carry.
OBJECT_TYPE_IDS = {"contacts": "0-1", "tasks": "0-27", "meetings": "0-47", "calls": "0-48", "emails": "0-49"}

# HubSpot signs the URI with these characters decoded (its documented table); the ``?`` that starts the
# query string is never encoded in the first place.
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


def hubspot_signature_v3(client_secret: str, method: str, uri: str, body: bytes | str, timestamp: str | int) -> str:
    """HubSpot's v3 signature: base64 of HMAC-SHA256, keyed with the app's client secret, over
    method + URI + body + timestamp (UTF-8)."""
    uri = _ENCODED_IN_URI.sub(lambda match: _SIGNED_URI_DECODING[match.group(0).upper()], uri)
    body_bytes = body.encode() if isinstance(body, str) else body
    message = f"{method}{uri}".encode() + body_bytes + str(timestamp).encode()
    return base64.b64encode(hmac.new(client_secret.encode(), message, hashlib.sha256).digest()).decode()


def verify_hubspot_signature_v3(
    client_secret: str,
    method: str,
    uri: str,
    body: bytes | str,
    timestamp: str | None,
    signature: str | None,
    now_ms: int,
    max_age_ms: int = SIGNATURE_MAX_AGE_MS,
) -> bool:
    """Whether a request carries a valid ``X-HubSpot-Signature-v3`` for ``X-HubSpot-Request-Timestamp``
    ``timestamp`` (ms), as of ``now_ms``. ``uri`` is the full URL the request was sent to."""
    if not signature or not timestamp:
        return False
    try:
        age_ms = now_ms - int(timestamp)
    except ValueError:
        return False
    if abs(age_ms) > max_age_ms:
        return False
    expected = hubspot_signature_v3(client_secret, method, uri, body, timestamp)
    return hmac.compare_digest(expected.encode(), signature.encode())


def contact_created(contact_id: int, change_source: str) -> dict:
    return {
        "subscriptionType": "contact.creation",
        "objectId": contact_id,
        "changeFlag": "NEW",
        "changeSource": change_source,
    }


def property_changed(contact_id: int, name: str, value: str | None, change_source: str) -> dict:
    return {
        "subscriptionType": "contact.propertyChange",
        "objectId": contact_id,
        "propertyName": name,
        "propertyValue": value,
        "changeSource": change_source,
    }


def contact_deleted(contact_id: int, change_source: str) -> dict:
    return {
        "subscriptionType": "contact.deletion",
        "objectId": contact_id,
        "changeFlag": "DELETED",
        "changeSource": change_source,
    }


def contacts_merged(primary_id: int, merged_ids: list[int], properties_moved: int, change_source: str) -> dict:
    return {
        "subscriptionType": "contact.merge",
        "objectId": primary_id,
        "changeFlag": "MERGED",
        "changeSource": change_source,
        "primaryObjectId": primary_id,
        "mergedObjectIds": merged_ids,
        "newObjectId": primary_id,
        "numberOfPropertiesMoved": properties_moved,
    }


def object_created(object_type: str, object_id: int, change_source: str) -> dict:
    return {
        "subscriptionType": "object.creation",
        "objectTypeId": OBJECT_TYPE_IDS[object_type],
        "objectId": object_id,
        "changeFlag": "CREATED",
        "changeSource": change_source,
    }


def _compact(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class WebhookSettings:
    crm_url: str | None = None
    marketing_url: str | None = None
    max_attempts: int = 10  # HubSpot's documented maximum
    first_retry_s: float = 1.0  # doubles after every failed attempt…
    max_retry_s: float = 300.0  # …up to this
    timeout_s: float = 5.0


@dataclass
class _Delivery:
    url: str
    render: Callable[[int], tuple[bytes, dict[str, str]]]  # attempt number -> body, headers
    attempt: int = 0


@dataclass(order=True)
class _Due:
    at: float
    order: int
    delivery: _Delivery = field(compare=False)


class WebhookSender:
    """Signs, queues and delivers the stand-ins' webhooks; ``start``/``stop`` run its worker thread."""

    def __init__(self, settings: WebhookSettings, crm_client_secret: str, marketing_secret: str):
        self.settings = settings
        self.crm_client_secret = crm_client_secret
        self.marketing_secret = marketing_secret
        self._due: list[_Due] = []
        self._changed = threading.Condition()
        self._order = itertools.count()
        # HubSpot's event ids grow over time; starting at the clock keeps them growing across restarts.
        self._event_ids = itertools.count(_now_ms())
        self._stopping = False
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"WebhookSender({self.settings})"

    def notify_crm(self, events: list[dict], occurred_at_ms: int) -> None:
        """Queue one HubSpot webhook request carrying the subscribed ones of these events."""
        url = self.settings.crm_url
        if not url:
            return
        subscribed = [
            (SUBSCRIPTIONS.get((event["subscriptionType"], event.get("propertyName"))), event) for event in events
        ]
        envelopes = [
            {
                "eventId": next(self._event_ids),
                "subscriptionId": subscription,
                "portalId": PORTAL_ID,
                "appId": APP_ID,
                "occurredAt": occurred_at_ms,
                "subscriptionType": event["subscriptionType"],
                "attemptNumber": 0,
                **event,
            }
            for subscription, event in subscribed
            if subscription
        ]
        if not envelopes:
            return

        def render(attempt: int) -> tuple[bytes, dict[str, str]]:
            body = _compact([{**envelope, "attemptNumber": attempt} for envelope in envelopes])
            timestamp = str(_now_ms())
            return body, {
                "Content-Type": "application/json",
                "X-HubSpot-Signature-v3": hubspot_signature_v3(self.crm_client_secret, "POST", url, body, timestamp),
                "X-HubSpot-Request-Timestamp": timestamp,
                # HubSpot still sends the legacy signature beside v3.
                "X-HubSpot-Signature-Version": "v1",
                "X-HubSpot-Signature": hashlib.sha256(self.crm_client_secret.encode() + body).hexdigest(),
            }

        self._schedule(_Delivery(url, render), delay_s=0)

    def notify_marketing(
        self, event: str, lead_id: int, email: str | None, changed_fields: dict, occurred_at: str
    ) -> None:
        """Queue one Marketo-style webhook about a lead."""
        url = self.settings.marketing_url
        if not url:
            return
        body = _compact(
            {
                "webhookId": str(uuid.uuid4()),
                "event": event,
                "leadId": lead_id,
                "email": email,
                "changedFields": changed_fields,
                "occurredAt": occurred_at,
            }
        )
        headers = {"Content-Type": "application/json", MARKETO_SECRET_HEADER: self.marketing_secret}
        self._schedule(_Delivery(url, lambda _attempt: (body, headers)), delay_s=0)

    def start(self) -> None:
        if self._thread or not (self.settings.crm_url or self.settings.marketing_url):
            return
        self._stopping = False
        self._thread = threading.Thread(target=self._deliver_until_stopped, name="webhooks", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if not self._thread:
            return
        with self._changed:
            self._stopping = True
            self._changed.notify_all()
        self._thread.join(timeout=self.settings.timeout_s + 5)
        self._thread = None
        if self._due:
            log.warning("stopped with %d webhook deliveries not yet made", len(self._due))

    def _schedule(self, delivery: _Delivery, delay_s: float) -> None:
        with self._changed:
            heapq.heappush(self._due, _Due(time.monotonic() + delay_s, next(self._order), delivery))
            self._changed.notify()

    def _next_due(self) -> _Delivery | None:
        with self._changed:
            while not self._stopping:
                wait_s = self._due[0].at - time.monotonic() if self._due else None
                if wait_s is not None and wait_s <= 0:
                    return heapq.heappop(self._due).delivery
                self._changed.wait(wait_s)
            return None

    def _deliver_until_stopped(self) -> None:
        with httpx.Client(timeout=self.settings.timeout_s) as client:
            while (delivery := self._next_due()) is not None:
                self._attempt(client, delivery)

    def _attempt(self, client: httpx.Client, delivery: _Delivery) -> None:
        body, headers = delivery.render(delivery.attempt)
        retry_after_s = None
        try:
            response = client.post(delivery.url, content=body, headers=headers)
        except httpx.HTTPError as error:
            failure = repr(error)
        else:
            if response.is_success:
                return
            failure = f"HTTP {response.status_code}"
            if response.status_code in FINAL_STATUSES:
                log.warning("webhook to %s refused (%s); not retried", delivery.url, failure)
                return
            retry_after = response.headers.get("retry-after", "")
            retry_after_s = int(retry_after) if retry_after.isascii() and retry_after.isdigit() else None
        delivery.attempt += 1
        if delivery.attempt >= self.settings.max_attempts:
            log.warning("webhook to %s failed %d times (last: %s); giving up", delivery.url, delivery.attempt, failure)
            return
        backoff_s = min(self.settings.first_retry_s * 2 ** (delivery.attempt - 1), self.settings.max_retry_s)
        self._schedule(delivery, retry_after_s if retry_after_s is not None else backoff_s)
