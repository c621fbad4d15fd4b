"""The sandbox's state: one SQLite database per served company, built from a dataset folder.

The stand-ins read and write it, so what Handoff writes through an API is really kept (with
history), survives a restart, and reads back through the same API. SQLite rather than memory,
because a ``medium`` company (millions of activities and events) should not have to fit in RAM.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sandbox.dataset import Dataset

T = TypeVar("T")
BUILD_BATCH = 5_000

SCHEMA = """
create table meta (key text primary key, value text);
create table owners (id text primary key, body text not null);
create table crm_objects (
    object_type text not null, id integer not null, created_at text not null, updated_at text not null,
    archived integer not null default 0, archived_at text, merged_into integer,
    properties text not null, primary key (object_type, id));
create index crm_objects_by_update on crm_objects (object_type, updated_at, id);
create table crm_property_history (
    object_type text not null, id integer not null, property text not null, value text,
    timestamp text not null, source_type text);
create index crm_property_history_by_object on crm_property_history (object_type, id, property);
create table crm_associations (
    from_type text not null, from_id integer not null, to_type text not null, to_id integer not null,
    association_type text not null);
create index crm_associations_from on crm_associations (from_type, from_id, to_type);
create table crm_pipelines (id text primary key, object_type text not null, body text not null);
create table marketing_leads (
    id integer primary key, email text, updated_at text, deleted_at text, body text not null);
create index marketing_leads_by_email on marketing_leads (email);
create table marketing_activities (
    id integer primary key, lead_id integer not null, activity_date text not null,
    activity_type_id integer not null, body text not null);
create index marketing_activities_by_date on marketing_activities (activity_date, id);
create table marketing_programs (id integer primary key, body text not null);
create table marketing_program_members (
    program_id integer not null, lead_id integer not null, updated_at text, body text not null,
    primary key (program_id, lead_id));
create table web_events (message_id text primary key, timestamp text not null, body text not null);
create index web_events_by_time on web_events (timestamp);
"""


def _dump(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


# How each dataset table becomes rows of its SQLite table: (table, columns, row from record).
_LOADERS: dict[str, tuple[str, tuple[str, ...], Callable[[dict], tuple]]] = {
    "owners": ("owners", ("id", "body"), lambda r: (str(r["id"]), _dump(r))),
    "crm_objects": (
        "crm_objects",
        ("object_type", "id", "created_at", "updated_at", "archived", "archived_at", "merged_into", "properties"),
        lambda r: (
            r["objectType"],
            int(r["id"]),
            r["createdAt"],
            r["updatedAt"],
            int(bool(r.get("archived"))),
            r.get("archivedAt"),
            None if r.get("mergedInto") is None else int(r["mergedInto"]),
            _dump(r["properties"]),
        ),
    ),
    "crm_property_history": (
        "crm_property_history",
        ("object_type", "id", "property", "value", "timestamp", "source_type"),
        lambda r: (
            r["objectType"],
            int(r["id"]),
            r["property"],
            r.get("value"),
            r["timestamp"],
            r.get("sourceType", "CRM_UI"),
        ),
    ),
    "crm_associations": (
        "crm_associations",
        ("from_type", "from_id", "to_type", "to_id", "association_type"),
        lambda r: (r["fromType"], int(r["fromId"]), r["toType"], int(r["toId"]), r["associationType"]),
    ),
    "crm_pipelines": (
        "crm_pipelines",
        ("id", "object_type", "body"),
        lambda r: (str(r["id"]), r.get("objectType", "deals"), _dump(r)),
    ),
    "marketing_leads": (
        "marketing_leads",
        ("id", "email", "updated_at", "deleted_at", "body"),
        lambda r: (int(r["id"]), r.get("email"), r.get("updatedAt"), r.get("deletedAt"), _dump(r)),
    ),
    "marketing_activities": (
        "marketing_activities",
        ("id", "lead_id", "activity_date", "activity_type_id", "body"),
        lambda r: (int(r["id"]), int(r["leadId"]), r["activityDate"], int(r["activityTypeId"]), _dump(r)),
    ),
    "marketing_programs": ("marketing_programs", ("id", "body"), lambda r: (int(r["id"]), _dump(r))),
    "marketing_program_members": (
        "marketing_program_members",
        ("program_id", "lead_id", "updated_at", "body"),
        lambda r: (int(r["programId"]), int(r["leadId"]), r.get("updatedAt"), _dump(r)),
    ),
    "web_events": (
        "web_events",
        ("message_id", "timestamp", "body"),
        lambda r: (r["messageId"], r["timestamp"], _dump(r)),
    ),
}


class SandboxStore:
    """Thread-safe access to one sandbox database: many readers, one writer at a time."""

    def __init__(self, path: Path):
        self.path = path
        self._local = threading.local()
        self._write_lock = threading.Lock()

    @classmethod
    def build(cls, dataset: Dataset, path: Path) -> SandboxStore:
        """Load a dataset into a new database at ``path`` (streamed, in batches)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".building")
        partial.unlink(missing_ok=True)
        db = sqlite3.connect(partial)
        db.executescript("pragma journal_mode=off; pragma synchronous=off;" + SCHEMA)
        for source, (table, columns, to_row) in _LOADERS.items():
            insert = f"insert or replace into {table} ({', '.join(columns)}) values ({', '.join('?' * len(columns))})"
            batch: list[tuple] = []
            for record in dataset.rows(source):
                batch.append(to_row(record))
                if len(batch) >= BUILD_BATCH:
                    db.executemany(insert, batch)
                    batch.clear()
            db.executemany(insert, batch)
        db.executemany(
            "insert into meta values (?, ?)",
            [("manifest", _dump(dataset.manifest.as_json())), ("dataset", str(dataset.folder))],
        )
        db.commit()
        db.close()
        partial.replace(path)  # a crash mid-build never leaves a half-built store behind
        return cls(path)

    def _connection(self) -> sqlite3.Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(self.path, check_same_thread=False)
            connection.row_factory = sqlite3.Row
            connection.execute("pragma journal_mode=wal")
            connection.execute("pragma busy_timeout=10000")
            self._local.connection = connection
        return connection

    def query(self, sql: str, params: tuple | list = ()) -> list[sqlite3.Row]:
        return self._connection().execute(sql, params).fetchall()

    def query_one(self, sql: str, params: tuple | list = ()) -> sqlite3.Row | None:
        return self._connection().execute(sql, params).fetchone()

    def iterate(self, sql: str, params: tuple | list = ()) -> Iterator[sqlite3.Row]:
        yield from self._connection().execute(sql, params)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One writer at a time; committed (durably) when the block ends, rolled back on error."""
        with self._write_lock:
            connection = self._connection()
            try:
                connection.execute("begin immediate")
                yield connection
                connection.execute("commit")
            except BaseException:
                connection.execute("rollback")
                raise

    def manifest(self) -> dict:
        row = self.query_one("select value from meta where key = 'manifest'")
        return json.loads(row["value"]) if row else {}
