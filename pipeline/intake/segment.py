"""Website events in the shape of Segment's HTTP Tracking API.

``POST /v1/track|identify|page|screen|group|alias`` take one call, ``POST /v1/batch`` takes
``{"batch": [...]}``. The write key is the HTTP Basic username (a ``writeKey`` in the body is
accepted too, as Segment does). Segment's limits hold: 32 KB per call, 500 KB per batch request.
Every call needs a ``messageId`` (duplicates are recognised by it), a ``userId`` or an
``anonymousId``, and a track call an ``event``. Bodies may be gzipped.
"""

from __future__ import annotations

import base64
import hmac
import json
import zlib
from datetime import datetime

from fastapi import Request

from pipeline.intake.errors import Refused, read_body_within

MAX_CALL_BYTES = 32 * 1024
MAX_BATCH_BYTES = 500 * 1024
MAX_MESSAGE_ID_LENGTH = 100
CALL_TYPES = ("identify", "track", "page", "screen", "group", "alias")
# Fields a call of that type is useless without, per the Segment spec.
REQUIRED_FIELDS = {"track": ("event",), "group": ("groupId",), "alias": ("previousId",)}
OBJECT_FIELDS = ("context", "integrations", "properties", "traits")


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
    if request.headers.get("content-encoding", "").lower() != "gzip":
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
    """The request's JSON object, once the write key it presents is the right one."""
    presented = _basic_username(request.headers.get("authorization"))
    if presented is not None and not _matches(presented, write_key):
        raise Refused(401, "invalid write key")
    body = await _read_body(request, limit)
    try:
        payload = json.loads(body)
    except ValueError as error:
        raise Refused(400, f"the body is not valid JSON: {error}") from error
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
    """The call as it is landed, or a 400 saying why it is not a Segment call."""
    if not isinstance(call, dict):
        raise Refused(400, f"{where}: a call must be a JSON object")
    call_type = call.get("type", endpoint_type)
    if endpoint_type and call_type != endpoint_type:
        raise Refused(400, f"{where}: a {call_type!r} call was sent to /v1/{endpoint_type}")
    if call_type not in CALL_TYPES:
        raise Refused(400, f"{where}: type must be one of {', '.join(CALL_TYPES)}, got {call_type!r}")
    size = len(_compact(call))
    if size > MAX_CALL_BYTES:
        raise Refused(400, f"{where}: the call is {size} bytes, more than Segment's 32 KB per call")
    message_id = call.get("messageId")
    if not isinstance(message_id, str) or not message_id:
        raise Refused(400, f"{where}: messageId is required (a string): duplicates are recognised by it")
    if len(message_id) > MAX_MESSAGE_ID_LENGTH:
        raise Refused(400, f"{where}: messageId is longer than {MAX_MESSAGE_ID_LENGTH} characters")
    if all(call.get(name) in (None, "") for name in ("userId", "anonymousId")):
        raise Refused(400, f"{where}: a call needs a userId or an anonymousId")
    for name in REQUIRED_FIELDS.get(call_type, ()):
        if call.get(name) in (None, ""):
            raise Refused(400, f"{where}: a {call_type} call needs {name}")
    for name in OBJECT_FIELDS:
        if call.get(name) is not None and not isinstance(call[name], dict):
            raise Refused(400, f"{where}: {name} must be a JSON object")
    timestamp = call.get("timestamp")
    if timestamp is not None and not _is_iso_time(timestamp):
        raise Refused(400, f"{where}: timestamp {timestamp!r} is not an ISO 8601 time")
    # The write key is a credential: it never reaches the landing zone.
    return {**{name: value for name, value in call.items() if name != "writeKey"}, "type": call_type}


def batch_calls(payload: dict) -> list[dict]:
    calls = payload.get("batch")
    if not isinstance(calls, list) or not calls:
        raise Refused(400, "batch must be a non-empty array of calls")
    checked = [checked_call(call, f"batch[{index}]") for index, call in enumerate(calls)]
    # Batch-level context and integrations apply to every call; a call's own keys win.
    shared = {name: payload[name] for name in ("context", "integrations") if isinstance(payload.get(name), dict)}
    return [{**call, **{name: {**value, **(call.get(name) or {})} for name, value in shared.items()}}
            for call in checked]


def as_received(calls: list[dict], received_at: datetime) -> list[dict]:
    """Stamped with when the intake received them; a call without a timestamp happened then."""
    stamp = received_at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return [{**call, "timestamp": call.get("timestamp") or stamp, "receivedAt": stamp} for call in calls]
