"""Dagster resources shared by every integration: the warehouse, the operational store and the
source connections. None carries a credential as config, so none appears in the Dagster UI or run
logs; each is read from the settings when a step needs it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg

from pipeline.settings import Connections, Settings, load_connections, load_settings
from pipeline.state import StateStore, open_state_store
from pipeline.warehouse import Reader, Warehouse


class SourceConnections(dg.ConfigurableResource):
    """Where the source systems are: the connection file's path."""

    connection_file: str

    def load(self) -> Connections:
        return load_connections(Path(self.connection_file))


class WarehouseResource(dg.ConfigurableResource):
    """The warehouse the settings name (``HANDOFF_DBT_TARGET``), read-only: dlt and dbt write it."""

    @contextmanager
    def read(self) -> Iterator[Reader]:
        with Warehouse.of(load_settings()).read() as reader:
            yield reader


class StateResource(dg.ConfigurableResource):
    """The operational store the settings name (``HANDOFF_STATE_URL``), migrated on first use."""

    def open(self) -> StateStore:
        return open_state_store(load_settings())


def default_resources(settings: Settings) -> dict:
    return {
        "connections": SourceConnections(connection_file=str(settings.resolved_connection_file)),
        "warehouse": WarehouseResource(),
        "state": StateResource(),
    }
