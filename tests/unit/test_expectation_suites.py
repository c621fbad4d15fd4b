"""The GX suites in expectations/ are readable as written and catch the faults they are for."""

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from pipeline.quality.checks import record_rules
from pipeline.quality.gx import SuiteError, build_suite, read_suite, suite_columns, validate
from pipeline.settings import EXPECTATIONS_DIR

NOW = datetime(2026, 11, 2, 12, tzinfo=UTC)
PAST = NOW - timedelta(days=3)


def judged(suite_file, frame):
    key = "message_id" if "message_id" in frame else "id"
    suite = read_suite(EXPECTATIONS_DIR / suite_file)
    described = {"described": [1, 2, 6, 7, 10]}  # the activity types an instance lists
    return validate(frame, suite, {"now": NOW, **record_rules(), **described}, key_columns=(key,))


def failures(suite_file, frame):
    return {(f.expectation, f.column) for f in judged(suite_file, frame).failures}


def web_events(n=200, **overrides):
    frame = pd.DataFrame({"message_id": [f"m{i}" for i in range(n)], "type": ["page"] * n, "timestamp": [PAST] * n})
    for column, values in overrides.items():
        frame.loc[: len(values) - 1, column] = values
    return frame


def activities(n=200, **overrides):
    frame = pd.DataFrame(
        {
            "id": list(range(n)),
            "lead_id": pd.array([7] * n, dtype="Int64"),
            "activity_type_id": [1] * n,
            "activity_date": [PAST] * n,
        }
    )
    for column, values in overrides.items():
        frame.loc[: len(values) - 1, column] = values
    return frame


@pytest.mark.parametrize("suite_file", sorted(p.name for p in EXPECTATIONS_DIR.glob("*.json")))
def test_every_suite_is_read_whole(suite_file):
    definition = read_suite(EXPECTATIONS_DIR / suite_file)
    assert definition["name"] == suite_file.removesuffix(".json")
    assert len(build_suite(definition).expectations) == len(definition["expectations"])


def test_a_suite_reads_the_columns_its_expectations_and_row_conditions_name():
    assert suite_columns(read_suite(EXPECTATIONS_DIR / "raw_web__events.json")) == {"message_id", "type", "timestamp"}
    assert suite_columns(read_suite(EXPECTATIONS_DIR / "source_freshness.json")) == {"hours_since_load", "source"}
    assert suite_columns(
        {
            "expectations": [
                {
                    "type": "expect_column_pair_values_a_to_be_greater_than_b",
                    "kwargs": {"column_A": "b", "column_B": "a"},
                },
                {
                    "type": "expect_compound_columns_to_be_unique",
                    "kwargs": {
                        "column_list": ["c", "d"],
                        "row_condition": {
                            "type": "and",
                            "conditions": [
                                {"type": "comparison", "column": {"name": "e"}, "operator": "==", "parameter": 1}
                            ],
                        },
                    },
                },
            ]
        }
    ) == {"a", "b", "c", "d", "e"}


def test_a_suite_gx_cannot_read_whole_is_refused():
    with pytest.raises(SuiteError, match="cannot read"):
        build_suite(
            {
                "name": "broken",
                "expectations": [
                    {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "id"}},
                    {"type": "expect_column_values_to_be_magical", "kwargs": {"column": "id"}},
                ],
            }
        )


def test_clean_batches_pass():
    assert failures("raw_web__events.json", web_events()) == set()
    assert failures("raw_marketing__activities.json", activities()) == set()


def test_web_events_faults_fail_their_expectations():
    assert failures("raw_web__events.json", web_events(message_id=["m1"], type=["purchase"])) == {
        ("expect_column_values_to_be_unique", "message_id"),
        ("expect_column_values_to_be_in_set", "type"),
    }
    # A few future events are tolerated, a wave of them is not.
    assert failures("raw_web__events.json", web_events(timestamp=[NOW + timedelta(days=1)])) == set()
    assert failures("raw_web__events.json", web_events(timestamp=[NOW + timedelta(days=1)] * 20)) == {
        ("expect_column_values_to_be_between", "timestamp")
    }


def test_marketing_activity_faults_fail_their_expectations():
    assert failures("raw_marketing__activities.json", activities(activity_type_id=[999])) == {
        ("expect_column_values_to_be_in_set", "activity_type_id")
    }
    assert ("expect_column_values_to_not_be_null", "lead_id") in failures(
        "raw_marketing__activities.json", activities(lead_id=[None])
    )


def contacts(n=200, **overrides):
    frame = pd.DataFrame(
        {
            "id": [str(i) for i in range(n)],
            "createdate": [PAST] * n,
            "created_at": [PAST] * n,
            "updated_at": [PAST] * n,
            "email": [f"p{i}@example.com" for i in range(n)],
            "lifecyclestage": ["lead"] * n,
            "hs_lead_status": ["NEW"] * n,
        }
    )
    for column, values in overrides.items():
        frame.loc[: len(values) - 1, column] = values
    return frame


def test_contact_faults_fail_their_expectations():
    assert failures("raw_crm__contacts.json", contacts()) == set()
    assert failures("raw_crm__contacts.json", contacts(id=["1"])) == {("expect_column_values_to_be_unique", "id")}
    assert failures("raw_crm__contacts.json", contacts(lifecyclestage=["astronaut"] * 5)) == {
        ("expect_column_values_to_be_in_set", "lifecyclestage")
    }
    assert failures("raw_crm__contacts.json", contacts(createdate=[NOW + timedelta(hours=1)] * 5)) == {
        ("expect_column_values_to_be_between", "createdate")
    }
    assert failures("raw_crm__contacts.json", contacts(updated_at=[PAST - timedelta(days=1)])) == {
        ("expect_column_pair_values_a_to_be_greater_than_b", None)
    }


def test_one_malformed_email_in_a_batch_of_three_is_flagged_by_its_key_and_stops_nothing():
    result = judged("raw_crm__contacts.json", contacts(n=3, email=["not-an-address"]))
    assert result.passed and result.records_flagged == 1
    [flag] = result.flagged
    assert (flag.expectation, flag.column, flag.failing_keys) == (
        "expect_column_values_to_match_regex",
        "email",
        [{"id": "0"}],
    )


def test_a_wave_needs_both_the_share_and_the_count():
    # Half of ten contacts: over the 2 % the suite allows and at least five records.
    wave = judged("raw_crm__contacts.json", contacts(n=10, email=["not-an-address"] * 5))
    assert {(f.expectation, f.column) for f in wave.failures} == {("expect_column_values_to_match_regex", "email")}
    assert wave.critical and wave.records_flagged == 0
    # Four of four: every record, but fewer than five.
    assert judged("raw_crm__contacts.json", contacts(n=4, email=["not-an-address"] * 4)).passed
    # Five of four hundred: enough records, but within the share.
    few = judged("raw_crm__contacts.json", contacts(n=400, email=["not-an-address"] * 5))
    assert few.passed and few.records_flagged == 5


def test_the_record_rules_vocabulary_is_the_contracts_and_the_dbt_projects():
    rules = record_rules()
    assert "marketingqualifiedlead" in rules["lifecycle_stages"] and "NEW" in rules["crm_lead_statuses"]
    assert failures("raw_crm__contacts.json", contacts(hs_lead_status=["MAYBE"] * 5)) == {
        ("expect_column_values_to_be_in_set", "hs_lead_status")
    }


def test_one_bad_record_does_not_stop_a_company():
    # One stray stage and one typo in 200 contacts are the CRM's to fix; the batch still passes.
    assert (
        failures(
            "raw_crm__contacts.json",
            contacts(lifecyclestage=["astronaut"], email=["not-an-address"], hs_lead_status=["MAYBE"]),
        )
        == set()
    )


def live_rows(ratio):
    result = validate(
        pd.DataFrame({"live_rows": [40], "previous_live_rows": [100], "live_rows_ratio": [ratio]}),
        read_suite(EXPECTATIONS_DIR / "raw_live_rows.json"),
        {},
    )
    return result


def test_a_drop_of_more_than_half_the_live_records_is_critical_and_a_smaller_one_a_warning():
    assert live_rows(0.4).critical
    smaller = live_rows(0.7)
    assert not smaller.passed and not smaller.critical
    assert live_rows(1.02).passed
    assert live_rows(None).passed  # the first load has nothing to compare with


def freshness(**hours):
    frame = pd.DataFrame({"source": list(hours), "hours_since_load": list(hours.values())})
    return validate(frame, read_suite(EXPECTATIONS_DIR / "source_freshness.json"), {}, key_columns=("source",))


def test_a_stale_crm_or_marketing_load_is_critical_a_quiet_website_a_warning():
    assert freshness(crm=2.0, marketing=3.0, web=30.0).passed
    stale = freshness(crm=50.0, marketing=3.0, web=1.0)
    assert stale.critical and stale.failures[0].failing_rows == [{"source": "crm", "hours_since_load": 50.0}]
    assert freshness(crm=1.0, marketing=None, web=1.0).critical  # never loaded
    quiet = freshness(crm=1.0, marketing=1.0, web=60.0)
    assert not quiet.passed and not quiet.critical


def handoffs(n=50, **overrides):
    frame = pd.DataFrame(
        {
            "handoff_id": [f"h{i}" for i in range(n)],
            "crm_contact_id": [str(i) for i in range(n)],
            "as_of": [NOW] * n,
            "mql_at": [PAST] * n,
            "first_touch_due_at": [PAST + timedelta(hours=8)] * n,
            "first_touch_at": [PAST + timedelta(hours=1)] * n,
            "decided_at": [None] * n,
            "business_minutes_to_first_touch": [60.0] * n,
            "business_minutes_to_decision": [None] * n,
            "won_amount": [None] * n,
        }
    )
    for column, values in overrides.items():
        frame.loc[: len(values) - 1, column] = values
    return frame


def test_handoff_faults_fail_their_expectations():
    assert failures("marts__fct_handoffs.json", handoffs()) == set()
    assert failures("marts__fct_handoffs.json", handoffs(handoff_id=["h1"])) == {
        ("expect_column_values_to_be_unique", "handoff_id")
    }
    assert failures("marts__fct_handoffs.json", handoffs(first_touch_at=[PAST - timedelta(hours=1)])) == {
        ("expect_column_pair_values_a_to_be_greater_than_b", None)
    }
    assert failures("marts__fct_handoffs.json", handoffs(won_amount=[-5.0])) == {
        ("expect_column_values_to_be_between", "won_amount")
    }


CONTRACT_PARAMETERS = {
    "now": NOW,
    "funnel_stages": ["known", "mql", "sal", "rejected"],
    "rejection_reasons": ["bad_fit", "no_budget"],
}


def feedback_failures(suite_file, frame):
    result = validate(frame, read_suite(EXPECTATIONS_DIR / suite_file), CONTRACT_PARAMETERS)
    return {(f.expectation, f.column) for f in result.failures}


def test_feedback_models_hold_the_contracts_vocabulary():
    leads = pd.DataFrame(
        {
            "marketing_lead_id": ["1", "2"],
            "handoffSalesOutcome": ["rejected", "won"],
            "handoffRejectionReason": ["no_budget", None],
            "handoffWonRevenue": [None, 1200.0],
        }
    )
    assert feedback_failures("feedback__feedback_marketing_leads.json", leads) == set()
    leads.loc[0, "handoffRejectionReason"] = "too_expensive"
    leads.loc[1, "handoffWonRevenue"] = -1.0
    assert feedback_failures("feedback__feedback_marketing_leads.json", leads) == {
        ("expect_column_values_to_be_in_set", "handoffRejectionReason"),
        ("expect_column_values_to_be_between", "handoffWonRevenue"),
    }
    crm = pd.DataFrame(
        {
            "crm_contact_id": ["1", "2"],
            "handoff_funnel_stage": ["mql", "rejected"],
            "handoff_sla_state": ["open", None],
            "handoff_mql_reason": ["score", None],
            "handoff_sla_due_at": ["2026-11-02T15:00:00Z", None],
        }
    )
    assert feedback_failures("feedback__feedback_crm_contacts.json", crm) == set()
    crm.loc[0, "handoff_sla_due_at"] = "02/11/2026 15:00"
    assert feedback_failures("feedback__feedback_crm_contacts.json", crm) == {
        ("expect_column_values_to_match_regex", "handoff_sla_due_at")
    }
