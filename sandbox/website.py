"""The simulated website, as Segment sees it: a tracking collector, an emitter and an export.

- **Collector**: Segment's HTTP Tracking API shape (``POST /v1/track|page|identify|screen|group|alias|batch``),
  mounted under ``/segment``. Segment's rules (write key, limits, required fields, types) are those of
  ``pipeline/intake/segment.py``, the product's one statement of them, which Handoff's intake service
  enforces too; a bad call gets a 400 (a bad write key a 401) whose ``message`` says what is wrong, in
  the shape Segment's libraries read. Accepted calls are appended, and fsynced
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

import json
import os
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from pipeline.intake.errors import Refused
from pipeline.intake.segment import (
    MAX_BATCH_BYTES,
    MAX_BATCH_CALLS,
    MAX_CALL_BYTES,
    as_received,
    hour_file,
    tracking_calls,
)
from sandbox.dataset import iso, parse_iso
from sandbox.store import SandboxStore

SEGMENT_PREFIX = "/segment"
# What a batch request adds around its calls: brackets, commas, ``sentAt``.
BATCH_ENVELOPE_BYTES = 128
# The ``code`` Segment's answers carry, which its libraries read; Segment answers 400 for every bad
# request but a bad write key, a too large payload included.
_SEGMENT_CODES = {401: "unauthorized", 404: "not_found"}


def _compact(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


class Website:
    """The collector's credentials and its durable event files."""

    def __init__(self, write_key: str, events_dir: Path):
        self.write_key = write_key
        self.events_dir = events_dir
        self._append_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Website(events_dir={self.events_dir!s})"

    def connections(self, base_url: str) -> dict:
        return {
            "tracking_url": f"{base_url}{SEGMENT_PREFIX}",
            "write_key": self.write_key,
            "events_dir": str(self.events_dir),
        }

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


def _segment_answer(refused: Refused) -> JSONResponse:
    """A refusal in the shape Segment's libraries read (``code``, ``message``)."""
    status = refused.status_code if refused.status_code in _SEGMENT_CODES else 400
    return JSONResponse(
        {"success": False, "code": _SEGMENT_CODES.get(status, "invalid_request"), "message": refused.message},
        status_code=status,
    )


def segment_router(website: Website) -> APIRouter:
    """The collector: Segment's rules are the product's own (``pipeline/intake/segment.py``), which the
    intake service enforces too."""
    router = APIRouter(prefix="/v1")

    @router.post("/{endpoint}")
    async def collect(endpoint: str, request: Request) -> JSONResponse:
        try:
            calls = await tracking_calls(request, endpoint, website.write_key)
        except Refused as refused:
            return _segment_answer(refused)
        received_at = datetime.now(UTC)
        await run_in_threadpool(website.record, as_received(calls, received_at), received_at)
        return JSONResponse({"success": True})

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


def send_batch(
    client: httpx.Client,
    tracking_url: str,
    write_key: str,
    calls: list[bytes],
    attempts: int = 5,
    first_retry_s: float = 0.5,
) -> None:
    """POST one batch to ``<tracking_url>/v1/batch``; retry what may succeed later (5xx, 429, network)."""
    sent_at = iso(datetime.now(UTC)).encode()
    body = b'{"batch":[' + b",".join(calls) + b'],"sentAt":"' + sent_at + b'"}'
    url = f"{tracking_url.rstrip('/')}/v1/batch"
    for attempt in range(1, attempts + 1):
        try:
            response = client.post(
                url, content=body, auth=(write_key, ""), headers={"Content-Type": "application/json"}
            )
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
                out = open(path.with_suffix(".partial"), "ab" if path in staged else "wb")  # noqa: SIM115 (one hour's file at a time)
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
