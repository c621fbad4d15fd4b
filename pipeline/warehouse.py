"""The warehouse as every component reads it, whatever the target: one SQLAlchemy engine.

dlt loads the raw schemas and dbt builds the models; everything else (quality checks, write-back,
alerts, the sync summary, ``handoff query``, the serving copy) reads them through ``Warehouse``.
A target is a SQLAlchemy URL: DuckDB through duckdb-engine, PostgreSQL through psycopg2. A next
engine is one more URL and, if its dialect lacks it, one more fast path in ``Reader.frame``.

The warehouse holds data only. What Handoff itself writes (the write-back ledger, the alert
outbox, judged batches) lives in the operational store (``pipeline.state``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa

from pipeline.settings import WAREHOUSE_POOL, DataHome, Settings

# What `handoff sync` counts the rows of: the raw schemas dlt loads and the marts.
SUMMARISED_SCHEMAS = ("raw_crm", "raw_marketing", "raw_web", "raw_reference", "marts")


def readers_pool(settings: Settings, own: str | None = None) -> str | None:
    """The pool a step that reads the warehouse (and writes only the operational store) claims.
    DuckDB lets no process open its file while another writes it, so there readers queue with the
    writers. PostgreSQL readers see the last committed state and never wait for a build; a step
    that must not run beside another of its kind in a concurrent run (a write-back planning from
    the ledger, alerts delivering from the outbox) names a pool of its ``own`` (limit 1, as every
    pool in dagster.yaml)."""
    return WAREHOUSE_POOL if settings.dbt_target == "duckdb" else own


class WarehouseUnavailable(RuntimeError):
    """The configured warehouse cannot be used: the message names the setting and the fix."""


@dataclass(frozen=True)
class Warehouse:
    """Where dlt loads and dbt builds, as ``Settings`` name it (``HANDOFF_DBT_TARGET``)."""

    target: str
    duckdb_path: Path
    pg_host: str = ""
    pg_port: int = 5432
    pg_user: str = ""
    pg_password: str = ""
    pg_database: str = ""

    @classmethod
    def of(cls, settings: Settings) -> Warehouse:
        return cls(
            target=settings.dbt_target,
            duckdb_path=DataHome.of(settings).warehouse,
            pg_host=settings.pg_host,
            pg_port=settings.pg_port,
            pg_user=settings.pg_user,
            pg_password=settings.pg_password.get_secret_value(),
            pg_database=settings.pg_database,
        )

    def __repr__(self) -> str:  # the password stays out of logs and error messages
        return f"Warehouse({self.describe()})"

    def describe(self) -> str:
        if self.target == "duckdb":
            return f"DuckDB file {self.duckdb_path}"
        return f"PostgreSQL database {self.pg_database} at {self.pg_user}@{self.pg_host}:{self.pg_port}"

    def url(self) -> sa.URL:
        if self.target == "duckdb":
            return sa.URL.create("duckdb", database=str(self.duckdb_path))
        return sa.URL.create(
            "postgresql+psycopg2",
            username=self.pg_user,
            password=self.pg_password or None,
            host=self.pg_host,
            port=self.pg_port,
            database=self.pg_database,
        )

    @property
    def exists(self) -> bool:
        """Whether there is anything to read yet (a DuckDB file appears with the first load)."""
        return self.target != "duckdb" or self.duckdb_path.exists()

    @contextmanager
    def read(self) -> Iterator[Reader]:
        """A read-only connection: DuckDB opens its file read-only, PostgreSQL runs a read-only
        transaction; a statement that writes fails in the engine itself."""
        if self.target == "duckdb":
            engine = sa.create_engine(self.url(), connect_args={"read_only": True}, poolclass=sa.NullPool)
        else:
            engine = sa.create_engine(
                self.url(),
                connect_args={"options": "-c default_transaction_read_only=on", "connect_timeout": 10},
                poolclass=sa.NullPool,
            )
        try:
            with engine.connect() as connection:
                yield Reader(connection)
        finally:
            engine.dispose()

    def check_reachable(self) -> None:
        """Fail with one line naming the setting and the fix when the warehouse cannot be used:
        PostgreSQL that cannot be reached, or where the user may not create the schemas dlt and
        dbt write."""
        if self.target == "duckdb":
            return
        engine = sa.create_engine(self.url(), connect_args={"connect_timeout": 10}, poolclass=sa.NullPool)
        try:
            with engine.connect() as connection:
                may_create = connection.execute(
                    sa.text("select has_database_privilege(current_user, current_database(), 'CREATE')")
                ).scalar()
        except sa.exc.OperationalError as error:
            reason = str(error.orig).strip().splitlines()[0] if error.orig else str(error)
            raise WarehouseUnavailable(
                f"The warehouse ({self.describe()}) cannot be reached: {reason}. Check HANDOFF_PG_HOST, "
                "HANDOFF_PG_PORT, HANDOFF_PG_USER, HANDOFF_PG_PASSWORD and HANDOFF_PG_DATABASE, or set "
                "HANDOFF_DBT_TARGET=duckdb for the embedded warehouse."
            ) from None
        finally:
            engine.dispose()
        if not may_create:
            raise WarehouseUnavailable(
                f"The warehouse user {self.pg_user} may not create schemas in {self.pg_database}: grant it "
                f"(`grant create on database {self.pg_database} to {self.pg_user}`) or set HANDOFF_PG_USER "
                "to a user who may."
            )


@dataclass
class Reader:
    """One read-only connection to the warehouse."""

    connection: sa.Connection

    @property
    def engine_name(self) -> str:
        return self.connection.dialect.name

    def quote(self, identifier: str) -> str:
        return self.connection.dialect.identifier_preparer.quote(identifier)

    def table(self, schema: str, table: str) -> str:
        return f"{self.quote(schema)}.{self.quote(table)}"

    def rows(self, sql: str, **parameters) -> list[dict]:
        return [dict(row) for row in self.connection.execute(sa.text(sql), parameters).mappings()]

    def scalar(self, sql: str, **parameters):
        return self.connection.execute(sa.text(sql), parameters).scalar()

    def frame(self, sql: str, **parameters) -> pd.DataFrame:
        result = self.connection.execute(sa.text(sql), parameters)
        if self.engine_name == "duckdb":
            # DuckDB hands its result to pandas column by column; through the DB-API rows a batch
            # of millions of website events would become millions of Python tuples first.
            return result.cursor.df()
        return pd.DataFrame(result.fetchall(), columns=list(result.keys()))

    def as_written(self, sql: str) -> tuple[list[str], list[tuple]]:
        """A statement run as its author wrote it, through the driver with no bind parameters, so
        ``:name`` and ``%`` mean what they mean in the engine's SQL. Its columns and rows."""
        cursor = self.connection.connection.cursor()
        try:
            cursor.execute(sql)
            return [column[0] for column in cursor.description], list(cursor.fetchall())
        finally:
            cursor.close()

    @property
    def driver_error(self) -> type[Exception]:
        """What the driver raises for a statement the engine refuses."""
        dbapi = self.connection.dialect.dbapi
        assert dbapi is not None  # a connected dialect has its driver
        return dbapi.Error

    def has_table(self, schema: str, table: str) -> bool:
        return bool(
            self.scalar(
                "select count(*) from information_schema.tables where table_schema = :schema and table_name = :table",
                schema=schema,
                table=table,
            )
        )

    def columns(self, schema: str, table: str) -> set[str]:
        return {
            row["column_name"]
            for row in self.rows(
                "select column_name from information_schema.columns "
                "where table_schema = :schema and table_name = :table",
                schema=schema,
                table=table,
            )
        }

    def tables(self, schemas: tuple[str, ...]) -> list[tuple[str, str]]:
        """(schema, table) of every table and view in ``schemas``, dlt's own tables left out."""
        query = sa.text(
            "select table_schema, table_name from information_schema.tables "
            "where table_schema in :schemas order by 1, 2"
        ).bindparams(sa.bindparam("schemas", expanding=True))
        rows: Sequence[Any] = self.connection.execute(query, {"schemas": list(schemas)}).all()
        return [(schema, table) for schema, table in rows if not table.startswith("_dlt")]
