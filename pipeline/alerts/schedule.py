"""The SLA notices waiting handoffs will owe, kept between runs so each goes out when it falls due.

A run that evaluates the clocks sends what is due at that moment and schedules what falls due later
(``alerts.alerts_sla_notice_schedule``), replacing the previous schedule whole: a handoff touched,
rejected or deleted since is gone from it. The ``sla_notices_due`` sensor sends each scheduled notice
once its moment has come, through the outbox, which keeps it to once per channel however many runs
and ticks see it due. A notice is held back while CRM changes journaled after the last load wait to
be loaded: one of them may be the touch that cancels it, and the run that loads them sends what is
still due.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from pipeline.alerts.channels import Notice
from pipeline.state import StateStore
from pipeline.state.schema import alert_schedule


@dataclass(frozen=True)
class ScheduledNotice:
    notice: Notice
    notify_at: datetime  # naive UTC, as every moment in the store
    loaded_as_of: datetime


class NoticeSchedule:
    def __init__(self, store: StateStore):
        self.store = store

    def replace(self, notices: list[tuple[Notice, datetime]], loaded_as_of: datetime) -> None:
        """The schedule of the latest evaluation: ``(notice, moment it falls due)`` pairs, evaluated
        on what the CRM held up to ``loaded_as_of``."""
        with self.store.begin() as connection:
            connection.execute(alert_schedule.delete())
            if notices:
                connection.execute(
                    alert_schedule.insert(),
                    [
                        {
                            "notice_key": notice.key,
                            "notify_at": notify_at,
                            "notice": json.dumps(notice.as_json()),
                            "loaded_as_of": loaded_as_of,
                        }
                        for notice, notify_at in notices
                    ],
                )

    def due(self, now: datetime) -> list[ScheduledNotice]:
        """The scheduled notices whose moment has come by ``now``, earliest first."""
        with self.store.begin() as connection:
            rows: Sequence[Any] = connection.execute(
                sa.select(alert_schedule.c.notice, alert_schedule.c.notify_at, alert_schedule.c.loaded_as_of)
                .where(alert_schedule.c.notify_at <= now)
                .order_by(alert_schedule.c.notify_at, alert_schedule.c.notice_key)
            ).all()
        return [ScheduledNotice(Notice.from_json(json.loads(notice)), at, loaded) for notice, at, loaded in rows]

    def next_moment(self) -> datetime | None:
        with self.store.begin() as connection:
            return connection.execute(sa.select(sa.func.min(alert_schedule.c.notify_at))).scalar_one()

    def remove(self, keys: list[str]) -> None:
        with self.store.begin() as connection:
            connection.execute(alert_schedule.delete().where(alert_schedule.c.notice_key.in_(keys)))
