"""The write-back ledger in the warehouse: every batch sent and every record's outcome.

What a system last accepted is read back from here, so only changed values are ever sent. A batch
is written down before it is sent and its outcomes when the answer comes, so a run killed at any
moment leaves behind exactly the batches whose fate is unknown; the next run settles those by
reading the records back from the system before it plans anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import duckdb
import pyarrow as pa

SCHEMA = "writeback"
# A value the system rejected this many times in a row is held back and reported, not sent again
# until the desired value changes.
MAX_ATTEMPTS = 3

DDL = f"""
create schema if not exists {SCHEMA};
create table if not exists {SCHEMA}.batches (
    batch_id varchar primary key,
    system varchar not null,
    object_type varchar not null,
    run_id varchar,
    sent_at timestamp not null,
    records integer not null,
    status_code integer,
    response_status varchar,
    answered_at timestamp         -- null while the batch's fate is unknown
);
create sequence if not exists {SCHEMA}.record_outcome_seq;
create table if not exists {SCHEMA}.record_outcomes (
    outcome_id bigint primary key default nextval('{SCHEMA}.record_outcome_seq'),
    batch_id varchar not null,
    system varchar not null,
    object_type varchar not null,
    record_id varchar not null,
    property varchar not null,
    value varchar,
    -- accepted | rejected | skipped (Marketo's word for a refused record) | unconfirmed (sent by a
    -- run that died before the answer, and not found in the system when read back)
    outcome varchar not null,
    reason varchar,
    recorded_at timestamp not null
);
create table if not exists {SCHEMA}.pending_changes (
    batch_id varchar not null,
    record_id varchar not null,
    property varchar not null,
    value varchar
);
"""

OUTCOME_SCHEMA = pa.schema(
    [
        ("batch_id", pa.string()),
        ("system", pa.string()),
        ("object_type", pa.string()),
        ("record_id", pa.string()),
        ("property", pa.string()),
        ("value", pa.string()),
        ("outcome", pa.string()),
        ("reason", pa.string()),
        ("recorded_at", pa.timestamp("us")),
    ]
)


@dataclass(frozen=True)
class PropertyChange:
    record_id: str
    property: str
    value: str | None


@dataclass(frozen=True)
class RecordOutcome:
    change: PropertyChange
    accepted: bool
    reason: str | None = None
    outcome: str = ""  # the system's word when it is not plain accepted/rejected (Marketo's "skipped")

    @property
    def label(self) -> str:
        return "accepted" if self.accepted else (self.outcome or "rejected")


@dataclass(frozen=True)
class Plan:
    """What a write-back run would send: the changes, and those held back after repeated rejection."""

    changes: list[PropertyChange]
    held_back: list[PropertyChange] = field(default_factory=list)

    @property
    def records(self) -> int:
        return len({change.record_id for change in self.changes})


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Ledger:
    """One system's object type in the ledger. A read-only connection (a dry run) reads what is
    there and writes nothing."""

    def __init__(self, db: duckdb.DuckDBPyConnection, system: str, object_type: str, read_only: bool = False):
        self.db, self.system, self.object_type = db, system, object_type
        if not read_only:
            db.execute(DDL)
        [(tables,)] = db.execute(
            "select count(*) from information_schema.tables where table_schema = ?", [SCHEMA]
        ).fetchall()
        self.exists = tables > 0

    def _rows(self, sql: str, parameters: list | None = None) -> list[tuple]:
        if not self.exists:
            return []
        return self.db.execute(sql, [self.system, self.object_type, *(parameters or [])]).fetchall()

    def last_accepted(self) -> dict[tuple[str, str], str | None]:
        """(record id, property) → the value the system last accepted."""
        rows = self._rows(f"""
            select record_id, property, arg_max(value, outcome_id) from {SCHEMA}.record_outcomes
            where system = ? and object_type = ? and outcome = 'accepted'
            group by 1, 2
        """)
        return {(record_id, prop): value for record_id, prop, value in rows}

    def refusals(self) -> dict[tuple[str, str, str | None], int]:
        """(record id, property, value) → how often the system refused that value since it last
        accepted anything for that record and property."""
        rows = self._rows(f"""
            with outcomes as (
                select *, max(case when outcome = 'accepted' then outcome_id end)
                              over (partition by record_id, property) as last_accepted_id
                from {SCHEMA}.record_outcomes where system = ? and object_type = ?
            )
            select record_id, property, value, count(*) from outcomes
            where outcome in ('rejected', 'skipped') and (last_accepted_id is null or outcome_id > last_accepted_id)
            group by 1, 2, 3
        """)
        return {(record_id, prop, value): count for record_id, prop, value, count in rows}

    def unanswered_batches(self) -> dict[str, list[PropertyChange]]:
        """Batches sent whose answer was never recorded (the run died in between): batch id → changes."""
        rows = self._rows(f"""
            select pending.batch_id, pending.record_id, pending.property, pending.value
            from {SCHEMA}.pending_changes as pending
            inner join {SCHEMA}.batches as batches using (batch_id)
            where batches.system = ? and batches.object_type = ? and batches.answered_at is null
            order by 1, 2, 3
        """)
        batches: dict[str, list[PropertyChange]] = {}
        for batch_id, record_id, prop, value in rows:
            batches.setdefault(batch_id, []).append(PropertyChange(record_id, prop, value))
        return batches

    def plan(self, desired: list[dict], id_column: str, writable: frozenset[str]) -> Plan:
        changes = changes_to_send(desired, id_column, writable, self.last_accepted())
        refusals = self.refusals()
        held_back = [c for c in changes if refusals.get((c.record_id, c.property, c.value), 0) >= MAX_ATTEMPTS]
        held = set(held_back)
        return Plan(changes=[c for c in changes if c not in held], held_back=held_back)

    def record_sending(self, batch_id: str, run_id: str | None, changes: list[PropertyChange]) -> None:
        """Write a batch down before it is sent, with what it carries."""
        self.db.execute("begin")
        self.db.execute(
            f"insert into {SCHEMA}.batches (batch_id, system, object_type, run_id, sent_at, records) "
            "values (?, ?, ?, ?, ?, ?)",
            [batch_id, self.system, self.object_type, run_id, _now(), len({change.record_id for change in changes})],
        )
        pending = pa.table(  # noqa: F841 (read by name by DuckDB below)
            {
                "batch_id": [batch_id] * len(changes),
                "record_id": [c.record_id for c in changes],
                "property": [c.property for c in changes],
                "value": pa.array([c.value for c in changes], pa.string()),
            }
        )
        self.db.execute(f"insert into {SCHEMA}.pending_changes select * from pending")
        self.db.execute("commit")

    def record_answer(
        self, batch_id: str, status_code: int | None, response_status: str | None, outcomes: list[RecordOutcome]
    ) -> None:
        """Store a batch's answer and its outcomes in one transaction: either all are there or none."""
        now = _now()
        self.db.execute("begin")
        self.db.execute(
            f"update {SCHEMA}.batches set status_code = ?, response_status = ?, answered_at = ? where batch_id = ?",
            [status_code, response_status, now, batch_id],
        )
        recorded = pa.Table.from_pylist(  # noqa: F841 (read by name by DuckDB below)
            [
                {
                    "batch_id": batch_id,
                    "system": self.system,
                    "object_type": self.object_type,
                    "record_id": o.change.record_id,
                    "property": o.change.property,
                    "value": o.change.value,
                    "outcome": o.label,
                    "reason": o.reason,
                    "recorded_at": now,
                }
                for o in outcomes
            ],
            schema=OUTCOME_SCHEMA,
        )
        self.db.execute(
            f"insert into {SCHEMA}.record_outcomes ({', '.join(OUTCOME_SCHEMA.names)}) select * from recorded"
        )
        self.db.execute(f"delete from {SCHEMA}.pending_changes where batch_id = ?", [batch_id])
        self.db.execute("commit")

    def summary(self) -> dict[str, int]:
        """Batches and record outcomes in the ledger so far, for the asset's metadata."""
        [(batches,)] = self._rows(f"select count(*) from {SCHEMA}.batches where system = ? and object_type = ?") or [
            (0,)
        ]
        counts = dict(
            self._rows(f"""select outcome, count(distinct (batch_id, record_id)) from {SCHEMA}.record_outcomes
                                    where system = ? and object_type = ? group by 1""")
        )
        return {
            "ledger_batches": batches,
            **{f"ledger_records_{name}": counts.get(name, 0) for name in ("accepted", "rejected", "skipped")},
        }


def changes_to_send(
    desired: list[dict], id_column: str, writable: frozenset[str], accepted: dict[tuple[str, str], str | None]
) -> list[PropertyChange]:
    """Every (record, property) whose desired value differs from what the system last accepted.

    Columns off the allow-list are refused before anything is sent.
    """
    changes = []
    for row in desired:
        properties = {name: value for name, value in row.items() if name != id_column}
        refused = set(properties) - writable
        if refused:
            raise ValueError(f"refusing to write properties off the allow-list: {sorted(refused)}")
        record_id = str(row[id_column])
        for name, value in properties.items():
            value = as_text(value)
            key = (record_id, name)
            if key not in accepted or accepted[key] != value:
                changes.append(PropertyChange(record_id, name, value))
    return changes


def as_text(value) -> str | None:
    """Values as the ledger keeps them; whole floats lose their ``.0`` (DuckDB hands back doubles for
    amounts and scores, and ``42`` is what the systems store)."""
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
