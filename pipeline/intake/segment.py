"""Segment's HTTP Tracking API: the one statement of its rules, for the intake service and for the
sandbox's stand-in of Segment's collector alike.

``POST /v1/track|identify|page|screen|group|alias`` take one call, ``POST /v1/batch`` takes
``{"batch": [...]}``. The write key is the HTTP Basic username (a ``writeKey`` in the body is
accepted too, as Segment does: its browser library sends it there). Segment's limits hold: 32 KB per
call, 500 KB and 2,500 calls per batch request. Every call needs a ``messageId`` (duplicates are
recognised by it), a ``userId`` or an ``anonymousId``, and a track call an ``event``; ids and names
have the types the spec gives them. Bodies are JSON (``application/json``, or ``text/plain`` as
Segment's browser library sends it to spare a CORS preflight) and may be gzipped.

Accepted calls are kept in hourly NDJSON files, ``<folder>/<YYYY-MM-DD>/<HH>.ndjson`` by the UTC hour
they were received in (:func:`hour_file`), the way a Segment storage destination groups them.
"""

from __future__ import annotations

import base64
import hmac
import json
import zlib
from datetime import UTC, datetime
from pathlib import Path

from fastapi import Request

from pipeline.intake.body import (
    OBJECT,
    STRING,
    STRING_OR_NUMBER,
    Kind,
    check_fields,
    check_json_content_type,
    json_type,
    parsed_json,
    read_body_within,
    shown,
)
from pipeline.intake.errors import Refused

MAX_CALL_BYTES = 32 * 1024
MAX_BATCH_BYTES = 500 * 1024
MAX_BATCH_CALLS = 2500
MAX_MESSAGE_ID_LENGTH = 100
CALL_TYPES = ("identify", "track", "page", "screen", "group", "alias")
MEDIA_TYPES = ("application/json", "text/plain")
# Fields a call of that type is useless without, per the Segment spec.
REQUIRED_FIELDS = {"track": ("event",), "group": ("groupId",), "alias": ("previousId",)}
# The type of each field that identifies a call or names what happened, and of the objects a call
# carries, when the call has them. Ids and names are strings per the spec; a server library may send a
# user, group or previous id as a number (the web source makes a numeric userId the string it stands for).
FIELD_KINDS: dict[str, Kind] = {
    "messageId": STRING,
    "anonymousId": STRING,
    "userId": STRING_OR_NUMBER,
    "groupId": STRING_OR_NUMBER,
    "previousId": STRING_OR_NUMBER,
    "event": STRING,
    "name": STRING,
    "category": STRING,
    "context": OBJECT,
    "integrations": OBJECT,
    "properties": OBJECT,
    "traits": OBJECT,
}


def hour_file(folder: Path, received_at: datetime) -> Path:
    """``<folder>/<YYYY-MM-DD>/<HH>.ndjson`` for the UTC hour of ``received_at``: an hour's file is
    complete once the hour is over, whatever timestamps clients put on late events."""
    moment = received_at.astimezone(UTC)
    return folder / moment.strftime("%Y-%m-%d") / f"{moment:%H}.ndjson"


def _compact(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _basic_username(authorization: str | None) -> str | None:
    """The HTTP Basic username, ``None`` without Basic credentials, ``""`` when they are garbled."""
    scheme, _, credentials = (authorization or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        return base64.b64decode(credentials, validate=True).decode().partition(":")[0]
    except ValueError:
        return ""


def _matches(presented: object, write_key: str) -> bool:
    return isinstance(presented, str) and hmac.compare_digest(presented.encode(), write_key.encode())


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, decompressed if gzipped, refused as soon as it passes ``limit``."""
    too_large = Refused(413, f"the body is larger than {limit // 1024} KB, Segment's limit for this endpoint")
    raw = await read_body_within(request, limit, too_large)
    if request.headers.get("content-encoding", "").strip().lower() != "gzip":
        return raw
    inflater = zlib.decompressobj(wbits=31)
    try:
        body = inflater.decompress(raw, limit + 1)
    except zlib.error as error:
        raise Refused(400, f"the body is not valid gzip: {error}") from error
    if len(body) > limit or inflater.unconsumed_tail:
        raise too_large
    return body


async def read_tracking_payload(request: Request, limit: int, write_key: str) -> dict:
    """The request's JSON object, once the write key it presents is the right one. A write key in the
    Basic credentials is checked before anything of the body is read."""
    presented = _basic_username(request.headers.get("authorization"))
    if presented is not None and not _matches(presented, write_key):
        raise Refused(401, "invalid write key")
    check_json_content_type(request, MEDIA_TYPES, gzipped_too=True)
    payload = parsed_json(await _read_body(request, limit))
    if not isinstance(payload, dict):
        raise Refused(400, "the body must be a JSON object")
    if presented is None and not _matches(payload.get("writeKey"), write_key):
        raise Refused(401, "missing or invalid write key: send it as the HTTP Basic username")
    return payload


def _is_iso_time(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def checked_call(call: object, where: str, endpoint_type: str | None = None) -> dict:
    """The call as it is kept, or a 400 saying why it is not a Segment call."""
    if not isinstance(call, dict):
        raise Refused(400, f"{where}: a call must be a JSON object")
    call_type = call.get("type", endpoint_type)
    if not isinstance(call_type, str):
        raise Refused(400, f"{where}: type must be a string, not {json_type(call_type)}")
    if endpoint_type and call_type != endpoint_type:
        raise Refused(400, f"{where}: a {call_type[:20]!r} call was sent to /v1/{endpoint_type}")
    if call_type not in CALL_TYPES:
        raise Refused(400, f"{where}: type must be one of {', '.join(CALL_TYPES)}, got {call_type[:20]!r}")
    check_fields(call, where, required={}, optional=FIELD_KINDS)
    size = len(_compact(call))
    if size > MAX_CALL_BYTES:
        raise Refused(400, f"{where}: the call is {size} bytes, more than Segment's 32 KB per call")
    message_id = call.get("messageId")
    if not message_id:
        raise Refused(400, f"{where}: messageId is required (a string): duplicates are recognised by it")
    if len(message_id) > MAX_MESSAGE_ID_LENGTH:
        raise Refused(400, f"{where}: messageId is longer than {MAX_MESSAGE_ID_LENGTH} characters")
    if all(call.get(name) in (None, "") for name in ("userId", "anonymousId")):
        raise Refused(400, f"{where}: a call needs a userId or an anonymousId")
    for name in REQUIRED_FIELDS.get(call_type, ()):
        if call.get(name) in (None, ""):
            raise Refused(400, f"{where}: a {call_type} call needs {name}")
    timestamp = call.get("timestamp")
    if timestamp is not None and not _is_iso_time(timestamp):
        raise Refused(400, f"{where}: timestamp {shown(timestamp)} is not an ISO 8601 time")
    # The write key is a credential: it never reaches the landing zone.
    return {**{name: value for name, value in call.items() if name != "writeKey"}, "type": call_type}


def batch_calls(payload: dict) -> list[dict]:
    calls = payload.get("batch")
    if not isinstance(calls, list) or not calls:
        raise Refused(400, "batch must be a non-empty array of calls")
    if len(calls) > MAX_BATCH_CALLS:
        raise Refused(400, f"a batch holds at most {MAX_BATCH_CALLS} calls, got {len(calls)}")
    checked = [checked_call(call, f"batch[{index}]") for index, call in enumerate(calls)]
    # Batch-level context and integrations apply to every call; a call's own keys win.
    shared = {name: payload[name] for name in ("context", "integrations") if isinstance(payload.get(name), dict)}
    return [
        {**call, **{name: {**value, **(call.get(name) or {})} for name, value in shared.items()}} for call in checked
    ]


async def tracking_calls(request: Request, endpoint: str, write_key: str) -> list[dict]:
    """The checked calls of a request to ``/v1/<endpoint>``: a batch's, or the one call of a
    ``/v1/<type>`` endpoint; a 4xx saying why not."""
    if endpoint == "batch":
        return batch_calls(await read_tracking_payload(request, MAX_BATCH_BYTES, write_key))
    if endpoint not in CALL_TYPES:
        raise Refused(404, f"no such endpoint /v1/{endpoint[:40]}")
    return [checked_call(await read_tracking_payload(request, MAX_CALL_BYTES, write_key), "the call", endpoint)]


def as_received(calls: list[dict], received_at: datetime) -> list[dict]:
    """Stamped with when they were received; a call without a timestamp happened then."""
    stamp = received_at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return [{**call, "timestamp": call.get("timestamp") or stamp, "receivedAt": stamp} for call in calls]
