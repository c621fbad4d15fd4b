"""The operational store: migrated by Alembic on first use, by processes starting together, on
SQLite and PostgreSQL; and a data home from before it keeps its ledger, outbox and counts."""

import subprocess
import sys
from datetime import UTC, datetime

import duckdb
import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory

from pipeline.alerts.outbox import Outbox
from pipeline.feedback.ledger import Ledger
from pipeline.settings import load_settings
from pipeline.state import StateStore, open_state_store
from pipeline.state.store import MIGRATIONS_DIR, adopt_warehouse_state

NEWEST_REVISION = ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()

# The layout the warehouse kept Handoff's state in before the operational store, as it was created.
WAREHOUSE_STATE_LAYOUT = """
create schema writeback;
create table writeback.batches (
    batch_id varchar primary key, system varchar not null, object_type varchar not null, run_id varchar,
    sent_at timestamp not null, records integer not null, status_code integer, response_status varchar,
    answered_at timestamp);
create sequence writeback.record_outcome_seq;
create table writeback.record_outcomes (
    outcome_id bigint primary key default nextval('writeback.record_outcome_seq'), batch_id varchar not null,
    system varchar not null, object_type varchar not null, record_id varchar not null, property varchar not null,
    value varchar, outcome varchar not null, reason varchar, recorded_at timestamp not null);
create table writeback.pending_changes (
    batch_id varchar not null, record_id varchar not null, property varchar not null, value varchar);
create schema alerting;
create table alerting.outbox (
    notice_key varchar not null, channel varchar not null, notice_kind varchar not null, notice json not null,
    queued_at timestamp not null, attempts integer not null, last_error varchar, delivered_at timestamp,
    primary key (notice_key, channel));
create schema quality;
create table quality.validated_batches (
    schema_name varchar, table_name varchar, load_id varchar, critical boolean, validated_at timestamptz);
create table quality.live_row_counts (
    schema_name varchar, table_name varchar, load_id varchar, live_rows bigint, accepted boolean,
    measured_at timestamptz);
create schema marts;
create table marts.dim_people as select 1 as person_id;
"""

OLD_STATE = """
insert into writeback.batches values
    ('b1', 'crm', 'contacts', 'run-1', '2026-11-01 10:00', 2, 200, 'COMPLETE', '2026-11-01 10:00:01'),
    ('b2', 'crm', 'contacts', 'run-2', '2026-11-02 10:00', 1, 200, 'COMPLETE', '2026-11-02 10:00:01'),
    ('b3', 'crm', 'contacts', 'run-3', '2026-11-03 10:00', 1, null, null, null);
insert into writeback.record_outcomes (batch_id, system, object_type, record_id, property, value, outcome,
                                       reason, recorded_at) values
    ('b1', 'crm', 'contacts', '1', 'handoff_sla_state', 'open', 'accepted', null, '2026-11-01 10:00:01'),
    ('b1', 'crm', 'contacts', '2', 'handoff_sla_state', 'open', 'rejected', 'no such contact', '2026-11-01 10:00:01'),
    ('b2', 'crm', 'contacts', '1', 'handoff_sla_state', 'breached', 'accepted', null, '2026-11-02 10:00:01');
insert into writeback.pending_changes values ('b3', '1', 'handoff_sla_state', 'met');
insert into alerting.outbox values
    ('h1:breached', 'webhook', 'sla', '{"kind": "breached"}', '2026-11-02 09:00', 1, null, '2026-11-02 09:00:01'),
    ('h2:at_risk', 'webhook', 'sla', '{"kind": "at_risk"}', '2026-11-02 09:05', 2, 'timeout', null);
insert into quality.validated_batches values ('raw_crm', 'contacts', '1700000000.1', false, '2026-11-02 10:00+00');
insert into quality.live_row_counts values
    ('raw_crm', 'contacts', '1700000000.1', 120, true, '2026-11-02 10:00+00');
"""


def test_a_data_home_from_before_the_store_keeps_its_ledger_outbox_and_counts(tmp_path):
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as db:
        db.execute(WAREHOUSE_STATE_LAYOUT)
        db.execute(OLD_STATE)

    store = open_state_store(load_settings(home=tmp_path, dbt_target="duckdb"))

    ledger = Ledger(store, "crm", "contacts")
    assert ledger.last_accepted() == {("1", "handoff_sla_state"): "breached"}  # the newest, as before
    assert ledger.refusals() == {("2", "handoff_sla_state", "open"): 1}
    assert ledger.summary() == {
        "ledger_batches": 3,
        "ledger_records_accepted": 2,
        "ledger_records_rejected": 1,
        "ledger_records_skipped": 0,
    }
    # The batch a killed run left unanswered is still settled by reading back.
    assert [c.value for c in ledger.unanswered_batches()["b3"]] == ["met"]
    assert Outbox(store).summary() == {"outbox_delivered": 1, "outbox_pending": 1, "outbox_given_up": 0}
    with store.begin() as state:
        counts = state.execute(sa.text("select live_rows, accepted from quality_live_row_counts")).all()
        judged = state.execute(sa.text("select load_id, critical from quality_validated_batches")).all()
    assert [tuple(row) for row in counts] == [(120, True)] and [tuple(row) for row in judged] == [
        ("1700000000.1", False)
    ]

    # The warehouse keeps data only, and adopting again moves nothing twice.
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as db:
        schemas = {name for (name,) in db.execute("select schema_name from information_schema.schemata").fetchall()}
        assert db.execute("select count(*) from marts.dim_people").fetchone() == (1,)
    assert not schemas & {"writeback", "alerting", "quality"}
    assert adopt_warehouse_state(store, tmp_path / "warehouse.duckdb") == {}
    assert ledger.summary()["ledger_batches"] == 3


def test_a_warehouse_adopted_once_is_not_copied_again_if_its_old_schemas_survived(tmp_path, state_store):
    """A crash between committing the copy and dropping the old schemas leaves them behind."""
    warehouse = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as db:
        db.execute(WAREHOUSE_STATE_LAYOUT)
        db.execute(OLD_STATE)
    assert adopt_warehouse_state(state_store, warehouse)["writeback.record_outcomes"] == 3
    with duckdb.connect(str(warehouse)) as db:  # as if the drop had not happened
        db.execute(WAREHOUSE_STATE_LAYOUT.split("create schema marts;")[0])
        db.execute(OLD_STATE)
    assert adopt_warehouse_state(state_store, warehouse) == {}
    assert Ledger(state_store, "crm", "contacts").summary()["ledger_batches"] == 3


MIGRATE = """
import sys
from pipeline.state import StateStore
from pipeline.feedback.ledger import Ledger
store = StateStore(sys.argv[1])
store.migrate()
print(Ledger(store, "crm", "contacts").summary()["ledger_batches"])
"""


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_processes_starting_together_on_a_new_store_migrate_it_once(tmp_path, backend, new_postgres_database):
    url = (
        f"sqlite:///{tmp_path / 'state.sqlite'}"
        if backend == "sqlite"
        else f"postgresql+psycopg2://postgres@127.0.0.1:5432/{new_postgres_database()}"
    )
    starting = [
        subprocess.Popen(
            [sys.executable, "-c", MIGRATE, url], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(4)
    ]
    outcomes = [process.communicate(timeout=120) for process in starting]
    assert [process.returncode for process in starting] == [0] * 4, [err for _, err in outcomes]
    assert [out.strip() for out, _ in outcomes] == ["0"] * 4
    store = StateStore(url)
    with store.begin() as state:
        assert state.execute(sa.text("select version_num from alembic_version")).scalar_one() == NEWEST_REVISION
    store.dispose()


def test_the_ledger_keeps_utc_moments_on_postgresql(new_postgres_database):
    store = StateStore(f"postgresql+psycopg2://postgres@127.0.0.1:5432/{new_postgres_database()}")
    store.migrate()
    ledger = Ledger(store, "crm", "contacts")
    ledger.record_sending("b1", "run-1", [])
    with store.begin() as state:
        sent_at = state.execute(sa.text("select sent_at from writeback_batches")).scalar_one()
    assert abs((datetime.now(UTC).replace(tzinfo=None) - sent_at).total_seconds()) < 60
    store.dispose()
