"""The business-time macros agree with the sandbox's ``BusinessCalendar``, moment for moment.

A warehouse of the tiny company's owners (loaded from the CRM stand-in) and their calendars and
public holidays (loaded from the sandbox's calendars export through the connection file) gets the
calendar model built as of the company's ``now``; the macros then run, on DuckDB and on PostgreSQL,
for random owners, moments and allowances, and for the generator's own handoffs, and must give
what the generator's calendars give, built as ``hire_team`` builds an owner's ``sla_calendar``.
"""

import json
import os
import random
import subprocess
import sys
from contextlib import closing
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import dlt
import duckdb
import holidays
import psycopg2
import pytest

from pipeline.ingest.calendars import reference_source
from pipeline.ingest.crm import crm_source
from pipeline.settings import DBT_PROJECT_DIR, load_connections
from pipeline.transform.contract import load_contract, write_contract_seeds
from sandbox.dataset import Dataset, parse_iso
from sandbox.server import SandboxServer, build_sandbox
from sandbox.simulation import DAY, SIMULATED_DAYS, BusinessCalendar, Clock, local_days, working_intervals

RANDOM_CASES = 1_500
DBT = str(Path(sys.executable).parent / "dbt")


def sla_calendar(owner: dict, clock: Clock) -> BusinessCalendar:
    """The owner's SLA calendar as ``hire_team`` builds it: working hours on workdays, minus holidays."""
    days = local_days(clock)
    off = holidays.country_holidays(owner["country"], years=range(days[0].year, days[-1].year + 1))
    workdays = [day for day in days if day.weekday() < 5 and day not in off]
    hours = (owner["workingHours"]["start"], owner["workingHours"]["end"])
    return BusinessCalendar(working_intervals(clock, ZoneInfo(owner["timeZone"]), hours, workdays))


@dataclass(frozen=True)
class Warehouse:
    """Where the test builds: the DuckDB file in ``home``, or a PostgreSQL database of its own."""

    target: str
    home: Path
    database: str = ""
    macros_query: str = ""  # the macros over public.business_time_cases, compiled for the target

    def destination(self):
        if self.target == "postgres":
            return dlt.destinations.postgres(
                credentials={
                    "host": "127.0.0.1",
                    "port": 5432,
                    "username": "postgres",
                    "password": "",
                    "database": self.database,
                }
            )
        return dlt.destinations.duckdb(str(self.home / "warehouse.duckdb"))

    def connect(self):
        if self.target == "postgres":
            connection = psycopg2.connect(host="127.0.0.1", dbname=self.database, user="postgres")
            connection.autocommit = True
            return closing(connection)
        return duckdb.connect(str(self.home / "warehouse.duckdb"))

    def dbt(self, *args: str) -> str:
        result = subprocess.run(
            [
                DBT,
                *args,
                "--project-dir",
                str(DBT_PROJECT_DIR),
                "--profiles-dir",
                str(DBT_PROJECT_DIR),
                "--target-path",
                str(self.home / "dbt-target"),
                "--log-path",
                str(self.home / "dbt-logs"),
            ],
            env=os.environ
            | {"HANDOFF_HOME": str(self.home), "HANDOFF_DBT_TARGET": self.target}
            | ({"HANDOFF_PG_DATABASE": self.database} if self.database else {}),
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
        return result.stdout


@pytest.fixture(scope="module")
def simulated_calendars(tiny_dataset):
    """The tiny company's dataset, its clock, its owners, and each owner's SLA calendar by owner id."""
    dataset = Dataset(tiny_dataset)
    clock = Clock(parse_iso(dataset.manifest.now), SIMULATED_DAYS)
    owners = list(dataset.rows("owners"))
    return dataset, clock, owners, {owner["id"]: sla_calendar(owner, clock) for owner in owners}


@pytest.fixture(scope="module", params=["duckdb", "postgres"])
def warehouse(request, simulated_calendars, tmp_path_factory, new_postgres_database):
    home = tmp_path_factory.mktemp(f"business-time-{request.param}")
    if request.param == "duckdb":
        return build(Warehouse("duckdb", home), simulated_calendars)
    return build(Warehouse("postgres", home, new_postgres_database()), simulated_calendars)


def build(warehouse: Warehouse, simulated_calendars) -> Warehouse:
    """Owners from the CRM stand-in, calendars and holidays from the sandbox's export, then dbt."""
    dataset, clock, _, _ = simulated_calendars
    home = warehouse.home
    with SandboxServer(build_sandbox(home / "sandbox", dataset_dir=dataset.folder)) as server:
        server.publish(home / "connection.json")
        connections = load_connections(home / "connection.json")
        dlt.pipeline(
            "crm", destination=warehouse.destination(), dataset_name="raw_crm", pipelines_dir=str(home / "dlt")
        ).run(crm_source(**vars(connections.crm)).with_resources("owners"))
    contract = write_contract_seeds(DBT_PROJECT_DIR)
    dlt.pipeline(
        "reference", destination=warehouse.destination(), dataset_name="raw_reference", pipelines_dir=str(home / "dlt")
    ).run(
        reference_source(
            default_country=contract.business_calendar.default.country,
            owner_calendars_file=str(connections.owner_calendars_file),
            today=clock.moment(clock.now).date(),
        )
    )
    as_of = clock.moment(clock.now).strftime("%Y-%m-%d %H:%M:%S")
    # Cautious: tests that also read models outside this selection (the funnel's) stay out.
    warehouse.dbt(
        "build",
        "--select",
        "+int_owner_business_hours",
        "--indirect-selection",
        "cautious",
        "--vars",
        json.dumps({"as_of": as_of}),
    )
    return replace(
        warehouse,
        macros_query=warehouse.dbt(
            "compile",
            "--quiet",
            "--inline",
            """
        select
            case_id,
            {{ business_minutes_between('owner_id', 'start_at', 'end_at') }} as minutes_between,
            {{ business_time_after('owner_id', 'start_at', 'minutes') }} as time_after
        from public.business_time_cases""",
        ),
    )


def run_macros(warehouse: Warehouse, cases: list[tuple]) -> dict[int, tuple]:
    """Case id → (business minutes between, business time after) as the macros compute them."""
    with warehouse.connect() as connection:
        cursor = connection.cursor()
        cursor.execute("create schema if not exists public")
        cursor.execute("drop table if exists public.business_time_cases")
        cursor.execute(
            "create table public.business_time_cases "
            "(case_id integer, owner_id varchar, start_at timestamp, end_at timestamp, minutes double precision)"
        )
        cursor.executemany(
            "insert into public.business_time_cases values (%s, %s, %s, %s, %s)"
            if warehouse.target == "postgres"
            else "insert into public.business_time_cases values (?, ?, ?, ?, ?)",
            cases,
        )
        cursor.execute(warehouse.macros_query)
        return {
            case_id: (None if between is None else float(between), after)
            for case_id, between, after in cursor.fetchall()
        }


def random_cases(rng: random.Random, clock: Clock, calendars: dict[str, BusinessCalendar]) -> list[tuple]:
    """(owner, start, end, seconds) in simulation seconds: anywhere in the calendars, and on the
    edges where off-by-one errors live: interval opens and closes, allowances that use up exactly
    what is left of an interval, days around clock changes, end before start."""
    owner_ids = sorted(calendars)
    clock_changes = [
        clock.seconds(datetime(2026, month, day, tzinfo=ZoneInfo("UTC")))
        for month, day in ((3, 8), (3, 29), (10, 25), (11, 1))
    ]
    cases = []
    while len(cases) < RANDOM_CASES:
        owner = rng.choice(owner_ids)
        calendar = calendars[owner]
        first, last = calendar.opens[0], calendar.closes[-1]
        index = rng.randrange(len(calendar.opens))
        open_, close = calendar.opens[index], calendar.closes[index]
        start = rng.choice(
            [
                rng.randrange(first, last),
                open_,
                close,
                rng.randrange(open_, close),
                close - 1,
                min(max(rng.choice(clock_changes) + rng.randrange(-3 * DAY, 3 * DAY), first), last),
            ]
        )
        end = rng.choice(
            [
                start + rng.randrange(0, 14 * DAY),
                start + rng.randrange(0, DAY),
                open_,
                close,
                start - rng.randrange(1, DAY),
            ]
        )
        left_in_interval = close - start if open_ <= start < close else rng.randrange(0, 9 * 3600)
        seconds = rng.choice(
            [
                rng.randrange(0, 40 * 3600),
                60 * rng.randrange(0, 3000),
                left_in_interval,
                left_in_interval + 1,
                max(left_in_interval - 1, 0),
                0,
            ]
        )
        cases.append((owner, start, min(end, last), seconds))
    return cases


def naive(clock: Clock, t: int | None) -> datetime | None:
    return None if t is None else clock.moment(t).replace(tzinfo=None)


def test_macros_agree_with_the_simulations_calendars_on_random_moments(simulated_calendars, warehouse):
    _, clock, _, calendars = simulated_calendars
    cases = random_cases(random.Random(5), clock, calendars)
    results = run_macros(
        warehouse,
        [
            (n, owner, naive(clock, start), naive(clock, end), seconds / 60)
            for n, (owner, start, end, seconds) in enumerate(cases)
        ],
    )
    mismatches = []
    for n, (owner, start, end, seconds) in enumerate(cases):
        calendar = calendars[owner]
        expected_between = calendar.between(start, end) / 60 if end > start else 0
        expected_after = naive(clock, calendar.advance(start, seconds))
        between, after = results[n]
        if round(between, 9) != round(expected_between, 9) or after != expected_after:
            mismatches.append(
                (
                    owner,
                    naive(clock, start),
                    naive(clock, end),
                    seconds,
                    (between, expected_between),
                    (after, expected_after),
                )
            )
    assert not mismatches, f"{len(mismatches)} of {len(cases)} disagree, e.g. {mismatches[:5]}"


def test_macros_reproduce_the_generators_handoff_clocks(simulated_calendars, warehouse):
    dataset, _, _, _ = simulated_calendars
    handoffs = [h for h in dataset.rows("truth_handoffs") if h["firstTouchAt"] or h["firstTouchDueAt"]]
    assert handoffs

    def moment(text: str | None) -> datetime | None:
        return parse_iso(text).replace(tzinfo=None) if text else None

    results = run_macros(
        warehouse,
        [
            (n, h["ownerId"], moment(h["mqlAt"]), moment(h["firstTouchAt"]), h["policyMinutes"])
            for n, h in enumerate(handoffs)
        ],
    )
    for n, handoff in enumerate(handoffs):
        between, after = results[n]
        if handoff["firstTouchDueAt"]:
            assert after == moment(handoff["firstTouchDueAt"]), handoff
        if handoff["firstTouchAt"]:
            assert round(between, 2) == handoff["firstTouchDelayMinutes"], handoff


def test_macros_answer_null_for_unknown_owners_and_missing_moments_and_zero_for_empty_spans(
    simulated_calendars, warehouse
):
    _, clock, owners, _ = simulated_calendars
    owner, start = owners[0]["id"], naive(clock, clock.now - 7 * DAY)
    results = run_macros(
        warehouse,
        [
            (1, "no-such-owner", start, start + timedelta(days=1), 60),
            (2, owner, None, start, 60),
            (3, owner, start, None, None),
            (4, owner, start, start, 60),
            (5, owner, start, start - timedelta(hours=5), 60),
        ],
    )
    assert results[1] == (None, None)
    assert results[2] == (None, None)
    assert results[3] == (None, None)
    assert results[4][0] == 0 and results[4][1] is not None
    assert results[5][0] == 0


def test_the_sandbox_calendars_export_loads_whole(simulated_calendars, warehouse):
    _, _, owners, _ = simulated_calendars
    with warehouse.connect() as connection:
        cursor = connection.cursor()
        cursor.execute(
            "select owner_id, time_zone, country, start_hour, end_hour "
            "from raw_reference.owner_calendars order by owner_id"
        )
        calendars = cursor.fetchall()
        cursor.execute(
            "select count(*) from information_schema.tables "
            "where table_schema = 'raw_reference' and table_name = 'quarantine'"
        )
        quarantine_tables = cursor.fetchall()
        cursor.execute("select distinct country from staging.stg_reference__public_holidays")
        countries = {country for (country,) in cursor.fetchall()}
    assert calendars == sorted(
        (o["id"], o["timeZone"], o["country"], o["workingHours"]["start"], o["workingHours"]["end"]) for o in owners
    )
    assert quarantine_tables[0][0] == 0
    default_country = load_contract(DBT_PROJECT_DIR / "funnel_contract.yml").business_calendar.default.country
    assert countries == {o["country"] for o in owners} | {default_country}
