"""Where Handoff keeps what it writes, and how it reaches the source systems.

Everything written at run time lives under one data home (``HANDOFF_HOME``, default
``.handoff/`` in the project). How to reach the systems comes from a connection file
(JSON, the format ``handoff sandbox serve`` writes) with environment variables on top.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
DBT_PROJECT_DIR = PROJECT_DIR / "dbt_project"
EXPECTATIONS_DIR = PROJECT_DIR / "expectations"

# Every asset that writes the DuckDB warehouse claims this pool: DuckDB allows one writing
# process at a time.
WAREHOUSE_POOL = "warehouse"

# The Dagster instance keeps its runs, events and schedules in PostgreSQL when this names a
# database (postgresql://user:password@host:port/db), and in SQLite in the data home otherwise.
DAGSTER_PG_URL_VARIABLE = "HANDOFF_DAGSTER_PG_URL"
# SQLAlchemy reads a plain postgresql:// URL as asking for psycopg 3; the driver installed is psycopg2.
_PG_DRIVER_SCHEME = "postgresql+psycopg2://"
_POSTGRES_STORAGE = f"""
# Added by Handoff because {DAGSTER_PG_URL_VARIABLE} is set; Dagster reads the URL from it.
storage:
  postgres:
    postgres_url:
      env: {DAGSTER_PG_URL_VARIABLE}
"""

# Set for every process of the pipeline unless the environment already says otherwise.
_ENVIRONMENT_DEFAULTS = {
    "RUNTIME__DLTHUB_TELEMETRY": "false",
    # Arrow pages keep dlt's load id too: quality checks select each newly loaded batch by it.
    "NORMALIZE__PARQUET_NORMALIZER__ADD_DLT_LOAD_ID": "true",
    "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    # A run of part of the graph (the SLA clock, one system's changes) runs the tests of what it
    # builds; a test that also reads a model the run leaves alone waits for the run that builds both.
    "DBT_INDIRECT_SELECTION": "cautious",
    "GX_ANALYTICS_ENABLED": "false",
    "DAGSTER_DISABLE_TELEMETRY": "true",
}


def apply_environment_defaults() -> None:
    """Telemetry off for every tool, and dlt settings the pipeline relies on."""
    for name, value in _ENVIRONMENT_DEFAULTS.items():
        os.environ.setdefault(name, value)


@dataclass(frozen=True)
class DataHome:
    """The one folder that holds everything Handoff writes at run time."""

    root: Path

    @classmethod
    def from_env(cls) -> DataHome:
        return cls(Path(os.environ.get("HANDOFF_HOME", PROJECT_DIR / ".handoff")).resolve())

    @property
    def warehouse(self) -> Path:
        return self.root / "warehouse.duckdb"

    @property
    def dlt_pipelines(self) -> Path:
        return self.root / "dlt"

    @property
    def dagster_home(self) -> Path:
        return self.root / "dagster"

    @property
    def landing(self) -> Path:
        return self.root / "landing"

    @property
    def web_landing(self) -> Path:
        """Where the intake service lands website events, one NDJSON file per hour."""
        return self.landing / "web"

    @property
    def intake_journal(self) -> Path:
        """Where the intake service journals the webhooks it accepted."""
        return self.landing / "intake.sqlite"

    @property
    def web_landing_index(self) -> Path:
        """Which website events the intake service has landed, by ``messageId``."""
        return self.landing / "web-messages.sqlite"

    def web_event_folders(self) -> list[Path]:
        """The landing zone plus any folders in ``HANDOFF_WEB_EVENT_DIRS`` (a Segment storage
        destination's output, for example), separated like ``PATH``."""
        extra = [Path(folder) for folder in os.environ.get("HANDOFF_WEB_EVENT_DIRS", "").split(os.pathsep) if folder]
        return [self.web_landing, *extra]

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    @property
    def data_docs(self) -> Path:
        """The GX Data Docs site: one page per validation, linked from its asset check."""
        return self.root / "data_docs"

    @property
    def sync_log(self) -> Path:
        return self.reports / "last-sync.log"

    @property
    def connection_file(self) -> Path:
        return self.root / "connection.json"

    @property
    def serving(self) -> Path:
        """What BI tools read: copies of the marts published after each successful run."""
        return self.root / "serving"

    @property
    def served_marts(self) -> Path:
        # Not marts.duckdb: DuckDB names the catalog after the file, and a catalog called like the
        # schema makes every `marts.<table>` ambiguous.
        return self.serving / "funnel.duckdb"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def prepare(self) -> DataHome:
        """Create the folders and give Dagster the project's instance configuration.

        Dagster reads ``dagster.yaml`` only from ``$DAGSTER_HOME``; the project's copy is the
        one source of truth, so it is copied in (with PostgreSQL storage added when
        ``HANDOFF_DAGSTER_PG_URL`` is set) whenever that differs from what is there.
        """
        for folder in (self.root, self.dlt_pipelines, self.dagster_home, self.web_landing,
                       self.reports):
            folder.mkdir(parents=True, exist_ok=True)
        pg_url = os.environ.get(DAGSTER_PG_URL_VARIABLE, "")
        for plain in ("postgresql://", "postgres://"):
            if pg_url.startswith(plain):
                os.environ[DAGSTER_PG_URL_VARIABLE] = _PG_DRIVER_SCHEME + pg_url.removeprefix(plain)
        instance_config = self.dagster_home / "dagster.yaml"
        wanted = dagster_instance_config()
        if not instance_config.exists() or instance_config.read_text() != wanted:
            instance_config.write_text(wanted)
        os.environ["HANDOFF_HOME"] = str(self.root)
        os.environ["DAGSTER_HOME"] = str(self.dagster_home)
        return self


def dagster_instance_config() -> str:
    """The project's ``dagster.yaml``, with PostgreSQL storage when ``HANDOFF_DAGSTER_PG_URL`` is set."""
    config = (PROJECT_DIR / "dagster.yaml").read_text()
    return config + _POSTGRES_STORAGE if os.environ.get(DAGSTER_PG_URL_VARIABLE) else config


def warehouse_target() -> str:
    """Where dlt loads and dbt builds: ``duckdb`` (the file in the data home) or ``postgres``."""
    target = os.environ.get("HANDOFF_DBT_TARGET", "duckdb")
    if target not in ("duckdb", "postgres"):
        raise ValueError(f"HANDOFF_DBT_TARGET must be duckdb or postgres, not {target!r}")
    return target


def postgres_credentials() -> dict[str, str | int]:
    """The PostgreSQL warehouse, from the same ``HANDOFF_PG_*`` variables dbt's profile reads."""
    return {"host": os.environ.get("HANDOFF_PG_HOST", "127.0.0.1"),
            "port": int(os.environ.get("HANDOFF_PG_PORT", "5432")),
            "username": os.environ.get("HANDOFF_PG_USER", "postgres"),
            "password": os.environ.get("HANDOFF_PG_PASSWORD", ""),
            "database": os.environ.get("HANDOFF_PG_DATABASE", "test")}


class MissingConnectionError(RuntimeError):
    """The connection settings for a source system are missing or unreadable."""


@dataclass(frozen=True)
class CrmConnection:
    base_url: str
    access_token: str = field(repr=False)


@dataclass(frozen=True)
class MarketingConnection:
    base_url: str
    client_id: str = field(repr=False)
    client_secret: str = field(repr=False)


@dataclass(frozen=True)
class Connections:
    """How to reach each source system; secrets are kept out of ``repr`` so they never get logged."""

    crm: CrmConnection
    marketing: MarketingConnection | None
    # The owners' business calendars (a CSV the company keeps): the CRM's owners have none.
    owner_calendars_file: Path | None = None

    def require_marketing(self) -> MarketingConnection:
        if self.marketing is None:
            raise MissingConnectionError(
                'no marketing-automation connection: add a "marketing" section to the connection file '
                "or set HANDOFF_MARKETING_BASE_URL, HANDOFF_MARKETING_CLIENT_ID and HANDOFF_MARKETING_CLIENT_SECRET")
        return self.marketing


def connection_file_path() -> Path:
    configured = os.environ.get("HANDOFF_CONNECTION_FILE")
    return Path(configured).resolve() if configured else DataHome.from_env().connection_file


def load_connections(path: Path | None = None) -> Connections:
    """Read the connection file, then let ``HANDOFF_CRM_*`` / ``HANDOFF_MARKETING_*`` /
    ``HANDOFF_OWNER_CALENDARS`` environment variables override it. The CRM is required; marketing
    automation and the owner calendars file are optional. A relative calendars path in the file is
    relative to the file."""
    path = path or connection_file_path()
    described: dict = {}
    if path.exists():
        try:
            described = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            raise MissingConnectionError(f"connection file {path} is not valid JSON: {error}") from error
    crm = described.get("crm", {})
    base_url = os.environ.get("HANDOFF_CRM_BASE_URL", crm.get("base_url"))
    access_token = os.environ.get("HANDOFF_CRM_ACCESS_TOKEN", crm.get("access_token"))
    if not base_url or not access_token:
        raise MissingConnectionError(
            f"no CRM connection: write {path} (see `handoff sandbox serve --connection-file`) "
            "or set HANDOFF_CRM_BASE_URL and HANDOFF_CRM_ACCESS_TOKEN"
        )
    marketing = {name: os.environ.get(f"HANDOFF_MARKETING_{name.upper()}", described.get("marketing", {}).get(name))
                 for name in ("base_url", "client_id", "client_secret")}
    calendars = os.environ.get("HANDOFF_OWNER_CALENDARS")
    described_calendars = described.get("calendars", {}).get("owner_calendars_file")
    owner_calendars_file = (Path(calendars).resolve() if calendars
                            else (path.parent / described_calendars).resolve() if described_calendars else None)
    return Connections(
        crm=CrmConnection(base_url=base_url.rstrip("/"), access_token=access_token),
        marketing=MarketingConnection(**{**marketing, "base_url": marketing["base_url"].rstrip("/")})
        if all(marketing.values()) else None,
        owner_calendars_file=owner_calendars_file)
