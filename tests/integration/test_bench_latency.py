"""The latency benchmark's arithmetic: when feedback arrived by the CRM's history, and its percentiles."""

import sqlite3
from datetime import UTC, datetime, timedelta

import pytest

from sandbox.bench.latency import Handover, feedback_times, latencies_s, percentile
from sandbox.dataset import iso

HANDED_OVER = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)


def history_database(path, rows):
    with sqlite3.connect(path) as db:
        db.execute(
            "create table crm_property_history (object_type text, id integer, property text, value text, "
            "timestamp text, source_type text)"
        )
        db.executemany("insert into crm_property_history values (?, ?, ?, ?, ?, ?)", rows)
    return path


def stamp(seconds: float) -> str:
    return iso(HANDED_OVER + timedelta(seconds=seconds))


def test_feedback_is_the_first_write_back_of_the_sla_fields_after_each_handover(tmp_path):
    handovers = [Handover(1, HANDED_OVER), Handover(2, HANDED_OVER + timedelta(seconds=10)), Handover(3, HANDED_OVER)]
    database = history_database(
        tmp_path / "sandbox.sqlite",
        [
            ("contacts", 1, "handoff_sla_state", "open", stamp(-3600), "INTEGRATION"),  # an earlier handoff's
            ("contacts", 1, "handoff_sla_state", "open", stamp(42.5), "INTEGRATION"),
            ("contacts", 1, "handoff_sla_due_at", "x", stamp(41.0), "INTEGRATION"),
            ("contacts", 1, "handoff_sla_state", "at_risk", stamp(400), "INTEGRATION"),
            ("contacts", 2, "lifecyclestage", "marketingqualifiedlead", stamp(10), "INTEGRATION"),  # the handover
            ("contacts", 2, "handoff_sla_state", "open", stamp(5), "INTEGRATION"),  # before its handover
            ("contacts", 2, "handoff_sla_state", "open", stamp(30), "CRM_UI"),  # a rep, not the write-back
            ("deals", 3, "handoff_sla_state", "open", stamp(20), "INTEGRATION"),
        ],
    )
    arrived = feedback_times(database, handovers)
    assert arrived == {1: HANDED_OVER + timedelta(seconds=41)}
    assert latencies_s(handovers, arrived) == [41.0]


@pytest.mark.parametrize(("share", "expected"), [(0.5, 50.5), (0.95, 95.05)])
def test_percentiles_interpolate_between_ranks(share, expected):
    assert percentile([float(n) for n in range(1, 101)], share) == pytest.approx(expected)


def test_one_value_is_every_percentile():
    assert percentile([7.0], 0.95) == 7.0
