"""The landing zone for website events: hourly NDJSON files the web ingest source reads, each event
in them exactly once.

An index (SQLite, fsynced per commit) remembers every ``messageId`` landed, so a client's retry or a
redelivery after a restart is recognised. A batch is written in two durable steps: first the index
commits the new ids together with the exact bytes about to be appended and where; then the bytes are
appended and fsynced, and that note is cleared. If the process dies in between, the next start
rewrites the noted bytes at the noted offset, so the file ends as if nothing had happened: no event
acknowledged is lost, and none is written twice.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from datetime import datetime
from pathlib import Path

from pipeline.intake.segment import hour_file

SCHEMA = """
create table if not exists web_messages (message_id text primary key);
create table if not exists web_pending_append (
    only_one integer primary key check (only_one = 1),
    file text not null,
    offset integer not null,
    lines blob not null
);
"""


def _fsync_folder(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _write_at(path: Path, offset: int, lines: bytes) -> None:
    """Make ``path`` end with ``lines`` at ``offset``, durably (the file's entry in its folder too)."""
    created = not path.exists()
    if created:
        path.parent.mkdir(parents=True, exist_ok=True)
        _fsync_folder(path.parent.parent)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        os.ftruncate(descriptor, offset)
        os.pwrite(descriptor, lines, offset)
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    if created:
        _fsync_folder(path.parent)


class WebEventLanding:
    """Lands website events in ``folder``, de-duplicated on ``messageId`` by the index at ``index``."""

    def __init__(self, folder: Path, index: Path):
        self.folder = folder
        index.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(index, check_same_thread=False, isolation_level=None)
        self._db.execute("pragma journal_mode = wal")
        self._db.execute("pragma synchronous = full")
        self._db.executescript(SCHEMA)
        self._lock = threading.Lock()
        self._finish_interrupted_append()

    def _finish_interrupted_append(self) -> None:
        pending = self._db.execute("select file, offset, lines from web_pending_append").fetchone()
        if pending:
            file, offset, lines = pending
            _write_at(Path(file), offset, lines)
            self._db.execute("delete from web_pending_append")

    def land(self, events: list[dict], received_at: datetime) -> int:
        """Append the events not landed before to the hour they were received in; how many were new.
        Every event has a ``messageId``; it returns only once the new ones are on disk."""
        with self._lock:
            fresh = self._unseen(events)
            if not fresh:
                return 0
            path = hour_file(self.folder, received_at)
            offset = path.stat().st_size if path.exists() else 0
            lines = b"".join(
                json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode() + b"\n" for event in fresh
            )
            self._db.execute("begin immediate")
            try:
                self._db.executemany(
                    "insert into web_messages (message_id) values (?)", [(event["messageId"],) for event in fresh]
                )
                self._db.execute(
                    "insert into web_pending_append (only_one, file, offset, lines) values (1, ?, ?, ?)",
                    (str(path), offset, lines),
                )
                self._db.execute("commit")
            except BaseException:
                self._db.execute("rollback")
                raise
            _write_at(path, offset, lines)
            self._db.execute("delete from web_pending_append")
            return len(fresh)

    def _unseen(self, events: list[dict]) -> list[dict]:
        """The events whose ``messageId`` is neither landed already nor earlier in ``events``."""
        ids = list({event["messageId"] for event in events})
        landed: set[str] = set()
        # SQLite caps the number of parameters in one statement.
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            landed.update(
                row[0]
                for row in self._db.execute(
                    f"select message_id from web_messages where message_id in ({','.join('?' * len(chunk))})", chunk
                )
            )
        fresh = []
        for event in events:
            if event["messageId"] not in landed:
                landed.add(event["messageId"])
                fresh.append(event)
        return fresh

    def count(self) -> int:
        with self._lock:
            return self._db.execute("select count(*) from web_messages").fetchone()[0]

    def close(self) -> None:
        self._db.close()
