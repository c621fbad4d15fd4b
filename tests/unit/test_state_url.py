"""Where the operational store is: SQLite in the data home unless HANDOFF_STATE_URL names SQLite or
PostgreSQL; anything else is refused by name before a run starts."""

from pathlib import Path

import pytest

from pipeline.settings import load_settings
from pipeline.state import StateStoreUnavailable
from pipeline.state.store import state_url


def test_the_store_defaults_to_sqlite_in_the_data_home():
    url = state_url(load_settings(home=Path("/srv/handoff")))
    assert (url.get_backend_name(), url.database) == ("sqlite", "/srv/handoff/state.sqlite")


def test_a_postgresql_url_uses_the_installed_driver_and_keeps_its_password_out_of_descriptions():
    url = state_url(load_settings(state_url="postgresql://ops:s3cret@db.internal:5432/handoff_state"))
    assert url.drivername == "postgresql+psycopg2" and url.database == "handoff_state"
    assert "s3cret" not in url.render_as_string(hide_password=True)


def test_another_database_is_refused_naming_the_setting():
    with pytest.raises(StateStoreUnavailable, match="HANDOFF_STATE_URL names a mysql database"):
        state_url(load_settings(state_url="mysql://ops@db.internal/handoff_state"))
