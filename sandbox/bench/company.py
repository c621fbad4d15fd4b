"""The benchmark's company, and the rate limits it is served under.

The company is generated once per scale and seed and kept in the data home
(``bench/<scale>-seed<seed>/``): its dataset, the sandbox database built from it, and the website's
history as hourly NDJSON files. Every measurement that needs the company as generated serves a fresh
copy of that database, with a data home of its own that starts empty.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import IO

import httpx
import sqlalchemy as sa

from pipeline.ingest.crm import REQUESTS_PER_10S_VARIABLE, SEARCHES_PER_S_VARIABLE
from pipeline.ingest.marketing import CALLS_PER_20S_VARIABLE
from pipeline.settings import DataHome, Settings
from pipeline.warehouse import Warehouse
from sandbox.app import CRM_PREFIX
from sandbox.dataset import Dataset, iso
from sandbox.faults import Faults, Limits
from sandbox.live import LiveCompany, LiveSettings
from sandbox.process import sandbox_process, sandbox_state_dir
from sandbox.server import build_sandbox
from sandbox.simulation import generate
from sandbox.store import SandboxStore
from sandbox.webhooks import WebhookSender, WebhookSettings
from sandbox.website import export_web_events

# Settings a measured process must not inherit: they would point it at other systems, or at another
# warehouse or operational store than the one the benchmark gives each run (``BenchWarehouse``).
FOREIGN_SETTINGS = (
    "HANDOFF_CRM_",
    "HANDOFF_MARKETING_",
    "HANDOFF_OWNER_CALENDARS",
    "HANDOFF_DBT_TARGET",
    "HANDOFF_DBT_PROJECT_DIR",
    "HANDOFF_PG_",
    "HANDOFF_STATE_URL",
    "DAGSTER_HOME",
)


@dataclass(frozen=True)
class BenchWarehouse:
    """The warehouse the measured processes use: the DuckDB file in each run's data home, or a
    PostgreSQL database of each run's own on the server ``HANDOFF_PG_*`` names (created empty, as
    the DuckDB file starts)."""

    target: str
    server: Warehouse

    @classmethod
    def of(cls, target: str, settings: Settings) -> BenchWarehouse:
        return cls(target, replace(Warehouse.of(settings), target=target))

    def check(self) -> None:
        """Fail now, naming the setting, if the runs could not use the warehouse."""
        self.server.check_reachable()

    def fresh(self, purpose: str) -> dict[str, str]:
        """The settings of an empty warehouse for the run serving ``purpose``."""
        if self.target == "duckdb":
            return {"HANDOFF_DBT_TARGET": "duckdb"}
        database = self._database(purpose)
        self._on_server(f"drop database if exists {database} with (force)", f"create database {database}")
        return {
            "HANDOFF_DBT_TARGET": "postgres",
            "HANDOFF_PG_HOST": self.server.pg_host,
            "HANDOFF_PG_PORT": str(self.server.pg_port),
            "HANDOFF_PG_USER": self.server.pg_user,
            "HANDOFF_PG_PASSWORD": self.server.pg_password,
            "HANDOFF_PG_DATABASE": database,
        }

    def drop(self, purpose: str) -> None:
        """Drop the run's database (the DuckDB file goes with the run's data home)."""
        if self.target == "postgres":
            self._on_server(f"drop database if exists {self._database(purpose)} with (force)")

    @staticmethod
    def _database(purpose: str) -> str:
        return f"handoff_bench_{purpose}"

    def _on_server(self, *statements: str) -> None:
        engine = sa.create_engine(self.server.url(), isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
        with engine.connect() as server:
            for statement in statements:
                server.execute(sa.text(statement))
        engine.dispose()


@dataclass(frozen=True)
class BenchLimits:
    """The vendors' published rate limits times ``factor``, raised together in the sandbox (its
    ``pressure`` fault) and in the clients' pacing (their configured budgets). At the published
    limits a large load mostly waits for its budget, which measures the vendor rather than Handoff;
    the report gives the limits used, and how long each load's requests need at the published ones."""

    factor: float

    @property
    def sandbox(self) -> Limits:
        return Faults(pressure=self.factor).limits()

    @property
    def fault_spec(self) -> str:
        return f"pressure={self.factor:g}"

    def client_environment(self) -> dict[str, str]:
        return {
            REQUESTS_PER_10S_VARIABLE: str(self.sandbox.crm_requests_per_10s),
            SEARCHES_PER_S_VARIABLE: str(self.sandbox.crm_search_requests_per_s),
            CALLS_PER_20S_VARIABLE: str(self.sandbox.marketing_requests_per_20s),
        }

    def as_json(self) -> dict:
        return {
            "factor": self.factor,
            "sandbox": asdict(self.sandbox),
            "clients": self.client_environment(),
            "vendors": asdict(Limits()),
        }


@dataclass(frozen=True)
class BenchCompany:
    scale: str
    seed: int
    folder: Path

    @classmethod
    def in_home(cls, home: DataHome, scale: str, seed: int) -> BenchCompany:
        return cls(scale, seed, home.root / "bench" / f"{scale}-seed{seed}")

    @property
    def dataset(self) -> Dataset:
        return Dataset(self.folder / "dataset")

    @property
    def store(self) -> Path:
        return self.folder / "sandbox.sqlite"

    @property
    def web_events(self) -> Path:
        return self.folder / "web-events"

    @property
    def _complete(self) -> Path:
        return self.folder / "complete"

    def prepare(self) -> BenchCompany:
        """Generate the company, unless an earlier benchmark left it complete."""
        if self._complete.exists():
            return self
        shutil.rmtree(self.folder, ignore_errors=True)
        generate(self.folder / "dataset", scale=self.scale, seed=self.seed)
        export_web_events(SandboxStore.build(self.dataset, self.store), self.web_events)
        self._complete.touch()
        return self

    def counts(self) -> dict[str, int]:
        return self.dataset.manifest.counts

    def changeable_records(self) -> int:
        """What "x % of records changed" is a share of: CRM records and marketing leads. Activities
        and website events are only ever added, and are, as the company lives."""
        counts = self.counts()
        return counts["crm_objects"] + counts["marketing_leads"]


@dataclass
class ServedCompany:
    company: BenchCompany
    home: DataHome
    limits: BenchLimits
    warehouse: dict[str, str]  # the settings of the run's warehouse (``BenchWarehouse.fresh``)
    # A copy of the dbt project under another contract, whose owners the sandbox serves as working
    # around the clock; the project itself when none.
    dbt_project: Path | None = None

    @property
    def state_dir(self) -> Path:
        return sandbox_state_dir(self.home, self.company.scale, self.company.seed, None)

    @property
    def connection_file(self) -> Path:
        return self.home.connection_file

    @cached_property
    def connections(self) -> dict:
        return json.loads(self.connection_file.read_text())

    def environment(self) -> dict[str, str]:
        """The environment of a measured process: this company's data home and connections, the
        website's history plus what the collector received since, and the benchmark's budgets."""
        inherited = {name: value for name, value in os.environ.items() if not name.startswith(FOREIGN_SETTINGS)}
        web_folders = [str(self.company.web_events), self.connections["web"]["events_dir"]]
        return {
            **inherited,
            "HANDOFF_HOME": str(self.home.root),
            "HANDOFF_CONNECTION_FILE": str(self.connection_file),
            "HANDOFF_WEB_EVENT_DIRS": os.pathsep.join(web_folders),
            **self.warehouse,
            **self.limits.client_environment(),
            **({"HANDOFF_DBT_PROJECT_DIR": str(self.dbt_project)} if self.dbt_project else {}),
        }

    def requests_served(self) -> dict[str, int]:
        """Requests each stand-in was sent since the sandbox started."""
        base_url = self.connections["crm"]["base_url"].removesuffix(CRM_PREFIX)
        return httpx.get(f"{base_url}/health").raise_for_status().json()["requests_served"]

    def live_company(self, webhooks: WebhookSettings | None = None) -> LiveCompany:
        """The company living in the served sandbox's store. Its webhooks, when ``webhooks`` says where
        to send them, are signed with the served sandbox's secrets, so an intake service reading the
        connection file accepts them."""
        sandbox = build_sandbox(self.state_dir)
        if webhooks:
            sandbox.webhooks = WebhookSender(
                webhooks,
                crm_client_secret=self.connections["crm"]["webhook_client_secret"],
                marketing_secret=self.connections["marketing"]["webhook_secret"],
            )
        web = self.connections["web"]
        return LiveCompany(sandbox, LiveSettings(seed=self.company.seed), web["tracking_url"], web["write_key"])

    @cached_property
    def _live(self) -> LiveCompany:
        return self.live_company()

    def change_records(self, share: float) -> int:
        """Let the company live until ``share`` of its records changed; how many did."""
        since = iso(datetime.now(UTC))
        self._live.change_records(max(1, round(share * self.company.changeable_records())))
        return self._live.records_changed_since(since)

    def close(self) -> None:
        if "_live" in self.__dict__:
            self._live.stop()


@contextlib.contextmanager
def served_company(
    company: BenchCompany,
    home: Path,
    limits: BenchLimits,
    warehouse: BenchWarehouse,
    output: IO,
    dbt_project: Path | None = None,
) -> Iterator[ServedCompany]:
    """A fresh copy of the company, served under ``limits`` from a process of its own (so serving
    does not compete with the measured process for an interpreter), with ``home`` and an empty
    warehouse for it; its runs build ``dbt_project`` when given, for owners working around the clock."""
    shutil.rmtree(home, ignore_errors=True)
    served = ServedCompany(company, DataHome(home), limits, warehouse.fresh(home.name), dbt_project)
    served.state_dir.mkdir(parents=True)
    shutil.copyfile(company.store, served.state_dir / "sandbox.sqlite")
    serve_options = ["--scale", company.scale, "--seed", str(company.seed), "--faults", limits.fault_spec]
    if dbt_project:
        serve_options.append("--around-the-clock")
    with sandbox_process(serve_options, served.connection_file, {**os.environ, "HANDOFF_HOME": str(home)}, output):
        try:
            yield served
        finally:
            served.close()
            warehouse.drop(home.name)
