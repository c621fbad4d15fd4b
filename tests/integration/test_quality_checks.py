"""The quality checks on a warehouse laid out as dlt leaves it: each judges the newest load, counts
live records across loads, and links its Data Docs page."""

from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlparse

import dagster as dg
import duckdb
import pytest

from pipeline.quality.checks import RAW_TABLES, evaluate_freshness, evaluate_live_rows, evaluate_raw_batch

NOW = datetime(2026, 11, 2, 12, tzinfo=UTC)
PAST = NOW - timedelta(days=3)
CONTACTS = next(raw for raw in RAW_TABLES if (raw.schema, raw.table) == ("raw_crm", "contacts"))


@pytest.fixture
def db():
    with duckdb.connect() as connection:
        connection.execute("create schema raw_crm")
        connection.execute("""create table raw_crm._dlt_loads (load_id varchar, schema_name varchar, status bigint,
                                                                  inserted_at timestamptz)""")
        connection.execute("""create table raw_crm.contacts (id varchar, created_at timestamptz, updated_at timestamptz,
                              createdate timestamptz, archived boolean, email varchar, lifecyclestage varchar,
                              hs_lead_status varchar, _dlt_load_id varchar)""")
        connection.execute("""create table raw_crm.quarantine (object_type varchar, record_id varchar, reason varchar,
                                                                  _dlt_load_id varchar)""")
        yield connection


def load(db, load_id: str, ids, *, archived=False, stage="lead", created=PAST, loaded_at=NOW):
    """One dlt load merging ``ids`` into raw_crm.contacts."""
    db.execute("delete from raw_crm.contacts where id in (select unnest(?))", [[str(i) for i in ids]])
    db.executemany(
        "insert into raw_crm.contacts values (?, ?, ?, ?, ?, ?, ?, 'NEW', ?)",
        [[str(i), created, PAST, created, archived, f"p{i}@example.com", stage, load_id] for i in ids],
    )
    db.execute("insert into raw_crm._dlt_loads values (?, 'crm', 0, ?)", [load_id, loaded_at])


def failed(result: dg.AssetCheckResult) -> set[tuple[str, str | None]]:
    return {(f["expectation"], f["column"]) for f in result.metadata["failed_expectations"].value}


def test_only_the_newest_batch_is_validated_and_its_faults_fail_the_check(db, tmp_path):
    load(db, "1000.1", range(100), stage="astronaut")  # an old batch with a wave of unknown stages
    load(db, "1000.2", range(100, 150))
    clean = evaluate_raw_batch(db, CONTACTS, NOW, "run-1", tmp_path)
    assert clean.passed and clean.metadata["rows_validated"].value == 50

    load(db, "1000.3", range(150, 200), stage="astronaut")
    unknown_stage = evaluate_raw_batch(db, CONTACTS, NOW, "run-2", tmp_path)
    assert not unknown_stage.passed and unknown_stage.severity == dg.AssetCheckSeverity.ERROR
    assert failed(unknown_stage) == {("expect_column_values_to_be_in_set", "lifecyclestage")}
    assert {
        "expectation": "expect_column_values_to_be_in_set",
        "column": "lifecyclestage",
        "id": "150",
        "lifecyclestage": "astronaut",
    } in unknown_stage.metadata["failing_rows_sample"].value
    assert "lifecyclestage" in unknown_stage.description

    load(db, "1000.4", range(200, 250), created=NOW + timedelta(days=1))
    assert failed(evaluate_raw_batch(db, CONTACTS, NOW, "run-3", tmp_path)) == {
        ("expect_column_values_to_be_between", "createdate"),
        ("expect_column_pair_values_a_to_be_greater_than_b", None),
    }

    load(db, "1000.5", range(250, 300))
    db.execute("insert into raw_crm.contacts select * from raw_crm.contacts where id = '251'")
    duplicated = evaluate_raw_batch(db, CONTACTS, NOW, "run-4", tmp_path)
    assert failed(duplicated) == {("expect_column_values_to_be_unique", "id")}

    load(db, "1000.6", range(300, 350))
    assert evaluate_raw_batch(db, CONTACTS, NOW, "run-5", tmp_path).passed  # fixed data clears the check


def test_a_batch_that_passed_is_not_validated_again_and_one_that_failed_keeps_failing(db, tmp_path):
    load(db, "1000.1", range(50))
    assert evaluate_raw_batch(db, CONTACTS, NOW, "run-1", tmp_path).metadata["rows_validated"].value == 50
    again = evaluate_raw_batch(db, CONTACTS, NOW, "run-2", tmp_path)  # nothing new was loaded
    assert again.passed and again.metadata["rows_validated"].value == 0

    load(db, "1000.2", range(50, 60), stage="astronaut")
    assert not evaluate_raw_batch(db, CONTACTS, NOW, "run-3", tmp_path).passed
    still = evaluate_raw_batch(db, CONTACTS, NOW, "run-4", tmp_path)
    assert not still.passed and still.metadata["rows_validated"].value == 10


def test_quarantined_records_are_reported_apart_from_the_batch(db, tmp_path):
    load(db, "1000.1", range(10))
    db.executemany(
        "insert into raw_crm.quarantine values (?, ?, 'createdate: not a datetime', '1000.1')",
        [["contacts", "90"], ["contacts", "91"], ["deals", "7"]],
    )
    result = evaluate_raw_batch(db, CONTACTS, NOW, "run-1", tmp_path)
    assert result.passed
    assert (result.metadata["quarantined_in_batch"].value, result.metadata["rows_validated"].value) == (2, 10)


def test_the_check_links_its_data_docs_page(db, tmp_path):
    load(db, "1000.1", range(10), stage="astronaut")
    result = evaluate_raw_batch(db, CONTACTS, NOW, "run-7", tmp_path / "docs")
    page = Path(urlparse(result.metadata["data_docs"].value).path)
    assert page.is_file() and page.is_relative_to(tmp_path / "docs")
    assert "run-7" in page.parts and "astronaut" in page.read_text()


def test_a_sixty_percent_drop_in_live_contacts_fails_until_they_are_back(db, tmp_path):
    load(db, "1000.1", range(100))
    assert evaluate_live_rows(db, CONTACTS, "run-1", tmp_path).passed

    load(db, "1000.2", range(60), archived=True)  # 60 of 100 contacts archived in one load
    drop = evaluate_live_rows(db, CONTACTS, "run-2", tmp_path)
    assert not drop.passed and drop.severity == dg.AssetCheckSeverity.ERROR
    assert (drop.metadata["live_rows"].value, drop.metadata["previous_live_rows"].value) == (40, 100)

    load(db, "1000.3", [99])  # a later load does not make the drop the new normal
    assert not evaluate_live_rows(db, CONTACTS, "run-3", tmp_path).passed

    load(db, "1000.4", range(60))  # restored
    restored = evaluate_live_rows(db, CONTACTS, "run-4", tmp_path)
    assert restored.passed and restored.metadata["previous_live_rows"].value == 100

    load(db, "1000.5", range(25), archived=True)  # a quarter gone: a warning, nothing stopped
    quarter = evaluate_live_rows(db, CONTACTS, "run-5", tmp_path)
    assert not quarter.passed and quarter.severity == dg.AssetCheckSeverity.WARN


def test_a_source_not_loaded_for_two_days_fails_freshness(db, tmp_path):
    db.execute("create schema raw_marketing")
    db.execute(
        "create table raw_marketing._dlt_loads (load_id varchar, schema_name varchar, status bigint, "
        "inserted_at timestamptz)"
    )
    db.execute("insert into raw_marketing._dlt_loads values ('1', 'marketing', 0, ?)", [NOW - timedelta(hours=1)])
    load(db, "1000.1", range(5), loaded_at=NOW - timedelta(days=2))
    stale = evaluate_freshness(db, NOW, "run-1", tmp_path)
    assert not stale.passed and stale.severity == dg.AssetCheckSeverity.ERROR
    assert stale.metadata["hours_since_crm_load"].value == 48.0

    load(db, "1000.2", range(5), loaded_at=NOW - timedelta(minutes=5))
    fresh = evaluate_freshness(db, NOW, "run-2", tmp_path)
    assert fresh.passed  # no website events yet is not a reason to stop
