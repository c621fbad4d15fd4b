"""The custom service's access tokens: issued by the identity endpoint, checked on every REST call."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable

from sandbox.marketing.schema import MarketoError

API_USER = "handoff-api@sandbox.example"  # a token's scope: the API-only user owning the service


class AccessTokens:
    """One live token per custom service: asked again while it lives, Marketo hands out the same token
    with its remaining lifetime. Expired tokens are remembered, so 602 (expired) is told from 601
    (never issued)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._expiry: dict[str, float] = {}
        self._live: str | None = None
        self._lock = threading.Lock()

    def issue(self, ttl_s: int) -> tuple[str, int]:
        with self._lock:
            now = self._clock()
            if self._live is None or self._expiry[self._live] <= now:
                self._live = f"{uuid.uuid4()}:sb"
                self._expiry[self._live] = now + ttl_s
            return self._live, int(self._expiry[self._live] - now)

    def check(self, token: str | None) -> None:
        if not token:
            raise MarketoError("600", "Access token not specified")
        expiry = self._expiry.get(token)
        if expiry is None:
            raise MarketoError("601", "Access token invalid")
        if expiry <= self._clock():
            raise MarketoError("602", "Access token expired")
