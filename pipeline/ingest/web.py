"""dlt source for website events: Segment-spec calls in NDJSON files (the intake landing zone, or a
folder a Segment storage destination writes).

Files are read incrementally by file and byte offset: a run reads only what was appended since the
last one, so late events appended to an old hour's file are still picked up. Events are merged on
``messageId``, which de-duplicates retries: within a run the first sighting of a ``messageId`` is
kept, and a later run's replaces the row loaded before. A line that is not a valid event goes to
``quarantine`` with the reason.

The lines appended to many files are parsed together by Arrow's JSON reader into the columns the
funnel reads and handed to dlt as one Arrow table, which dlt writes as Parquet without looking at
each row; only a line the reader refuses is looked at on its own.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import dlt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json
from dlt.extract.hints import TResourceHints

from pipeline.ingest.arrow import with_row_ids
from pipeline.intake.segment import CALL_TYPES

# Lines parsed and handed to dlt together: parsing a file at a time, and dlt's work per table,
# cost more than the parsing itself when hourly files are small; a few megabytes at a time keep
# the memory the reading takes small next to DuckDB's while it merges.
READ_BATCH_BYTES = 4 * 2**20
TIMESTAMP = pa.timestamp("us", tz="UTC")
_text = pa.string()
_PAGE = pa.struct([("url", _text), ("path", _text), ("title", _text), ("referrer", _text)])
_CAMPAIGN = pa.struct([("source", _text), ("medium", _text), ("name", _text), ("content", _text), ("term", _text)])
_TRAITS = pa.struct([("email", _text)])
# The parts of a Segment call the funnel reads; the reader skips every other field.
SEGMENT_CALL = pa.schema(
    [
        ("messageId", _text),
        ("type", _text),
        ("event", _text),
        ("anonymousId", _text),
        ("userId", _text),
        ("timestamp", TIMESTAMP),
        ("traits", _TRAITS),
        ("context", pa.struct([("page", _PAGE), ("campaign", _CAMPAIGN), ("traits", _TRAITS)])),
    ]
)
SEGMENT_CALL_PARSING = pa_json.ParseOptions(explicit_schema=SEGMENT_CALL, unexpected_field_behavior="ignore")
# The columns loaded, each from its field in the call ("traits.email" is the call's, or its context's).
EVENT_COLUMNS = {
    "message_id": "messageId",
    "type": "type",
    "event": "event",
    "anonymous_id": "anonymousId",
    "user_id": "userId",
    "email": "traits.email",
    "timestamp": "timestamp",
    "page_url": "context.page.url",
    "page_path": "context.page.path",
    "page_title": "context.page.title",
    "referrer": "context.page.referrer",
    "utm_source": "context.campaign.source",
    "utm_medium": "context.campaign.medium",
    "utm_campaign": "context.campaign.name",
    "utm_content": "context.campaign.content",
    "utm_term": "context.campaign.term",
}
# The merge key is never null: dlt's schema says so, and an Arrow schema that disagreed would be
# reported for every table.
EVENTS = pa.schema(
    [
        pa.field(column, TIMESTAMP if column == "timestamp" else _text, nullable=column != "message_id")
        for column in EVENT_COLUMNS
    ]
    + [("raw", _text)]
)


def invalid_event_reason(event: object) -> str | None:
    if not isinstance(event, dict):
        return "not a JSON object"
    if not event.get("messageId"):
        return "no messageId"
    if event.get("type") not in CALL_TYPES:
        return f"unknown type {event.get('type')!r}"
    if not (event.get("anonymousId") or event.get("userId")):
        return "neither anonymousId nor userId"
    if not event.get("timestamp"):
        return "no timestamp"
    return None


def read_new_lines(path: Path, offset: int) -> tuple[bytes, int]:
    """The complete lines appended after ``offset``, and the offset after them; a partly written
    last line waits for the next run."""
    with open(path, "rb") as source:
        source.seek(offset)
        appended = source.read()
    complete = appended.rfind(b"\n") + 1
    return appended[:complete], offset + complete


@dataclass
class Lines:
    """Non-blank lines read from files, each with its file and the offset it starts at."""

    files: list[str] = field(default_factory=list)
    offsets: list[int] = field(default_factory=list)
    texts: list[bytes] = field(default_factory=list)
    size: int = 0  # bytes

    def add(self, file: str, text: bytes, offset: int) -> None:
        start = 0
        for line in text.split(b"\n"):
            if line.strip():
                self.files.append(file)
                self.offsets.append(offset + start)
                self.texts.append(line)
            start += len(line) + 1
        self.size += len(text)


class EventReader:
    """Turns lines into a table of events and the lines set aside, with the reason, for quarantine.

    The lines are parsed together; text the reader refuses is split in halves until the lines it
    refuses stand alone, so one bad line costs a few parses of the text rather than a slow path
    for all of it."""

    def __init__(self, lines: Lines):
        self.lines = lines

    def read(self) -> tuple[pa.Table, list[dict]]:
        tables, quarantined = [], []
        for table, set_aside in self._parse(0, len(self.lines.texts)):
            tables.append(table)
            quarantined.extend(set_aside)
        return pa.concat_tables(tables) if tables else EVENTS.empty_table(), quarantined

    def _parse(self, start: int, stop: int) -> Iterator[tuple[pa.Table, list[dict]]]:
        if start == stop:
            return
        texts = self.lines.texts[start:stop]
        try:
            table = events_table(
                pa_json.read_json(io.BytesIO(b"\n".join(texts)), parse_options=SEGMENT_CALL_PARSING),
                pa.array(texts, pa.binary()).cast(_text),
            )
        except pa.ArrowInvalid:
            if stop - start == 1:
                yield self._parse_alone(start)
            else:
                middle = (start + stop) // 2
                yield from self._parse(start, middle)
                yield from self._parse(middle, stop)
            return
        invalid = pc.invert(_valid_events(table))
        if not pc.any(invalid).as_py():
            yield table, []
            return
        yield (
            table.filter(pc.invert(invalid)),
            [
                self._quarantined(start + row, invalid_event_reason(json.loads(texts[row])) or "not a Segment call")
                for row in pc.indices_nonzero(invalid).to_pylist()
            ],
        )

    def _parse_alone(self, index: int) -> tuple[pa.Table, list[dict]]:
        """A line the reader refused: why, or the event once its user id is made the string it can be."""
        line = _decoded(self.lines.texts[index])
        try:
            event = json.loads(line)
        except json.JSONDecodeError as error:
            return EVENTS.empty_table(), [self._quarantined(index, f"not JSON: {error.msg}")]
        reason = invalid_event_reason(event)
        if reason is None:
            if isinstance(event.get("userId"), (int, float)):
                event["userId"] = str(event["userId"])  # Segment's server libraries send numbers too
            try:
                calls = pa_json.read_json(io.BytesIO(json.dumps(event).encode()), parse_options=SEGMENT_CALL_PARSING)
                return events_table(calls, pa.array([line], _text)), []
            except pa.ArrowInvalid as error:
                reason = f"a field does not fit the Segment spec: {error}"
        return EVENTS.empty_table(), [self._quarantined(index, reason)]

    def _quarantined(self, index: int, reason: str) -> dict:
        return {
            "file": self.lines.files[index],
            "line_offset": self.lines.offsets[index],
            "line": _decoded(self.lines.texts[index]),
            "reason": reason,
            "quarantined_at": datetime.now(UTC),
        }


def _decoded(line: bytes) -> str:
    return line.decode("utf-8", errors="replace")


def events_table(calls: pa.Table, raw: pa.Array) -> pa.Table:
    """The loaded columns of parsed calls, with each call's line kept whole as ``raw``."""
    fields = calls.flatten().flatten()
    email = pc.coalesce(fields["traits.email"], fields["context.traits.email"])
    columns = [email if field == "traits.email" else fields[field] for field in EVENT_COLUMNS.values()]
    return pa.Table.from_arrays([*columns, raw], schema=EVENTS)


def _valid_events(table: pa.Table) -> pa.ChunkedArray:
    """Which events the Segment spec's rules accept, as ``invalid_event_reason`` states them."""

    def present(column: str) -> pa.ChunkedArray:
        return pc.fill_null(pc.not_equal(table[column], ""), False)

    known_type = pc.fill_null(pc.is_in(table["type"], pa.array(sorted(CALL_TYPES))), False)
    attributed = pc.or_(present("anonymous_id"), present("user_id"))
    return pc.and_(pc.and_(present("message_id"), known_type), pc.and_(attributed, pc.is_valid(table["timestamp"])))


@dlt.source(name="web", max_table_nesting=0)
def web_source(folders: list[str] = dlt.config.value):
    # A quarantined line is identified by where it stands, so reading it again never duplicates it.
    quarantine_hints = dlt.mark.make_hints(table_name="quarantine", primary_key=["file", "line_offset"])

    # The rows handed to dlt are unique per messageId, which spares DuckDB de-duplicating the whole
    # load itself: a window over every column, each call's raw text included, that takes twice as
    # long as inserting the rows.
    @dlt.resource(
        name="events",
        primary_key="message_id",
        write_disposition={"disposition": "merge", "strategy": "delete-insert", "deduplicated": True},
    )
    def events() -> Iterator:
        """Segment page, track and identify calls, one row per messageId."""
        offsets: dict[str, int] = dlt.current.resource_state().setdefault("offsets", {})
        first_sightings = FirstSightings()
        lines, read_to = Lines(), {}
        for folder in map(Path, folders):
            # Resolved once: the files' keys are their resolved paths, and resolving each of
            # thousands of hourly files costs more than reading what was appended to them.
            for path in sorted(folder.resolve().rglob("*.ndjson")):
                key = str(path)
                if path.stat().st_size == offsets.get(key, 0):
                    continue
                text, read_to[key] = read_new_lines(path, offsets.get(key, 0))
                lines.add(key, text, offsets.get(key, 0))
                if lines.size >= READ_BATCH_BYTES:
                    yield from _events_and_quarantine(lines, quarantine_hints, first_sightings)
                    # Advanced only after the rows were yielded: dlt commits state with the load.
                    offsets.update(read_to)
                    lines, read_to = Lines(), {}
        yield from _events_and_quarantine(lines, quarantine_hints, first_sightings)
        offsets.update(read_to)

    return events


def loaded_offsets(pipeline: dlt.Pipeline) -> dict[str, int]:
    """How far ``pipeline``'s loads of :func:`web_source` have read each file, by resolved path."""
    return pipeline.state.get("sources", {}).get("web", {}).get("resources", {}).get("events", {}).get("offsets", {})


class FirstSightings:
    """The messageIds one run has read so far."""

    def __init__(self) -> None:
        self._seen: set[str] = set()

    def of(self, events: pa.Table) -> pa.Table:
        """The events whose messageId the run reads for the first time."""
        first = []
        for message_id in events.column("message_id").to_pylist():
            first.append(message_id not in self._seen)
            self._seen.add(message_id)
        return events.filter(pa.array(first, pa.bool_()))


def _events_and_quarantine(lines: Lines, quarantine_hints: TResourceHints, first_sightings: FirstSightings) -> Iterator:
    if not lines.texts:
        return
    table, quarantined = EventReader(lines).read()
    table = first_sightings.of(table)
    if table.num_rows:
        yield with_row_ids(table)
    if quarantined:
        yield dlt.mark.with_hints(quarantined, quarantine_hints, create_table_variant=True)
