"""The quality checks on a warehouse laid out as dlt leaves it, on DuckDB and on PostgreSQL: each
judges the newest load, counts live records across loads, and links its Data Docs page. The checks
read through ``Warehouse.read()`` as they do in a run, and remember what they judged in an
operational store of the test's own."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlparse

import dagster as dg
import duckdb
import psycopg2
import pytest

from pipeline.quality.checks import (
    RAW_TABLES,
    NotStopped,
    accept_stopped_batch,
    evaluate_freshness,
    evaluate_live_rows,
    evaluate_raw_batch,
    stopped_batches,
)
from pipeline.state import StateStore
from pipeline.warehouse import Warehouse

NOW = datetime(2026, 11, 2, 12, tzinfo=UTC)
PAST = NOW - timedelta(days=3)
CONTACTS = next(raw for raw in RAW_TABLES if (raw.schema, raw.table) == ("raw_crm", "contacts"))


def write(warehouse: Warehouse, sql: str, *rows: list) -> None:
    """Runs ``sql``, once per row of parameters if any (``?`` marks each), on a writable connection
    of the engine's own, as dlt writes; committed and closed before the checks read, since DuckDB
    opens no read-only connection to a file that a writer in the same process holds."""
    if warehouse.target == "duckdb":
        connection = duckdb.connect(str(warehouse.duckdb_path))
        cursor = connection
    else:
        connection = psycopg2.connect(host=warehouse.pg_host, dbname=warehouse.pg_database, user=warehouse.pg_user)
        cursor, sql = connection.cursor(), sql.replace("?", "%s")
    try:
        if rows:
            cursor.executemany(sql, rows)
        else:
            cursor.execute(sql)
        connection.commit()
    finally:
        connection.close()


def create_loads_table(warehouse: Warehouse, schema: str) -> None:
    write(
        warehouse,
        f"create table {schema}._dlt_loads (load_id varchar, schema_name varchar, status bigint, "
        "inserted_at timestamptz)",
    )


@pytest.fixture(params=["duckdb", "postgres"])
def warehouse(request, tmp_path, new_postgres_database) -> Warehouse:
    """An empty raw_crm as dlt creates it, in a DuckDB file or a PostgreSQL database of the test's own."""
    if request.param == "duckdb":
        warehouse = Warehouse("duckdb", tmp_path / "warehouse.duckdb")
    else:
        warehouse = Warehouse(
            "postgres",
            duckdb_path=tmp_path / "unused.duckdb",
            pg_host="127.0.0.1",
            pg_user="postgres",
            pg_database=new_postgres_database(),
        )
    write(warehouse, "create schema raw_crm")
    create_loads_table(warehouse, "raw_crm")
    write(
        warehouse,
        """create table raw_crm.contacts (id varchar, created_at timestamptz, updated_at timestamptz,
           createdate timestamptz, archived boolean, email varchar, lifecyclestage varchar,
           hs_lead_status varchar, _dlt_load_id varchar)""",
    )
    write(
        warehouse,
        """create table raw_crm.quarantine (object_type varchar, record_id varchar, reason varchar,
           _dlt_load_id varchar)""",
    )
    return warehouse


def load(warehouse: Warehouse, load_id: str, ids, *, archived=False, stage="lead", created=PAST, loaded_at=NOW):
    """One dlt load merging ``ids`` into raw_crm.contacts."""
    write(warehouse, "delete from raw_crm.contacts where id = ?", *([str(i)] for i in ids))
    write(
        warehouse,
        "insert into raw_crm.contacts values (?, ?, ?, ?, ?, ?, ?, 'NEW', ?)",
        *([str(i), created, PAST, created, archived, f"p{i}@example.com", stage, load_id] for i in ids),
    )
    write(warehouse, "insert into raw_crm._dlt_loads values (?, 'crm', 0, ?)", [load_id, loaded_at])


def judge_batch(warehouse: Warehouse, store: StateStore, run_name: str, docs_dir: Path) -> dg.AssetCheckResult:
    with warehouse.read() as reader:
        return evaluate_raw_batch(reader, store, CONTACTS, NOW, run_name, docs_dir)


def judge_live_rows(warehouse: Warehouse, store: StateStore, run_name: str, docs_dir: Path) -> dg.AssetCheckResult:
    with warehouse.read() as reader:
        return evaluate_live_rows(reader, store, CONTACTS, run_name, docs_dir)


def judge_freshness(warehouse: Warehouse, run_name: str, docs_dir: Path) -> dg.AssetCheckResult:
    with warehouse.read() as reader:
        return evaluate_freshness(reader, NOW, run_name, docs_dir)


def failed(result: dg.AssetCheckResult) -> set[tuple[str, str | None]]:
    return {(f["expectation"], f["column"]) for f in result.metadata["failed_expectations"].value}


def test_only_the_newest_batch_is_validated_and_its_faults_fail_the_check(warehouse, state_store, tmp_path):
    load(warehouse, "1000.1", range(100), stage="astronaut")  # an old batch with a wave of unknown stages
    load(warehouse, "1000.2", range(100, 150))
    clean = judge_batch(warehouse, state_store, "run-1", tmp_path)
    assert clean.passed and clean.metadata["rows_validated"].value == 50

    load(warehouse, "1000.3", range(150, 200), stage="astronaut")
    unknown_stage = judge_batch(warehouse, state_store, "run-2", tmp_path)
    assert not unknown_stage.passed and unknown_stage.severity == dg.AssetCheckSeverity.ERROR
    assert failed(unknown_stage) == {("expect_column_values_to_be_in_set", "lifecyclestage")}
    assert {
        "expectation": "expect_column_values_to_be_in_set",
        "column": "lifecyclestage",
        "id": "150",
    } in unknown_stage.metadata["failing_records_sample"].value
    assert "astronaut" not in json.dumps({name: value.value for name, value in unknown_stage.metadata.items()})
    assert "lifecyclestage" in unknown_stage.description and "50 of 50 unexpected" in unknown_stage.description
    assert "id=150" in unknown_stage.description and "astronaut" not in unknown_stage.description

    load(warehouse, "1000.4", range(150, 200))  # fixed at the source: the next sync reloads them
    reloaded = judge_batch(warehouse, state_store, "run-3", tmp_path)
    assert reloaded.passed
    assert stopped(reloaded) == {"1000.3": "reloaded"}

    load(warehouse, "1000.5", range(200, 250), created=NOW + timedelta(days=1))
    assert failed(judge_batch(warehouse, state_store, "run-4", tmp_path)) == {
        ("expect_column_values_to_be_between", "createdate"),
        ("expect_column_pair_values_a_to_be_greater_than_b", None),
    }
    load(warehouse, "1000.6", range(200, 250))

    load(warehouse, "1000.7", range(250, 300))
    write(warehouse, "insert into raw_crm.contacts select * from raw_crm.contacts where id = '251'")
    duplicated = judge_batch(warehouse, state_store, "run-5", tmp_path)
    assert failed(duplicated) == {("expect_column_values_to_be_unique", "id")}

    load(warehouse, "1000.8", range(250, 300))
    fixed = judge_batch(warehouse, state_store, "run-6", tmp_path)
    assert fixed.passed  # fixed data clears the check
    assert stopped(fixed) == {"1000.3": "reloaded", "1000.5": "reloaded", "1000.7": "reloaded"}


def stopped(result: dg.AssetCheckResult) -> dict[str, str]:
    return {batch["load_id"]: batch["status"] for batch in result.metadata["stopped_batches"].value}


def test_one_malformed_email_in_a_batch_of_three_is_flagged_and_stops_nothing(warehouse, state_store, tmp_path):
    load(warehouse, "1000.1", range(3))
    write(warehouse, "update raw_crm.contacts set email = 'p1@@example' where id = '1'")
    result = judge_batch(warehouse, state_store, "run-1", tmp_path)
    assert result.passed and result.metadata["records_flagged"].value == 1
    [flag] = result.metadata["flagged_records"].value
    assert flag == {
        "expectation": "expect_column_values_to_match_regex",
        "column": "email",
        "records": 1,
        "sample_keys": [{"id": "1"}],
    }


def test_a_stopped_batch_stays_stopped_through_later_loads_until_an_operator_accepts_it(
    warehouse, state_store, tmp_path
):
    load(warehouse, "1000.1", range(10), stage="astronaut")
    assert not judge_batch(warehouse, state_store, "run-1", tmp_path).passed

    load(warehouse, "1000.2", range(10, 20))  # a clean batch of other contacts: the bad ones are still there
    later = judge_batch(warehouse, state_store, "run-2", tmp_path)
    assert not later.passed and later.severity == dg.AssetCheckSeverity.ERROR
    assert "load 1000.1 still stopped" in later.description
    assert "handoff quality accept raw_crm.contacts" in later.description
    assert later.metadata["rows_validated"].value == 10  # the new batch was judged too, and passed
    assert not judge_batch(warehouse, state_store, "run-3", tmp_path).passed

    with pytest.raises(NotStopped):
        accept_stopped_batch(state_store, "raw_crm.contacts", "1000.2", "ops@example.com", "a clean batch")
    accept_stopped_batch(state_store, "raw_crm.contacts", "1000.1", "ops@example.com", "the new stage is real")
    accepted = judge_batch(warehouse, state_store, "run-4", tmp_path)
    assert accepted.passed
    [decision] = accepted.metadata["stopped_batches"].value
    assert decision["status"] == "accepted" and decision["decided_by"] == "ops@example.com"
    assert decision["note"] == "the new stage is real"
    [batch] = stopped_batches(state_store)
    assert (batch["load_id"], batch["decision"]) == ("1000.1", "accepted")
    assert "expect_column_values_to_be_in_set(lifecyclestage)" in batch["verdict"]


def test_an_accepted_latest_batch_passes_saying_who_accepted_it(warehouse, state_store, tmp_path):
    load(warehouse, "1000.1", range(10), stage="astronaut")
    assert not judge_batch(warehouse, state_store, "run-1", tmp_path).passed
    accept_stopped_batch(state_store, "raw_crm.contacts", "1000.1", "ops@example.com", "the new stage is real")
    accepted = judge_batch(warehouse, state_store, "run-2", tmp_path)
    assert accepted.passed
    assert accepted.description == "no new batch: load 1000.1 was accepted by ops@example.com: the new stage is real"


def test_a_batch_that_passed_is_not_validated_again_and_one_that_failed_keeps_failing(warehouse, state_store, tmp_path):
    load(warehouse, "1000.1", range(50))
    assert judge_batch(warehouse, state_store, "run-1", tmp_path).metadata["rows_validated"].value == 50
    again = judge_batch(warehouse, state_store, "run-2", tmp_path)  # nothing new was loaded
    assert again.passed and again.metadata["rows_validated"].value == 0

    load(warehouse, "1000.2", range(50, 60), stage="astronaut")
    assert not judge_batch(warehouse, state_store, "run-3", tmp_path).passed
    still = judge_batch(warehouse, state_store, "run-4", tmp_path)
    assert not still.passed and still.metadata["rows_validated"].value == 10


def test_quarantined_records_are_reported_apart_from_the_batch(warehouse, state_store, tmp_path):
    load(warehouse, "1000.1", range(10))
    write(
        warehouse,
        "insert into raw_crm.quarantine values (?, ?, 'createdate: not a datetime', '1000.1')",
        ["contacts", "90"],
        ["contacts", "91"],
        ["deals", "7"],
    )
    result = judge_batch(warehouse, state_store, "run-1", tmp_path)
    assert result.passed
    assert (result.metadata["quarantined_in_batch"].value, result.metadata["rows_validated"].value) == (2, 10)


def test_the_check_links_its_data_docs_page(warehouse, state_store, tmp_path):
    load(warehouse, "1000.1", range(10), stage="astronaut")
    result = judge_batch(warehouse, state_store, "run-7", tmp_path / "docs")
    page = Path(urlparse(result.metadata["data_docs"].value).path)
    assert page.is_file() and page.is_relative_to(tmp_path / "docs")
    assert "run-7-1000.1" in page.parts and "astronaut" in page.read_text()


def test_a_table_with_no_dlt_loads_beside_it_is_not_passed_as_validated(warehouse, state_store, tmp_path):
    """Rows but no record of a completed load: the checks looked in the wrong place, or dlt wrote
    nothing it finished. Passing on the zero rows they found would hide that."""
    load(warehouse, "1000.1", range(10), stage="astronaut")
    write(warehouse, "drop table raw_crm._dlt_loads")
    for result in (
        judge_batch(warehouse, state_store, "run-1", tmp_path),
        judge_live_rows(warehouse, state_store, "run-1", tmp_path),
    ):
        assert not result.passed and result.severity == dg.AssetCheckSeverity.WARN
        assert result.description.startswith("nothing validated")
        assert result.metadata["rows_validated"].value == 0


def test_a_sixty_percent_drop_in_live_contacts_fails_until_they_are_back(warehouse, state_store, tmp_path):
    load(warehouse, "1000.1", range(100))
    assert judge_live_rows(warehouse, state_store, "run-1", tmp_path).passed

    load(warehouse, "1000.2", range(60), archived=True)  # 60 of 100 contacts archived in one load
    drop = judge_live_rows(warehouse, state_store, "run-2", tmp_path)
    assert not drop.passed and drop.severity == dg.AssetCheckSeverity.ERROR
    assert (drop.metadata["live_rows"].value, drop.metadata["previous_live_rows"].value) == (40, 100)

    load(warehouse, "1000.3", [99])  # a later load does not make the drop the new normal
    assert not judge_live_rows(warehouse, state_store, "run-3", tmp_path).passed

    load(warehouse, "1000.4", range(60))  # restored
    restored = judge_live_rows(warehouse, state_store, "run-4", tmp_path)
    assert restored.passed and restored.metadata["previous_live_rows"].value == 100

    load(warehouse, "1000.5", range(25), archived=True)  # a quarter gone: a warning, nothing stopped
    quarter = judge_live_rows(warehouse, state_store, "run-5", tmp_path)
    assert not quarter.passed and quarter.severity == dg.AssetCheckSeverity.WARN


def test_a_source_not_loaded_for_two_days_fails_freshness(warehouse, tmp_path):
    write(warehouse, "create schema raw_marketing")
    create_loads_table(warehouse, "raw_marketing")
    write(warehouse, "insert into raw_marketing._dlt_loads values ('1', 'marketing', 0, ?)", [NOW - timedelta(hours=1)])
    load(warehouse, "1000.1", range(5), loaded_at=NOW - timedelta(days=2))
    stale = judge_freshness(warehouse, "run-1", tmp_path)
    assert not stale.passed and stale.severity == dg.AssetCheckSeverity.ERROR
    assert stale.metadata["hours_since_crm_load"].value == 48.0

    load(warehouse, "1000.2", range(5), loaded_at=NOW - timedelta(minutes=5))
    fresh = judge_freshness(warehouse, "run-2", tmp_path)
    assert fresh.passed  # no website events yet is not a reason to stop
