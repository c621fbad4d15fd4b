"""The write-back loop shared by every system: settle, plan, batch, send, record.

A system plugs in as a ``WritebackTarget`` (how to send one batch and read records back); this
module owns the order of things, which is what makes a rerun safe:

1. batches a killed run sent without recording the answer are settled by reading the records back;
2. the plan is the diff of the feedback model against what the system last accepted, minus values
   it refused ``MAX_ATTEMPTS`` times;
3. each batch is written down before it is sent, and its outcomes when the answer comes.

Batches are sent a few at a time: each vendor's limit is per time window, not per connection, so
overlapping the network waits is what lets a run approach the limit; the client's pacing keeps it
under.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Protocol

from pipeline.feedback.ledger import Ledger, Plan, PropertyChange, RecordOutcome

IN_FLIGHT_BATCHES = 4


@dataclass(frozen=True)
class BatchAnswer:
    status_code: int
    response_status: str | None
    outcomes: list[RecordOutcome]


class WritebackTarget(Protocol):
    system: str
    object_type: str
    id_column: str  # the feedback model's column naming the record
    writable: frozenset[str]  # the allow-list: nothing else is ever sent
    batch_size: int

    def prepare(self, plan: Plan) -> None:
        """Check (or make) what the plan needs in the system, before the first batch."""

    def send(self, batch: list[PropertyChange]) -> BatchAnswer: ...

    def read_back(self, changes: list[PropertyChange]) -> dict[tuple[str, str], str | None]:
        """The system's current value of each (record, property) the changes touch; records it
        does not have are left out."""


@dataclass(frozen=True)
class WritebackSummary:
    dry_run: bool
    records_planned: int
    changes_planned: int
    records_sent: int
    batches: int
    records_accepted: int
    records_refused: int
    changes_held_back: int
    batches_settled: int


def batches_of_records(changes: list[PropertyChange], size: int) -> Iterator[list[PropertyChange]]:
    """Group changes by record, ``size`` records per batch, keeping each record's properties together."""
    by_record: dict[str, list[PropertyChange]] = {}
    for change in changes:
        by_record.setdefault(change.record_id, []).append(change)
    record_ids = list(by_record)
    for start in range(0, len(record_ids), size):
        yield [change for record_id in record_ids[start : start + size] for change in by_record[record_id]]


def by_record(changes: list[PropertyChange]) -> dict[str, dict[str, str | None]]:
    """record id → {property: value}, in the order the changes came."""
    records: dict[str, dict[str, str | None]] = {}
    for change in changes:
        records.setdefault(change.record_id, {})[change.property] = change.value
    return records


def settle_unanswered(target: WritebackTarget, ledger: Ledger) -> int:
    """Batches a killed run sent without recording the answer: what the system holds now says
    which of their values arrived. Those are accepted; the rest are sent again by the plan."""
    unanswered = ledger.unanswered_batches()
    for batch_id, changes in unanswered.items():
        held = target.read_back(changes)
        outcomes = [
            RecordOutcome(change, accepted=True, reason="found in the system after an interrupted run")
            if (change.record_id, change.property) in held
            and (held[(change.record_id, change.property)] or None) == change.value
            else RecordOutcome(
                change,
                accepted=False,
                outcome="unconfirmed",
                reason="sent by an interrupted run and not found in the system",
            )
            for change in changes
        ]
        ledger.record_answer(batch_id, None, "settled by reading back", outcomes)
    return len(unanswered)


def write_back(
    target: WritebackTarget, ledger: Ledger, desired: list[dict], run_id: str | None = None, dry_run: bool = False
) -> tuple[WritebackSummary, Plan]:
    settled = 0 if dry_run else settle_unanswered(target, ledger)
    plan = ledger.plan(desired, target.id_column, target.writable)
    sent = batches = accepted = refused = 0
    if plan.changes and not dry_run:
        target.prepare(plan)
        for batch, answer in _send_overlapped(target, ledger, run_id, plan):
            records = by_record(batch)
            refused_records = {o.change.record_id for o in answer.outcomes if not o.accepted}
            batches += 1
            sent += len(records)
            refused += len(refused_records)
            accepted += len(records) - len(refused_records)
    summary = WritebackSummary(
        dry_run=dry_run,
        records_planned=plan.records,
        changes_planned=len(plan.changes),
        records_sent=sent,
        batches=batches,
        records_accepted=accepted,
        records_refused=refused,
        changes_held_back=len(plan.held_back),
        batches_settled=settled,
    )
    return summary, plan


def _send_overlapped(
    target: WritebackTarget, ledger: Ledger, run_id: str | None, plan: Plan
) -> Iterator[tuple[list[PropertyChange], BatchAnswer]]:
    """Send the plan's batches, up to ``IN_FLIGHT_BATCHES`` at once. Only this thread touches the
    ledger, so a batch is always written down before its request leaves."""
    in_flight: dict[Future, tuple[str, list[PropertyChange]]] = {}

    def collect(done: set[Future]) -> Iterator[tuple[list[PropertyChange], BatchAnswer]]:
        for future in done:
            batch_id, batch = in_flight.pop(future)
            answer = future.result()
            ledger.record_answer(batch_id, answer.status_code, answer.response_status, answer.outcomes)
            yield batch, answer

    with ThreadPoolExecutor(max_workers=IN_FLIGHT_BATCHES, thread_name_prefix=f"writeback-{target.system}") as pool:
        try:
            for batch in batches_of_records(plan.changes, target.batch_size):
                if len(in_flight) >= IN_FLIGHT_BATCHES:
                    yield from collect(wait(in_flight, return_when=FIRST_COMPLETED).done)
                batch_id = str(uuid.uuid4())
                ledger.record_sending(batch_id, run_id, batch)
                in_flight[pool.submit(target.send, batch)] = (batch_id, batch)
            while in_flight:
                yield from collect(wait(in_flight, return_when=FIRST_COMPLETED).done)
        finally:
            for future in in_flight:
                future.cancel()
