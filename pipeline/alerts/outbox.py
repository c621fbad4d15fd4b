"""The alert outbox: every notice once per channel, kept in the operational store until it is delivered.

A notice is queued under its idempotency key (``<handoff>:<state>``, ``digest:<owner>:<day>``);
queueing it again changes nothing, so a notice goes out once however often the clock re-evaluates.
A channel that fails leaves the notice pending for the next run, up to ``MAX_ATTEMPTS``. Runs and the
``sla_notices_due`` sensor deliver from the same outbox, so each attempt is claimed before it is
sent: of two deliveries that see a notice pending, one sends it (a claim left by a process that died
lapses after ``CLAIM_LEASE``). Delivery is at least once: a crash
between sending and recording sends that one notice again, which a page can afford and a lost page
cannot (the generic webhook carries the key for receivers to drop it).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from pipeline.alerts.channels import Channel, ChannelError, Notice
from pipeline.state import StateStore
from pipeline.state.schema import alert_outbox
from pipeline.state.store import insert_new

MAX_ATTEMPTS = 10
# Longer than any channel takes to answer (each has a timeout of seconds).
CLAIM_LEASE = timedelta(minutes=5)


@dataclass
class Delivery:
    queued: int = 0
    delivered: int = 0
    failed: int = 0
    errors: dict[str, str] = field(default_factory=dict)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Outbox:
    def __init__(self, store: StateStore):
        self.store = store

    def queue(self, notices: list[Notice], channels: list[str]) -> int:
        """Queue each notice for each channel unless it already was; returns how many were new."""
        rows = [
            {
                "notice_key": n.key,
                "channel": channel,
                "notice_kind": n.kind,
                "notice": json.dumps(n.as_json()),
                "queued_at": _now(),
                "attempts": 0,
            }
            for n in notices
            for channel in channels
        ]
        with self.store.begin() as connection:
            before = connection.execute(sa.select(sa.func.count()).select_from(alert_outbox)).scalar_one()
            insert_new(connection, alert_outbox, rows)  # queueing again changes nothing
            return connection.execute(sa.select(sa.func.count()).select_from(alert_outbox)).scalar_one() - before

    def deliver(self, channels: list[Channel]) -> Delivery:
        """Send every pending notice through its channel and record each outcome."""
        delivery = Delivery()
        by_name = {channel.name: channel for channel in channels}
        with self.store.begin() as connection:
            pending: Sequence[Any] = connection.execute(
                sa.select(alert_outbox.c.notice_key, alert_outbox.c.channel, alert_outbox.c.notice)
                .where(alert_outbox.c.delivered_at.is_(None), alert_outbox.c.attempts < MAX_ATTEMPTS)
                .order_by(alert_outbox.c.queued_at, alert_outbox.c.notice_key)
            ).all()
        for key, channel_name, notice in pending:
            channel = by_name.get(channel_name)
            if channel is None:  # the channel was configured when queued and is not any more
                continue
            if not self._claim(key, channel_name):
                continue  # another delivery is sending it, or has sent it since the read
            try:
                channel.send(Notice.from_json(json.loads(notice)))
            except ChannelError as error:
                delivery.failed += 1
                delivery.errors[f"{channel_name}:{key}"] = str(error)
                self._record_outcome(key, channel_name, last_error=str(error))
            else:
                delivery.delivered += 1
                self._record_outcome(key, channel_name, last_error=None, delivered_at=_now())
        return delivery

    def _claim(self, key: str, channel: str) -> bool:
        """Mark the notice as being sent by this delivery, unless another one is sending it or has
        sent it: the row changes for one of them only."""
        now = _now()
        with self.store.begin() as connection:
            claimed = connection.execute(
                alert_outbox.update()
                .where(
                    alert_outbox.c.notice_key == key,
                    alert_outbox.c.channel == channel,
                    alert_outbox.c.delivered_at.is_(None),
                    sa.or_(alert_outbox.c.sending_since.is_(None), alert_outbox.c.sending_since < now - CLAIM_LEASE),
                )
                .values(sending_since=now)
            )
            return claimed.rowcount == 1

    def _record_outcome(self, key: str, channel: str, **outcome) -> None:
        # One transaction per notice: a crash later in the batch keeps what was delivered before it.
        with self.store.begin() as connection:
            connection.execute(
                alert_outbox.update()
                .where(alert_outbox.c.notice_key == key, alert_outbox.c.channel == channel)
                .values(attempts=alert_outbox.c.attempts + 1, sending_since=None, **outcome)
            )

    def summary(self) -> dict[str, int]:
        undelivered = alert_outbox.c.delivered_at.is_(None)
        with self.store.begin() as connection:
            delivered, pending, given_up = connection.execute(
                sa.select(
                    sa.func.count().filter(alert_outbox.c.delivered_at.is_not(None)),
                    sa.func.count().filter(undelivered, alert_outbox.c.attempts < MAX_ATTEMPTS),
                    sa.func.count().filter(undelivered, alert_outbox.c.attempts >= MAX_ATTEMPTS),
                )
            ).one()
        return {"outbox_delivered": delivered, "outbox_pending": pending, "outbox_given_up": given_up}
