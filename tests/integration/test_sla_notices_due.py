"""Scheduled SLA notices go out when they fall due, between runs, over HTTP to a webhook: once each,
and never while a CRM change that may be the touch cancelling them waits to be loaded."""

from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest
from sla_notice_rows import notice_row

from pipeline.alerts.assets import sla_notices_due
from pipeline.alerts.channels import configured_channels
from pipeline.alerts.notices import sla_notice
from pipeline.alerts.outbox import Outbox
from pipeline.alerts.schedule import NoticeSchedule
from pipeline.intake.journal import IntakeJournal
from pipeline.settings import DataHome, load_settings
from pipeline.state import open_state_store


def now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def notice(handoff_id: str, kind: str = "breached"):
    return sla_notice(notice_row(handoff_id, kind), None)


@pytest.fixture
def schedule(tmp_path, monkeypatch, webhook_receiver) -> NoticeSchedule:
    monkeypatch.setenv("HANDOFF_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HANDOFF_ALERT_WEBHOOK_URL", f"{webhook_receiver.url}/hook")
    return NoticeSchedule(open_state_store(load_settings()))


def tick() -> str:
    with dg.build_sensor_context(instance=dg.DagsterInstance.ephemeral()) as context:
        result = sla_notices_due(context)
    assert isinstance(result, dg.SkipReason)  # the sensor sends; it starts no run
    return result.skip_message or ""


def sent(receiver) -> list[str]:
    return [post["json"]["key"] for post in receiver.posts if post["path"] == "/hook"]


def test_a_scheduled_notice_goes_out_once_when_it_falls_due(schedule, webhook_receiver):
    loaded = now() - timedelta(minutes=5)
    schedule.replace(
        [(notice("h1"), now() - timedelta(seconds=3)), (notice("h2", "at_risk"), now() + timedelta(minutes=10))],
        loaded,
    )
    assert "sent the 1 notices" in tick()
    assert sent(webhook_receiver) == ["h1:breached"]
    assert "no scheduled notice is due" in tick()
    assert sent(webhook_receiver) == ["h1:breached"]
    assert [scheduled.notice.key for scheduled in schedule.due(now() + timedelta(minutes=11))] == ["h2:at_risk"]


def test_a_notice_a_run_already_sent_is_not_sent_again(schedule, webhook_receiver):
    outbox = Outbox(schedule.store)
    outbox.queue([notice("h1")], ["webhook"])
    outbox.deliver(configured_channels())
    schedule.replace([(notice("h1"), now() - timedelta(seconds=1))], now() - timedelta(minutes=1))
    tick()
    assert sent(webhook_receiver) == ["h1:breached"]


def test_a_due_notice_waits_while_a_crm_change_journaled_after_the_load_is_not_loaded(schedule, webhook_receiver):
    journal = IntakeJournal(DataHome.from_env().intake_journal)
    loaded = now() - timedelta(minutes=1)
    journal.append("marketing", [("w-1", "{}")])  # marketing automation logs no sales touch
    assert journal.received_after("crm", loaded.replace(tzinfo=UTC)) == 0
    journal.append("crm", [("e-1", '{"subscriptionType": "object.creation", "objectId": 9}')])
    journal.close()
    schedule.replace([(notice("h1"), now() - timedelta(seconds=1))], loaded)
    assert "held back for the run that loads 1 newer CRM changes" in tick()
    assert sent(webhook_receiver) == []

    # The run that loaded the change evaluated the handoff still untouched: it schedules the notice again.
    schedule.replace([(notice("h1"), now() - timedelta(seconds=1))], now())
    assert "sent the 1 notices" in tick()
    assert sent(webhook_receiver) == ["h1:breached"]
