"""Handoff's operational store: what Handoff itself writes, kept apart from the analytic warehouse.

The write-back ledger, the alert outbox and the quality gate's judged batches are small,
transactional and written while runs read the warehouse, so they live in a database of their own:
a SQLite file in the data home by default, PostgreSQL when ``HANDOFF_STATE_URL`` names one. Its
tables are created and changed by Alembic migrations (``migrations/versions``), applied on first
use by every process, so a data home upgrades itself in place.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from filelock import FileLock
from sqlalchemy.dialects import postgresql, sqlite

from pipeline.settings import DataHome, Settings
from pipeline.state import schema

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

# Where each table of the state lived in the DuckDB warehouse before the operational store.
WAREHOUSE_STATE_TABLES = {
    "writeback.batches": schema.writeback_batches,
    "writeback.record_outcomes": schema.writeback_record_outcomes,
    "writeback.pending_changes": schema.writeback_pending_changes,
    "alerting.outbox": schema.alert_outbox,
    "quality.validated_batches": schema.quality_validated_batches,
    "quality.live_row_counts": schema.quality_live_row_counts,
}
WAREHOUSE_STATE_SCHEMAS = ("writeback", "alerting", "quality")


class StateStoreUnavailable(RuntimeError):
    """The configured operational store cannot be used: the message names the setting."""


class StateStore:
    """One operational store, by SQLAlchemy URL."""

    def __init__(self, url: str | sa.URL):
        self.url = sa.make_url(url)
        # A server that does not answer fails the step in seconds, not after the system's TCP timeout.
        connect_args = {"connect_timeout": 10} if self.url.get_backend_name() == "postgresql" else {}
        self.engine = sa.create_engine(self.url, pool_pre_ping=True, connect_args=connect_args)
        if self.is_sqlite:
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        self._migrated = False
        self._migrating = threading.Lock()

    @property
    def is_sqlite(self) -> bool:
        return self.url.get_backend_name() == "sqlite"

    def describe(self) -> str:
        return self.url.render_as_string(hide_password=True)

    @contextmanager
    def begin(self) -> Iterator[sa.Connection]:
        """A transaction: committed when the block ends, rolled back if it raises."""
        with self.engine.begin() as connection:
            yield connection

    def migrate(self) -> None:
        """Bring the tables to the newest migration, once per store; processes that start together
        take turns (a file lock beside a SQLite file, an advisory lock on PostgreSQL)."""
        with self._migrating:
            if self._migrated:
                return
            if self.is_sqlite and self.url.database not in (None, "", ":memory:"):
                with FileLock(f"{self.url.database}.migrating.lock"):
                    self._upgrade()
            else:
                self._upgrade()
            self._migrated = True

    def _upgrade(self) -> None:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        with self.engine.begin() as connection:
            if not self.is_sqlite:
                # Held until the transaction ends: a second process waits, then finds nothing to do.
                connection.execute(sa.text("select pg_advisory_xact_lock(hashtext('handoff-state-migrations'))"))
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    def dispose(self) -> None:
        self.engine.dispose()


# Each store's own insert-or-ignore and insert-or-update.
_INSERTS: dict[str, Any] = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}


def insert_new(connection: sa.Connection, table: sa.Table, rows: list[dict]) -> None:
    """Insert the rows whose primary key is not there yet; the others change nothing."""
    if rows:
        connection.execute(_INSERTS[connection.dialect.name](table).on_conflict_do_nothing(), rows)


def upsert(connection: sa.Connection, table: sa.Table, row: dict) -> None:
    """Insert the row, or replace the one with its primary key: two runs judging the same batch at
    once both succeed, the later one's verdict kept."""
    key = [column.name for column in table.primary_key]
    insert = _INSERTS[connection.dialect.name](table).values(row)
    connection.execute(
        insert.on_conflict_do_update(
            index_elements=key, set_={name: value for name, value in row.items() if name not in key}
        )
    )


def _sqlite_pragmas(connection, _record) -> None:
    # Readers never wait for the writer, and a writer waits for another instead of failing at once.
    cursor = connection.cursor()
    cursor.execute("pragma journal_mode=wal")  # an in-memory database keeps its own mode
    cursor.execute("pragma busy_timeout=30000")
    cursor.close()


def state_url(settings: Settings) -> sa.URL:
    """``HANDOFF_STATE_URL`` if set, else ``state.sqlite`` in the data home."""
    if settings.state_url is None:
        return sa.URL.create("sqlite", database=str(DataHome.of(settings).state_store))
    url = sa.make_url(settings.state_url.get_secret_value())
    if url.get_backend_name() not in ("sqlite", "postgresql"):
        raise StateStoreUnavailable(
            f"HANDOFF_STATE_URL names a {url.get_backend_name()} database; the operational store is SQLite "
            "(sqlite:///path/state.sqlite) or PostgreSQL (postgresql://user:password@host:5432/db)."
        )
    # A plain postgresql:// URL would ask SQLAlchemy for psycopg 3; the driver installed is psycopg2.
    return url.set(drivername="postgresql+psycopg2") if url.get_backend_name() == "postgresql" else url


_stores: dict[str, StateStore] = {}


def open_state_store(settings: Settings) -> StateStore:
    """The configured store, migrated, with the state an older data home kept in its DuckDB
    warehouse moved in. One engine per store and process."""
    url = state_url(settings)
    key = url.render_as_string(hide_password=False)
    store = _stores.get(key)
    if store is None:
        store = _stores[key] = StateStore(url)
    try:
        store.migrate()
    except sa.exc.DBAPIError as error:
        reason = str(error.orig).strip().splitlines()[0] if error.orig else str(error)
        raise StateStoreUnavailable(
            f"The operational store ({store.describe()}) cannot be used: {reason}. Check HANDOFF_STATE_URL, "
            "or unset it for the SQLite file in the data home."
        ) from None
    if settings.dbt_target == "duckdb":
        adopt_warehouse_state(store, DataHome.of(settings).warehouse)
    return store


def adopt_warehouse_state(store: StateStore, warehouse: Path) -> dict[str, int]:
    """Move the state an older data home kept in its DuckDB warehouse (schemas ``writeback``,
    ``alerting``, ``quality``) into the store, once per warehouse: rows copied and the warehouse
    marked in ``adopted_warehouses`` in one transaction, then the old schemas dropped. A warehouse
    already marked is not opened again; one that does not exist yet is marked at once (what writes
    it now never writes those schemas). Returns rows copied per table.

    Raises ``StateStoreUnavailable`` when an unmarked warehouse is open in another process: a
    write-back planned without the old ledger would send every value again."""
    adopted = schema.adopted_warehouses
    with store.begin() as state:
        if state.execute(sa.select(adopted.c.warehouse).where(adopted.c.warehouse == str(warehouse))).first():
            return {}
        if not warehouse.exists():
            state.execute(adopted.insert().values(warehouse=str(warehouse), adopted_at=datetime.now(UTC)))
            return {}
    try:
        db = duckdb.connect(str(warehouse))
    except duckdb.Error as error:
        raise StateStoreUnavailable(
            f"The warehouse {warehouse} may hold the write-back ledger and alert outbox of an older Handoff, "
            f"to be moved into the operational store before anything is written back, and it is open "
            f"elsewhere ({error}). Run again once nothing else has it open."
        ) from None
    try:
        present = {
            f"{table_schema}.{table_name}"
            for table_schema, table_name in db.execute(
                "select table_schema, table_name from information_schema.tables where table_schema in (?, ?, ?)",
                list(WAREHOUSE_STATE_SCHEMAS),
            ).fetchall()
        }
        copied: dict[str, int] = {}
        with store.begin() as state:
            already = state.execute(sa.select(adopted.c.warehouse).where(adopted.c.warehouse == str(warehouse)))
            if already.first() is None:  # another process may have adopted it meanwhile
                for name, table in WAREHOUSE_STATE_TABLES.items():
                    if name in present:
                        copied[name] = _copy_rows(db, name, table, state)
                state.execute(adopted.insert().values(warehouse=str(warehouse), adopted_at=datetime.now(UTC)))
        for old_schema in WAREHOUSE_STATE_SCHEMAS:
            db.execute(f"drop schema if exists {old_schema} cascade")
        return copied
    finally:
        db.close()


def _in_utc(value):
    # DuckDB hands timestamptz back in the machine's zone; the store keeps UTC.
    return value.astimezone(UTC) if isinstance(value, datetime) and value.tzinfo else value


def _copy_rows(db: duckdb.DuckDBPyConnection, name: str, table: sa.Table, state: sa.Connection) -> int:
    # Outcome ids are the store's own; the old ones only give the order, which the new ones keep.
    # Columns the store added since (a stopped batch's decision) were not kept there.
    kept = {column[0] for column in db.execute(f"select * from {name} limit 0").description}
    columns = [column.name for column in table.columns if column.name != "outcome_id" and column.name in kept]
    order = "order by outcome_id" if table is schema.writeback_record_outcomes else ""
    rows = [
        dict(zip(columns, map(_in_utc, row), strict=True))
        for row in db.execute(f"select {', '.join(columns)} from {name} {order}").fetchall()
    ]
    if rows:
        state.execute(table.insert(), rows)
    return len(rows)
