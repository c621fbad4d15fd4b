import json

import pytest

from pipeline.settings import MissingConnectionError, load_connections


def test_connection_file_is_read_and_environment_overrides_it(tmp_path, monkeypatch):
    path = tmp_path / "connection.json"
    path.write_text(json.dumps({"crm": {"base_url": "http://crm.example/", "access_token": "from-file"}}))
    assert load_connections(path).crm.base_url == "http://crm.example"
    monkeypatch.setenv("HANDOFF_CRM_ACCESS_TOKEN", "from-env")
    assert load_connections(path).crm.access_token == "from-env"


def test_missing_connection_says_how_to_fix_it(tmp_path):
    with pytest.raises(MissingConnectionError, match="HANDOFF_CRM_BASE_URL"):
        load_connections(tmp_path / "absent.json")


def test_unreadable_connection_file_is_named(tmp_path):
    path = tmp_path / "connection.json"
    path.write_text("{not json")
    with pytest.raises(MissingConnectionError, match="not valid JSON"):
        load_connections(path)


def test_token_never_appears_in_repr(tmp_path):
    path = tmp_path / "connection.json"
    path.write_text(json.dumps({"crm": {"base_url": "http://crm.example", "access_token": "s3cr3t-token"}}))
    assert "s3cr3t-token" not in repr(load_connections(path))
