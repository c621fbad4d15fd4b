import duckdb
import pytest

from pipeline.feedback.crm import batches_of_records, interpret
from pipeline.feedback.ledger import Ledger, PropertyChange, RecordOutcome, changes_to_send

WRITABLE = frozenset({"stage", "score"})


def test_everything_is_sent_when_nothing_was_accepted_yet():
    desired = [{"id": 1, "stage": "mql", "score": 10}]
    assert changes_to_send(desired, "id", WRITABLE, {}) == [
        PropertyChange("1", "stage", "mql"), PropertyChange("1", "score", "10")]


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
    outcomes = interpret(400, {"category": "VALIDATION_ERROR", "message": "Property x does not exist"},
                         [PropertyChange("1", "x", "v")])
    assert not outcomes[0].accepted and "does not exist" in outcomes[0].reason


def test_ledger_remembers_the_latest_accepted_value_only():
    ledger = Ledger(duckdb.connect(), system="crm", object_type="contacts")
    ledger.record_batch("b1", 200, "COMPLETE", [RecordOutcome(PropertyChange("1", "stage", "mql"), True)])
    ledger.record_batch("b2", 207, "COMPLETE", [RecordOutcome(PropertyChange("1", "stage", "sql"), False, "nope")])
    assert ledger.last_accepted() == {("1", "stage"): "mql"}
    ledger.record_batch("b3", 200, "COMPLETE", [RecordOutcome(PropertyChange("1", "stage", "sql"), True)])
    assert ledger.last_accepted() == {("1", "stage"): "sql"}
