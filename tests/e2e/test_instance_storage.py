"""`handoff sync` with the Dagster instance on PostgreSQL: the runs and their events are kept in the
database, not in SQLite; and the marts each run publishes for BI tools can be read from another
process while the next run holds the warehouse."""

import json
import os
import re
import subprocess
import sys
import textwrap

import duckdb
import psycopg2
import pytest

from pipeline.settings import DAGSTER_PG_URL_VARIABLE, PROJECT_DIR
from sandbox.server import SandboxServer, build_sandbox

# Reports whether some process holds a lock on the warehouse file, without taking one: a reader's
# lock would make the writing run fail. DuckDB holds a write lock on the file while it writes.
READ_SERVING_WHILE_WAREHOUSE_IS_LOCKED = textwrap.dedent("""
    import fcntl, json, os, struct, sys, time
    import duckdb

    warehouse, serving, deadline = sys.argv[1], sys.argv[2], time.monotonic() + float(sys.argv[3])

    def locked_by_a_writer(path):
        descriptor = os.open(path, os.O_RDONLY)
        try:
            query = struct.pack("hhqqi4x", fcntl.F_RDLCK, os.SEEK_SET, 0, 0, 0)
            return struct.unpack("hhqqi4x", fcntl.fcntl(descriptor, fcntl.F_GETLK, query))[0] == fcntl.F_WRLCK
        finally:
            os.close(descriptor)

    # A read counts once the writer held its lock both before and after it.
    while time.monotonic() < deadline:
        if locked_by_a_writer(warehouse):
            with duckdb.connect(serving, read_only=True) as db:
                people = db.execute("select count(*) from marts.dim_people").fetchone()[0]
            if locked_by_a_writer(warehouse):
                print(json.dumps({"read_while_writing": True, "dim_people": people}))
                break
        time.sleep(0.02)
    else:
        print(json.dumps({"read_while_writing": False}))
""")


@pytest.fixture
def dagster_database(new_postgres_database):
    """A database of its own for the instance's storage."""
    return new_postgres_database()


@pytest.fixture
def connection_file(tmp_path, clean_tiny_dataset):
    """The sandbox serving the pinned company without malformed records, so every run passes the quality gate."""
    with SandboxServer(build_sandbox(tmp_path / "sandbox", dataset_dir=clean_tiny_dataset)) as server:
        path = tmp_path / "connection.json"
        server.publish(path)
        yield path


def stored(database: str, query: str) -> list[tuple]:
    with (
        psycopg2.connect(host="127.0.0.1", dbname=database, user="postgres") as connection,
        connection.cursor() as cursor,
    ):
        cursor.execute(query)
        return cursor.fetchall()


def test_runs_are_kept_in_postgres_and_bi_reads_the_published_marts_while_a_run_writes(
    tmp_path, dagster_database, connection_file
):
    home = tmp_path / "home"
    env = {
        **os.environ,
        "HANDOFF_HOME": str(home),
        "COLUMNS": "200",
        DAGSTER_PG_URL_VARIABLE: f"postgresql://postgres@127.0.0.1:5432/{dagster_database}",
    }
    sync = [sys.executable, "-m", "pipeline.cli", "sync", "--connection-file", str(connection_file)]

    first = subprocess.run(sync, cwd=PROJECT_DIR, env=env, capture_output=True, text=True, timeout=900)
    assert first.returncode == 0, first.stdout + first.stderr
    [run_id] = re.findall(r"Dagster run ([0-9a-f-]{36})", first.stdout)
    assert stored(dagster_database, f"select status from runs where run_id = '{run_id}'") == [("SUCCESS",)]
    materialized = {
        key
        for (key,) in stored(
            dagster_database,
            f"select asset_key from event_logs where run_id = '{run_id}' "
            "and dagster_event_type = 'ASSET_MATERIALIZATION'",
        )
    }
    assert {'["marts", "dim_people"]', '["serving", "marts"]'} <= materialized
    assert not (home / "dagster" / "history").exists(), "runs went to SQLite storage as well"
    assert "postgresql://" not in (home / "dagster" / "dagster.yaml").read_text()

    serving = home / "serving" / "funnel.duckdb"
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as warehouse:
        people = warehouse.execute("select count(*) from marts.dim_people").fetchone()[0]
    with duckdb.connect(str(serving), read_only=True) as published:
        assert published.execute("select count(*) from marts.dim_people").fetchone()[0] == people > 0
        assert {
            schema
            for (schema,) in published.execute("select distinct table_schema from information_schema.tables").fetchall()
        } == {"marts"}

    second = subprocess.Popen(
        sync, cwd=PROJECT_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    reader = subprocess.run(
        [
            sys.executable,
            "-c",
            READ_SERVING_WHILE_WAREHOUSE_IS_LOCKED,
            str(home / "warehouse.duckdb"),
            str(serving),
            "600",
        ],
        capture_output=True,
        text=True,
        timeout=700,
    )
    output, _ = second.communicate(timeout=900)
    assert second.returncode == 0, output
    assert json.loads(reader.stdout) == {"read_while_writing": True, "dim_people": people}, reader.stderr
    assert len(stored(dagster_database, "select run_id from runs where status = 'SUCCESS'")) == 2
    assert not list(serving.parent.glob(".*.duckdb")), "a temporary copy was left behind"
