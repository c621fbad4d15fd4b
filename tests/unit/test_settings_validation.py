"""Settings are validated once, with the bad variable named; a replay's moment is a timestamp, never SQL."""

from pathlib import Path

import dagster as dg
import pytest

from pipeline.settings import SettingsError, load_settings
from pipeline.transform.assets import as_of_timestamp


@pytest.fixture(autouse=True)
def no_connection_file(monkeypatch):
    monkeypatch.setenv("HANDOFF_CONNECTION_FILE", "/nonexistent/connection.json")


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("HANDOFF_SLA_CLOCK_MINUTES", "0"),
        ("HANDOFF_SLA_CLOCK_MINUTES", "soon"),
        ("HANDOFF_ANALYTICS_MINUTES", "60"),
        ("HANDOFF_DBT_TARGET", "oracle"),
        ("HANDOFF_PG_PORT", "70000"),
        ("HANDOFF_SMTP_STARTTLS", "perhaps"),
    ],
)
def test_a_bad_value_is_refused_naming_its_variable(monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match=variable):
        load_settings()


def test_the_environment_is_read_into_typed_settings_and_secrets_stay_hidden(monkeypatch):
    monkeypatch.setenv("HANDOFF_SLA_CLOCK_MINUTES", "15")
    monkeypatch.setenv("HANDOFF_SMTP_STARTTLS", "true")
    monkeypatch.setenv("HANDOFF_ALERT_SLACK_WEBHOOK_URL", "https://hooks.example/T0/s3cr3t")
    settings = load_settings()
    assert (settings.sla_clock_minutes, settings.smtp_starttls) == (15, True)
    assert "s3cr3t" not in repr(settings) and "s3cr3t" not in str(settings.model_dump())


def test_an_option_given_to_a_command_wins_over_the_environment(monkeypatch):
    monkeypatch.setenv("HANDOFF_HOME", "/srv/handoff-from-environment")
    assert load_settings(home=Path("/srv/handoff-from-option")).home == Path("/srv/handoff-from-option")


@pytest.mark.parametrize(
    ("given", "used"),
    [
        ("2026-03-04 16:00:00", "2026-03-04 16:00:00"),
        ("2026-03-04T16:00", "2026-03-04 16:00:00"),
        ("2026-03-04T17:00:00+01:00", "2026-03-04 16:00:00"),
    ],
)
def test_a_replays_moment_is_written_as_a_utc_timestamp(given, used):
    assert as_of_timestamp(given) == used


@pytest.mark.parametrize("given", ["yesterday", "2026-03-04'; drop table marts.fct_handoffs; --", ""])
def test_a_replays_moment_that_is_no_timestamp_is_refused(given):
    with pytest.raises(dg.Failure, match="as_of must be a moment"):
        as_of_timestamp(given)
