"""``handoff live``: the event loop Handoff exists for, running on one machine in front of you.

The sandbox's company lives (visits, form fills, MQLs, sales touches) and sends its webhooks and
website calls to Handoff's intake service; Dagster's daemon starts runs from the sensors and turns the
SLA clocks; notices go to a local inbox. Everything lives in a data home of its own
(``<data home>/live``), beside the demo's, and runs the project's models under a live contract: the
project's own with allowances of minutes and owners who work around the clock, so clocks cross
their at-risk and breach moments while one watches, whatever the hour.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import duckdb
import yaml

from pipeline.services import RunningServices, daemon_service, free_port, intake_service, webserver_service
from pipeline.settings import DBT_PROJECT_DIR, PROJECT_DIR, DataHome
from sandbox.inbox import Inbox
from sandbox.process import sandbox_process

# Minutes, where the project's contract gives hours: a demo request is at risk after 1.5 minutes.
LIVE_SLA_POLICIES = [
    {
        "policy": "demo_request",
        "mql_reason": "hand_raise",
        "segment": None,
        "first_touch_minutes": 2,
        "decision_minutes": 10,
    },
    {"policy": "mql", "mql_reason": None, "segment": None, "first_touch_minutes": 4, "decision_minutes": 20},
]
LIVE_ALERTS = {"escalate_after_minutes": 3, "lookback_hours": 1}
# What a copy of the dbt project leaves behind: build output and logs belong to each project.
NOT_COPIED = ("target", "logs", ".user.yml")


def round_the_clock_contract(contract: dict, sla_policies: list[dict], alerts: dict) -> dict:
    """The project's contract with allowances of minutes (``sla_policies``, ``alerts``), a
    round-the-clock default calendar, no weekend and no holidays: clocks turn whenever one watches."""
    calendar = contract["business_calendar"]
    return contract | {
        "sla_policies": sla_policies,
        "alerts": alerts,
        "business_calendar": calendar
        | {
            "default": calendar["default"] | {"start_hour": 0, "end_hour": 24},
            "weekend_days": [],
            "public_holidays": False,
        },
    }


def live_contract(contract: dict) -> dict:
    return round_the_clock_contract(contract, LIVE_SLA_POLICIES, LIVE_ALERTS)


def prepare_project_copy(project: Path, contract_of: Callable[[dict], dict], purpose: str) -> Path:
    """A copy of the dbt project at ``project`` whose contract ``contract_of`` makes from the
    project's own; rewritten on every start so it follows the project, while its build output stays warm."""
    project.mkdir(parents=True, exist_ok=True)
    for source in DBT_PROJECT_DIR.iterdir():
        if source.name in NOT_COPIED:
            continue
        copy = project / source.name
        if copy.is_dir():
            shutil.rmtree(copy)
        if source.is_dir():
            shutil.copytree(source, copy)
        else:
            shutil.copy2(source, copy)
    contract = yaml.safe_load((DBT_PROJECT_DIR / "funnel_contract.yml").read_text())
    (project / "funnel_contract.yml").write_text(
        f"# The contract of {purpose}, written from the project's own at every start.\n"
        + yaml.safe_dump(contract_of(contract), sort_keys=False)
    )
    return project


@dataclass(frozen=True)
class LiveOptions:
    scale: str
    seed: int
    pace: float
    host: str
    port: int
    inbox_port: int


@dataclass(frozen=True)
class LiveUrls:
    ui: str
    inbox: str
    intake: str


@dataclass
class Progress:
    """What the terminal shows while the loop runs."""

    handed: int = 0
    touched: int = 0
    at_risk: int = 0
    breached: int = 0
    runs_started: int = 0
    runs_by_sensors: int = 0
    runs_failed: int = 0
    notices: dict[str, int] | None = None


class LiveDeployment:
    """Starts the inbox, the sandbox, intake, a first full sync, then Dagster's webserver and daemon;
    stops all of it when the block ends."""

    def __init__(self, home: DataHome, options: LiveOptions, say=print):
        self.home = home
        self.options = options
        self.say = say
        self.started_at = datetime.now(UTC)
        self.connection_file = home.root / "connection.json"
        self.inbox = Inbox(options.inbox_port)
        self._services: list[RunningServices] = []
        self._instance: dg.DagsterInstance | None = None

    @contextlib.contextmanager
    def running(self) -> Iterator[LiveUrls]:
        options = self.options
        intake_port = free_port(options.host)
        intake_url = f"http://{options.host}:{intake_port}"
        with contextlib.ExitStack() as stack:
            self.inbox.start()
            stack.callback(self.inbox.stop)
            os.environ.update(
                self.inbox.environment()
                | {
                    "HANDOFF_DBT_PROJECT_DIR": str(
                        prepare_project_copy(self.home.root / "dbt_project", live_contract, "`handoff live`")
                    ),
                    "HANDOFF_CONNECTION_FILE": str(self.connection_file),
                }
            )
            self.say(f"Starting the {options.scale} company in live mode, {options.pace:g} events a minute…")
            company = contextlib.ExitStack()
            stack.callback(company.close)
            company.enter_context(
                sandbox_process(
                    [
                        "--scale", options.scale, "--seed", str(options.seed), "--live", "--pace", str(options.pace),
                        "--around-the-clock", "--tracking-url", intake_url,
                        "--crm-webhook-url", f"{intake_url}/webhooks/crm",
                        "--marketing-webhook-url", f"{intake_url}/webhooks/marketing",
                    ],
                    self.connection_file,
                )
            )  # fmt: skip
            intake = RunningServices(self.home, [intake_service(options.host, intake_port, self.connection_file)])
            stack.callback(intake.stop)
            # Closed again before intake stops (a second close does nothing): the company falls
            # silent first, so no webhook or tracking call goes to an intake that is gone.
            stack.callback(company.close)
            intake.start()
            self.first_sync()
            dagster = RunningServices(self.home, [webserver_service(options.host, options.port), daemon_service()])
            stack.callback(dagster.stop)
            self.say("Starting Dagster's webserver and daemon…")
            dagster.start()
            self._services = [intake, dagster]
            self._instance = stack.enter_context(dg.DagsterInstance.get())
            yield LiveUrls(f"http://{options.host}:{options.port}", self.inbox.url, intake_url)

    def first_sync(self) -> None:
        """A full sync, so the loop starts from the whole company, as a deployment's first night would."""
        log = self.home.logs / "first-sync.log"
        self.say(f"A first full sync of the company (output in {log})…")
        with open(log, "w") as output:
            finished = subprocess.run(
                [sys.executable, "-m", "pipeline.cli", "sync", "--connection-file", str(self.connection_file)],
                cwd=PROJECT_DIR,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        if finished.returncode:
            raise RuntimeError(f"the first sync failed (status {finished.returncode}); see {log}")

    def check_services(self) -> None:
        """Raise when a service exited."""
        for services in self._services:
            services.raise_if_exited()

    def progress(self) -> Progress:
        progress = Progress(notices=dict(self.inbox.counts_by_kind()))
        since = self.started_at.replace(tzinfo=None)
        # Before the first sync has served the marts, and for a moment while one is replaced, there is none.
        with contextlib.suppress(duckdb.Error), duckdb.connect(str(self.home.served_marts), read_only=True) as marts:
            (progress.handed, progress.touched, progress.at_risk, progress.breached) = marts.execute(
                """select count(*), count(first_touch_at), count(*) filter (where sla_state = 'at_risk'),
                              count(*) filter (where sla_state = 'breached')
                       from marts.fct_handoffs where mql_at >= ?""",
                [since],
            ).fetchone()
        assert self._instance, "progress is read while the deployment runs"
        runs = self._instance.get_run_records(filters=dg.RunsFilter(created_after=self.started_at))
        progress.runs_started = len(runs)
        progress.runs_by_sensors = sum("dagster/sensor_name" in record.dagster_run.tags for record in runs)
        progress.runs_failed = sum(record.dagster_run.status == dg.DagsterRunStatus.FAILURE for record in runs)
        return progress


def wait_forever(deployment: LiveDeployment, show, interval_s: float = 2.0) -> None:
    while True:
        deployment.check_services()
        show(deployment.progress())
        time.sleep(interval_s)
