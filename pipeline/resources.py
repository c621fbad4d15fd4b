"""Dagster resources shared by every integration: the warehouse and the source connections."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb

from pipeline.settings import Connections, DataHome, Settings, load_connections


class SourceConnections(dg.ConfigurableResource):
    """Where the source systems are. Only the file's path is resource config, so credentials
    never appear in the Dagster UI or run logs; they are read when a step needs them."""

    connection_file: str

    def load(self) -> Connections:
        return load_connections(Path(self.connection_file))


class Warehouse(dg.ConfigurableResource):
    """The DuckDB warehouse file (raw schemas from dlt, marts from dbt, Handoff's own ledgers)."""

    path: str

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        connection = duckdb.connect(self.path, read_only=read_only)
        try:
            yield connection
        finally:
            connection.close()


def query_rows(db: duckdb.DuckDBPyConnection, sql: str) -> list[dict]:
    """The query's rows as dictionaries keyed by column name."""
    cursor = db.execute(sql)
    columns = [column[0] for column in cursor.description]
    return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


def default_resources(home: DataHome, settings: Settings) -> dict:
    return {
        "connections": SourceConnections(connection_file=str(settings.resolved_connection_file)),
        "warehouse": Warehouse(path=str(home.warehouse)),
    }
