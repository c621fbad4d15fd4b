import pytest

from pipeline.feedback import marketing
from pipeline.feedback.crm import interpret
from pipeline.feedback.ledger import MAX_ATTEMPTS, Ledger, Plan, PropertyChange, RecordOutcome, changes_to_send
from pipeline.feedback.writeback import BatchAnswer, batches_of_records, write_back

WRITABLE = frozenset({"stage", "score"})


def test_everything_is_sent_when_nothing_was_accepted_yet():
    desired = [{"id": 1, "stage": "mql", "score": 10}]
    assert changes_to_send(desired, "id", WRITABLE, {}) == [
        PropertyChange("1", "stage", "mql"),
        PropertyChange("1", "score", "10"),
    ]


def test_only_changed_fields_are_sent():
    accepted = {("1", "stage"): "mql", ("1", "score"): "10", ("2", "stage"): "sql", ("2", "score"): None}
    desired = [{"id": 1, "stage": "mql", "score": 11}, {"id": 2, "stage": "sql", "score": None}]
    assert changes_to_send(desired, "id", WRITABLE, accepted) == [PropertyChange("1", "score", "11")]


def test_a_column_off_the_allow_list_is_refused_before_sending():
    with pytest.raises(ValueError, match="allow-list.*email"):
        changes_to_send([{"id": 1, "stage": "mql", "email": "x@y.z"}], "id", WRITABLE, {})


def test_batches_keep_a_records_fields_together_and_respect_the_size():
    changes = [PropertyChange(str(i // 2), name, "v") for i, name in enumerate(["stage", "score"] * 5)]
    batches = list(batches_of_records(changes, size=2))
    assert [len({c.record_id for c in batch}) for batch in batches] == [2, 2, 1]
    assert sum(len(batch) for batch in batches) == len(changes)


def test_partial_failure_rejects_only_the_records_named():
    batch = [PropertyChange("1", "stage", "mql"), PropertyChange("2", "stage", "sql")]
    body = {"errors": [{"category": "OBJECT_NOT_FOUND", "message": "gone", "context": {"ids": ["2"]}}]}
    outcomes = interpret(207, body, batch)
    assert [(o.change.record_id, o.accepted) for o in outcomes] == [("1", True), ("2", False)]
    assert "OBJECT_NOT_FOUND" in outcomes[1].reason


def test_a_rejected_batch_carries_the_vendors_reason():
    outcomes = interpret(
        400, {"category": "VALIDATION_ERROR", "message": "Property x does not exist"}, [PropertyChange("1", "x", "v")]
    )
    assert not outcomes[0].accepted and "does not exist" in outcomes[0].reason


def answered(ledger: Ledger, batch_id: str, outcomes: list[RecordOutcome], status: int = 200) -> None:
    ledger.record_sending(batch_id, None, [o.change for o in outcomes])
    ledger.record_answer(batch_id, status, "COMPLETE", outcomes)


def test_ledger_remembers_the_latest_accepted_value_only(state_store):
    ledger = Ledger(state_store, system="crm", object_type="contacts")
    answered(ledger, "b1", [RecordOutcome(PropertyChange("1", "stage", "mql"), True)])
    answered(ledger, "b2", [RecordOutcome(PropertyChange("1", "stage", "sql"), False, "nope")], 207)
    assert ledger.last_accepted() == {("1", "stage"): "mql"}
    answered(ledger, "b3", [RecordOutcome(PropertyChange("1", "stage", "sql"), True)])
    assert ledger.last_accepted() == {("1", "stage"): "sql"}


def test_whole_floats_are_sent_as_the_systems_store_them():
    assert changes_to_send([{"id": 1, "score": 42.0, "amount": 9.5}], "id", frozenset({"score", "amount"}), {}) == [
        PropertyChange("1", "score", "42"),
        PropertyChange("1", "amount", "9.5"),
    ]


def test_a_value_refused_max_attempts_times_is_held_back_until_it_changes(state_store):
    ledger = Ledger(state_store, system="crm", object_type="contacts")
    refused = PropertyChange("1", "stage", "mql")
    for attempt in range(MAX_ATTEMPTS):
        assert ledger.plan([{"id": 1, "stage": "mql"}], "id", WRITABLE).changes == [refused]
        answered(ledger, f"b{attempt}", [RecordOutcome(refused, False, "no such record")], 207)
    plan = ledger.plan([{"id": 1, "stage": "mql"}], "id", WRITABLE)
    assert plan.changes == [] and plan.held_back == [refused]
    # A new desired value is a new attempt.
    assert ledger.plan([{"id": 1, "stage": "sql"}], "id", WRITABLE).changes == [PropertyChange("1", "stage", "sql")]


def test_marketo_skipped_records_keep_their_reasons_in_input_order():
    batch = [PropertyChange("5", "handoffSalesOutcome", "won"), PropertyChange("9", "handoffSalesOutcome", "lost")]
    results = [
        {"id": 5, "status": "updated"},
        {"status": "skipped", "reasons": [{"code": "1004", "message": "Lead not found"}]},
    ]
    outcomes = marketing.interpret(results, ["5", "9"], batch)
    assert [(o.change.record_id, o.label) for o in outcomes] == [("5", "accepted"), ("9", "skipped")]
    assert outcomes[1].reason == "1004: Lead not found"


class RecordingTarget:
    """A system in memory that accepts every record but those it does not have."""

    system, object_type, id_column, batch_size = "crm", "contacts", "id", 2
    writable = WRITABLE

    def __init__(self, known: set[str]):
        self.known, self.held, self.sent = known, {}, []

    def prepare(self, plan: Plan) -> None:
        pass

    def send(self, batch: list[PropertyChange]) -> BatchAnswer:
        self.sent.append(batch)
        for change in batch:
            if change.record_id in self.known:
                self.held[(change.record_id, change.property)] = change.value
        return BatchAnswer(
            207,
            "COMPLETE",
            [
                RecordOutcome(c, c.record_id in self.known, None if c.record_id in self.known else "not found")
                for c in batch
            ],
        )

    def read_back(self, changes):
        return {key: value for key, value in self.held.items() if key in {(c.record_id, c.property) for c in changes}}


def test_a_dry_run_sends_nothing_and_leaves_the_ledger_alone(state_store):
    target = RecordingTarget({"1", "2"})
    ledger = Ledger(state_store, "crm", "contacts")
    summary, plan = write_back(target, ledger, [{"id": 1, "stage": "mql", "score": 3}], dry_run=True)
    assert target.sent == [] and summary.dry_run and summary.changes_planned == 2 == len(plan.changes)
    assert ledger.summary()["ledger_batches"] == 0


def test_a_second_run_sends_nothing_and_a_refused_record_is_retried(state_store):
    target = RecordingTarget({"1", "2", "3"})
    desired = [{"id": i, "stage": "mql", "score": i} for i in (1, 2, 3, 4)]
    first, _ = write_back(target, Ledger(state_store, "crm", "contacts"), desired)
    assert (first.records_sent, first.batches, first.records_accepted, first.records_refused) == (4, 2, 3, 1)
    target.sent.clear()
    again, _ = write_back(target, Ledger(state_store, "crm", "contacts"), desired)
    assert [[c.record_id for c in batch] for batch in target.sent] == [["4", "4"]]
    assert again.records_refused == 1


def test_a_batch_whose_answer_was_lost_is_settled_by_reading_back(state_store):
    """A run killed after sending but before recording: what arrived is accepted, not sent again."""
    target = RecordingTarget({"1", "2"})
    ledger = Ledger(state_store, "crm", "contacts")
    arrived = [PropertyChange("1", "stage", "mql")]
    ledger.record_sending("lost", None, [*arrived, PropertyChange("2", "stage", "mql")])
    target.held[("1", "stage")] = "mql"  # the system got record 1 before the run died
    summary, _ = write_back(target, ledger, [{"id": 1, "stage": "mql"}, {"id": 2, "stage": "mql"}])
    assert summary.batches_settled == 1
    assert [[c.record_id for c in batch] for batch in target.sent] == [["2"]]
    assert ledger.unanswered_batches() == {}
