"""The GX suites in expectations/ are readable as written and catch the faults they are for."""

from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest

from pipeline.quality.gx import SuiteError, build_suite, read_suite, validate
from pipeline.settings import EXPECTATIONS_DIR

NOW = datetime(2026, 11, 2, 12, tzinfo=timezone.utc)
PAST = NOW - timedelta(days=3)


def failures(suite_file, frame):
    result = validate(frame, read_suite(EXPECTATIONS_DIR / suite_file), {"now": NOW})
    return {(f.expectation, f.column) for f in result.failures}


def web_events(n=200, **overrides):
    frame = pd.DataFrame({"message_id": [f"m{i}" for i in range(n)], "type": ["page"] * n,
                          "timestamp": [PAST] * n})
    for column, values in overrides.items():
        frame.loc[:len(values) - 1, column] = values
    return frame


def activities(n=200, **overrides):
    frame = pd.DataFrame({"id": list(range(n)), "lead_id": pd.array([7] * n, dtype="Int64"),
                          "activity_type_id": [1] * n, "activity_date": [PAST] * n})
    for column, values in overrides.items():
        frame.loc[:len(values) - 1, column] = values
    return frame


@pytest.mark.parametrize("suite_file", sorted(p.name for p in EXPECTATIONS_DIR.glob("*.json")))
def test_every_suite_is_read_whole(suite_file):
    definition = read_suite(EXPECTATIONS_DIR / suite_file)
    assert definition["name"] == suite_file.removesuffix(".json")
    assert len(build_suite(definition).expectations) == len(definition["expectations"])


def test_a_suite_gx_cannot_read_whole_is_refused():
    with pytest.raises(SuiteError, match="cannot read"):
        build_suite({"name": "broken", "expectations": [
            {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "id"}},
            {"type": "expect_column_values_to_be_magical", "kwargs": {"column": "id"}}]})


def test_clean_batches_pass():
    assert failures("raw_web__events.json", web_events()) == set()
    assert failures("raw_marketing__activities.json", activities()) == set()


def test_web_events_faults_fail_their_expectations():
    assert failures("raw_web__events.json", web_events(message_id=["m1"], type=["purchase"])) == {
        ("expect_column_values_to_be_unique", "message_id"), ("expect_column_values_to_be_in_set", "type")}
    # A few future events are tolerated, a wave of them is not.
    assert failures("raw_web__events.json", web_events(timestamp=[NOW + timedelta(days=1)])) == set()
    assert failures("raw_web__events.json", web_events(timestamp=[NOW + timedelta(days=1)] * 20)) == {
        ("expect_column_values_to_be_between", "timestamp")}


def test_marketing_activity_faults_fail_their_expectations():
    assert failures("raw_marketing__activities.json", activities(activity_type_id=[999])) == {
        ("expect_column_values_to_be_in_set", "activity_type_id")}
    assert ("expect_column_values_to_not_be_null", "lead_id") in failures(
        "raw_marketing__activities.json", activities(lead_id=[None]))
