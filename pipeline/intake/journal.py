"""The intake journal: every webhook event accepted, on disk before the sender hears 2xx.

SQLite in WAL mode with ``synchronous=FULL`` fsyncs each commit, so an event acknowledged survives a
kill -9 of the service or a power cut. Events are keyed by the sender's own id (HubSpot's
``eventId``, the Marketo webhook's ``webhookId``): a redelivery is recognised and kept once.
Sensors read each source's events in arrival order (``seq``) after a cursor.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

SCHEMA = """
create table if not exists events (
    seq integer primary key autoincrement,
    source text not null,
    event_key text not null,
    received_at text not null,
    body text not null,
    unique (source, event_key)
);
create index if not exists events_by_arrival on events (source, received_at);
"""


@dataclass(frozen=True)
class JournalEvent:
    seq: int
    source: str
    event_key: str
    received_at: str
    body: str


class IntakeJournal:
    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("pragma journal_mode = wal")
        self._db.execute("pragma synchronous = full")
        self._db.executescript(SCHEMA)
        self._lock = threading.Lock()

    def append(self, source: str, events: list[tuple[str, str]]) -> int:
        """Store ``(event key, JSON body)`` pairs in one durable transaction; how many were new."""
        received_at = datetime.now(UTC).isoformat(timespec="milliseconds")
        with self._lock:
            before = self._db.total_changes
            self._db.execute("begin immediate")
            try:
                self._db.executemany(
                    "insert or ignore into events (source, event_key, received_at, body) values (?, ?, ?, ?)",
                    [(source, key, received_at, body) for key, body in events],
                )
                self._db.execute("commit")
            except BaseException:
                self._db.execute("rollback")
                raise
            return self._db.total_changes - before

    def after(self, source: str, seq: int, limit: int = 10_000) -> list[JournalEvent]:
        with self._lock:
            rows = self._db.execute(
                "select seq, source, event_key, received_at, body from events where source = ? and seq > ? "
                "order by seq limit ?",
                (source, seq, limit),
            ).fetchall()
        return [JournalEvent(*row) for row in rows]

    def received_after(self, source: str, moment: datetime) -> int:
        """How many of the source's events arrived after ``moment`` (timezone-aware)."""
        with self._lock:
            (count,) = self._db.execute(
                "select count(*) from events where source = ? and received_at > ?",
                (source, moment.astimezone(UTC).isoformat(timespec="milliseconds")),
            ).fetchone()
        return count

    def since(self, source: str, seq: int) -> tuple[int, int]:
        """How many of the source's events came after ``seq``, and the newest one's seq (or ``seq``)."""
        with self._lock:
            count, newest = self._db.execute(
                "select count(*), max(seq) from events where source = ? and seq > ?", (source, seq)
            ).fetchone()
        return count, newest or seq

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._db.execute("select source, count(*) from events group by source").fetchall())

    def close(self) -> None:
        self._db.close()
