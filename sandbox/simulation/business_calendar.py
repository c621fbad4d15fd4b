"""Business time: working hours as intervals of simulation seconds, in which owners work and SLAs are
measured (zoneinfo handles DST)."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sandbox.simulation.clock import DAY, Clock

CALENDAR_LOOKAHEAD_DAYS = 60  # business calendars reach past now, so a pending touch can be placed


class BusinessCalendar:
    """Working time as ordered, disjoint ``[open, close)`` intervals of simulation seconds."""

    def __init__(self, intervals: Iterable[tuple[int, int]]):
        ordered = sorted(intervals)
        self.opens = [begin for begin, _ in ordered]
        self.closes = [end for _, end in ordered]

    def advance(self, t: int, seconds: int) -> int | None:
        """The moment ``seconds`` of working time after ``t`` (None past the calendar's end)."""
        opens, closes = self.opens, self.closes
        index = bisect_right(closes, t)
        while index < len(opens):
            begin = opens[index] if opens[index] > t else t
            available = closes[index] - begin
            if seconds < available:
                return begin + seconds
            seconds -= available
            index += 1
        return None

    def between(self, start: int, end: int) -> int:
        """Working seconds in ``[start, end)``."""
        total, index = 0, bisect_right(self.closes, start)
        while index < len(self.opens) and self.opens[index] < end:
            total += min(self.closes[index], end) - max(self.opens[index], start)
            index += 1
        return total


def local_days(clock: Clock) -> list[date]:
    """Every calendar day a business calendar needs, from just before the span to past now."""
    first = clock.origin.date() - timedelta(days=2)
    return [first + timedelta(days=n) for n in range(clock.now // DAY + 3 + CALENDAR_LOOKAHEAD_DAYS)]


def working_intervals(
    clock: Clock, zone: ZoneInfo, hours: tuple[int, int], days: Iterable[date]
) -> list[tuple[int, int]]:
    """Local working hours on the given days as simulation seconds (zoneinfo handles DST)."""
    start, end = hours
    return [
        (
            clock.seconds(datetime(d.year, d.month, d.day, start, tzinfo=zone)),
            clock.seconds(datetime(d.year, d.month, d.day, end, tzinfo=zone)),
        )
        for d in days
    ]
