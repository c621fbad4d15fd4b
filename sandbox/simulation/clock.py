"""Simulation time: whole seconds since midnight UTC of the simulated span's first day."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sandbox.dataset import iso

DAY = 86_400
HOUR = 3_600

_TIME_OF_DAY = [f"{h:02d}:{m:02d}:{s:02d}." for h in range(24) for m in range(60) for s in range(60)]
_MILLIS = [f"{ms:03d}Z" for ms in range(1000)]


class Clock:
    """Simulation time as whole seconds since midnight UTC of the span's first day; formats
    timestamps from precomputed parts, because millions of ``strftime`` calls are slow."""

    def __init__(self, now: datetime, days: int):
        first_day = (now - timedelta(days=days)).date()
        self.origin = datetime(first_day.year, first_day.month, first_day.day, tzinfo=UTC)
        self.now = int((now - self.origin).total_seconds())
        self.start = self.now - days * DAY
        # Records carry milliseconds, so the latest second one may use is the one before now.
        self.last = self.now - 1
        self._days = [(self.origin + timedelta(days=d)).strftime("%Y-%m-%dT") for d in range(self.now // DAY + 1)]

    def stamp(self, t: int, millis: int = 0) -> str:
        """ISO timestamp of a moment within the span (as ``sandbox.dataset.iso`` writes it)."""
        return self._days[t // DAY] + _TIME_OF_DAY[t % DAY] + _MILLIS[millis]

    def iso(self, t: int) -> str:
        """ISO timestamp of any moment, also before the span (setup records)."""
        return iso(self.moment(t))

    def moment(self, t: int) -> datetime:
        return self.origin + timedelta(seconds=t)

    def seconds(self, moment: datetime) -> int:
        return int((moment - self.origin).total_seconds())

    def weekday(self, t: int) -> int:
        return (self.origin.weekday() + t // DAY) % 7
