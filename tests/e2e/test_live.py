"""`handoff live` (`make live`) as a newcomer runs it: the live company's webhooks reach intake,
Dagster's sensors start runs, SLA clocks of minutes turn, at-risk and breached notices for handoffs
made while it runs reach the inbox, and one Ctrl-C leaves no process behind."""

import os
import re
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime

import dagster as dg
import httpx
import pytest

from pipeline.services import free_port
from pipeline.settings import PROJECT_DIR

LIVE_S = 5 * 60  # how long the company lives, at most, for the notices to appear
START_S = 6 * 60  # the company, intake and a first full sync of the tiny company before that
STOP_S = 90
SENSORS = {"webhooks", "web_event_files"}


def handed_over_at(delivery: dict) -> datetime:
    [stamp] = [line.removeprefix("Handed over: ") for line in delivery["lines"] if line.startswith("Handed over: ")]
    return datetime.strptime(stamp, "%Y-%m-%d %H:%M UTC").replace(tzinfo=UTC)


def live_notices(inbox_url: str, since: datetime) -> dict[str, list[dict]]:
    """The inbox's SLA notices about handoffs made since ``since`` (minutes are what a notice shows), by kind."""
    deliveries = httpx.get(f"{inbox_url}/notices.json", timeout=10).json()["deliveries"]
    notices: dict[str, list[dict]] = {}
    for delivery in deliveries:
        if delivery["kind"] in ("at_risk", "breached") and handed_over_at(delivery) >= since.replace(second=0):
            notices.setdefault(delivery["kind"], []).append(delivery)
    return notices


def runs_by_sensors(dagster_home, since: datetime) -> list[dg.DagsterRun]:
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        return [
            record.dagster_run
            for record in instance.get_run_records(filters=dg.RunsFilter(created_after=since))
            if record.dagster_run.tags.get("dagster/sensor_name") in SENSORS
        ]


@pytest.mark.timeout(START_S + LIVE_S + STOP_S + 60)
def test_live_turns_webhooks_into_runs_and_sla_notices_and_one_ctrl_c_stops_everything(tmp_path, processes_with_home):
    home = tmp_path / "home"
    ui_port, inbox_port = free_port(), free_port()
    live = subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", "live", "--scale", "tiny", "--pace", "120"]
        + ["--port", str(ui_port), "--inbox-port", str(inbox_port)],
        cwd=PROJECT_DIR,
        env={**os.environ, "HANDOFF_HOME": str(home), "COLUMNS": "200"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        # As a terminal runs a command: Ctrl-C reaches its whole process group.
        start_new_session=True,
    )
    started_at = datetime.now(UTC)
    output = []
    try:
        for line in live.stdout:
            output.append(line)
            if "Handoff is live" in line:
                break
        assert live.poll() is None, "".join(output)
        [inbox_url] = re.findall(r"notice inbox (http://\S+),", "".join(output))
        assert inbox_url == f"http://127.0.0.1:{inbox_port}"
        assert httpx.get(f"http://127.0.0.1:{ui_port}/server_info", timeout=10).is_success
        assert "Notice inbox" in httpx.get(inbox_url, timeout=10).text

        deadline = time.monotonic() + LIVE_S
        while time.monotonic() < deadline:
            notices = live_notices(inbox_url, started_at)
            if notices.get("at_risk") and notices.get("breached"):
                break
            time.sleep(5)
        assert notices.get("at_risk") and notices.get("breached"), f"notices by kind after {LIVE_S} s: {notices}"
        runs = runs_by_sensors(home / "live" / "dagster", started_at)
        finished = [run for run in runs if run.status == dg.DagsterRunStatus.SUCCESS]
        assert {run.tags["dagster/sensor_name"] for run in finished} == SENSORS, [(r.job_name, r.status) for r in runs]
        assert not [run for run in runs if run.status == dg.DagsterRunStatus.FAILURE]
        # Every notice goes to each channel: the Slack-compatible webhook and the mail server got it too.
        deliveries = httpx.get(f"{inbox_url}/notices.json", timeout=10).json()["deliveries"]
        breached_title = notices["breached"][0]["title"]
        assert {d["channel"] for d in deliveries if d["title"] == breached_title} == {"slack", "webhook", "email"}

        assert len(processes_with_home(home / "live")) >= 5  # the command, the sandbox, intake, webserver, daemon
        os.killpg(live.pid, signal.SIGINT)
        output.append(live.communicate(timeout=STOP_S)[0])
        assert live.returncode == 0, "".join(output)
        assert "Stopped." in "".join(output)
        assert processes_with_home(home / "live") == []
        for port in (ui_port, inbox_port):
            with socket.socket() as probe:
                assert probe.connect_ex(("127.0.0.1", port)) != 0
    finally:
        if live.poll() is None:
            os.killpg(live.pid, signal.SIGKILL)
            live.wait()
