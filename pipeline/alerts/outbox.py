"""The alert outbox: every notice once per channel, kept in the warehouse until it is delivered.

A notice is queued under its idempotency key (``<handoff>:<state>``, ``digest:<owner>:<day>``);
queueing it again changes nothing, so a notice goes out once however often the clock re-evaluates.
A channel that fails leaves the notice pending for the next run, up to ``MAX_ATTEMPTS``. Delivery is
at least once: a crash between sending and recording sends that one notice again, which a page
can afford and a lost page cannot (the generic webhook carries the key for receivers to drop it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import duckdb

from pipeline.alerts.channels import Channel, ChannelError, Notice

MAX_ATTEMPTS = 10

SCHEMA_SQL = """
create schema if not exists alerting;
create table if not exists alerting.outbox (
    notice_key varchar not null,
    channel varchar not null,
    notice_kind varchar not null,
    notice json not null,
    queued_at timestamp not null,
    attempts integer not null,
    last_error varchar,
    delivered_at timestamp,
    primary key (notice_key, channel)
);
"""


@dataclass
class Delivery:
    queued: int = 0
    delivered: int = 0
    failed: int = 0
    errors: dict[str, str] = field(default_factory=dict)


class Outbox:
    def __init__(self, db: duckdb.DuckDBPyConnection):
        self.db = db
        db.execute(SCHEMA_SQL)

    def queue(self, notices: list[Notice], channels: list[str]) -> int:
        """Queue each notice for each channel unless it already was; returns how many were new."""
        before = self._count()
        rows = [(n.key, channel, n.kind, json.dumps(n.as_json())) for n in notices for channel in channels]
        if rows:
            self.db.executemany(
                "insert into alerting.outbox (notice_key, channel, notice_kind, notice, queued_at, attempts) "
                "values (?, ?, ?, ?, now() at time zone 'UTC', 0) on conflict do nothing",
                rows,
            )
        return self._count() - before

    def deliver(self, channels: list[Channel]) -> Delivery:
        """Send every pending notice through its channel and record each outcome."""
        delivery = Delivery()
        by_name = {channel.name: channel for channel in channels}
        pending = self.db.execute(
            "select notice_key, channel, notice from alerting.outbox "
            "where delivered_at is null and attempts < ? order by queued_at, notice_key",
            [MAX_ATTEMPTS],
        ).fetchall()
        for key, channel_name, notice in pending:
            channel = by_name.get(channel_name)
            if channel is None:  # the channel was configured when queued and is not any more
                continue
            try:
                channel.send(Notice.from_json(json.loads(notice)))
            except ChannelError as error:
                delivery.failed += 1
                delivery.errors[f"{channel_name}:{key}"] = str(error)
                self.db.execute(
                    "update alerting.outbox set attempts = attempts + 1, last_error = ? "
                    "where notice_key = ? and channel = ?",
                    [str(error), key, channel_name],
                )
            else:
                delivery.delivered += 1
                self.db.execute(
                    "update alerting.outbox set attempts = attempts + 1, last_error = null, "
                    "delivered_at = now() at time zone 'UTC' where notice_key = ? and channel = ?",
                    [key, channel_name],
                )
        return delivery

    def summary(self) -> dict[str, int]:
        [(delivered, pending, given_up)] = self.db.execute(
            "select count(*) filter (where delivered_at is not null), "
            "count(*) filter (where delivered_at is null and attempts < ?), "
            "count(*) filter (where delivered_at is null and attempts >= ?) from alerting.outbox",
            [MAX_ATTEMPTS, MAX_ATTEMPTS],
        ).fetchall()
        return {"outbox_delivered": delivered, "outbox_pending": pending, "outbox_given_up": given_up}

    def _count(self) -> int:
        return self.db.execute("select count(*) from alerting.outbox").fetchall()[0][0]
