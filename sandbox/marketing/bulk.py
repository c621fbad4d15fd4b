"""Marketo's Bulk Extract: export jobs for leads and activities, their queue, and the files they write.

A job is created (``Created``), enqueued (``Queued``), processed (``Processing``) and finished
(``Completed``), or cancelled on the way. Marketo works through its queue in the background and
updates a job's status about once a minute; the stand-in, to stay deterministic, advances the queue
one step at every status poll instead: processing jobs complete, then queued jobs start while fewer
than two are processing. A job reads its records when it starts, as Marketo's jobs do, so a client
sees ``Processing`` at its first poll after enqueueing and ``Completed`` at the next.

Limits as Marketo documents them: ten jobs queued or processing, two processing, a 31-day date range,
a daily export allocation (``Limits.marketing_daily_export_bytes``) that resets at midnight Central
time, and jobs (with their files) kept for seven days. Jobs live in memory, like access tokens, so a
restart forgets them.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sandbox.faults import Limits
from sandbox.marketing.limits import QUOTA_DAY_ZONE
from sandbox.marketing.schema import (
    ACTIVITY_KEYS,
    ACTIVITY_TYPE_IDS,
    DELETE_LEAD,
    LEAD_FIELDS_BY_NAME,
    MarketoError,
    client_time,
    marketo_time,
)
from sandbox.marketing.store import MarketingStore

ExportEntity = Literal["leads", "activities"]

MAX_JOBS_IN_QUEUE = 10  # queued or processing, shared by every entity
MAX_JOBS_PROCESSING = 2
MAX_DATE_RANGE = timedelta(days=31)
RETENTION = timedelta(days=7)
EMPTY_VALUE = "null"  # what Marketo writes for an empty field

CREATED, QUEUED, PROCESSING, COMPLETED, CANCELLED = "Created", "Queued", "Processing", "Completed", "Cancelled"
# Marketo's reference spells the status both "Canceled" and "Cancelled"; its responses say "Cancelled".
STATUS_NAMES = {name.lower(): name for name in (CREATED, QUEUED, PROCESSING, COMPLETED, CANCELLED, "Failed")}
STATUS_NAMES["canceled"] = CANCELLED

# The general Bulk Extract page has SSV semicolon-separated, the lead and activity pages space-separated;
# the general page is followed, as a space would need every text value quoted.
DELIMITERS = {"CSV": ",", "TSV": "\t", "SSV": ";"}
MEDIA_TYPES = {"CSV": "text/csv", "TSV": "text/tab-separated-values", "SSV": "text/plain"}

# An activity file carries what the REST API lists for an activity, but its id.
ACTIVITY_COLUMNS = tuple(key for key in ACTIVITY_KEYS if key != "id")
ACTION_RESULT = "actionResult"  # asked for by name only; every activity the sandbox logs succeeded
LEAD_DATE_FILTERS = ("createdAt", "updatedAt")


@dataclass(frozen=True)
class ExportDefinition:
    """What a create call asked for: the file's format and header, and how to read its rows."""

    format: str
    header: list[str]
    read_rows: Callable[[], Iterable[list[Any]]]

    def render(self) -> tuple[bytes, int]:
        """The file and its number of records."""
        text = io.StringIO()
        writer = csv.writer(text, delimiter=DELIMITERS[self.format], lineterminator="\n")
        writer.writerow(self.header)
        records = 0
        for row in self.read_rows():
            writer.writerow([EMPTY_VALUE if value is None else value for value in row])
            records += 1
        return text.getvalue().encode(), records


@dataclass
class ExportJob:
    entity: ExportEntity
    export_id: str
    definition: ExportDefinition
    created_at: datetime
    status: str = CREATED
    queued_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    file: bytes = b""
    records: int = 0

    def as_json(self) -> dict:
        moments = {
            "createdAt": self.created_at,
            "queuedAt": self.queued_at,
            "startedAt": self.started_at,
            "finishedAt": self.finished_at,
        }
        body: dict[str, Any] = {
            "exportId": self.export_id,
            "format": self.definition.format,
            "status": self.status,
            **{name: marketo_time(moment) for name, moment in moments.items() if moment is not None},
        }
        if self.status == COMPLETED:
            body |= {
                "numberOfRecords": self.records,
                "fileSize": len(self.file),
                "fileChecksum": f"sha256:{hashlib.sha256(self.file).hexdigest()}",
            }
        return body


class BulkExports:
    """The export jobs of the one API user, in creation order, and Marketo's queue over them."""

    def __init__(self, clock: Callable[[], datetime] = lambda: datetime.now(UTC)):
        self.clock = clock
        self._jobs: dict[str, ExportJob] = {}
        self._lock = threading.Lock()

    def create(self, entity: ExportEntity, definition: ExportDefinition, limits: Limits) -> ExportJob:
        with self._lock:
            self._forget_expired()
            self._check_daily_allocation(limits)
            job = ExportJob(entity, str(uuid.uuid4()), definition, self.clock())
            self._jobs[job.export_id] = job
            return job

    def enqueue(self, entity: ExportEntity, export_id: str, limits: Limits) -> ExportJob:
        with self._lock:
            job = self._job(entity, export_id)
            if job.status != CREATED:
                raise MarketoError("1029", "Job already queued")
            self._check_daily_allocation(limits)
            if len(self._in(QUEUED, PROCESSING)) >= MAX_JOBS_IN_QUEUE:
                raise MarketoError("1029", "Too many jobs in queue")
            job.status, job.queued_at = QUEUED, self.clock()
            return job

    def poll(self, entity: ExportEntity, export_id: str) -> ExportJob:
        with self._lock:
            job = self._job(entity, export_id)
            self._advance_queue()
            return job

    def cancel(self, entity: ExportEntity, export_id: str) -> ExportJob:
        with self._lock:
            job = self._job(entity, export_id)
            if job.status not in (CREATED, QUEUED, PROCESSING):
                # Not documented; a finished job has nothing left to cancel.
                raise MarketoError("1003", f"Export job is {job.status} and cannot be cancelled")
            job.status, job.file, job.records = CANCELLED, b"", 0
            return job

    def completed_file(self, entity: ExportEntity, export_id: str) -> ExportJob | None:
        with self._lock:
            self._forget_expired()
            job = self._jobs.get(export_id)
            return job if job is not None and job.entity == entity and job.status == COMPLETED else None

    def listing(self, entity: ExportEntity, statuses: set[str], after: int, batch_size: int) -> tuple[list, bool]:
        """A page of the entity's jobs of these statuses (all when empty), after the ``after``-th."""
        with self._lock:
            self._forget_expired()
            jobs = [job for job in self._jobs.values() if job.entity == entity]
            selected = [
                (number, job)
                for number, job in enumerate(jobs, start=1)
                if number > after and (not statuses or job.status in statuses)
            ]
            return selected[:batch_size], len(selected) > batch_size

    def _job(self, entity: ExportEntity, export_id: str) -> ExportJob:
        self._forget_expired()
        job = self._jobs.get(export_id)
        if job is None or job.entity != entity:
            # Marketo documents no code for an unknown export id; 1013 is its "Object not found".
            raise MarketoError("1013", f"Export job '{export_id}' not found")
        return job

    def _in(self, *statuses: str) -> list[ExportJob]:
        return [job for job in self._jobs.values() if job.status in statuses]

    def _advance_queue(self) -> None:
        now = self.clock()
        for job in self._in(PROCESSING):
            job.status, job.finished_at = COMPLETED, now
        for job in self._in(QUEUED)[: MAX_JOBS_PROCESSING - len(self._in(PROCESSING))]:
            job.status, job.started_at = PROCESSING, now
            job.file, job.records = job.definition.render()

    def _check_daily_allocation(self, limits: Limits) -> None:
        today = self.clock().astimezone(QUOTA_DAY_ZONE).date()
        exported_today = sum(
            len(job.file)
            for job in self._in(COMPLETED)
            if job.finished_at is not None and job.finished_at.astimezone(QUOTA_DAY_ZONE).date() == today
        )
        if exported_today >= limits.marketing_daily_export_bytes:
            raise MarketoError("1029", "Export daily quota exceeded")

    def _forget_expired(self) -> None:
        oldest = self.clock() - RETENTION
        for export_id in [export_id for export_id, job in self._jobs.items() if job.created_at < oldest]:
            del self._jobs[export_id]


# --- what a create call asks for ------------------------------------------------------------------


def lead_export(records: MarketingStore, body: dict) -> ExportDefinition:
    names = body.get("fields")
    if not names:
        raise MarketoError("701", "fields cannot be blank")
    if not isinstance(names, list):
        raise MarketoError("1003", "fields must be a list of field names")
    unknown = [name for name in names if name not in LEAD_FIELDS_BY_NAME]
    if unknown:
        raise MarketoError("1006", f"Field '{unknown[0]}' not found")
    fields = [LEAD_FIELDS_BY_NAME[name] for name in names]
    filters = _filters(body)
    if len(filters) != 1:
        raise MarketoError("1003", "Exactly one filter type must be specified")
    ((filter_type, window),) = filters.items()
    if filter_type not in LEAD_DATE_FILTERS:
        # The company keeps no static or smart lists: Marketo's answer where a filter is unavailable.
        raise MarketoError("1035", "Unsupported filter type for target subscription")
    start, end = _date_range(filter_type, window)

    def read_rows() -> Iterable[list[Any]]:
        for lead in records.leads_in_window(filter_type, start, end):
            yield [None if lead.get(field.name) is None else field.present(lead[field.name]) for field in fields]

    return ExportDefinition(_format(body), _header(body, names), read_rows)


def activity_export(records: MarketingStore, body: dict) -> ExportDefinition:
    columns = body.get("fields") or list(ACTIVITY_COLUMNS)
    allowed = (*ACTIVITY_COLUMNS, ACTION_RESULT)
    if not isinstance(columns, list) or any(column not in allowed for column in columns):
        raise MarketoError("1003", f"fields must be a list of: {', '.join(allowed)}")
    filters = _filters(body)
    if "createdAt" not in filters:
        raise MarketoError("701", "createdAt cannot be blank")
    unsupported = set(filters) - {"createdAt", "activityTypeIds"}
    if unsupported:
        raise MarketoError("1035", f"Unsupported filter type '{min(unsupported)}'")
    start, end = _date_range("createdAt", filters["createdAt"])
    type_ids = _activity_type_ids(filters.get("activityTypeIds"))

    def read_rows() -> Iterable[list[Any]]:
        for activity in records.activities_in_window(start, end, type_ids):
            cells = {
                **activity,
                "attributes": _attributes_json(activity["attributes"]),
                ACTION_RESULT: "succeeded",
            }
            yield [cells.get(column) for column in columns]

    return ExportDefinition(_format(body), _header(body, columns), read_rows)


EXPORT_DEFINITIONS: dict[ExportEntity, Callable[[MarketingStore, dict], ExportDefinition]] = {
    "leads": lead_export,
    "activities": activity_export,
}


def _filters(body: dict) -> dict:
    filters = body.get("filter")
    if not filters:
        raise MarketoError("701", "filter cannot be blank")
    if not isinstance(filters, dict):
        raise MarketoError("1003", "filter must be an object")
    return filters


def _date_range(name: str, window: Any) -> tuple[datetime, datetime]:
    if not isinstance(window, dict):
        raise MarketoError("1003", f"{name} must be an object with startAt and endAt")
    bounds = []
    for bound in ("startAt", "endAt"):
        if not window.get(bound):
            raise MarketoError("701", f"{name}.{bound} cannot be blank")
        bounds.append(client_time(str(window[bound])))
    start, end = bounds
    if not start <= end <= start + MAX_DATE_RANGE:
        raise MarketoError("1003", f"{name}: endAt must follow startAt by at most 31 days")
    return start, end


def _activity_type_ids(listed: Any) -> set[int]:
    """The asked-for types; every type but "Delete Lead" (which Bulk Extract does not serve) when none."""
    if listed is None:
        return ACTIVITY_TYPE_IDS - {DELETE_LEAD}
    if not isinstance(listed, list) or not listed or not all(isinstance(t, int) for t in listed):
        raise MarketoError("1003", "activityTypeIds must be a list of activity type ids")
    unknown = set(listed) - (ACTIVITY_TYPE_IDS - {DELETE_LEAD})
    if unknown:
        raise MarketoError("1003", f"Invalid activity type id '{min(unknown)}'")
    return set(listed)


def _format(body: dict) -> str:
    export_format = body.get("format") or "CSV"
    if export_format not in DELIMITERS:
        raise MarketoError("1003", f"Invalid format '{export_format}'; one of CSV, TSV, SSV")
    return str(export_format)


def _header(body: dict, columns: list[str]) -> list[str]:
    renamed = body.get("columnHeaderNames") or {}
    if not isinstance(renamed, dict) or any(name not in columns for name in renamed):
        raise MarketoError("1003", "columnHeaderNames may only rename exported fields")
    return [str(renamed.get(column, column)) for column in columns]


def _attributes_json(attributes: list[dict]) -> str | None:
    """An activity's attributes as the export writes them: one JSON object, name to value."""
    if not attributes:
        return None
    return json.dumps({attribute["name"]: attribute.get("value") for attribute in attributes}, separators=(",", ":"))
