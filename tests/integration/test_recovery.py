"""Runs whose process died are failed and their warehouse slot freed; live runs are left alone."""

import json
import os
import signal
import subprocess
import sys
import threading
import time

import dagster as dg
import pytest
from dagster._core.events import DagsterEvent, DagsterEventType, EngineEventData
from dagster._core.test_utils import create_run_for_test, instance_for_test

from pipeline.automation.sensors import dead_runs
from pipeline.recovery import fail_dead_runs, this_process_tags, wait_for_pool
from pipeline.settings import PROJECT_DIR, WAREHOUSE_POOL, DataHome


@pytest.fixture
def instance(tmp_path):
    with instance_for_test(temp_dir=str(tmp_path)) as instance:
        instance.event_log_storage.set_concurrency_slots(WAREHOUSE_POOL, 1)
        yield instance


def gone_process() -> int:
    """The number of a process that has exited and been reaped."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def started_run(instance, tags: dict[str, str]) -> dg.DagsterRun:
    return create_run_for_test(instance, job_name="full_sync", status=dg.DagsterRunStatus.STARTED, tags=tags)


def holders(instance) -> set[str]:
    return {slot.run_id for slot in instance.event_log_storage.get_concurrency_info(WAREHOUSE_POOL).claimed_slots}


def test_a_run_whose_process_is_gone_is_failed_and_its_slot_freed_and_a_live_one_is_not(instance):
    dead = started_run(instance, {**this_process_tags(), "handoff/pid": str(gone_process())})
    live = started_run(instance, this_process_tags())
    instance.event_log_storage.claim_concurrency_slot(WAREHOUSE_POOL, dead.run_id, "dbt_models")

    recovered = fail_dead_runs(instance)

    assert len(recovered) == 1 and dead.run_id in recovered[0]
    assert instance.get_run_by_id(dead.run_id).status == dg.DagsterRunStatus.FAILURE
    assert instance.get_run_by_id(live.run_id).status == dg.DagsterRunStatus.STARTED
    assert holders(instance) == set()
    assert fail_dead_runs(instance) == []


def test_a_run_started_by_dagsters_launcher_is_judged_by_the_process_its_event_names(instance):
    """Dagster's launcher names the run worker in an engine event; a process with that number that
    started after the run is another process, and the run's own is gone."""
    run = started_run(instance, {})
    instance.report_dagster_event(DagsterEvent(DagsterEventType.RUN_START.value, job_name=run.job_name), run.run_id)
    time.sleep(2.5)
    younger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        instance.report_engine_event(
            f"Started process for run (pid: {younger.pid}).", run, EngineEventData.in_process(younger.pid)
        )
        assert [line for line in fail_dead_runs(instance) if run.run_id in line]
    finally:
        younger.kill()
        younger.wait()
    alive = started_run(instance, {})
    instance.report_dagster_event(DagsterEvent(DagsterEventType.RUN_START.value, job_name=alive.job_name), alive.run_id)
    instance.report_engine_event(
        f"Started process for run (pid: {os.getpid()}).", alive, EngineEventData.in_process(os.getpid())
    )
    assert fail_dead_runs(instance) == []


def test_the_daemons_sensor_fails_dead_runs(instance):
    dead = started_run(instance, {**this_process_tags(), "handoff/pid": str(gone_process())})
    instance.event_log_storage.claim_concurrency_slot(WAREHOUSE_POOL, dead.run_id, "dbt_models")

    result = dead_runs(dg.build_sensor_context(instance=instance))

    assert dead.run_id in result.skip_message
    assert instance.get_run_by_id(dead.run_id).status == dg.DagsterRunStatus.FAILURE
    assert holders(instance) == set()


def test_a_finished_run_still_holding_a_slot_lets_go_of_it(instance):
    finished = create_run_for_test(instance, job_name="full_sync", status=dg.DagsterRunStatus.FAILURE)
    instance.event_log_storage.claim_concurrency_slot(WAREHOUSE_POOL, finished.run_id, "dbt_models")
    fail_dead_runs(instance)
    assert holders(instance) == set()


def test_waiting_for_the_warehouse_names_the_live_run_holding_it_and_ends_when_it_is_free(instance):
    live = started_run(instance, this_process_tags())
    instance.event_log_storage.claim_concurrency_slot(WAREHOUSE_POOL, live.run_id, "dbt_models")
    heard: list[list[str]] = []
    waiter = threading.Thread(
        target=wait_for_pool,
        args=(instance, WAREHOUSE_POOL, lambda runs: heard.append([run.run_id for run in runs]), 0.05),
    )
    waiter.start()
    time.sleep(0.5)
    assert waiter.is_alive() and heard == [[live.run_id]]
    instance.event_log_storage.free_concurrency_slots_for_run(live.run_id)
    waiter.join(timeout=5)
    assert not waiter.is_alive()


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_a_sync_waiting_for_a_live_run_names_it_and_stops_when_asked(tmp_path, stop_signal):
    home = tmp_path / "home"
    DataHome(home).prepare()
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        with dg.DagsterInstance.from_config(str(home / "dagster")) as instance:
            live = started_run(instance, {**this_process_tags(), "handoff/pid": str(holder.pid)})
            instance.event_log_storage.initialize_concurrency_limit_to_default(WAREHOUSE_POOL)
            instance.event_log_storage.claim_concurrency_slot(WAREHOUSE_POOL, live.run_id, "dbt_models")
            assert holders(instance) == {live.run_id}
        connection_file = tmp_path / "connection.json"
        connection_file.write_text(json.dumps({"crm": {"base_url": "http://127.0.0.1:9", "access_token": "t"}}))
        sync = subprocess.Popen(
            [sys.executable, "-m", "pipeline.cli", "sync", "--connection-file", str(connection_file)],
            cwd=PROJECT_DIR,
            env={**os.environ, "HANDOFF_HOME": str(home), "COLUMNS": "300"},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        lines = []
        threading.Timer(120, sync.kill).start()  # a sync that does not wait would run on: fail, don't hang
        for line in sync.stdout:
            lines.append(line)
            if "Waiting for the warehouse" in line:
                break
        assert live.run_id in "".join(lines), "".join(lines)
        sync.send_signal(stop_signal)
        assert sync.wait(timeout=20) == 130, sync.stdout.read()
    finally:
        holder.kill()
        holder.wait()
