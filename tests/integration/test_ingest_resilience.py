"""A CRM load killed with SIGKILL at any moment, then started again, ends with exactly the source."""

import json
import signal
import subprocess
import sys
import time

import duckdb
import pytest

from pipeline.ingest.crm import OBJECT_TYPES
from sandbox.faults import Faults
from sandbox.server import SandboxServer, build_sandbox, write_connection_file

LOAD = """
import json, sys
import dlt
import pipeline
from pipeline.ingest.crm import crm_source
home, connection = sys.argv[1], json.load(open(sys.argv[2]))["crm"]
load = dlt.pipeline(pipeline_name="killed", destination=dlt.destinations.duckdb(f"{home}/w.duckdb"),
                    dataset_name="raw_crm", pipelines_dir=f"{home}/dlt")
load.run(crm_source(base_url=connection["base_url"], access_token=connection["access_token"]))
"""


@pytest.mark.parametrize("kill_after_s", [0.8, 2.0, 3.5])
def test_kill_9_mid_load_then_rerun_ends_exact(tmp_path, kill_after_s, tiny_dataset):
    # Latency stretches the load over seconds, so the kill lands mid-extract or mid-load.
    faults = Faults(pressure=100, latency_s=0.04)
    with SandboxServer(build_sandbox(tmp_path / "state", dataset_dir=tiny_dataset, faults=faults)) as server:
        connection_file = tmp_path / "connection.json"
        write_connection_file(connection_file, server.connections())
        command = [sys.executable, "-c", LOAD, str(tmp_path), str(connection_file)]
        killed = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(kill_after_s)
        killed.send_signal(signal.SIGKILL)
        killed.wait()
        rerun = subprocess.run(command, capture_output=True, text=True, timeout=300)
        assert rerun.returncode == 0, rerun.stderr[-2000:]

    source = [json.loads(line) for line in (tiny_dataset / "crm_objects.ndjson").read_text().splitlines()]
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as db:
        for object_type in OBJECT_TYPES:
            expected = sorted(o["id"] for o in source if o["objectType"] == object_type and o.get("mergedInto") is None)
            loaded = [row[0] for row in db.execute(f"select id from raw_crm.{object_type} order by id").fetchall()]
            assert sorted(loaded) == expected, object_type
