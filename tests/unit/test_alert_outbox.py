"""The alert outbox and the notices it carries, against an in-memory warehouse."""

from sla_notice_rows import notice_row

from pipeline.alerts.channels import ChannelError, EmailChannel, Notice, slack_blocks
from pipeline.alerts.notices import sla_notice
from pipeline.alerts.outbox import MAX_ATTEMPTS, Outbox

ROW = notice_row("h1", "at_risk")


class Recording:
    def __init__(self, name: str = "webhook", failures: int = 0):
        self.name, self.failures, self.sent = name, failures, []

    def send(self, notice: Notice) -> None:
        if self.failures:
            self.failures -= 1
            raise ChannelError("the webhook answered 503")
        self.sent.append(notice.key)


def test_a_notice_carries_person_owner_policy_due_time_and_the_crm_link():
    notice = sla_notice(ROW, "http://crm.example")
    message = slack_blocks(notice)
    text = str(message["blocks"][1])
    for expected in ("Ada Lovelace", "Grace Hopper", "demo_request", "2026-03-04 16:00 UTC"):
        assert expected in text
    assert message["blocks"][2]["elements"][0]["url"] == "http://crm.example/crm/v3/objects/contacts/42"
    assert notice.recipients == ("grace@example.com",)


def test_a_notice_queued_again_is_delivered_once(state_store):
    outbox, channel = Outbox(state_store), Recording()
    notice = sla_notice(ROW, None)
    assert outbox.queue([notice], ["webhook"]) == 1
    outbox.deliver([channel])
    assert outbox.queue([notice], ["webhook"]) == 0
    outbox.deliver([channel])
    assert channel.sent == ["h1:at_risk"]


def test_a_failed_delivery_is_kept_and_retried_on_the_next_run_then_given_up(state_store):
    outbox = Outbox(state_store)
    outbox.queue([sla_notice(ROW, None)], ["webhook"])
    flaky = Recording(failures=1)
    assert outbox.deliver([flaky]).failed == 1
    assert outbox.summary()["outbox_pending"] == 1
    assert outbox.deliver([flaky]).delivered == 1
    assert flaky.sent == ["h1:at_risk"]

    outbox.queue([sla_notice({**ROW, "notice_key": "h2:breached", "notice_kind": "breached"}, None)], ["webhook"])
    down = Recording(failures=MAX_ATTEMPTS + 5)
    for _ in range(MAX_ATTEMPTS + 2):
        outbox.deliver([down])
    assert down.failures == 5  # it stopped trying after MAX_ATTEMPTS
    assert outbox.summary() == {"outbox_delivered": 1, "outbox_pending": 0, "outbox_given_up": 1}


def test_each_channel_gets_its_own_copy(state_store):
    outbox, slack, webhook = Outbox(state_store), Recording("slack"), Recording("webhook")
    outbox.queue([sla_notice(ROW, None)], ["slack", "webhook"])
    outbox.deliver([slack, webhook])
    assert slack.sent == webhook.sent == ["h1:at_risk"]


def test_of_two_deliveries_that_see_a_notice_pending_one_sends_it(state_store):
    """The sensor and a run deliver from one outbox: the second reads the notice pending while the
    first is sending it."""
    outbox, second = Outbox(state_store), Recording()

    class SendingWhileAnotherDelivers(Recording):
        def send(self, notice: Notice) -> None:
            outbox.deliver([second])
            super().send(notice)

    first = SendingWhileAnotherDelivers()
    outbox.queue([sla_notice(ROW, None)], ["webhook"])
    outbox.deliver([first])
    assert (first.sent, second.sent) == (["h1:at_risk"], [])
    assert outbox.summary()["outbox_delivered"] == 1


def test_owners_get_their_notices_and_operators_get_escalations():
    mail = EmailChannel("localhost", 25, "handoff@example.com", operators=("ops@example.com",))
    at_risk = sla_notice(ROW, None)
    escalated = sla_notice({**ROW, "notice_kind": "escalated"}, None)
    ownerless = sla_notice({**ROW, "owner_email": None}, None)
    assert mail.recipients(at_risk) == ["grace@example.com"]
    assert mail.recipients(escalated) == ["grace@example.com", "ops@example.com"]
    assert mail.recipients(ownerless) == ["ops@example.com"]
