"""A new CRM property is loaded as a new column and announced in the materialization's metadata."""

import dagster as dg

from pipeline.ingest.assets import build_ingest_defs
from pipeline.resources import SourceConnections
from pipeline.settings import DataHome
from sandbox.faults import Faults
from sandbox.server import SandboxServer, build_sandbox, write_connection_file


def test_schema_drift_is_loaded_and_announced(tmp_path, monkeypatch, tiny_dataset):
    monkeypatch.setenv("HANDOFF_HOME", str(tmp_path / "home"))
    home = DataHome.from_env().prepare()
    [crm_ingest] = [a for a in build_ingest_defs(home).assets if a.op.name == "crm_ingest"]
    with SandboxServer(
        build_sandbox(tmp_path / "state", dataset_dir=tiny_dataset, faults=Faults(pressure=100, schema_drift=True))
    ) as server:
        write_connection_file(home.connection_file, server.connections())
        resources = {
            "dlt": build_ingest_defs(home).resources["dlt"],
            "connections": SourceConnections(connection_file=str(home.connection_file)),
        }

        def contacts_metadata():
            result = dg.materialize([crm_ingest], resources=resources, instance=dg.DagsterInstance.ephemeral())
            [event] = [
                e
                for e in result.get_asset_materialization_events()
                if e.asset_key == dg.AssetKey(["raw_crm", "contacts"])
            ]
            return event.materialization.metadata

        first = contacts_metadata()  # the property appears while this load runs
        second = contacts_metadata()
    assert "favorite_color" not in first["new_columns"].value
    assert second["new_columns"].value == ["favorite_color"]
