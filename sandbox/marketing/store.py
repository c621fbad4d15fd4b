"""The marketing system's records in the sandbox store: leads (read, looked up, synced, with the
activities a write logs), activity pages, programs and program members."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sandbox.dataset import iso
from sandbox.marketing.params import ActivityPage, ActivityPosition
from sandbox.marketing.schema import (
    ACTIVITY_KEYS,
    CHANGE_DATA_VALUE,
    LEAD_FIELDS_BY_NAME,
    NEW_LEAD,
    LeadField,
    MarketoError,
    RecordSkipped,
    marketo_time,
)
from sandbox.marketing.tokens import API_USER
from sandbox.store import SandboxStore

MAX_FILTER_MATCHES = 1000


class MarketingStore:
    """The marketing system's records in the sandbox store; what is written through the API is kept,
    logged as activities the way Marketo logs them, and reads back."""

    def __init__(self, store: SandboxStore):
        self.store = store

    def lead(self, lead_id: int) -> dict | None:
        row = self.store.query_one(
            "select id, body from marketing_leads where id = ? and deleted_at is null", (lead_id,)
        )
        return _lead_body(row) if row else None

    def find_leads(self, field: LeadField, values: list[str], after_id: int, limit: int) -> tuple[list[dict], bool]:
        condition, parameters = _lead_condition(field, [_filter_value(field, value) for value in values])
        matches = self.store.query_one(f"select count(*) from marketing_leads where {condition}", parameters)[0]
        if matches > MAX_FILTER_MATCHES:
            raise MarketoError("1003", "Too many results match the filter")
        rows = self.store.query(
            f"select id, body from marketing_leads where {condition} and id > ? order by id limit ?",
            (*parameters, after_id, limit + 1),
        )
        return [_lead_body(row) for row in rows[:limit]], len(rows) > limit

    def leads_in_window(self, date_field: str, start: datetime, end: datetime) -> list[dict]:
        """The leads (not deleted) created, or last updated, from ``start`` up to (not including) ``end``,
        by id: half-open, so that back-to-back windows see every lead once."""
        column = {"createdAt": "json_extract(body, '$.createdAt')", "updatedAt": "updated_at"}[date_field]
        rows = self.store.query(
            f"select id, body from marketing_leads where deleted_at is null and {column} >= ? and {column} < ?"
            " order by id",
            (iso(start), iso(end)),
        )
        return [_lead_body(row) for row in rows]

    def sync_leads(self, action: str, lookup: LeadField, records: list, request_id: str) -> list[dict]:
        with self.store.transaction() as db:
            log = ActivityLog(db, request_id)
            return [self._sync_lead(db, log, action, lookup, record) for record in records]

    def _sync_lead(self, db: sqlite3.Connection, log: ActivityLog, action: str, lookup: LeadField, record: Any) -> dict:
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
        body = {
            "id": lead_id,
            **{name: value for name, value in values.items() if value is not None},
            "createdAt": log.now,
            "updatedAt": log.now,
        }
        db.execute(
            "insert into marketing_leads (id, email, updated_at, body) values (?, ?, ?, ?)",
            (lead_id, body.get("email"), log.now, json.dumps(body)),
        )
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
                log.append(
                    body["id"],
                    CHANGE_DATA_VALUE,
                    (field.id, field.display_name),
                    {"New Value": new, "Old Value": old, "Reason": "Web service API", "Source": "Web service API"},
                )
            body["updatedAt"] = log.now
            db.execute(
                "update marketing_leads set email = ?, updated_at = ?, body = ? where id = ?",
                (body.get("email"), log.now, json.dumps(body), body["id"]),
            )
        return body["id"]

    def activity_page(
        self, after: ActivityPosition, scan_size: int, wanted: Callable[[sqlite3.Row], bool]
    ) -> ActivityPage:
        """The activities of interest among the next ``scan_size`` activities of any type."""
        rows = self.store.query(
            """select id, lead_id, activity_date, activity_type_id, body from marketing_activities
               where (activity_date, id) > (?, ?) order by activity_date, id limit ?""",
            (after.activity_date, after.activity_id, scan_size + 1),
        )
        scanned = _within_first_partition(rows[:scan_size])
        position = ActivityPosition(scanned[-1]["activity_date"], scanned[-1]["id"]) if scanned else after
        return ActivityPage(
            [_activity_body(row) for row in scanned if wanted(row)], position, more=len(rows) > len(scanned)
        )

    def activities_in_window(self, start: datetime, end: datetime, type_ids: set[int]) -> list[dict]:
        """The activities of these types from ``start`` up to (not including) ``end``, in listing order."""
        types = ", ".join("?" * len(type_ids))
        rows = self.store.query(
            f"""select id, lead_id, activity_date, activity_type_id, body from marketing_activities
                where activity_date >= ? and activity_date < ? and activity_type_id in ({types})
                order by activity_date, id""",
            (iso(start), iso(end), *sorted(type_ids)),
        )
        return [_activity_body(row) for row in rows]

    def programs(self) -> list[dict]:
        return [json.loads(row["body"]) for row in self.store.query("select body from marketing_programs order by id")]

    def program_members(
        self, program_id: int, condition: tuple[str, tuple], after_lead_id: int, limit: int
    ) -> tuple[list[dict], bool]:
        where, parameters = condition
        rows = self.store.query(
            f"""select body from marketing_program_members where program_id = ? and {where} and lead_id > ?
                order by lead_id limit ?""",
            (program_id, *parameters, after_lead_id, limit + 1),
        )
        return [json.loads(row["body"]) for row in rows[:limit]], len(rows) > limit


class ActivityLog:
    """The activities one write causes, numbered after the last activity and dated at the write."""

    def __init__(self, db: sqlite3.Connection, request_id: str):
        self._db, self._request_id = db, request_id
        self.now = iso(datetime.now(UTC))
        self._next_id = db.execute("select coalesce(max(id), 0) + 1 from marketing_activities").fetchone()[0]

    def append(self, lead_id: int, type_id: int, primary: tuple[int, str] | None, attributes: dict) -> None:
        activity_id, self._next_id = self._next_id, self._next_id + 1
        attributes = {
            **attributes,
            "Api Method Name": "syncLead",
            "Modifying User": API_USER,
            "Request Id": self._request_id,
        }
        body = {
            "id": activity_id,
            "marketoGUID": str(activity_id),
            "leadId": lead_id,
            "activityDate": self.now,
            "activityTypeId": type_id,
            **({"primaryAttributeValueId": primary[0], "primaryAttributeValue": primary[1]} if primary else {}),
            "attributes": [{"name": name, "value": value} for name, value in attributes.items()],
        }
        self._db.execute(
            """insert into marketing_activities (id, lead_id, activity_date, activity_type_id, body)
                            values (?, ?, ?, ?, ?)""",
            (activity_id, lead_id, self.now, type_id, json.dumps(body)),
        )


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
    activity = {
        **stored,
        "id": row["id"],
        "marketoGUID": str(stored.get("marketoGUID") or row["id"]),
        "leadId": row["lead_id"],
        "activityDate": marketo_time(row["activity_date"]),
        "activityTypeId": row["activity_type_id"],
        "attributes": stored.get("attributes") or [],
    }
    return {key: activity[key] for key in ACTIVITY_KEYS if activity.get(key) is not None}
