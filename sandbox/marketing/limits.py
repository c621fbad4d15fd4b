"""Marketo's budgets for REST calls: a rate window, calls in flight and a daily quota."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sandbox.faults import Limits
from sandbox.marketing.schema import MarketoError

RATE_WINDOW_S = 20
QUOTA_DAY_ZONE = ZoneInfo("America/Chicago")  # Marketo's daily quota resets at 12:00 AM Central time


class RequestLimiter:
    """Marketo's three budgets for REST calls: a sliding 20-second window, calls in flight, and a
    daily quota. A call answered with a response-level error gives back what it took."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._recent: deque[float] = deque()
        self._in_flight = 0
        self._quota_day = None
        self._spent_today = 0
        self._lock = threading.Lock()

    def spent_today(self) -> tuple[date, int]:
        """The quota day (Central time) and the calls counted against it so far."""
        with self._lock:
            today = datetime.now(QUOTA_DAY_ZONE).date()
            return today, self._spent_today if today == self._quota_day else 0

    @contextmanager
    def admit(self, limits: Limits) -> Iterator[None]:
        with self._lock:
            now = self._clock()
            while self._recent and now - self._recent[0] >= RATE_WINDOW_S:
                self._recent.popleft()
            today = datetime.now(QUOTA_DAY_ZONE).date()
            if today != self._quota_day:
                self._quota_day, self._spent_today = today, 0
            if self._spent_today >= limits.marketing_daily_quota:
                raise MarketoError("607", "Daily quota reached")
            if len(self._recent) >= limits.marketing_requests_per_20s:
                raise MarketoError(
                    "606",
                    f"Max rate limit '{limits.marketing_requests_per_20s}' exceeded with in '{RATE_WINDOW_S}' secs",
                )
            if self._in_flight >= limits.marketing_concurrent_requests:
                raise MarketoError("615", f"Concurrent access limit '{limits.marketing_concurrent_requests}' reached")
            self._recent.append(now)
            self._spent_today += 1
            self._in_flight += 1
        try:
            yield
        except BaseException:
            with self._lock:
                if now in self._recent:
                    self._recent.remove(now)
                if self._quota_day == today:
                    self._spent_today -= 1
            raise
        finally:
            with self._lock:
                self._in_flight -= 1
