"""Client-side pacing: stay within a vendor's request budget instead of bouncing off its limit.

HubSpot (100 requests per 10 s, and 5 a second to its search endpoints) and Marketo (100 calls per
20 s) count requests in a sliding window; answering their 429 / 606 with exponential back-off works
but wastes most of the wait, so each client takes a turn from a limiter before sending. The budget
is the vendor's published limit unless configuration says the account has another (a higher API
tier, or a sandbox whose limits were raised for a benchmark).
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter


class SlidingWindowLimiter:
    """At most ``calls`` requests in any ``per_seconds`` window."""

    def __init__(self, calls: int, per_seconds: float):
        self.calls, self.per_seconds = calls, per_seconds
        self._sent: deque[float] = deque()
        self._lock = threading.Lock()

    def wait_turn(self) -> None:
        with self._lock:
            while True:
                now = time.monotonic()
                while self._sent and now - self._sent[0] >= self.per_seconds:
                    self._sent.popleft()
                if len(self._sent) < self.calls:
                    self._sent.append(now)
                    return
                time.sleep(self.per_seconds - (now - self._sent[0]))


class PacedAdapter(HTTPAdapter):
    """Sends through the limiter. Mounted as the session's transport, it paces every attempt,
    the session's own retries included. ``endpoint_limiters`` add a budget of their own for the
    paths ending as their key (HubSpot's search endpoints allow fewer requests than the rest)."""

    def __init__(self, limiter: SlidingWindowLimiter, endpoint_limiters: dict[str, SlidingWindowLimiter]):
        super().__init__()
        self.limiter = limiter
        self.endpoint_limiters = endpoint_limiters

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        path = urlsplit(request.url or "").path
        for ending, limiter in self.endpoint_limiters.items():
            if path.endswith(ending):
                limiter.wait_turn()
        self.limiter.wait_turn()
        return super().send(request, *args, **kwargs)


def paced(
    session: requests.Session,
    limiter: SlidingWindowLimiter,
    base_url: str,
    endpoint_limiters: dict[str, SlidingWindowLimiter] | None = None,
) -> requests.Session:
    """``session`` sending through ``limiter``, with the environment's proxy and CA settings for
    ``base_url`` read once: requests reads the whole environment again for every request, which
    costs more than parsing a page of results."""
    adapter = PacedAdapter(limiter, endpoint_limiters or {})
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.proxies.update(requests.utils.get_environ_proxies(base_url))
    session.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or session.verify
    session.trust_env = False
    return session
