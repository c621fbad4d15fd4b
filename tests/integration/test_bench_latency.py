"""The latency benchmark's arithmetic: when feedback arrived by the CRM's history, which notices are
the handed-over leads', how late each arrived, and the percentiles."""

import sqlite3
from datetime import UTC, datetime, timedelta

import pytest
import yaml

from pipeline.settings import DBT_PROJECT_DIR
from pipeline.transform.contract import load_contract
from sandbox.bench.latency import (
    Handover,
    feedback_times,
    latencies_s,
    lateness_s,
    notice_contract,
    percentile,
    sla_notices_received,
)
from sandbox.dataset import iso
from sandbox.inbox import Delivery

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


def notice(key: str, contact_id: int, seconds: float, kind: str = "at_risk", channel: str = "webhook") -> Delivery:
    link = f"http://127.0.0.1:8765/crm/v3/objects/contacts/{contact_id}"
    return Delivery(channel, "SLA", kind, (), (), key, link, HANDED_OVER + timedelta(seconds=seconds))


def test_a_notice_is_late_by_its_first_arrival_after_the_moment_it_fell_due():
    handovers = [Handover(11, HANDED_OVER), Handover(12, HANDED_OVER)]
    received = sla_notices_received(
        [
            notice("h11:at_risk", 11, 190.0),
            notice("h11:at_risk", 11, 250.0),  # a repeat, which the receiver drops by its key
            notice("h11:breached", 11, 305.5, kind="breached"),
            notice("h12:at_risk", 12, 191.0, channel="slack"),  # every channel brings each notice
            notice("h13:at_risk", 13, 180.0),  # a handoff the benchmark did not hand over
            notice("digest:owner:1:2026-12-07", 11, 10.0, kind="digest"),
        ],
        handovers,
    )
    assert sorted(received) == ["h11:at_risk", "h11:breached"]
    moments = {"h11:at_risk": "2026-12-07T15:03:00", "h11:breached": "2026-12-07T15:05:00"}
    assert lateness_s(received, moments) == [10.0, 5.5]


def test_the_notice_contract_runs_its_clocks_in_minutes_around_the_clock(tmp_path):
    contract = notice_contract(5)(yaml.safe_load((DBT_PROJECT_DIR / "funnel_contract.yml").read_text()))
    (tmp_path / "funnel_contract.yml").write_text(yaml.safe_dump(contract))
    valid = load_contract(tmp_path / "funnel_contract.yml")
    assert {policy.first_touch_minutes for policy in valid.sla_policies} == {5}
    assert valid.business_calendar.default.start_hour == 0 and valid.business_calendar.default.end_hour == 24
    assert not valid.business_calendar.weekend_days and not valid.business_calendar.public_holidays
