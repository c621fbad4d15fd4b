"""The marketing-automation stand-in: Marketo's REST API shape (identity, leads, activities, programs).

Responses and errors follow Marketo's public reference (developer.adobe.com/marketo-apis and the
Marketo developer guides on experienceleague.adobe.com), so that Marketo's own SDK and Handoff's
pipeline cannot tell the difference for the endpoints served here. Marketo's habits that clients
must survive are reproduced on purpose:

- errors come inside HTTP 200 bodies (``success: false``, codes as strings); only the identity
  endpoint answers bad credentials with HTTP 401;
- access tokens expire after ``Limits.marketing_token_ttl_s``; asking again while one is live hands
  out the same token with its remaining lifetime;
- 100 calls per 20 s (606), 10 calls in flight (615) and a daily quota that resets at midnight US
  Central time (607), all scaled by the ``pressure`` fault; calls answered with an error are not
  counted, as Marketo documents;
- an activity page scans ``batchSize`` activities of every type and stops at the end of a calendar
  month (a storage partition), so pages can be short or empty while ``moreResult`` is true, and a
  page without activities has no ``result`` member at all;
- the asset API writes its dates as ``2015-11-18T15:25:35Z+0000``.

Data shared with whoever writes a dataset: ``LEAD_FIELDS`` (the ids and display names a "Change
Data Value" activity refers to) and ``ACTIVITY_TYPES``; a deleted lead is listed by
``deletedleads.json`` through its "Delete Lead" activity.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import secrets
import sqlite3
import threading
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from starlette.routing import Match

from sandbox.dataset import iso, parse_iso
from sandbox.faults import Limits
from sandbox.store import SandboxStore

logger = logging.getLogger(__name__)

RATE_WINDOW_S = 20
QUOTA_DAY_ZONE = ZoneInfo("America/Chicago")  # Marketo's daily quota resets at 12:00 AM Central time
API_USER = "handoff-api@sandbox.example"  # a token's scope: the API-only user owning the service
MAX_ACTIVITY_TYPES_PER_CALL = 10
MAX_LEAD_IDS_PER_ACTIVITY_CALL = 30
MAX_FILTER_MATCHES = 1000
DEFAULT_PROGRAMS_PER_CALL, MAX_PROGRAMS_PER_CALL = 20, 200
MAX_MEMBER_UPDATE_WINDOW = timedelta(days=7)
SYNC_ACTIONS = ("createOrUpdate", "createOnly", "updateOnly", "createDuplicate")
NO_PROGRAMS_WARNING = "No assets found for the given search criteria."
HTTP_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


class MarketoError(Exception):
    """A response-level error: HTTP 200 with ``success: false`` and Marketo's code as a string."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code} {message}")
        self.code, self.message = code, message

    def response(self, request_id: str | None = None) -> JSONResponse:
        return JSONResponse({"requestId": request_id or new_request_id(), "success": False,
                             "errors": [{"code": self.code, "message": self.message}]})


class RecordSkipped(Exception):
    """A record-level error: the record is answered ``skipped`` with a reason; the call goes on."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message

    def result(self) -> dict:
        return {"status": "skipped", "reasons": [{"code": self.code, "message": self.message}]}


def new_request_id() -> str:
    """Marketo's request id shape, e.g. ``e42b#14272d07d78``."""
    return f"{secrets.token_hex(2)}#{int(time.time() * 1000):x}"


def invalid_request_response(error: RequestValidationError) -> JSONResponse:
    """The answer to a call under the Marketo prefix that FastAPI could not parse."""
    problems = error.errors()
    if any(problem["type"] == "json_invalid" for problem in problems):
        return MarketoError("609", "Invalid JSON").response()
    if any(problem["loc"][:1] == ("path",) for problem in problems):
        # A URI that does not fit a resource's pattern, e.g. a lead id that is not a number.
        return MarketoError("610", "Requested resource not found").response()
    detail = "; ".join(f"{'.'.join(map(str, problem['loc'][1:]))}: {problem['msg']}" for problem in problems)
    return MarketoError("1003", f"Invalid data: {detail}").response()


def utc(moment: datetime) -> datetime:
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)


def marketo_time(moment: str | datetime) -> str:
    """Marketo's REST datetime: UTC, whole seconds, ``Z``."""
    return utc(parse_iso(moment) if isinstance(moment, str) else moment).strftime("%Y-%m-%dT%H:%M:%SZ")


def asset_time(moment: str) -> str:
    """The asset API's datetime, ``2015-11-18T15:25:35Z+0000``: odd, but what Marketo writes."""
    return marketo_time(moment) + "+0000"


def client_time(text: str) -> datetime:
    """An ISO 8601 datetime sent by a client (offset or ``Z``; UTC when it has neither)."""
    try:
        return utc(datetime.fromisoformat(text))
    except ValueError:
        raise MarketoError("704", "Invalid date format") from None


# --- what the lead database holds ------------------------------------------------------------------

@dataclass(frozen=True)
class LeadField:
    id: int
    name: str  # the REST API name
    display_name: str
    data_type: str
    length: int | None = None
    read_only: bool = False
    custom: bool = False

    @property
    def searchable(self) -> bool:
        # Marketo filters and looks leads up by id, email and custom string or integer fields only.
        return self.name in ("id", "email") or (self.custom and self.data_type in ("string", "integer"))

    def describe(self) -> dict:
        """The field as ``leads/describe.json`` lists it."""
        return {"id": self.id, "displayName": self.display_name, "dataType": self.data_type,
                **({"length": self.length} if self.length else {}),
                "rest": {"name": self.name, "readOnly": self.read_only}}

    def describe2(self) -> dict:
        """The field as ``leads/describe2.json`` lists it."""
        return {"name": self.name, "displayName": self.display_name, "dataType": self.data_type,
                **({"length": self.length} if self.length else {}),
                "updateable": not self.read_only, "crmManaged": False}

    def present(self, value: Any) -> Any:
        return marketo_time(value) if self.data_type == "datetime" else value

    def accept(self, value: Any) -> Any:
        """A value written to the field as Marketo keeps it; ``ValueError`` with Marketo's message
        (code 1001) when it does not fit."""
        if value is None:
            return None
        try:
            if isinstance(value, (bool, dict, list)):
                raise ValueError(value)
            if self.data_type == "integer":
                if isinstance(value, float) and not value.is_integer():
                    raise ValueError(value)
                return int(value)
            if self.data_type == "currency":
                return float(value)
            if self.length and len(str(value)) > self.length:
                raise ValueError(value)
            return str(value)
        except ValueError:
            raise ValueError(f"Invalid value '{value}'. Required of type '{self.data_type}'") from None


LEAD_FIELDS = (
    LeadField(1, "id", "Id", "integer", read_only=True),
    LeadField(2, "company", "Company Name", "string", 255),
    LeadField(47, "title", "Job Title", "string", 255),
    LeadField(48, "firstName", "First Name", "string", 255),
    LeadField(50, "lastName", "Last Name", "string", 255),
    LeadField(51, "email", "Email Address", "email", 255),
    LeadField(56, "leadScore", "Lead Score", "integer"),
    LeadField(57, "leadStatus", "Lead Status", "string", 255),
    LeadField(58, "leadSource", "Lead Source", "string", 255),
    LeadField(61, "createdAt", "Created At", "datetime", read_only=True),
    LeadField(62, "updatedAt", "Updated At", "datetime", read_only=True),
    # The company has installed Handoff's own fields, which the write-back fills with sales outcomes.
    LeadField(3001, "handoffSalesOutcome", "Handoff Sales Outcome", "string", 255, custom=True),
    LeadField(3002, "handoffRejectionReason", "Handoff Rejection Reason", "string", 255, custom=True),
    LeadField(3003, "handoffOpportunityStage", "Handoff Opportunity Stage", "string", 255, custom=True),
    LeadField(3004, "handoffWonRevenue", "Handoff Won Revenue", "currency", custom=True),
)
LEAD_FIELDS_BY_NAME = {field.name: field for field in LEAD_FIELDS}
LEAD_FIELDS_BY_ID = {field.id: field for field in LEAD_FIELDS}
LEAD_FIELDS_BY_DISPLAY_NAME = {field.display_name: field for field in LEAD_FIELDS}
DEFAULT_LEAD_FIELDS = ("id", "updatedAt", "lastName", "email", "createdAt", "firstName")


@dataclass(frozen=True)
class ActivityType:
    id: int
    name: str
    description: str
    primary_attribute: tuple[str, str] | None  # (name, dataType)
    attributes: tuple[tuple[str, str], ...]

    def as_json(self) -> dict:
        return {"id": self.id, "name": self.name, "description": self.description,
                **({"primaryAttribute": {"name": self.primary_attribute[0], "dataType": self.primary_attribute[1]}}
                   if self.primary_attribute else {}),
                "attributes": [{"name": name, "dataType": data_type} for name, data_type in self.attributes]}


_EMAIL_RUN = (("Campaign Run ID", "integer"), ("Choice Number", "integer"), ("Step ID", "integer"))
_EMAIL_CLIENT = (("Device", "string"), ("Is Mobile Device", "boolean"), ("Platform", "string"),
                 ("User Agent", "string"))
_API_WRITE = (("Api Method Name", "string"), ("Modifying User", "string"), ("Request Id", "string"))
ACTIVITY_TYPES = (
    ActivityType(1, "Visit Webpage", "User visits a web page", ("Webpage ID", "integer"), (
        ("Client IP Address", "string"), ("Query Parameters", "string"), ("Referrer URL", "string"),
        ("Search Engine", "string"), ("Search Query", "string"), ("Token", "string"),
        ("User Agent", "string"), ("Webpage URL", "string"))),
    ActivityType(2, "Fill Out Form", "User fills out and submits form on web page", ("Webform ID", "integer"), (
        ("Client IP Address", "string"), ("Form Fields", "text"), ("Query Parameters", "string"),
        ("Referrer URL", "string"), ("User Agent", "string"), ("Webpage ID", "integer"))),
    ActivityType(6, "Send Email", "Send Marketo Email to a person", ("Mailing ID", "integer"), _EMAIL_RUN),
    ActivityType(7, "Email Delivered", "Marketo Email is delivered to a person", ("Mailing ID", "integer"),
                 _EMAIL_RUN),
    ActivityType(10, "Open Email", "User opens Marketo Email", ("Mailing ID", "integer"),
                 _EMAIL_RUN + _EMAIL_CLIENT),
    ActivityType(11, "Click Email", "User clicks on a link in a Marketo Email", ("Mailing ID", "integer"),
                 _EMAIL_RUN + _EMAIL_CLIENT + (("Link", "string"),)),
    ActivityType(12, "New Lead", "New person/record is added to the lead database", None, (
        ("Created Date", "date"), ("Form Name", "string"), ("Lead Source", "string"), ("List Name", "string"),
        ("Source Type", "string")) + _API_WRITE),
    ActivityType(13, "Change Data Value", "Changed attribute value for a person", ("Attribute Name", "integer"), (
        ("New Value", "string"), ("Old Value", "string"), ("Reason", "string"), ("Source", "string"))
        + _API_WRITE),
    ActivityType(22, "Change Score", "Changed score value for a person", ("Attribute Name", "integer"), (
        ("Change Value", "string"), ("New Value", "integer"), ("Old Value", "integer"), ("Reason", "string"),
        ("Urgency", "float"), ("Priority", "integer"), ("Relative Score", "integer"),
        ("Relative Urgency", "integer"))),
    ActivityType(32, "Merge Leads", "Merge two or more duplicate persons into a single record", ("Lead ID", "integer"), (
        ("Master Updated", "boolean"), ("Merge Fields", "string"), ("Merge IDs", "string"),
        ("Merge Source", "string"), ("Merged in Sales", "boolean"))),
    ActivityType(37, "Delete Lead", "Delete a person from the lead database", ("Lead ID", "integer"), (
        ("Remove from CRM", "boolean"),)),
    ActivityType(104, "Change Status in Progression", "Changes the program status of a person in a program",
                 ("Program ID", "integer"), (
        ("Acquired By", "boolean"), ("New Status", "string"), ("New Status ID", "integer"),
        ("Old Status", "string"), ("Old Status ID", "integer"), ("Program Member ID", "integer"),
        ("Reason", "string"), ("Success", "boolean"))),
)
ACTIVITY_TYPE_IDS = {activity_type.id for activity_type in ACTIVITY_TYPES}
NEW_LEAD, CHANGE_DATA_VALUE, DELETE_LEAD = 12, 13, 37
ACTIVITY_KEYS = ("id", "marketoGUID", "leadId", "activityDate", "activityTypeId", "campaignId",
                 "primaryAttributeValueId", "primaryAttributeValue", "attributes")
CHANGED_VALUE_ATTRIBUTES = ("New Value", "Old Value")

# Program member fields: REST name -> the dataset's name for it.
MEMBER_FIELDS = {"acquiredBy": "acquiredBy", "leadId": "leadId", "membershipDate": "membershipDate",
                 "programId": "programId", "reachedSuccess": "reachedSuccess",
                 "statusName": "progressionStatus", "updatedAt": "updatedAt"}
MEMBER_FIELD_TYPES = {"acquiredBy": "boolean", "leadId": "integer", "membershipDate": "datetime",
                      "programId": "integer", "reachedSuccess": "boolean", "statusName": "string",
                      "updatedAt": "datetime"}
DEFAULT_MEMBER_FIELDS = ("leadId", "reachedSuccess", "programId", "acquiredBy", "membershipDate")
MEMBER_FILTER_TYPES = ("leadId", "reachedSuccess", "statusName", "updatedAt")


# --- request parameters and paging tokens ----------------------------------------------------------

class Params:
    """A call's parameters, from the query string or from a form body sent as ``POST`` with
    ``_method=GET`` (Marketo's way around 8 KB URLs); lists may be comma-separated or repeated."""

    def __init__(self, pairs: Iterable[tuple[str, str]]):
        self._values: dict[str, list[str]] = {}
        for name, value in pairs:
            self._values.setdefault(name, []).append(value)

    @classmethod
    def of(cls, request: Request, body: bytes = b"") -> Params:
        form = []
        if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            form = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        return cls([*request.query_params.multi_items(), *form])

    def text(self, name: str) -> str | None:
        filled = [value.strip() for value in self._values.get(name, []) if value.strip()]
        return filled[0] if filled else None

    def required(self, name: str) -> str:
        value = self.text(name)
        if value is None:
            raise MarketoError("701", f"{name} cannot be blank")
        return value

    def listed(self, name: str, most: int | None = None) -> list[str]:
        values = [part.strip() for value in self._values.get(name, []) for part in value.split(",") if part.strip()]
        if most is not None and len(values) > most:
            raise MarketoError("1003", f"{name} has {len(values)} values; at most {most} are allowed")
        return values

    def integers(self, name: str, most: int) -> set[int]:
        return {_integer(name, value) for value in self.listed(name, most)}

    def integer(self, name: str, default: int, lowest: int, highest: int) -> int:
        raw = self.text(name)
        if raw is None:
            return default
        value = _integer(name, raw)
        if not lowest <= value <= highest:
            raise MarketoError("1003", f"{name} must be between {lowest} and {highest}, got {value}")
        return value

    def moment(self, name: str) -> datetime | None:
        raw = self.text(name)
        return None if raw is None else client_time(raw)


def _integer(name: str, raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise MarketoError("1001", f"Invalid value '{raw}'. Required of type 'integer' for {name}") from None


def paging_token(*parts: object) -> str:
    """An opaque token as Marketo hands them out: base32 of the position it stands for."""
    return base64.b32encode(",".join(map(str, parts)).encode()).decode()


def _token_parts(token: str, count: int) -> list[str]:
    try:
        parts = base64.b32decode(token + "=" * (-len(token) % 8)).decode().split(",")
    except (binascii.Error, UnicodeDecodeError):
        parts = []
    if len(parts) != count:
        raise MarketoError("1003", f"Invalid nextPageToken '{token}'")
    return parts


def _position_after(params: Params) -> int:
    """The id a position-based listing (leads, program members) resumes after."""
    token = params.text("nextPageToken")
    if token is None:
        return 0
    (last_id,) = _token_parts(token, 1)
    if not last_id.isdigit():
        raise MarketoError("1003", f"Invalid nextPageToken '{token}'")
    return int(last_id)


@dataclass(frozen=True)
class ActivityPosition:
    """Where a date-based listing stands: after this activity date (as the dataset writes dates, so
    they compare as text) and, within that date, after this activity id."""

    activity_date: str
    activity_id: int

    @classmethod
    def since(cls, moment: datetime) -> ActivityPosition:
        return cls(iso(moment), 0)

    @classmethod
    def from_token(cls, token: str) -> ActivityPosition:
        activity_date, activity_id = _token_parts(token, 2)
        try:
            parse_iso(activity_date)
            return cls(activity_date, int(activity_id))
        except ValueError:
            raise MarketoError("1003", f"Invalid nextPageToken '{token}'") from None

    def token(self) -> str:
        return paging_token(self.activity_date, self.activity_id)


@dataclass
class ActivityPage:
    activities: list[dict]
    position: ActivityPosition
    more: bool


# --- the records -----------------------------------------------------------------------------------

class MarketingStore:
    """The marketing system's records in the sandbox store; what is written through the API is kept,
    logged as activities the way Marketo logs them, and reads back."""

    def __init__(self, store: SandboxStore):
        self.store = store

    def lead(self, lead_id: int) -> dict | None:
        row = self.store.query_one("select id, body from marketing_leads where id = ? and deleted_at is null",
                                   (lead_id,))
        return _lead_body(row) if row else None

    def find_leads(self, field: LeadField, values: list[str], after_id: int, limit: int) -> tuple[list[dict], bool]:
        condition, parameters = _lead_condition(field, [_filter_value(field, value) for value in values])
        matches = self.store.query_one(f"select count(*) from marketing_leads where {condition}", parameters)[0]
        if matches > MAX_FILTER_MATCHES:
            raise MarketoError("1003", "Too many results match the filter")
        rows = self.store.query(f"select id, body from marketing_leads where {condition} and id > ? order by id limit ?",
                                (*parameters, after_id, limit + 1))
        return [_lead_body(row) for row in rows[:limit]], len(rows) > limit

    def sync_leads(self, action: str, lookup: LeadField, records: list, request_id: str) -> list[dict]:
        with self.store.transaction() as db:
            log = ActivityLog(db, request_id)
            return [self._sync_lead(db, log, action, lookup, record) for record in records]

    def _sync_lead(self, db: sqlite3.Connection, log: ActivityLog, action: str, lookup: LeadField,
                   record: Any) -> dict:
        try:
            if not isinstance(record, dict):
                raise RecordSkipped("1003", "Invalid data")
            if "id" in record and action != "updateOnly":
                raise RecordSkipped("1003", "Invalid data: id may only be sent with action updateOnly")
            values = _accepted_values(record)
            if action == "createDuplicate":
                return {"id": self._create_lead(db, log, values), "status": "created"}
            key = _accepted(lookup, record.get(lookup.name))
            matches = [] if key is None else _leads_matching(db, lookup, key)
            if len(matches) > 1 and action != "createOnly":
                raise RecordSkipped("1007", "Multiple leads match the lookup criteria")
            if matches and action == "createOnly":
                raise RecordSkipped("1005", "Lead already exists")
            if not matches and action == "updateOnly":
                raise RecordSkipped("1004", "Lead not found")
            if matches:
                return {"id": self._update_lead(db, log, _lead_body(matches[0]), values), "status": "updated"}
            return {"id": self._create_lead(db, log, values), "status": "created"}
        except RecordSkipped as skipped:
            return skipped.result()

    def _create_lead(self, db: sqlite3.Connection, log: ActivityLog, values: dict) -> int:
        lead_id = db.execute("select coalesce(max(id), 0) + 1 from marketing_leads").fetchone()[0]
        body = {"id": lead_id, **{name: value for name, value in values.items() if value is not None},
                "createdAt": log.now, "updatedAt": log.now}
        db.execute("insert into marketing_leads (id, email, updated_at, body) values (?, ?, ?, ?)",
                   (lead_id, body.get("email"), log.now, json.dumps(body)))
        log.append(lead_id, NEW_LEAD, None, {"Source Type": "Web service API", "Created Date": log.now[:10]})
        return lead_id

    def _update_lead(self, db: sqlite3.Connection, log: ActivityLog, body: dict, values: dict) -> int:
        changes = {name: (body.get(name), value) for name, value in values.items() if body.get(name) != value}
        if changes:  # an unchanged lead keeps its updatedAt, so re-sending a value is a no-op
            for name, (old, new) in changes.items():
                if new is None:
                    body.pop(name, None)
                else:
                    body[name] = new
                field = LEAD_FIELDS_BY_NAME[name]
                log.append(body["id"], CHANGE_DATA_VALUE, (field.id, field.display_name),
                           {"New Value": new, "Old Value": old, "Reason": "Web service API",
                            "Source": "Web service API"})
            body["updatedAt"] = log.now
            db.execute("update marketing_leads set email = ?, updated_at = ?, body = ? where id = ?",
                       (body.get("email"), log.now, json.dumps(body), body["id"]))
        return body["id"]

    def activity_page(self, after: ActivityPosition, scan_size: int,
                      wanted: Callable[[sqlite3.Row], bool]) -> ActivityPage:
        """The activities of interest among the next ``scan_size`` activities of any type."""
        rows = self.store.query(
            """select id, lead_id, activity_date, activity_type_id, body from marketing_activities
               where (activity_date, id) > (?, ?) order by activity_date, id limit ?""",
            (after.activity_date, after.activity_id, scan_size + 1))
        scanned = _within_first_partition(rows[:scan_size])
        position = ActivityPosition(scanned[-1]["activity_date"], scanned[-1]["id"]) if scanned else after
        return ActivityPage([_activity_body(row) for row in scanned if wanted(row)], position,
                            more=len(rows) > len(scanned))

    def programs(self) -> list[dict]:
        return [json.loads(row["body"]) for row in self.store.query("select body from marketing_programs order by id")]

    def program_members(self, program_id: int, condition: tuple[str, tuple], after_lead_id: int,
                        limit: int) -> tuple[list[dict], bool]:
        where, parameters = condition
        rows = self.store.query(
            f"""select body from marketing_program_members where program_id = ? and {where} and lead_id > ?
                order by lead_id limit ?""", (program_id, *parameters, after_lead_id, limit + 1))
        return [json.loads(row["body"]) for row in rows[:limit]], len(rows) > limit


class ActivityLog:
    """The activities one write causes, numbered after the last activity and dated at the write."""

    def __init__(self, db: sqlite3.Connection, request_id: str):
        self._db, self._request_id = db, request_id
        self.now = iso(datetime.now(timezone.utc))
        self._next_id = db.execute("select coalesce(max(id), 0) + 1 from marketing_activities").fetchone()[0]

    def append(self, lead_id: int, type_id: int, primary: tuple[int, str] | None, attributes: dict) -> None:
        activity_id, self._next_id = self._next_id, self._next_id + 1
        attributes = {**attributes, "Api Method Name": "syncLead", "Modifying User": API_USER,
                      "Request Id": self._request_id}
        body = {"id": activity_id, "marketoGUID": str(activity_id), "leadId": lead_id, "activityDate": self.now,
                "activityTypeId": type_id,
                **({"primaryAttributeValueId": primary[0], "primaryAttributeValue": primary[1]} if primary else {}),
                "attributes": [{"name": name, "value": value} for name, value in attributes.items()]}
        self._db.execute("""insert into marketing_activities (id, lead_id, activity_date, activity_type_id, body)
                            values (?, ?, ?, ?, ?)""", (activity_id, lead_id, self.now, type_id, json.dumps(body)))


def _lead_body(row: sqlite3.Row) -> dict:
    return {**json.loads(row["body"]), "id": row["id"]}


def _lead_condition(field: LeadField, values: list) -> tuple[str, tuple]:
    column = {"id": "id", "email": "email"}.get(field.name, f"json_extract(body, '$.{field.name}')")
    return f"deleted_at is null and {column} in ({', '.join('?' * len(values))})", tuple(values)


def _leads_matching(db: sqlite3.Connection, field: LeadField, key: Any) -> list[sqlite3.Row]:
    condition, parameters = _lead_condition(field, [key])
    return db.execute(f"select id, body from marketing_leads where {condition} order by id", parameters).fetchall()


def _filter_value(field: LeadField, value: str) -> Any:
    try:
        return field.accept(value)
    except ValueError as mismatch:
        raise MarketoError("1001", str(mismatch)) from None


def _accepted(field: LeadField, value: Any) -> Any:
    try:
        return field.accept(value)
    except ValueError as mismatch:
        raise RecordSkipped("1001", str(mismatch)) from None


def _accepted_values(record: dict) -> dict:
    """The field values a sync record writes (``id`` only ever identifies the lead)."""
    values = {}
    for name, value in record.items():
        if name == "id":
            continue
        field = LEAD_FIELDS_BY_NAME.get(name)
        if field is None:
            raise RecordSkipped("1006", f"Field '{name}' not found")
        if field.read_only:
            raise RecordSkipped("1003", f"Invalid data: field '{name}' is read only")
        values[name] = _accepted(field, value)
    return values


def _within_first_partition(rows: list[sqlite3.Row]) -> list[sqlite3.Row]:
    """Rows up to the end of the first row's calendar month: Marketo's pages never cross partitions."""
    month = rows[0]["activity_date"][:7] if rows else None
    kept = []
    for row in rows:
        if row["activity_date"][:7] != month:
            break
        kept.append(row)
    return kept


def _activity_body(row: sqlite3.Row) -> dict:
    stored = json.loads(row["body"])
    activity = {**stored, "id": row["id"], "marketoGUID": str(stored.get("marketoGUID") or row["id"]),
                "leadId": row["lead_id"], "activityDate": marketo_time(row["activity_date"]),
                "activityTypeId": row["activity_type_id"], "attributes": stored.get("attributes") or []}
    return {key: activity[key] for key in ACTIVITY_KEYS if activity.get(key) is not None}


def _lead_change(activity: dict, field_names: set[str]) -> dict | None:
    """A "New Lead" or a "Change Data Value" activity as ``leadchanges.json`` lists it, or ``None``
    for a change to a field not asked for."""
    changed = []
    if activity["activityTypeId"] == CHANGE_DATA_VALUE:
        field = (LEAD_FIELDS_BY_ID.get(activity.get("primaryAttributeValueId"))
                 or LEAD_FIELDS_BY_DISPLAY_NAME.get(activity.get("primaryAttributeValue")))
        if field is None or field.name not in field_names:
            return None
        values = {attribute["name"]: attribute.get("value") for attribute in activity["attributes"]}
        changed = [{"id": field.id, "name": field.name, "newValue": values.get("New Value"),
                    "oldValue": values.get("Old Value")}]
    return {**{key: activity[key] for key in ("id", "marketoGUID", "leadId", "activityDate", "activityTypeId")},
            "fields": changed,
            "attributes": [a for a in activity["attributes"] if a["name"] not in CHANGED_VALUE_ATTRIBUTES]}


def present_lead(lead: dict, fields: list[LeadField]) -> dict:
    """The lead's requested fields; Marketo leaves out the empty ones."""
    return {field.name: field.present(lead[field.name]) for field in fields if lead.get(field.name) is not None}


def present_member(member: dict, fields: list[str]) -> dict:
    presented = {}
    for name in fields:
        value = member.get(MEMBER_FIELDS[name], False if name == "acquiredBy" else None)
        if value is None:
            continue
        if MEMBER_FIELD_TYPES[name] == "datetime":
            value = marketo_time(value)
        elif MEMBER_FIELD_TYPES[name] == "integer":
            value = int(value)
        presented[name] = value
    return presented


def present_program(program: dict) -> dict:
    return {"id": int(program["id"]), "name": program.get("name"), "description": program.get("description", ""),
            "createdAt": asset_time(program["createdAt"]), "updatedAt": asset_time(program["updatedAt"]),
            "url": f"https://app-sandbox.marketo.com/#PG{program['id']}A1", "type": program.get("type"),
            "channel": program.get("channel"),
            "folder": program.get("folder", {"type": "Folder", "value": 1, "folderName": "Marketing Activities"}),
            "status": program.get("status", ""), "workspace": program.get("workspace", "Default")}


# --- credentials and limits ------------------------------------------------------------------------

class AccessTokens:
    """One live token per custom service: asked again while it lives, Marketo hands out the same token
    with its remaining lifetime. Expired tokens are remembered, so 602 (expired) is told from 601
    (never issued)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._expiry: dict[str, float] = {}
        self._live: str | None = None
        self._lock = threading.Lock()

    def issue(self, ttl_s: int) -> tuple[str, int]:
        with self._lock:
            now = self._clock()
            if self._live is None or self._expiry[self._live] <= now:
                self._live = f"{uuid.uuid4()}:sb"
                self._expiry[self._live] = now + ttl_s
            return self._live, int(self._expiry[self._live] - now)

    def check(self, token: str | None) -> None:
        if not token:
            raise MarketoError("600", "Access token not specified")
        expiry = self._expiry.get(token)
        if expiry is None:
            raise MarketoError("601", "Access token invalid")
        if expiry <= self._clock():
            raise MarketoError("602", "Access token expired")


class RequestLimiter:
    """Marketo's three budgets for REST calls: a sliding 20-second window, calls in flight, and a
    daily quota. A call answered with a response-level error gives back what it took."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._recent: deque[float] = deque()
        self._in_flight = 0
        self._quota_day = None
        self._spent_today = 0
        self._lock = threading.Lock()

    @contextmanager
    def admit(self, limits: Limits) -> Iterator[None]:
        with self._lock:
            now = self._clock()
            while self._recent and now - self._recent[0] >= RATE_WINDOW_S:
                self._recent.popleft()
            today = datetime.now(QUOTA_DAY_ZONE).date()
            if today != self._quota_day:
                self._quota_day, self._spent_today = today, 0
            if self._spent_today >= limits.marketing_daily_quota:
                raise MarketoError("607", "Daily quota reached")
            if len(self._recent) >= limits.marketing_requests_per_20s:
                raise MarketoError("606", f"Max rate limit '{limits.marketing_requests_per_20s}' exceeded "
                                          f"with in '{RATE_WINDOW_S}' secs")
            if self._in_flight >= limits.marketing_concurrent_requests:
                raise MarketoError("615", f"Concurrent access limit '{limits.marketing_concurrent_requests}' reached")
            self._recent.append(now)
            self._spent_today += 1
            self._in_flight += 1
        try:
            yield
        except BaseException:
            with self._lock:
                if now in self._recent:
                    self._recent.remove(now)
                if self._quota_day == today:
                    self._spent_today -= 1
            raise
        finally:
            with self._lock:
                self._in_flight -= 1


class MarketingStandIn:
    """The Marketo stand-in of one company: its records, the custom service's credentials, the tokens
    handed out, and the limits every REST call passes."""

    def __init__(self, store: SandboxStore, client_id: str, client_secret: str, limits: Limits):
        self.records = MarketingStore(store)
        self.client_id, self.client_secret = client_id, client_secret
        # Read on every call, so a test can tighten a running sandbox (a real day's quota is too big).
        self.limits = limits
        self.tokens = AccessTokens()
        self.limiter = RequestLimiter()

    def token_response(self, params: Params) -> JSONResponse:
        """The identity endpoint: OAuth 2.0 client credentials, answered in OAuth's own shape."""
        grant_type, client_id = params.text("grant_type"), params.text("client_id")
        if grant_type is None:
            return JSONResponse({"error": "invalid_request", "error_description": "Missing grant type"}, 400)
        if grant_type != "client_credentials":
            return JSONResponse({"error": "unsupported_grant_type",
                                 "error_description": f"Unsupported grant type: {grant_type}"}, 400)
        if client_id != self.client_id:
            return JSONResponse({"error": "unauthorized",
                                 "error_description": f"No client with requested id: {client_id}"}, 401)
        if not secrets.compare_digest((params.text("client_secret") or "").encode(), self.client_secret.encode()):
            return JSONResponse({"error": "invalid_client", "error_description": "Bad client credentials"}, 401)
        token, expires_in = self.tokens.issue(self.limits.marketing_token_ttl_s)
        return JSONResponse({"access_token": token, "token_type": "bearer", "expires_in": expires_in,
                             "scope": API_USER})

    async def answer(self, request: Request, handle: Callable[[Request], Awaitable[Response]]) -> Response:
        """Every REST call: token first, then the limits, then the resource, in Marketo's error shape."""
        request.state.request_id = new_request_id()
        try:
            self.tokens.check(_presented_token(request))
            with self.limiter.admit(self.limits):
                return await handle(request)
        except MarketoError as error:
            return error.response(request.state.request_id)
        except RequestValidationError:
            raise  # the app answers it, in Marketo's shape for this prefix
        except Exception:
            logger.exception("marketing stand-in failed on %s", request.url.path)
            return MarketoError("611", "System error").response(request.state.request_id)


def _presented_token(request: Request) -> str | None:
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return request.query_params.get("access_token")


def _gated_by(marketing: MarketingStandIn) -> type[APIRoute]:
    class MarketoRoute(APIRoute):
        """A REST resource reached only through the stand-in's token check and limits."""

        def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
            handle = super().get_route_handler()

            async def answer(request: Request) -> Response:
                return await marketing.answer(request, handle)

            return answer

    return MarketoRoute


# --- the API ---------------------------------------------------------------------------------------

def reply(request: Request, **members: Any) -> dict:
    return {"requestId": request.state.request_id, "success": True, **members}


def activity_reply(request: Request, page: ActivityPage, result: list[dict]) -> dict:
    # Marketo leaves ``result`` out of a page that has no activities.
    return reply(request, nextPageToken=page.position.token(), moreResult=page.more,
                 **({"result": result} if result else {}))


def _lead_fields(params: Params) -> list[LeadField]:
    names = params.listed("fields") or DEFAULT_LEAD_FIELDS
    unknown = [name for name in names if name not in LEAD_FIELDS_BY_NAME]
    if unknown:
        raise MarketoError("1006", f"Field '{unknown[0]}' not found")
    return [LEAD_FIELDS_BY_NAME[name] for name in names]


def _searchable_field(name: str) -> LeadField:
    field = LEAD_FIELDS_BY_NAME.get(name)
    if field is None:
        raise MarketoError("1006", f"Field '{name}' not found")
    if not field.searchable:
        raise MarketoError("1011", f"Field '{name}' not supported")
    return field


def _member_condition(params: Params, most_values: int) -> tuple[str, tuple]:
    filter_type = params.required("filterType")
    if filter_type not in MEMBER_FIELDS:
        raise MarketoError("1006", f"Field '{filter_type}' not found")
    if filter_type not in MEMBER_FILTER_TYPES:
        raise MarketoError("1011", f"Field '{filter_type}' not supported")
    if filter_type == "updatedAt":
        start, end = client_time(params.required("startAt")), client_time(params.required("endAt"))
        if not start <= end <= start + MAX_MEMBER_UPDATE_WINDOW:
            raise MarketoError("1003", "startAt must precede endAt by at most 7 days")
        return "updated_at >= ? and updated_at <= ?", (iso(start), iso(end))
    values = params.listed("filterValues", most_values)
    if not values:
        raise MarketoError("701", "filterValues cannot be blank")
    if filter_type == "leadId":
        return f"lead_id in ({', '.join('?' * len(values))})", tuple(_integer("filterValues", v) for v in values)
    if filter_type == "reachedSuccess":
        if any(value not in ("true", "false") for value in values):
            raise MarketoError("1001", "Invalid value for reachedSuccess. Required of type 'boolean'")
        return (f"json_extract(body, '$.reachedSuccess') in ({', '.join('?' * len(values))})",
                tuple(int(value == "true") for value in values))
    return f"json_extract(body, '$.progressionStatus') in ({', '.join('?' * len(values))})", tuple(values)


def _activity_type_ids(params: Params) -> set[int]:
    type_ids = params.integers("activityTypeIds", MAX_ACTIVITY_TYPES_PER_CALL)
    if not type_ids:
        raise MarketoError("701", "activityTypeIds cannot be blank")
    unknown = type_ids - ACTIVITY_TYPE_IDS
    if unknown:
        raise MarketoError("1003", f"Invalid activity type id '{min(unknown)}'")
    return type_ids


def _of_requested_leads(params: Params) -> Callable[[sqlite3.Row], bool]:
    if params.text("listId") is not None:
        raise MarketoError("1013", "Static list not found")  # the sandbox's company keeps no static lists
    lead_ids = params.integers("leadIds", MAX_LEAD_IDS_PER_ACTIVITY_CALL)
    return lambda row: not lead_ids or row["lead_id"] in lead_ids


def _json_body(request: Request, body: bytes) -> dict:
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
        raise MarketoError("612", "Invalid Content Type")
    try:
        parsed = json.loads(body)
    except ValueError:
        raise MarketoError("609", "Invalid JSON") from None
    if not isinstance(parsed, dict):
        raise MarketoError("609", "Invalid JSON")
    return parsed


def marketing_router(marketing: MarketingStandIn) -> APIRouter:
    records = marketing.records
    router = APIRouter()
    rest = APIRouter(route_class=_gated_by(marketing))

    @router.api_route("/identity/oauth/token", methods=["GET", "POST"])
    async def issue_token(request: Request) -> JSONResponse:
        return marketing.token_response(Params.of(request, await request.body()))

    def leads_by_filter(request: Request, params: Params) -> dict:
        most = marketing.limits.marketing_batch_records
        field = _searchable_field(params.required("filterType"))
        values = params.listed("filterValues", most)
        if not values:
            raise MarketoError("701", "filterValues cannot be blank")
        fields = _lead_fields(params)
        leads, more = records.find_leads(field, values, _position_after(params),
                                         params.integer("batchSize", most, 1, most))
        body = reply(request, result=[present_lead(lead, fields) for lead in leads])
        if more:
            body["nextPageToken"] = paging_token(leads[-1]["id"])
        return body

    def sync_leads(request: Request, body: dict) -> dict:
        action = body.get("action") or "createOrUpdate"
        if action not in SYNC_ACTIONS:
            raise MarketoError("1003", f"Invalid action '{action}'")
        lookup = _searchable_field(body.get("lookupField") or "email")
        inputs, most = body.get("input"), marketing.limits.marketing_batch_records
        if not inputs:
            raise MarketoError("701", "input cannot be blank")
        if not isinstance(inputs, list) or len(inputs) > most:
            raise MarketoError("1003", f"input must be a list of at most {most} records")
        return reply(request, result=records.sync_leads(action, lookup, inputs, request.state.request_id))

    @rest.get("/rest/v1/leads.json")
    def get_leads(request: Request) -> dict:
        return leads_by_filter(request, Params.of(request))

    @rest.post("/rest/v1/leads.json")
    async def post_leads(request: Request) -> dict:
        body = await request.body()
        params = Params.of(request, body)
        if params.text("_method") == "GET":
            return await run_in_threadpool(leads_by_filter, request, params)
        return await run_in_threadpool(sync_leads, request, _json_body(request, body))

    @rest.get("/rest/v1/lead/{lead_id}.json")
    def get_lead(request: Request, lead_id: int) -> dict:
        fields = _lead_fields(Params.of(request))
        lead = records.lead(lead_id)
        return reply(request, result=[present_lead(lead, fields)] if lead else [])

    @rest.get("/rest/v1/leads/describe.json")
    def describe_leads(request: Request) -> dict:
        return reply(request, result=[field.describe() for field in LEAD_FIELDS])

    @rest.get("/rest/v1/leads/describe2.json")
    def describe_leads2(request: Request) -> dict:
        return reply(request, result=[{
            "name": "API Lead",
            "searchableFields": [[field.name] for field in LEAD_FIELDS if field.searchable],
            "fields": [field.describe2() for field in LEAD_FIELDS]}])

    @rest.get("/rest/v1/activities/types.json")
    def activity_types(request: Request) -> dict:
        return reply(request, result=[activity_type.as_json() for activity_type in ACTIVITY_TYPES])

    @rest.get("/rest/v1/activities/pagingtoken.json")
    def activities_paging_token(request: Request) -> dict:
        since = client_time(Params.of(request).required("sinceDatetime"))
        return reply(request, nextPageToken=ActivityPosition.since(since).token())

    def activity_listing(params: Params) -> tuple[ActivityPosition, int, Callable[[sqlite3.Row], bool]]:
        most = marketing.limits.marketing_batch_records
        return (ActivityPosition.from_token(params.required("nextPageToken")),
                params.integer("batchSize", most, 1, most), _of_requested_leads(params))

    @rest.get("/rest/v1/activities.json")
    def lead_activities(request: Request) -> dict:
        params = Params.of(request)
        type_ids = _activity_type_ids(params)
        position, batch_size, of_leads = activity_listing(params)
        page = records.activity_page(position, batch_size,
                                     lambda row: row["activity_type_id"] in type_ids and of_leads(row))
        return activity_reply(request, page, page.activities)

    @rest.get("/rest/v1/activities/leadchanges.json")
    def lead_changes(request: Request) -> dict:
        params = Params.of(request)
        if not params.listed("fields"):
            raise MarketoError("701", "fields cannot be blank")
        field_names = {field.name for field in _lead_fields(params)}
        position, batch_size, of_leads = activity_listing(params)
        page = records.activity_page(
            position, batch_size,
            lambda row: row["activity_type_id"] in (NEW_LEAD, CHANGE_DATA_VALUE) and of_leads(row))
        changes = [_lead_change(activity, field_names) for activity in page.activities]
        return activity_reply(request, page, [change for change in changes if change])

    @rest.get("/rest/v1/activities/deletedleads.json")
    def deleted_leads(request: Request) -> dict:
        params = Params.of(request)
        most = marketing.limits.marketing_batch_records
        page = records.activity_page(ActivityPosition.from_token(params.required("nextPageToken")),
                                     params.integer("batchSize", most, 1, most),
                                     lambda row: row["activity_type_id"] == DELETE_LEAD)
        return activity_reply(request, page, page.activities)

    @rest.get("/rest/asset/v1/programs.json")
    def browse_programs(request: Request) -> dict:
        params = Params.of(request)
        max_return = params.integer("maxReturn", DEFAULT_PROGRAMS_PER_CALL, 1, MAX_PROGRAMS_PER_CALL)
        offset = params.integer("offset", 0, 0, 2**31 - 1)
        earliest, latest = params.moment("earliestUpdatedAt"), params.moment("latestUpdatedAt")
        status = params.text("status")
        filter_type = params.text("filterType")
        if filter_type not in (None, "id", "programId"):
            raise MarketoError("1003", f"filterType '{filter_type}' is not supported here")
        program_ids = params.integers("filterValues", MAX_PROGRAMS_PER_CALL) if filter_type else None
        selected = [
            program for program in records.programs()
            if (earliest is None or utc(parse_iso(program["updatedAt"])) >= earliest)
            and (latest is None or utc(parse_iso(program["updatedAt"])) <= latest)
            and (status is None or program.get("status") == status)
            and (program_ids is None or int(program["id"]) in program_ids)]
        page = selected[offset:offset + max_return]
        if not page:
            return reply(request, warnings=[NO_PROGRAMS_WARNING], errors=[])
        return reply(request, warnings=[], errors=[], result=[present_program(program) for program in page])

    @rest.get("/rest/v1/programs/members/describe.json")
    def describe_program_members(request: Request) -> dict:
        return reply(request, result=[{
            "name": "API Program Membership", "description": "Map for API program membership fields",
            "dedupeFields": ["leadId", "programId"],
            "searchableFields": [[name] for name in MEMBER_FILTER_TYPES],
            "fields": [{"name": name, "displayName": name, "dataType": data_type, "updateable": False,
                        "crmManaged": False} for name, data_type in MEMBER_FIELD_TYPES.items()]}])

    @rest.get("/rest/v1/programs/{program_id}/members.json")
    def program_members(request: Request, program_id: int) -> dict:
        params = Params.of(request)
        most = marketing.limits.marketing_batch_records
        condition = _member_condition(params, most)
        fields = params.listed("fields") or list(DEFAULT_MEMBER_FIELDS)
        unknown = [name for name in fields if name not in MEMBER_FIELDS]
        if unknown:
            raise MarketoError("1006", f"Field '{unknown[0]}' not found")
        members, more = records.program_members(program_id, condition, _position_after(params),
                                                params.integer("batchSize", most, 1, most))
        body = reply(request, result=[{"seq": seq, **present_member(member, fields)}
                                      for seq, member in enumerate(members)], moreResult=more)
        if more:
            body["nextPageToken"] = paging_token(int(members[-1]["leadId"]))
        return body

    router.include_router(rest)

    @router.api_route("/{path:path}", methods=HTTP_METHODS)
    def unknown_resource(request: Request, path: str) -> JSONResponse:
        # A known path called with another method is 605; anything else is not a resource (610).
        # The probe matches this router's own routes, whose paths do not carry the app's prefix.
        probe = {"type": "http", "path": f"/{path}", "method": request.method}
        resources = [route for route in (*router.routes, *rest.routes) if isinstance(route, APIRoute)]
        if any(route.matches(probe)[0] is Match.PARTIAL for route in resources):
            return MarketoError("605", "HTTP Method not supported").response()
        return MarketoError("610", "Requested resource not found").response()

    return router
