"""dlt source for website events: Segment-spec calls in NDJSON files (the intake landing zone, or a
folder a Segment storage destination writes).

Files are read incrementally by file and byte offset: a run reads only what was appended since the
last one, so late events appended to an old hour's file are still picked up. Events are merged on
``messageId``, which de-duplicates retries. A line that is not a valid event goes to ``quarantine``
with the reason.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import dlt

EVENT_TYPES = {"page", "track", "identify", "screen", "group", "alias"}
READ_BATCH = 5_000


def invalid_event_reason(event: object) -> str | None:
    if not isinstance(event, dict):
        return "not a JSON object"
    if not event.get("messageId"):
        return "no messageId"
    if event.get("type") not in EVENT_TYPES:
        return f"unknown type {event.get('type')!r}"
    if not (event.get("anonymousId") or event.get("userId")):
        return "neither anonymousId nor userId"
    if not event.get("timestamp"):
        return "no timestamp"
    return None


def flatten_event(event: dict) -> dict:
    """The columns the funnel reads, plus the whole event as JSON for anything else."""
    context = event.get("context") or {}
    page = context.get("page") or {}
    campaign = context.get("campaign") or {}
    traits = event.get("traits") or context.get("traits") or {}
    return {
        "message_id": event["messageId"],
        "type": event["type"],
        "event": event.get("event"),
        "anonymous_id": event.get("anonymousId"),
        "user_id": None if event.get("userId") is None else str(event["userId"]),
        "email": traits.get("email"),
        "timestamp": event["timestamp"],
        "page_url": page.get("url"),
        "page_path": page.get("path"),
        "page_title": page.get("title"),
        "referrer": page.get("referrer"),
        "utm_source": campaign.get("source"),
        "utm_medium": campaign.get("medium"),
        "utm_campaign": campaign.get("name"),
        "utm_content": campaign.get("content"),
        "utm_term": campaign.get("term"),
        "raw": json.dumps(event, sort_keys=True),
    }


def read_new_lines(path: Path, offset: int) -> tuple[list[tuple[int, str]], int]:
    """Complete lines appended after ``offset``, each with its own offset; a partly written last
    line waits for the next run."""
    with open(path, "rb") as source:
        source.seek(offset)
        chunk = source.read()
    lines, start = [], 0
    while (end := chunk.find(b"\n", start)) != -1:
        lines.append((offset + start, chunk[start:end].decode("utf-8", errors="replace")))
        start = end + 1
    return lines, offset + start


@dlt.source(name="web", max_table_nesting=0)
def web_source(folders: list[str] = dlt.config.value):
    # A quarantined line is identified by where it stands, so reading it again never duplicates it.
    quarantine_hints = dlt.mark.make_hints(table_name="quarantine", primary_key=["file", "line_offset"])

    @dlt.resource(name="events", primary_key="message_id", write_disposition="merge",
                  columns={"timestamp": {"data_type": "timestamp"}})
    def events() -> Iterator:
        """Segment page, track and identify calls, one row per messageId."""
        offsets: dict[str, int] = dlt.current.resource_state().setdefault("offsets", {})
        for folder in map(Path, folders):
            for path in sorted(folder.rglob("*.ndjson")):
                key = str(path.resolve())
                lines, new_offset = read_new_lines(path, offsets.get(key, 0))
                good, bad = [], []
                for line_offset, line in lines:
                    if not line.strip():
                        continue
                    try:
                        event = json.loads(line)
                    except json.JSONDecodeError as error:
                        bad.append(_quarantined(key, line_offset, line, f"not JSON: {error.msg}"))
                        continue
                    reason = invalid_event_reason(event)
                    if reason:
                        bad.append(_quarantined(key, line_offset, line, reason))
                    else:
                        good.append(flatten_event(event))
                    if len(good) >= READ_BATCH:
                        yield good
                        good = []
                if good:
                    yield good
                if bad:
                    yield dlt.mark.with_hints(bad, quarantine_hints, create_table_variant=True)
                # Advanced only after the file's rows were yielded: dlt commits state with the load.
                offsets[key] = new_offset

    return events


def _quarantined(file: str, offset: int, line: str, reason: str) -> dict:
    return {"file": file, "line_offset": offset, "line": line, "reason": reason,
            "quarantined_at": datetime.now(timezone.utc)}
