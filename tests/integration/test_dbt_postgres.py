"""The dbt project runs unchanged on PostgreSQL: the same company loaded by dlt into DuckDB and into
PostgreSQL builds the same funnel in both."""

import os
import subprocess
import sys
import threading
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import dlt
import duckdb
import psycopg2
import pytest

from pipeline.ingest.calendars import reference_source
from pipeline.ingest.crm import crm_source
from pipeline.ingest.marketing import marketing_source
from pipeline.ingest.web import web_source
from pipeline.settings import DBT_PROJECT_DIR, load_connections
from pipeline.transform.contract import load_contract, write_contract_seeds
from sandbox.server import SandboxServer, build_sandbox
from sandbox.website import export_web_events

COMPARED_MARTS = ["fct_handoffs", "dim_people"]


@pytest.fixture(scope="module")
def postgres_database(new_postgres_database):
    return new_postgres_database()


@pytest.fixture(scope="module")
def served_company(clean_tiny_dataset, tmp_path_factory):
    """The clean tiny company over HTTP: its connections and its website's exported events."""
    with SandboxServer(build_sandbox(tmp_path_factory.mktemp("sandbox"), dataset_dir=clean_tiny_dataset)) as server:
        web_folder = tmp_path_factory.mktemp("web")
        export_web_events(server.sandbox.store, web_folder)
        connection_file = tmp_path_factory.mktemp("connection") / "connection.json"
        server.publish(connection_file)
        yield load_connections(connection_file), web_folder


def load_company(connections, web_folder: Path, destination, pipelines_dir: Path) -> None:
    sources = {
        "raw_crm": crm_source(**vars(connections.crm)),
        "raw_marketing": marketing_source(**vars(connections.require_marketing())),
        "raw_web": web_source(folders=[str(web_folder)]),
        "raw_reference": reference_source(
            default_country=load_contract(DBT_PROJECT_DIR / "funnel_contract.yml").business_calendar.default.country,
            owner_calendars_file=str(connections.owner_calendars_file),
        ),
    }
    for dataset, source in sources.items():
        pipeline = dlt.pipeline(
            pipeline_name=f"test_{dataset}",
            destination=destination,
            dataset_name=dataset,
            pipelines_dir=str(pipelines_dir),
        )
        pipeline.run(source).raise_on_failed_jobs()


def dbt_build(target: str, environment: dict[str, str], target_path: Path, as_of: datetime, *selection: str) -> None:
    dbt = Path(sys.executable).parent / "dbt"
    completed = subprocess.run(
        [
            str(dbt),
            "build",
            *selection,
            "--project-dir",
            str(DBT_PROJECT_DIR),
            "--profiles-dir",
            str(DBT_PROJECT_DIR),
            "--target",
            target,
            "--target-path",
            str(target_path),
            "--vars",
            f"{{as_of: '{as_of:%Y-%m-%d %H:%M:%S}'}}",
        ],
        env={**os.environ, **environment},
        capture_output=True,
        text=True,
    )
    assert completed.returncode == 0, completed.stdout[-4000:]


def comparable(rows: list[tuple]) -> list[tuple]:
    """Rows as plain values, so the two warehouses' drivers (Decimal vs float, tz) compare equal."""

    def plain(value):
        if isinstance(value, Decimal):
            return float(value)
        if isinstance(value, datetime):
            return value.replace(tzinfo=None).isoformat()
        return value

    return sorted(tuple(plain(v) for v in row) for row in rows)


def test_dbt_build_on_postgres_gives_the_same_marts_as_on_duckdb(
    served_company, postgres_database, company_now, tmp_path
):
    connections, web_folder = served_company
    write_contract_seeds(DBT_PROJECT_DIR)
    duckdb_home = tmp_path / "duckdb-home"
    duckdb_home.mkdir()
    load_company(
        connections, web_folder, dlt.destinations.duckdb(str(duckdb_home / "warehouse.duckdb")), tmp_path / "dlt-duckdb"
    )
    postgres = {
        "host": "127.0.0.1",
        "port": 5432,
        "username": "postgres",
        "password": "",
        "database": postgres_database,
    }
    load_company(connections, web_folder, dlt.destinations.postgres(credentials=postgres), tmp_path / "dlt-postgres")

    dbt_build("duckdb", {"HANDOFF_HOME": str(duckdb_home)}, tmp_path / "target-duckdb", company_now)
    dbt_build(
        "postgres",
        {"HANDOFF_PG_DATABASE": postgres_database, "HANDOFF_PG_USER": "postgres"},
        tmp_path / "target-postgres",
        company_now,
    )

    with (
        duckdb.connect(str(duckdb_home / "warehouse.duckdb"), read_only=True) as db,
        psycopg2.connect(host="127.0.0.1", dbname=postgres_database, user="postgres") as pg,
    ):
        for mart in COMPARED_MARTS:
            columns = [
                name
                for (name,) in db.execute(
                    "select column_name from information_schema.columns where table_schema = 'marts' "
                    "and table_name = ? order by ordinal_position",
                    [mart],
                ).fetchall()
            ]
            select = f"select {', '.join(columns)} from marts.{mart}"
            on_duckdb = comparable(db.execute(select).fetchall())
            cursor = pg.cursor()
            cursor.execute(select)
            assert len(on_duckdb) > 0, mart
            assert comparable(cursor.fetchall()) == on_duckdb, mart

    # BI on PostgreSQL reads the marts while a build replaces them: dbt swaps each table in one
    # transaction there, so a reader polling throughout sees the whole mart every time, never none.
    expected = {mart: len(read_mart(postgres_database, mart)) for mart in COMPARED_MARTS}
    stop, seen, failures = threading.Event(), [], []

    def poll() -> None:
        # Each count a transaction of its own, as a BI tool's query is: a transaction held open would
        # hold its tables and make the build wait.
        reader = psycopg2.connect(host="127.0.0.1", dbname=postgres_database, user="postgres")
        reader.autocommit = True
        try:
            while not stop.is_set():
                for mart in COMPARED_MARTS:
                    try:
                        with reader.cursor() as cursor:
                            cursor.execute(f"select count(*) from marts.{mart}")
                            seen.append((mart, cursor.fetchone()[0]))
                    except psycopg2.Error as error:
                        failures.append(f"{mart}: {error}")
        finally:
            reader.close()

    poller = threading.Thread(target=poll)
    poller.start()
    try:
        dbt_build(
            "postgres",
            {"HANDOFF_PG_DATABASE": postgres_database, "HANDOFF_PG_USER": "postgres"},
            tmp_path / "target-postgres-again",
            company_now,
            "--select",
            "marts",
        )
    finally:
        stop.set()
        poller.join()
    assert failures == []
    assert len(seen) > 20 and {count for mart, count in seen if mart == "fct_handoffs"} == {expected["fct_handoffs"]}
    assert {count for mart, count in seen if mart == "dim_people"} == {expected["dim_people"]}


def read_mart(database: str, mart: str) -> list[tuple]:
    with psycopg2.connect(host="127.0.0.1", dbname=database, user="postgres") as pg, pg.cursor() as cursor:
        cursor.execute(f"select * from marts.{mart}")
        return cursor.fetchall()
