"""Alert channels deliver over real HTTP and SMTP, and a channel that fails is retried."""

import pytest
from sla_notice_rows import notice_row

from pipeline.alerts.channels import ChannelError, EmailChannel, SlackChannel, WebhookChannel, configured_channels
from pipeline.alerts.notices import sla_notice

ROW = notice_row("h1", "breached")


def test_the_slack_webhook_gets_block_kit_and_a_503_is_retried_within_the_run(webhook_receiver):
    webhook_receiver.fail_next = 2
    SlackChannel(f"{webhook_receiver.url}/slack").send(sla_notice(ROW, "http://crm.example"))
    [post] = webhook_receiver.posts
    assert post["json"]["text"] == "SLA breached: Ada Lovelace was not touched in time"
    assert [block["type"] for block in post["json"]["blocks"]] == ["header", "section", "actions"]


def test_the_json_webhook_carries_the_notice_and_its_idempotency_key(webhook_receiver):
    WebhookChannel(f"{webhook_receiver.url}/hook").send(sla_notice(ROW, None))
    [post] = webhook_receiver.posts
    assert post["headers"]["Idempotency-Key"] == "h1:breached"
    assert post["json"]["fields"]["Owner"] == "Grace Hopper"


def test_a_webhook_that_keeps_failing_raises_without_naming_its_url(webhook_receiver):
    webhook_receiver.fail_next = 10
    with pytest.raises(ChannelError, match="503") as raised:
        WebhookChannel(f"{webhook_receiver.url}/secret-token-path").send(sla_notice(ROW, None))
    assert "secret-token-path" not in str(raised.value)


def test_mail_reaches_the_owner_over_smtp(smtp_receiver):
    EmailChannel(smtp_receiver.hostname, smtp_receiver.port, "handoff@example.com").send(sla_notice(ROW, None))
    [mail] = smtp_receiver.handler.messages
    assert mail["To"] == "grace@example.com"
    assert mail["Subject"] == "SLA breached: Ada Lovelace was not touched in time"
    assert "Policy: demo_request" in mail.get_payload()


def test_channels_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("HANDOFF_ALERT_SLACK_WEBHOOK_URL", "http://127.0.0.1:9/slack")
    monkeypatch.setenv("HANDOFF_SMTP_HOST", "127.0.0.1")
    monkeypatch.delenv("HANDOFF_ALERT_WEBHOOK_URL", raising=False)
    channels = configured_channels()
    assert [c.name for c in channels] == ["slack", "email"]
    assert "127.0.0.1:9" not in repr(channels)
