"""`handoff sync` killed with SIGKILL inside a step: the next sync fails the dead run, frees the
warehouse, finishes, and leaves the warehouse a clean sync leaves, with nothing written back twice."""

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time

import dagster as dg
import duckdb
import pytest

from pipeline.settings import PROJECT_DIR
from sandbox.app import CRM_PREFIX, MARKETING_PREFIX
from sandbox.server import SandboxServer, build_sandbox

SYNC_TIMEOUT_S = 600


class HoldingWriteBacks:
    """ASGI middleware before the sandbox: a request to the write-back endpoint being held waits until
    released, so a test knows a batch is in flight when it kills the sync, and the batch is then
    applied with nobody left to hear the answer."""

    ENDPOINTS = {
        "crm": f"{CRM_PREFIX}/crm/v3/objects/contacts/batch/update",
        "marketing": f"{MARKETING_PREFIX}/rest/v1/leads.json",
    }

    def __init__(self, app):
        self.app = app
        self.holding: str | None = None
        self.arrived, self.released = threading.Event(), threading.Event()

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == self.holding:
            self.arrived.set()
            await asyncio.get_running_loop().run_in_executor(None, self.released.wait)
        await self.app(scope, receive, send)

    def hold(self, system: str) -> None:
        self.holding = self.ENDPOINTS[system]
        self.arrived.clear()
        self.released.clear()

    def release(self) -> None:
        self.holding = None
        self.released.set()


@pytest.fixture
def sandbox(tmp_path, clean_tiny_dataset):
    server = SandboxServer(build_sandbox(tmp_path / "sandbox", dataset_dir=clean_tiny_dataset))
    server.holding = HoldingWriteBacks(server._server.config.app)
    server._server.config.app = server.holding
    with server:
        server.publish(tmp_path / "connection.json")
        yield server


def start_sync(home, connection_file) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", "sync", "--connection-file", str(connection_file)],
        cwd=PROJECT_DIR,
        env={**os.environ, "HANDOFF_HOME": str(home), "COLUMNS": "200"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def killed(sync: subprocess.Popen, home) -> list[str]:
    """SIGKILL the sync's whole process group; the runs it leaves unfinished."""
    os.killpg(sync.pid, signal.SIGKILL)
    sync.wait()
    with dg.DagsterInstance.from_config(str(home / "dagster")) as instance:
        return [run.run_id for run in instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))]


def kill_in_the_dbt_build(home, connection_file) -> list[str]:
    sync = start_sync(home, connection_file)
    deadline = time.monotonic() + SYNC_TIMEOUT_S
    while time.monotonic() < deadline:
        assert sync.poll() is None, f"the sync ended before dbt's build started:\n{sync.stdout.read()}"
        if (home / "dagster" / "dagster.yaml").exists():
            with dg.DagsterInstance.from_config(str(home / "dagster")) as instance:
                for run in instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])):
                    records = instance.get_records_for_run(run.run_id, of_type=dg.DagsterEventType.STEP_START).records
                    if any(record.event_log_entry.step_key == "dbt_models" for record in records):
                        return killed(sync, home)
        time.sleep(0.2)
    raise AssertionError(f"dbt's build did not start within {SYNC_TIMEOUT_S} s")


def kill_in_the_write_back(home, connection_file, sandbox, system: str) -> list[str]:
    sandbox.holding.hold(system)
    sync = start_sync(home, connection_file)
    try:
        assert sandbox.holding.arrived.wait(SYNC_TIMEOUT_S), f"no {system} write-back within {SYNC_TIMEOUT_S} s"
        return killed(sync, home)
    finally:
        sandbox.holding.release()


def table_rows(home) -> dict[str, int]:
    """Rows per table in every layer (dlt's transient staging datasets aside)."""
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as db:
        tables = db.execute("""select table_schema, table_name from information_schema.tables
                               where (table_schema like 'raw%' and table_schema not like '%staging'
                                      or table_schema in ('staging', 'intermediate', 'marts', 'feedback'))
                                 and table_name not like '\\_dlt%' escape '\\'""").fetchall()
        return {
            f"{schema}.{table}": db.execute(f'select count(*) from "{schema}"."{table}"').fetchone()[0]
            for schema, table in tables
        }


def values_accepted_twice(home) -> list[tuple]:
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as db:
        return db.execute("""select system, record_id, property, value, count(*) from writeback.record_outcomes
                             where outcome = 'accepted' group by all having count(*) > 1""").fetchall()


def synced(home, connection_file) -> str:
    sync = start_sync(home, connection_file)
    output, _ = sync.communicate(timeout=SYNC_TIMEOUT_S)
    assert sync.returncode == 0, output
    return output


def test_a_sync_killed_in_any_step_blocks_nothing_and_the_next_leaves_what_a_clean_sync_leaves(tmp_path, sandbox):
    home, company = tmp_path / "home", tmp_path / "connection.json"
    dead = kill_in_the_dbt_build(home, company)
    dead += kill_in_the_write_back(home, company, sandbox, "crm")
    dead += kill_in_the_write_back(home, company, sandbox, "marketing")
    assert len(dead) == 3

    synced(home, company)  # within SYNC_TIMEOUT_S, where a dead run's slot made it wait forever
    with dg.DagsterInstance.from_config(str(home / "dagster")) as instance:
        assert {instance.get_run_by_id(run_id).status for run_id in dead} == {dg.DagsterRunStatus.FAILURE}
    assert values_accepted_twice(home) == []

    # The write-back changes the systems (marketing automation logs an activity for each changed
    # lead), so the recovered warehouse is compared with a clean one once both have read the same
    # systems: after a sync that has nothing left to send, and a first sync in a new data home.
    settled = synced(home, company)
    assert "Written back to CRM contacts: 0 records" in settled
    assert "Written back to marketing leads: 0 records" in settled
    clean_home = tmp_path / "clean"
    synced(clean_home, company)
    assert table_rows(home) == table_rows(clean_home)
