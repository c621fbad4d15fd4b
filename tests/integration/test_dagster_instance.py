"""The instance configuration Handoff gives Dagster: a run queue with limits, one slot for the
warehouse's writers, no telemetry, and PostgreSQL storage only when a database is configured."""

import os

import dagster as dg
import pytest
import yaml
from dagster._core.instance.config import dagster_instance_config

from pipeline.settings import DAGSTER_PG_URL_VARIABLE, DataHome

PG_URL = "postgresql://handoff:s3cret@db.example:5432/dagster"


@pytest.fixture(autouse=True)
def restored_environment(monkeypatch):
    """``DataHome.prepare`` points the process at its home; the session's home comes back after."""
    for name in ("HANDOFF_HOME", "DAGSTER_HOME"):
        monkeypatch.setenv(name, os.environ.get(name, ""))


def test_without_a_database_the_instance_keeps_everything_in_sqlite_under_the_data_home(tmp_path, monkeypatch):
    monkeypatch.delenv(DAGSTER_PG_URL_VARIABLE, raising=False)
    home = DataHome(tmp_path / "home").prepare()
    config, _ = dagster_instance_config(str(home.dagster_home))
    assert "storage" not in config and config["telemetry"] == {"enabled": False}
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    runs = config["concurrency"]["runs"]
    assert runs["max_concurrent_runs"] == 4
    assert {"key": "handoff/trigger", "value": {"applyLimitPerUniqueValue": True}, "limit": 1} in runs[
        "tag_concurrency_limits"
    ]
    assert config["concurrency"]["pools"]["default_limit"] == 1
    with dg.DagsterInstance.from_config(str(home.dagster_home)) as instance:
        assert type(instance.run_storage).__name__ == "SqliteRunStorage"
        assert str(home.dagster_home) in instance.run_storage._conn_string
        assert instance.run_coordinator.dequeue_interval_seconds == 1


def test_a_configured_database_becomes_postgres_storage_read_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(DAGSTER_PG_URL_VARIABLE, PG_URL)
    home = DataHome(tmp_path / "home").prepare()
    written = (home.dagster_home / "dagster.yaml").read_text()
    assert "s3cret" not in written
    assert yaml.safe_load(written)["storage"] == {"postgres": {"postgres_url": {"env": DAGSTER_PG_URL_VARIABLE}}}
    dagster_instance_config(str(home.dagster_home))  # valid for Dagster as written

    # Processes started from here reach the database through the driver that is installed.
    assert os.environ[DAGSTER_PG_URL_VARIABLE] == PG_URL.replace("postgresql://", "postgresql+psycopg2://")

    monkeypatch.delenv(DAGSTER_PG_URL_VARIABLE)
    home.prepare()
    assert "storage" not in yaml.safe_load((home.dagster_home / "dagster.yaml").read_text())
