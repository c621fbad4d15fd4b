"""Handoff's configuration, read in one place: ``HANDOFF_*`` environment variables over the
connection file, validated once, and handed to what needs it.

Everything written at run time lives under one data home (``HANDOFF_HOME``, default ``.handoff/``
in the project). How to reach the systems comes from a connection file (JSON, the format
``handoff sandbox serve`` writes); an environment variable overrides the file's value.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

PROJECT_DIR = Path(__file__).resolve().parent.parent
# The dbt project, funnel contract included. A copy elsewhere (HANDOFF_DBT_PROJECT_DIR) runs the same
# models under another contract, side by side with this one: its seeds and docs are generated in it.
DBT_PROJECT_DIR = Path(os.environ.get("HANDOFF_DBT_PROJECT_DIR") or PROJECT_DIR / "dbt_project").resolve()
EXPECTATIONS_DIR = PROJECT_DIR / "expectations"
ENV_PREFIX = "HANDOFF_"

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
    """Telemetry off for every tool, and dlt settings the pipeline relies on. Called by the entry
    points (the command line, the code location's definitions), never on import of a module."""
    for name, value in _ENVIRONMENT_DEFAULTS.items():
        os.environ.setdefault(name, value)


# The connection file's keys, by the setting each one gives.
_CONNECTION_FILE_KEYS = {
    "crm_base_url": ("crm", "base_url"),
    "crm_access_token": ("crm", "access_token"),
    "crm_webhook_client_secret": ("crm", "webhook_client_secret"),
    "marketing_base_url": ("marketing", "base_url"),
    "marketing_client_id": ("marketing", "client_id"),
    "marketing_client_secret": ("marketing", "client_secret"),
    "marketing_webhook_secret": ("marketing", "webhook_secret"),
    "web_write_key": ("web", "write_key"),
    "owner_calendars": ("calendars", "owner_calendars_file"),
}


class SettingsError(ValueError):
    """A setting has a value Handoff cannot use; the message names the variable."""


class MissingConnectionError(RuntimeError):
    """The connection settings for a source system are missing or unreadable."""


class Settings(BaseSettings):
    """Every setting Handoff reads. Each field is the environment variable ``HANDOFF_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_ignore_empty=True, frozen=True, extra="ignore")

    home: Path = PROJECT_DIR / ".handoff"
    connection_file: Path | None = None
    # The systems; each overrides its key in the connection file.
    crm_base_url: str | None = None
    crm_access_token: SecretStr | None = None
    crm_webhook_client_secret: SecretStr | None = None
    marketing_base_url: str | None = None
    marketing_client_id: SecretStr | None = None
    marketing_client_secret: SecretStr | None = None
    marketing_webhook_secret: SecretStr | None = None
    web_write_key: SecretStr | None = None
    owner_calendars: Path | None = None
    # The request budgets Handoff paces itself to: by default the vendors' published limits (HubSpot's
    # private apps 100 requests per 10 s and 5 searches a second, Marketo 100 calls per 20 s); raise
    # them for a higher tier.
    crm_requests_per_10s: int = Field(100, gt=0)
    crm_search_requests_per_s: int = Field(5, gt=0)
    marketing_calls_per_20s: int = Field(100, gt=0)
    # Raw completeness: every activity type the marketing instance describes and every CRM property
    # is loaded. A comma-separated list (activity type ids or names; property names) narrows them.
    marketing_activity_types: str = ""
    crm_properties: str = ""
    # Extra folders of Segment NDJSON files, separated like PATH.
    web_event_dirs: str = ""
    # The warehouse dlt loads into and dbt builds in, and the PostgreSQL target's connection.
    dbt_target: Literal["duckdb", "postgres"] = "duckdb"
    pg_host: str = "127.0.0.1"
    pg_port: int = Field(5432, gt=0, lt=65536)
    pg_user: str = "postgres"
    pg_password: SecretStr = SecretStr("")
    pg_database: str = "test"
    # Handoff's own state (write-back ledger, alert outbox, quality gate): a SQLAlchemy URL, e.g.
    # postgresql://user:password@host:5432/handoff_state; a SQLite file in the data home if unset.
    state_url: SecretStr | None = None
    # Schedules, sensors and clocks.
    nightly_cron: str = "0 2 * * *"
    timezone: str = "UTC"
    sla_clock_minutes: int = Field(5, ge=1, le=59)
    analytics_minutes: int = Field(10, ge=1, le=59)
    digest_cron: str = "0 8 * * 1-5"
    sensor_interval_seconds: int = Field(5, gt=0)
    # Alerts.
    alert_slack_webhook_url: SecretStr | None = None
    alert_webhook_url: SecretStr | None = None
    alert_email_to: str = ""
    smtp_host: str | None = None
    smtp_port: int = Field(25, gt=0, lt=65536)
    smtp_from: str = "handoff@localhost"
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    # The CRM record a notice links to; HubSpot's app URL is
    # https://app.hubspot.com/contacts/<portal id>/record/0-1/{contact_id}.
    crm_record_url: str = "{crm_base_url}/crm/v3/objects/contacts/{contact_id}"
    dagster_url: str = "http://127.0.0.1:3000"
    dagster_pg_url: SecretStr | None = None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, ConnectionFileSource(settings_cls)

    @property
    def resolved_connection_file(self) -> Path:
        return (self.connection_file or self.home / "connection.json").resolve()

    @property
    def web_event_folders(self) -> list[Path]:
        return [Path(folder) for folder in self.web_event_dirs.split(os.pathsep) if folder]


class ConnectionFileSource(PydanticBaseSettingsSource):
    """The connection file as a source of settings, below the environment. A relative calendars path
    in the file is relative to the file."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        raise NotImplementedError  # __call__ reads the whole file at once

    def __call__(self) -> dict[str, Any]:
        state = self.current_state
        path = Path(
            state.get("connection_file")
            or Path(state.get("home") or Settings.model_fields["home"].default) / "connection.json"
        )
        if not path.exists():
            return {}
        try:
            described = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            raise MissingConnectionError(f"connection file {path} is not valid JSON: {error}") from error
        values = {}
        for name, (section, key) in _CONNECTION_FILE_KEYS.items():
            value = (described.get(section) or {}).get(key)
            if value is not None and name not in state:
                values[name] = path.parent / value if name == "owner_calendars" else value
        return values


def load_settings(**overrides: Any) -> Settings:
    """The settings, from ``overrides`` (a command's options), the environment and the connection
    file, in that order. A bad value raises :class:`SettingsError` naming its variable."""
    try:
        return Settings(**{name: value for name, value in overrides.items() if value is not None})
    except ValidationError as error:
        problems = "; ".join(
            f"{ENV_PREFIX}{'_'.join(map(str, problem['loc'])).upper()}: {problem['msg']}" for problem in error.errors()
        )
        raise SettingsError(f"invalid setting: {problems}") from None


@dataclass(frozen=True)
class DataHome:
    """The one folder that holds everything Handoff writes at run time."""

    root: Path
    # Folders of Segment NDJSON files besides the landing zone (a storage destination's output).
    extra_web_event_folders: tuple[Path, ...] = ()

    @classmethod
    def from_env(cls) -> DataHome:
        return cls.of(load_settings())

    @classmethod
    def of(cls, settings: Settings) -> DataHome:
        return cls(settings.home.resolve(), tuple(settings.web_event_folders))

    @property
    def warehouse(self) -> Path:
        return self.root / "warehouse.duckdb"

    @property
    def state_store(self) -> Path:
        """The operational store when ``HANDOFF_STATE_URL`` is not set."""
        return self.root / "state.sqlite"

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
        """The landing zone plus the folders in ``HANDOFF_WEB_EVENT_DIRS``."""
        return [self.web_landing, *self.extra_web_event_folders]

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
        """Create the folders and give Dagster the project's instance configuration; a command does
        this before it runs anything (importing the code location writes nothing).

        Dagster reads ``dagster.yaml`` only from ``$DAGSTER_HOME``; the project's copy is the
        one source of truth, so it is copied in (with PostgreSQL storage added when
        ``HANDOFF_DAGSTER_PG_URL`` is set) whenever that differs from what is there. The
        variables set here reach the Dagster processes this command starts.
        """
        for folder in (self.root, self.dlt_pipelines, self.dagster_home, self.web_landing, self.reports):
            folder.mkdir(parents=True, exist_ok=True)
        pg_url = load_settings().dagster_pg_url
        for plain in ("postgresql://", "postgres://"):
            if pg_url and pg_url.get_secret_value().startswith(plain):
                os.environ[DAGSTER_PG_URL_VARIABLE] = _PG_DRIVER_SCHEME + pg_url.get_secret_value().removeprefix(plain)
        instance_config = self.dagster_home / "dagster.yaml"
        wanted = dagster_instance_config(with_postgres_storage=pg_url is not None)
        if not instance_config.exists() or instance_config.read_text() != wanted:
            instance_config.write_text(wanted)
        os.environ["HANDOFF_HOME"] = str(self.root)
        os.environ["DAGSTER_HOME"] = str(self.dagster_home)
        return self


def dagster_instance_config(with_postgres_storage: bool) -> str:
    """The project's ``dagster.yaml``, with PostgreSQL storage read from ``HANDOFF_DAGSTER_PG_URL``."""
    config = (PROJECT_DIR / "dagster.yaml").read_text()
    return config + _POSTGRES_STORAGE if with_postgres_storage else config


def warehouse_target() -> str:
    """Where dlt loads and dbt builds: ``duckdb`` (the file in the data home) or ``postgres``."""
    return load_settings().dbt_target


def postgres_credentials() -> dict[str, str | int]:
    """The PostgreSQL warehouse, from the same ``HANDOFF_PG_*`` variables dbt's profile reads."""
    settings = load_settings()
    return {
        "host": settings.pg_host,
        "port": settings.pg_port,
        "username": settings.pg_user,
        "password": settings.pg_password.get_secret_value(),
        "database": settings.pg_database,
    }


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
                "or set HANDOFF_MARKETING_BASE_URL, HANDOFF_MARKETING_CLIENT_ID and HANDOFF_MARKETING_CLIENT_SECRET"
            )
        return self.marketing


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value else None


def load_connections(path: Path | None = None) -> Connections:
    """The systems to talk to, from the connection file at ``path`` (default: the configured one)
    with ``HANDOFF_CRM_*`` / ``HANDOFF_MARKETING_*`` / ``HANDOFF_OWNER_CALENDARS`` on top. The CRM
    is required; marketing automation and the owner calendars file are optional."""
    settings = load_settings(connection_file=path)
    base_url, access_token = settings.crm_base_url, _secret(settings.crm_access_token)
    if not base_url or not access_token:
        raise MissingConnectionError(
            f"no CRM connection: write {settings.resolved_connection_file} (see `handoff sandbox serve "
            "--connection-file`) or set HANDOFF_CRM_BASE_URL and HANDOFF_CRM_ACCESS_TOKEN"
        )
    marketing_url, client_id, client_secret = (
        settings.marketing_base_url,
        _secret(settings.marketing_client_id),
        _secret(settings.marketing_client_secret),
    )
    return Connections(
        crm=CrmConnection(base_url=base_url.rstrip("/"), access_token=access_token),
        marketing=MarketingConnection(marketing_url.rstrip("/"), client_id, client_secret)
        if marketing_url and client_id and client_secret
        else None,
        owner_calendars_file=settings.owner_calendars.resolve() if settings.owner_calendars else None,
    )
