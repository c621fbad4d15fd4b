"""The write-back ledger in the warehouse: every batch sent and every record's outcome.

What a system last accepted is read back from here, so only changed values are ever sent and a
rerun after a crash does not send an accepted batch again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

import duckdb

SCHEMA = "writeback"

DDL = f"""
create schema if not exists {SCHEMA};
create table if not exists {SCHEMA}.batches (
    batch_id varchar primary key,
    system varchar not null,
    object_type varchar not null,
    sent_at timestamp not null,
    records integer not null,
    status_code integer not null,
    response_status varchar
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
    outcome varchar not null,   -- accepted | rejected
    reason varchar,
    recorded_at timestamp not null
);
"""


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


class Ledger:
    def __init__(self, db: duckdb.DuckDBPyConnection, system: str, object_type: str):
        self.db, self.system, self.object_type = db, system, object_type
        db.execute(DDL)

    def last_accepted(self) -> dict[tuple[str, str], str | None]:
        """(record id, property) → the value the system last accepted."""
        rows = self.db.execute(f"""
            select record_id, property, value from {SCHEMA}.record_outcomes
            where system = ? and object_type = ? and outcome = 'accepted'
            qualify row_number() over (partition by record_id, property order by outcome_id desc) = 1
        """, [self.system, self.object_type]).fetchall()
        return {(record_id, prop): value for record_id, prop, value in rows}

    def record_batch(self, batch_id: str, status_code: int, response_status: str | None,
                     outcomes: list[RecordOutcome]) -> None:
        """Store a batch and its outcomes in one transaction: either both are there or neither."""
        now = datetime.now(timezone.utc).replace(tzinfo=None)
        self.db.execute("begin")
        self.db.execute(f"insert into {SCHEMA}.batches values (?, ?, ?, ?, ?, ?, ?)",
                        [batch_id, self.system, self.object_type, now,
                         len({o.change.record_id for o in outcomes}), status_code, response_status])
        self.db.executemany(
            f"""insert into {SCHEMA}.record_outcomes (batch_id, system, object_type, record_id, property,
                                                      value, outcome, reason, recorded_at)
                values (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            [[batch_id, self.system, self.object_type, o.change.record_id, o.change.property,
              o.change.value, "accepted" if o.accepted else "rejected", o.reason, now]
             for o in outcomes])
        self.db.execute("commit")


def changes_to_send(desired: list[dict], id_column: str, writable: frozenset[str],
                    accepted: dict[tuple[str, str], str | None]) -> list[PropertyChange]:
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
            value = None if value is None else str(value)
            key = (record_id, name)
            if key not in accepted or accepted[key] != value:
                changes.append(PropertyChange(record_id, name, value))
    return changes
