"""`handoff sync` killed with SIGKILL inside a step: the next sync fails the dead run, frees the
warehouse, finishes, and leaves the warehouse a clean sync leaves, with nothing written back twice;
on each warehouse target with its operational store (DuckDB and SQLite, PostgreSQL and PostgreSQL)."""

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from pipeline.settings import PROJECT_DIR, Settings, load_settings
from pipeline.state import StateStore
from pipeline.state.store import state_url
from pipeline.warehouse import Warehouse
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


def settings_of(variables: dict[str, str]) -> Settings:
    return load_settings(**{name.removeprefix("HANDOFF_").lower(): value for name, value in variables.items()})


def start_sync(variables: dict[str, str], connection_file) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", "sync", "--connection-file", str(connection_file)],
        cwd=PROJECT_DIR,
        env={**os.environ, **variables, "COLUMNS": "200"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def killed(sync: subprocess.Popen, variables: dict[str, str]) -> list[str]:
    """SIGKILL the sync's whole process group; the runs it leaves unfinished."""
    os.killpg(sync.pid, signal.SIGKILL)
    sync.wait()
    with dg.DagsterInstance.from_config(str(Path(variables["HANDOFF_HOME"]) / "dagster")) as instance:
        return [run.run_id for run in instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))]


def kill_in_the_dbt_build(variables: dict[str, str], connection_file) -> list[str]:
    home = Path(variables["HANDOFF_HOME"])
    sync = start_sync(variables, connection_file)
    deadline = time.monotonic() + SYNC_TIMEOUT_S
    while time.monotonic() < deadline:
        assert sync.poll() is None, f"the sync ended before dbt's build started:\n{sync.stdout.read()}"
        if (home / "dagster" / "dagster.yaml").exists():
            with dg.DagsterInstance.from_config(str(home / "dagster")) as instance:
                for run in instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])):
                    records = instance.get_records_for_run(run.run_id, of_type=dg.DagsterEventType.STEP_START).records
                    if any(record.event_log_entry.step_key == "dbt_models" for record in records):
                        return killed(sync, variables)
        time.sleep(0.2)
    raise AssertionError(f"dbt's build did not start within {SYNC_TIMEOUT_S} s")


def kill_in_the_write_back(variables: dict[str, str], connection_file, sandbox, system: str) -> list[str]:
    sandbox.holding.hold(system)
    sync = start_sync(variables, connection_file)
    try:
        assert sandbox.holding.arrived.wait(SYNC_TIMEOUT_S), f"no {system} write-back within {SYNC_TIMEOUT_S} s"
        return killed(sync, variables)
    finally:
        sandbox.holding.release()


# Every layer, dlt's transient staging datasets aside.
LAYERS = ("raw_crm", "raw_marketing", "raw_web", "raw_reference", "staging", "intermediate", "marts", "feedback")


def table_rows(variables: dict[str, str]) -> dict[str, int]:
    with Warehouse.of(settings_of(variables)).read() as reader:
        return {
            f"{schema}.{table}": reader.scalar(f"select count(*) from {reader.table(schema, table)}")
            for schema, table in reader.tables(LAYERS)
        }


def values_accepted_twice(variables: dict[str, str]) -> list[tuple]:
    store = StateStore(state_url(settings_of(variables)))
    try:
        with store.begin() as state:
            return list(
                state.execute(
                    sa.text("""select system, record_id, property, value, count(*) from writeback_record_outcomes
                               where outcome = 'accepted' group by 1, 2, 3, 4 having count(*) > 1""")
                )
            )
    finally:
        store.dispose()


def synced(variables: dict[str, str], connection_file) -> str:
    sync = start_sync(variables, connection_file)
    output, _ = sync.communicate(timeout=SYNC_TIMEOUT_S)
    assert sync.returncode == 0, output
    return output


@pytest.mark.timeout(2 * SYNC_TIMEOUT_S)  # up to six syncs, three of them killed: close to the suite's 600 s
@pytest.mark.parametrize("target", ["duckdb", "postgres"])
def test_a_sync_killed_in_any_step_blocks_nothing_and_the_next_leaves_what_a_clean_sync_leaves(
    tmp_path, sandbox, target, target_environment
):
    home, company = target_environment(target, tmp_path / "home"), tmp_path / "connection.json"
    dead = kill_in_the_dbt_build(home, company)
    dead += kill_in_the_write_back(home, company, sandbox, "crm")
    # Marketing's read-back after a crash is the same on either warehouse: once is enough.
    if target == "duckdb":
        dead += kill_in_the_write_back(home, company, sandbox, "marketing")
    assert len(dead) == (3 if target == "duckdb" else 2)

    synced(home, company)  # within SYNC_TIMEOUT_S, where a dead run's slot made it wait forever
    with dg.DagsterInstance.from_config(str(tmp_path / "home" / "dagster")) as instance:
        assert {instance.get_run_by_id(run_id).status for run_id in dead} == {dg.DagsterRunStatus.FAILURE}
    assert values_accepted_twice(home) == []

    # The write-back changes the systems (marketing automation logs an activity for each changed
    # lead), so the recovered warehouse is compared with a clean one once both have read the same
    # systems: after a sync that has nothing left to send, and a first sync in a new data home.
    settled = synced(home, company)
    assert "Written back to CRM contacts: 0 records" in settled
    assert "Written back to marketing leads: 0 records" in settled
    clean_home = target_environment(target, tmp_path / "clean")
    synced(clean_home, company)
    assert table_rows(home) == table_rows(clean_home)
