"""The write-back ledger in the operational store: every batch sent and every record's outcome.

What a system last accepted is read back from here, so only changed values are ever sent. A batch
is written down before it is sent and its outcomes when the answer comes, so a run killed at any
moment leaves behind exactly the batches whose fate is unknown; the next run settles those by
reading the records back from the system before it plans anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from pipeline.state import StateStore
from pipeline.state.schema import writeback_batches, writeback_pending_changes, writeback_record_outcomes

# A value the system rejected this many times in a row is held back and reported, not sent again
# until the desired value changes.
MAX_ATTEMPTS = 3


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
    """One system's object type in the ledger, kept in the operational store."""

    def __init__(self, store: StateStore, system: str, object_type: str):
        self.store, self.system, self.object_type = store, system, object_type

    def _rows(self, sql: str, **parameters) -> list[Any]:
        with self.store.begin() as connection:
            return list(
                connection.execute(sa.text(sql), {"system": self.system, "object_type": self.object_type, **parameters})
            )

    def last_accepted(self) -> dict[tuple[str, str], str | None]:
        """(record id, property) → the value the system last accepted."""
        rows = self._rows("""
            select record_id, property, value from (
                select record_id, property, value,
                       row_number() over (partition by record_id, property order by outcome_id desc) as newest
                from writeback_record_outcomes
                where system = :system and object_type = :object_type and outcome = 'accepted'
            ) as accepted
            where newest = 1
        """)
        return {(record_id, prop): value for record_id, prop, value in rows}

    def refusals(self) -> dict[tuple[str, str, str | None], int]:
        """(record id, property, value) → how often the system refused that value since it last
        accepted anything for that record and property."""
        rows = self._rows("""
            with outcomes as (
                select *, max(case when outcome = 'accepted' then outcome_id end)
                              over (partition by record_id, property) as last_accepted_id
                from writeback_record_outcomes where system = :system and object_type = :object_type
            )
            select record_id, property, value, count(*) from outcomes
            where outcome in ('rejected', 'skipped') and (last_accepted_id is null or outcome_id > last_accepted_id)
            group by 1, 2, 3
        """)
        return {(record_id, prop, value): count for record_id, prop, value, count in rows}

    def unanswered_batches(self) -> dict[str, list[PropertyChange]]:
        """Batches sent whose answer was never recorded (the run died in between): batch id → changes."""
        rows = self._rows("""
            select pending.batch_id, pending.record_id, pending.property, pending.value
            from writeback_pending_changes as pending
            inner join writeback_batches as batches on batches.batch_id = pending.batch_id
            where batches.system = :system and batches.object_type = :object_type and batches.answered_at is null
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
        with self.store.begin() as connection:
            connection.execute(
                writeback_batches.insert().values(
                    batch_id=batch_id,
                    system=self.system,
                    object_type=self.object_type,
                    run_id=run_id,
                    sent_at=_now(),
                    records=len({change.record_id for change in changes}),
                )
            )
            if changes:
                connection.execute(
                    writeback_pending_changes.insert(),
                    [
                        {"batch_id": batch_id, "record_id": c.record_id, "property": c.property, "value": c.value}
                        for c in changes
                    ],
                )

    def record_answer(
        self, batch_id: str, status_code: int | None, response_status: str | None, outcomes: list[RecordOutcome]
    ) -> None:
        """Store a batch's answer and its outcomes in one transaction: either all are there or none."""
        now = _now()
        with self.store.begin() as connection:
            connection.execute(
                writeback_batches.update()
                .where(writeback_batches.c.batch_id == batch_id)
                .values(status_code=status_code, response_status=response_status, answered_at=now)
            )
            if outcomes:
                connection.execute(
                    writeback_record_outcomes.insert(),
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
                )
            connection.execute(
                writeback_pending_changes.delete().where(writeback_pending_changes.c.batch_id == batch_id)
            )

    def summary(self) -> dict[str, int]:
        """Batches and record outcomes in the ledger so far, for the asset's metadata."""
        [(batches,)] = self._rows(
            "select count(*) from writeback_batches where system = :system and object_type = :object_type"
        )
        counts = dict(
            self._rows("""
                select outcome, count(*) from (
                    select distinct outcome, batch_id, record_id from writeback_record_outcomes
                    where system = :system and object_type = :object_type
                ) as records
                group by 1
            """)
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
    """Values as the ledger keeps them; whole floats lose their ``.0`` (warehouses hand back doubles
    for amounts and scores, and ``42`` is what the systems store)."""
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
