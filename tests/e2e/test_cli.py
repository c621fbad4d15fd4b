"""The `handoff` command as a user runs it: the demo, its rerun, Ctrl-C, and the code location check."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import duckdb
import psycopg2

from pipeline.services import free_port
from pipeline.settings import PROJECT_DIR

HANDOFF = [sys.executable, "-m", "pipeline.cli"]


def run(args, home: Path, env_overrides: dict[str, str] | None = None, **kwargs):
    env = {**os.environ, "HANDOFF_HOME": str(home), "COLUMNS": "200", **(env_overrides or {})}
    return subprocess.run(args, cwd=PROJECT_DIR, env=env, capture_output=True, text=True, timeout=600, **kwargs)


def test_demo_runs_end_to_end_and_a_rerun_writes_nothing_back(tmp_path, malformed_tiny_dataset):
    # A pinned company with malformed records of every kind: the gate flags them and stops nothing.
    first = run([*HANDOFF, "demo", "--dataset", str(malformed_tiny_dataset)], tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    flagged = re.search(r"Records flagged: (\d+) ", first.stdout)
    assert flagged and int(flagged[1]) > 0
    assert "raw_crm.contacts" in first.stdout and "marts.dim_people" in first.stdout
    written = re.search(r"Written back to CRM contacts: (\d+) records in (\d+) batches", first.stdout)
    assert written and int(written[1]) > 0 and int(written[2]) >= 1
    assert "failed" not in first.stdout
    assert "Written back to marketing leads: 0 records" not in first.stdout
    assert str(tmp_path / "warehouse.duckdb") in first.stdout
    # The website's events came in through the intake service, which stopped with the demo.
    assert list((tmp_path / "landing" / "web").rglob("*.ndjson"))
    assert int(re.search(r"raw_web\.events\s.*?(\d+)\s*$", first.stdout, re.MULTILINE)[1]) > 0
    assert str(tmp_path / "serving" / "funnel.duckdb") in first.stdout

    second = run([*HANDOFF, "demo", "--dataset", str(malformed_tiny_dataset)], tmp_path)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "Written back to CRM contacts: 0 records in 0 batches" in second.stdout
    assert "Written back to marketing leads: 0 records in 0 batches" in second.stdout

    # Same rows in the warehouse, but for what the first run's write-back caused: marketing
    # automation logs a Change Data Value activity (type 13) for each lead field it was sent.
    def counts(out: str) -> dict[str, int]:
        return {
            line.split()[0]: int(line.split()[-1])
            for line in out.splitlines()
            if line.strip().startswith(("raw_", "marts."))
        }

    before, after = counts(first.stdout), counts(second.stdout)
    changed = {table for table in before if before[table] != after[table]}
    assert changed <= {"raw_marketing.activities"}
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as db:
        logged = db.execute("""
            select activity_type_id, primary_attribute_value, count(*) from raw_marketing.activities
            where _dlt_load_id = (select max(_dlt_load_id) from raw_marketing.activities)
            group by all""").fetchall()
    assert after["raw_marketing.activities"] - before["raw_marketing.activities"] == sum(n for *_, n in logged)
    assert {(type_id, field.startswith("Handoff ")) for type_id, field, _ in logged} <= {(13, True)}


def test_a_wave_of_bad_records_stops_the_demo_saying_why_until_an_operator_accepts_it(tmp_path, company_now):
    from sandbox.simulation import generate

    dataset = tmp_path / "dataset"
    generate(dataset, scale="tiny", seed=7, now=company_now, malformed_share=1.0)
    home = tmp_path / "home"

    stopped = run([*HANDOFF, "demo", "--dataset", str(dataset)], home)
    assert stopped.returncode == 1, stopped.stdout + stopped.stderr
    # The terminal names the check, the expectation, the count, failing records by key, and the page.
    why = re.search(r"raw_marketing/leads:gx_raw_marketing__leads: (.*)", stopped.stdout)
    assert why, stopped.stdout
    assert re.search(r"expect_column_values_to_match_regex\(email\) \[critical\]: \d+ of \d+ unexpected", why[1])
    assert re.search(r"e\.g\. id=\d+", why[1]) and "Data Docs: file://" in why[1]
    assert "@" not in why[1].split("Data Docs")[0]  # keys only: no address is shown

    status = run([*HANDOFF, "quality", "status"], home)
    assert status.returncode == 0, status.stdout + status.stderr
    assert "[critical]" in status.stdout
    stopped_loads = dict(re.findall(r"(raw_\w+\.\w+)[\s│]+(\d+\.\d+)[\s│]+stopped", status.stdout))
    assert "raw_marketing.leads" in stopped_loads, status.stdout

    for table, load_id in stopped_loads.items():
        accept = [*HANDOFF, "quality", "accept", table, load_id, "--reason", "imported list", "--by", "ops"]
        accepted = run(accept, home)
        assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    load_id = stopped_loads["raw_marketing.leads"]
    refused = run([*HANDOFF, "quality", "accept", "raw_marketing.leads", load_id, "--reason", "again"], home)
    assert refused.returncode == 1 and "awaits a decision" in refused.stdout

    goes_on = run([*HANDOFF, "demo", "--dataset", str(dataset)], home)
    assert goes_on.returncode == 0, goes_on.stdout + goes_on.stderr
    status = run([*HANDOFF, "quality", "status"], home)
    assert re.search(rf"raw_marketing\.leads[\s│]+{re.escape(load_id)}[\s│]+accepted[\s│]+ops at", status.stdout), (
        status.stdout
    )


def test_ctrl_c_during_the_demo_leaves_no_server_behind(tmp_path):
    env = {**os.environ, "HANDOFF_HOME": str(tmp_path)}
    # Started with Ctrl-C ignored, as a script's background job is: the demo still stops on it.
    demo = subprocess.Popen(
        [*HANDOFF, "demo", "--scale", "tiny"],
        cwd=PROJECT_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    connection_file = tmp_path / "sandbox" / "demo-connection.json"
    deadline = time.monotonic() + 120
    while not connection_file.exists():
        assert time.monotonic() < deadline and demo.poll() is None, "the sandbox never started"
        time.sleep(0.1)
    address = urlparse(json.loads(connection_file.read_text())["crm"]["base_url"])

    demo.send_signal(signal.SIGINT)
    output, _ = demo.communicate(timeout=60)

    assert demo.returncode != 0
    assert "Interrupted" in output
    with socket.socket() as probe:
        assert probe.connect_ex((address.hostname, address.port)) != 0, "the sandbox still answers"
    assert not connection_file.exists()


def test_code_location_validates(tmp_path):
    dagster = Path(sys.executable).parent / "dagster"
    result = run([str(dagster), "definitions", "validate", "-w", "workspace.yaml"], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Validation successful" in result.stdout + result.stderr


def test_sync_without_a_connection_explains_how_to_give_one(tmp_path):
    result = run([*HANDOFF, "sync", "--connection-file", str(tmp_path / "absent.json")], tmp_path)
    assert result.returncode == 2
    assert "HANDOFF_CRM_BASE_URL" in result.stdout and "handoff sandbox serve" in result.stdout


def test_a_warehouse_that_cannot_be_used_stops_sync_and_the_code_location_before_any_load(tmp_path):
    """A PostgreSQL nobody listens on, and an unknown target: one line naming the setting, nothing loaded."""
    unreachable = {"HANDOFF_DBT_TARGET": "postgres", "HANDOFF_PG_PORT": str(free_port())}
    # Systems are described (their addresses need not answer): the warehouse is what is checked.
    company = tmp_path / "connection.json"
    company.write_text(json.dumps({"crm": {"base_url": "http://127.0.0.1:9", "access_token": "unused"}}))
    sync = run([*HANDOFF, "sync", "--connection-file", str(company)], tmp_path, env_overrides=unreachable)
    assert sync.returncode == 2, sync.stdout + sync.stderr
    [message] = [line for line in sync.stdout.splitlines() if line.strip()]
    assert "cannot be reached" in message and "HANDOFF_PG_HOST" in message and "HANDOFF_DBT_TARGET=duckdb" in message
    assert not (tmp_path / "dlt").exists() or not any((tmp_path / "dlt").iterdir())

    dagster = Path(sys.executable).parent / "dagster"
    location = run(
        [str(dagster), "definitions", "validate", "-w", "workspace.yaml"], tmp_path, env_overrides=unreachable
    )
    assert location.returncode != 0 and "HANDOFF_PG_PORT" in location.stdout + location.stderr

    unknown = run([*HANDOFF, "sync"], tmp_path, env_overrides={"HANDOFF_DBT_TARGET": "snowflake"})
    assert unknown.returncode == 2 and "HANDOFF_DBT_TARGET" in unknown.stdout

    # A user who may log in but not create the schemas dlt and dbt write.
    admin = psycopg2.connect(host="127.0.0.1", dbname="test", user="postgres")
    admin.autocommit = True
    admin.cursor().execute(
        "do $$ begin create role handoff_without_rights login; exception when duplicate_object then null; end $$"
    )
    admin.close()
    without_rights = {"HANDOFF_DBT_TARGET": "postgres", "HANDOFF_PG_USER": "handoff_without_rights"}
    lacking = run([*HANDOFF, "sync", "--connection-file", str(company)], tmp_path, env_overrides=without_rights)
    assert lacking.returncode == 2, lacking.stdout + lacking.stderr
    assert "may not create schemas" in lacking.stdout and "HANDOFF_PG_USER" in lacking.stdout
