"""The simulated website, as Segment sees it: a tracking collector, an emitter and an export.

- **Collector**: Segment's HTTP Tracking API shape (``POST /v1/track|page|identify|screen|group|alias|batch``),
  mounted under ``/segment``. The write key is the HTTP Basic username (Segment also reads a ``writeKey``
  in the body; so does the collector). 32 KB per call and 500 KB per batch request, as Segment enforces;
  a bad call gets a 400 whose ``message`` says what is wrong. Accepted calls are appended, and fsynced
  before the 2xx, to hourly NDJSON files ``<events_dir>/<YYYY-MM-DD>/<HH>.ndjson``, partitioned by the UTC
  time the collector received them (``receivedAt``), the way Segment's storage destinations group by
  received day: an hour's file is complete once the hour is over, whatever timestamps clients put on
  late events. Nothing is de-duplicated here; Handoff de-duplicates on ``messageId``.
- **Emitter** (:func:`emit_web_events`): replays the company's web events, oldest first, in Segment batch
  requests to any tracking endpoint; this is how the website feeds Handoff's intake.
- **Export** (:func:`export_web_events`): the same hourly layout written from history, as if each event
  had been received when it happened (``receivedAt`` defaults to the event's ``timestamp``).
"""

from __future__ import annotations

import base64
import hmac
import json
import os
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from sandbox.dataset import iso, parse_iso
from sandbox.store import SandboxStore

SEGMENT_PREFIX = "/segment"
MAX_CALL_BYTES = 32 * 1024
MAX_BATCH_BYTES = 500 * 1024
MAX_BATCH_CALLS = 2500
MAX_MESSAGE_ID_LENGTH = 100
CALL_TYPES = ("identify", "track", "page", "screen", "group", "alias")
# Fields a call of that type is useless without, per the Segment spec.
REQUIRED_FIELDS = {"track": ("event",), "group": ("groupId",), "alias": ("previousId",)}
OBJECT_FIELDS = ("context", "integrations", "properties", "traits")
# What a batch request adds around its calls: brackets, commas, ``sentAt``.
BATCH_ENVELOPE_BYTES = 128


def _compact(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def hour_file(folder: Path, moment: datetime) -> Path:
    """Where events of this (UTC) hour are kept: ``<folder>/<YYYY-MM-DD>/<HH>.ndjson``."""
    moment = moment.astimezone(timezone.utc)
    return folder / moment.strftime("%Y-%m-%d") / f"{moment:%H}.ndjson"


class Website:
    """The collector's credentials and its durable event files."""

    def __init__(self, write_key: str, events_dir: Path):
        self.write_key = write_key
        self.events_dir = events_dir
        self._append_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Website(events_dir={self.events_dir!s})"

    def connections(self, base_url: str) -> dict:
        return {"tracking_url": f"{base_url}{SEGMENT_PREFIX}", "write_key": self.write_key,
                "events_dir": str(self.events_dir)}

    def record(self, events: list[dict], received_at: datetime) -> None:
        """Append events to the hour they were received in, durably: on disk before this returns."""
        path = hour_file(self.events_dir, received_at)
        lines = b"".join(_compact(event) + b"\n" for event in events)
        with self._append_lock:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "ab") as out:
                out.write(lines)
                out.flush()
                os.fsync(out.fileno())


class TrackingRejected(Exception):
    """A request the collector refuses, answered in the shape Segment's libraries read (``code``, ``message``)."""

    def __init__(self, status_code: int, code: str, message: str):
        super().__init__(message)
        self.status_code, self.code, self.message = status_code, code, message

    def response(self) -> JSONResponse:
        return JSONResponse({"success": False, "code": self.code, "message": self.message},
                            status_code=self.status_code)


def _invalid(message: str) -> TrackingRejected:
    return TrackingRejected(400, "invalid_request", message)


async def _read_body(request: Request, limit: int) -> bytes:
    """The request body, decompressed if gzipped, refused as soon as it exceeds ``limit``."""
    too_large = _invalid(f"payload too large: the limit is {limit // 1024} KB for this endpoint")
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > limit:
            raise too_large
    if request.headers.get("content-encoding", "").lower() != "gzip":
        return bytes(raw)
    inflater = zlib.decompressobj(wbits=31)
    try:
        body = inflater.decompress(bytes(raw), limit + 1)
    except zlib.error as error:
        raise _invalid(f"body is not valid gzip: {error}") from error
    if len(body) > limit or inflater.unconsumed_tail:
        raise too_large
    return body


def _basic_username(authorization: str | None) -> str | None:
    scheme, _, credentials = (authorization or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        return base64.b64decode(credentials, validate=True).decode().partition(":")[0]
    except ValueError:
        return ""


def _is_key(presented: object, write_key: str) -> bool:
    return isinstance(presented, str) and hmac.compare_digest(presented.encode(), write_key.encode())


async def _read_payload(request: Request, limit: int, write_key: str) -> dict:
    presented = _basic_username(request.headers.get("authorization"))
    if presented is not None and not _is_key(presented, write_key):
        raise TrackingRejected(401, "unauthorized", "invalid write key")
    body = await _read_body(request, limit)
    try:
        payload = json.loads(body)
    except ValueError as error:
        raise _invalid(f"invalid JSON: {error}") from error
    if not isinstance(payload, dict):
        raise _invalid("the body must be a JSON object")
    if presented is None and not _is_key(payload.get("writeKey"), write_key):
        raise TrackingRejected(401, "unauthorized",
                               "missing or invalid write key: send it as the HTTP Basic username")
    return payload


def _is_iso(value: object) -> bool:
    try:
        return isinstance(value, str) and bool(parse_iso(value))
    except ValueError:
        return False


def _checked_call(call: object, where: str, path_type: str | None = None) -> dict:
    """The call as it is kept, or a 400 saying why it is not a Segment call."""
    if not isinstance(call, dict):
        raise _invalid(f"{where}: a call must be a JSON object")
    call_type = call.get("type", path_type)
    if path_type and call_type != path_type:
        raise _invalid(f"{where}: a {call_type!r} call was sent to /v1/{path_type}")
    if call_type not in CALL_TYPES:
        raise _invalid(f"{where}: type must be one of {', '.join(CALL_TYPES)}, got {call_type!r}")
    size = len(_compact(call))
    if size > MAX_CALL_BYTES:
        raise _invalid(f"{where}: the call is {size} bytes; the limit is 32 KB per call")
    message_id = call.get("messageId")
    if not isinstance(message_id, str) or not message_id:
        raise _invalid(f"{where}: messageId is required (a string), it is what duplicates are recognised by")
    if len(message_id) > MAX_MESSAGE_ID_LENGTH:
        raise _invalid(f"{where}: messageId is longer than {MAX_MESSAGE_ID_LENGTH} characters")
    if all(call.get(name) in (None, "") for name in ("userId", "anonymousId")):
        raise _invalid(f"{where}: no_user_anon_id: a call needs a userId or an anonymousId")
    for name in REQUIRED_FIELDS.get(call_type, ()):
        if call.get(name) in (None, ""):
            raise _invalid(f"{where}: a {call_type} call needs {name}")
    for name in OBJECT_FIELDS:
        if call.get(name) is not None and not isinstance(call[name], dict):
            raise _invalid(f"{where}: {name} must be a JSON object")
    timestamp = call.get("timestamp")
    if timestamp is not None and not _is_iso(timestamp):
        raise _invalid(f"{where}: timestamp {timestamp!r} is not ISO 8601")
    # The write key is a credential: it never reaches the event files.
    return {**{name: value for name, value in call.items() if name != "writeKey"}, "type": call_type}


def _batch_calls(payload: dict) -> list[dict]:
    calls = payload.get("batch")
    if not isinstance(calls, list) or not calls:
        raise _invalid("batch must be a non-empty array of calls")
    if len(calls) > MAX_BATCH_CALLS:
        raise _invalid(f"a batch holds at most {MAX_BATCH_CALLS} calls, got {len(calls)}")
    checked = [_checked_call(call, f"batch[{index}]") for index, call in enumerate(calls)]
    # Batch-level context and integrations apply to every call; a call's own keys win.
    shared = {name: payload[name] for name in ("context", "integrations") if isinstance(payload.get(name), dict)}
    return [{**call, **{name: {**value, **(call.get(name) or {})} for name, value in shared.items()}}
            for call in checked]


def segment_router(website: Website) -> APIRouter:
    router = APIRouter(prefix="/v1")

    async def collect(request: Request, limit: int, calls_of: Callable[[dict], list[dict]]) -> JSONResponse:
        try:
            calls = calls_of(await _read_payload(request, limit, website.write_key))
        except TrackingRejected as rejected:
            return rejected.response()
        received_at = datetime.now(timezone.utc)
        stamp = iso(received_at)
        events = [{**call, "timestamp": call.get("timestamp") or stamp, "receivedAt": stamp} for call in calls]
        await run_in_threadpool(website.record, events, received_at)
        return JSONResponse({"success": True})

    @router.post("/batch")
    async def batch(request: Request) -> JSONResponse:
        return await collect(request, MAX_BATCH_BYTES, _batch_calls)

    @router.post("/{call_type}")
    async def single(call_type: str, request: Request) -> JSONResponse:
        if call_type not in CALL_TYPES:
            return TrackingRejected(404, "not_found", f"no such endpoint /v1/{call_type}").response()
        return await collect(request, MAX_CALL_BYTES, lambda payload: [_checked_call(payload, call_type, call_type)])

    return router


class TrackingError(RuntimeError):
    """A tracking endpoint did not accept a batch."""

    def __init__(self, message: str, retryable: bool):
        super().__init__(message)
        self.retryable = retryable


def segment_batches(calls: Iterable[bytes]) -> Iterator[list[bytes]]:
    """Group serialized calls into batches that fit Segment's limits (500 KB, 2500 calls per request)."""
    batch: list[bytes] = []
    size = BATCH_ENVELOPE_BYTES
    for call in calls:
        if len(call) > MAX_CALL_BYTES:
            raise ValueError(f"a call of {len(call)} bytes exceeds Segment's 32 KB per call: {call[:200]!r}…")
        if batch and (size + len(call) + 1 > MAX_BATCH_BYTES or len(batch) == MAX_BATCH_CALLS):
            yield batch
            batch, size = [], BATCH_ENVELOPE_BYTES
        batch.append(call)
        size += len(call) + 1
    if batch:
        yield batch


def send_batch(client: httpx.Client, tracking_url: str, write_key: str, calls: list[bytes],
               attempts: int = 5, first_retry_s: float = 0.5) -> None:
    """POST one batch to ``<tracking_url>/v1/batch``; retry what may succeed later (5xx, 429, network)."""
    sent_at = iso(datetime.now(timezone.utc)).encode()
    body = b'{"batch":[' + b",".join(calls) + b'],"sentAt":"' + sent_at + b'"}'
    url = f"{tracking_url.rstrip('/')}/v1/batch"
    for attempt in range(1, attempts + 1):
        try:
            response = client.post(url, content=body, auth=(write_key, ""),
                                   headers={"Content-Type": "application/json"})
        except httpx.HTTPError as error:
            failure = TrackingError(f"{url}: {error!r}", retryable=True)
        else:
            if response.is_success:
                return
            retryable = response.status_code == 429 or response.status_code >= 500
            failure = TrackingError(f"{url} answered {response.status_code}: {response.text[:300]}", retryable)
        if not failure.retryable or attempt == attempts:
            raise failure
        time.sleep(first_retry_s * 2 ** (attempt - 1))


def _events_in_time_order(store: SandboxStore) -> Iterator[str]:
    for row in store.iterate("select body from web_events order by timestamp, message_id"):
        yield row["body"]


@dataclass(frozen=True)
class Emitted:
    events: int
    batches: int


def emit_web_events(store: SandboxStore, tracking_url: str, write_key: str, timeout_s: float = 30.0) -> Emitted:
    """Send every web event of the company, oldest first, in Segment batch requests."""
    events = batches = 0
    with httpx.Client(timeout=timeout_s) as client:
        for batch in segment_batches(body.encode() for body in _events_in_time_order(store)):
            send_batch(client, tracking_url, write_key, batch)
            events += len(batch)
            batches += 1
    return Emitted(events, batches)


@dataclass(frozen=True)
class Exported:
    events: int
    files: int


def export_web_events(store: SandboxStore, folder: Path) -> Exported:
    """Write the company's web events as hourly NDJSON files by event time. Files appear complete or
    not at all, and replace those of the same hours, so exporting twice gives the same folder."""
    events = 0
    staged: set[Path] = set()
    current: Path | None = None
    out = None
    try:
        for body in _events_in_time_order(store):
            event = json.loads(body)
            event.setdefault("receivedAt", event["timestamp"])
            path = hour_file(folder, parse_iso(event["timestamp"]))
            if path != current:
                # Rows come in time order, so an hour's events mostly arrive together: one open file at a time.
                if out:
                    out.close()
                path.parent.mkdir(parents=True, exist_ok=True)
                out = open(path.with_suffix(".partial"), "ab" if path in staged else "wb")
                staged.add(path)
                current = path
            out.write(_compact(event) + b"\n")
            events += 1
    finally:
        if out:
            out.close()
    for path in staged:
        path.with_suffix(".partial").replace(path)
    return Exported(events, len(staged))
