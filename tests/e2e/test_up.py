"""`handoff up` as an operator runs it: webserver, daemon and intake come up together, the webserver's
GraphQL API shows the asset graph, schedules and sensors, the daemon fails a run whose process died and
frees its slot within a minute, and a stop leaves no process behind."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import httpx
import pytest
from dagster._core.test_utils import create_run_for_test

from pipeline.recovery import PID_TAG, this_process_tags
from pipeline.services import free_port
from pipeline.settings import PROJECT_DIR, WAREHOUSE_POOL

WRITE_KEY = "website-write-key"
REPOSITORY = {"repositoryLocationName": "handoff", "repositoryName": "__repository__"}
DEPLOYMENT_QUERY = """
query Deployment($repository: RepositorySelector!) {
  assetNodes { assetKey { path } }
  schedulesOrError(repositorySelector: $repository) {
    __typename
    ... on Schedules { results { name scheduleState { status } } }
  }
  sensorsOrError(repositorySelector: $repository) {
    __typename
    ... on Sensors { results { name sensorState { status } } }
  }
  instance { daemonHealth { allDaemonStatuses { daemonType healthy } } }
}
"""


def sessions_of_children(pid: int) -> set[int]:
    """The services `handoff up` started each lead a session of their own, named by their pid."""
    children = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            children |= {int(child) for child in (task / "children").read_text().split()}
        except FileNotFoundError:  # a worker thread ended between the listing and the read
            continue
    return children


def processes_in_sessions(sessions: set[int]) -> list[str]:
    alive = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        # After the command name: state, ppid, pgrp, session.
        if int(fields[3]) in sessions and fields[0] != "Z":
            alive.append(stat.parent.name)
    return alive


def plant_a_dead_run_holding_the_warehouse(dagster_home: Path) -> str:
    """A run left STARTED by a process that is gone, holding the warehouse pool's only slot."""
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        run = create_run_for_test(
            instance,
            job_name="full_sync",
            status=dg.DagsterRunStatus.STARTED,
            tags={**this_process_tags(), PID_TAG: str(gone.pid)},
        )
        instance.event_log_storage.initialize_concurrency_limit_to_default(WAREHOUSE_POOL)
        instance.event_log_storage.claim_concurrency_slot(WAREHOUSE_POOL, run.run_id, "dbt_models")
        assert [
            slot.run_id for slot in instance.event_log_storage.get_concurrency_info(WAREHOUSE_POOL).claimed_slots
        ] == [run.run_id]
        return run.run_id


def dead_run_failed_and_freed(dagster_home: Path, run_id: str, within_s: float) -> bool:
    deadline = time.monotonic() + within_s
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        while time.monotonic() < deadline:
            claimed = instance.event_log_storage.get_concurrency_info(WAREHOUSE_POOL).claimed_slots
            if instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.FAILURE and not claimed:
                return True
            time.sleep(1)
    return False


def graphql(port: int, query: str, variables: dict) -> dict:
    response = httpx.post(f"http://127.0.0.1:{port}/graphql", json={"query": query, "variables": variables}, timeout=60)
    response.raise_for_status()
    return response.json()["data"]


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_up_serves_the_code_location_runs_the_daemon_and_intake_and_stops_them_all(
    tmp_path, stop_signal, processes_with_home
):
    connection_file = tmp_path / "connection.json"
    connection_file.write_text(json.dumps({"web": {"write_key": WRITE_KEY}}))
    webserver_port, intake_port = free_port(), free_port()
    env = {**os.environ, "HANDOFF_HOME": str(tmp_path / "home"), "COLUMNS": "200"}
    up = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pipeline.cli",
            "up",
            "--port",
            str(webserver_port),
            "--intake-port",
            str(intake_port),
            "--connection-file",
            str(connection_file),
        ],
        cwd=PROJECT_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        lines = []
        for line in up.stdout:
            lines.append(line)
            if "Handoff is up" in line:
                break
        assert up.poll() is None, "".join(lines)
        sessions = sessions_of_children(up.pid)
        assert len(sessions) == 3
        dead_run = plant_a_dead_run_holding_the_warehouse(tmp_path / "home" / "dagster")

        deadline = time.monotonic() + 120
        while True:
            data = graphql(webserver_port, DEPLOYMENT_QUERY, {"repository": REPOSITORY})
            daemons = {
                status["daemonType"]: status["healthy"]
                for status in data["instance"]["daemonHealth"]["allDaemonStatuses"]
            }
            if (
                daemons.get("SENSOR") and daemons.get("SCHEDULER") and daemons.get("QUEUED_RUN_COORDINATOR")
            ) or time.monotonic() > deadline:
                break
            time.sleep(2)
        assert daemons["SENSOR"] and daemons["SCHEDULER"] and daemons["QUEUED_RUN_COORDINATOR"], daemons
        assets = {"/".join(node["assetKey"]["path"]) for node in data["assetNodes"]}
        assert {"raw_crm/contacts", "marts/dim_people", "writeback/crm_contacts", "serving/marts"} <= assets
        schedules = {s["name"]: s["scheduleState"]["status"] for s in data["schedulesOrError"]["results"]}
        assert schedules["nightly_full_sync"] == "RUNNING"
        sensors = {s["name"]: s["sensorState"]["status"] for s in data["sensorsOrError"]["results"]}
        assert {"webhooks", "web_event_files"} <= set(sensors)
        assert sensors["webhooks"] == "RUNNING"

        track = {"type": "track", "event": "Demo Requested", "messageId": "m-1", "anonymousId": "a-1"}
        assert httpx.post(f"http://127.0.0.1:{intake_port}/v1/track", json=track, auth=(WRITE_KEY, "")).is_success
        assert httpx.get(f"http://127.0.0.1:{intake_port}/health").json()["events"] == {"web": 1}

        assert len(processes_in_sessions(sessions)) >= 3
        assert len(processes_with_home(tmp_path / "home")) >= 4  # `handoff up` and its three services
        assert dead_run_failed_and_freed(tmp_path / "home" / "dagster", dead_run, within_s=60)
        up.send_signal(stop_signal)
        output = "".join(lines) + up.communicate(timeout=60)[0]
        assert up.returncode == 0, output
        assert "Stopped." in output
        assert processes_in_sessions(sessions) == []
        assert processes_with_home(tmp_path / "home") == []
        for port in (webserver_port, intake_port):
            with socket.socket() as probe:
                assert probe.connect_ex(("127.0.0.1", port)) != 0
        assert WRITE_KEY not in output + "".join(path.read_text() for path in (tmp_path / "home" / "logs").iterdir())
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()


def test_when_one_service_cannot_start_up_stops_the_others_and_says_which(tmp_path, processes_with_home):
    home = tmp_path / "home"
    env = {**os.environ, "HANDOFF_HOME": str(home), "COLUMNS": "200"}
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        intake_port = taken.getsockname()[1]
        up = subprocess.run(
            [sys.executable, "-m", "pipeline.cli", "up", "--port", str(free_port()), "--intake-port", str(intake_port)],
            cwd=PROJECT_DIR,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert up.returncode == 1, up.stdout + up.stderr
    assert "the intake exited" in up.stdout and "stopping the others" in up.stdout
    assert "address already in use" in (home / "logs" / "intake.log").read_text()
    assert processes_with_home(home) == []
