"""What the stand-ins allow (the vendors' rate limits) and what goes wrong on purpose (faults).

A fault spec is a comma-separated list, e.g. ``latency=50ms,errors=0.05,pressure=0.2,token_ttl=30s,
drift,churn=0.01,seed=3``:

| key | meaning |
|---|---|
| ``latency`` | added to every response (``ms`` or ``s``) |
| ``errors`` | share of requests answered with a 5xx |
| ``pressure`` | factor applied to every rate limit (0.2 = a fifth of the vendor's budget) |
| ``token_ttl`` | lifetime of marketing-automation access tokens (vendor default 3600 s) |
| ``drift`` | a new custom property appears on CRM contacts while the sandbox runs |
| ``churn`` | share of records modified while a client pages through them |
| ``seed`` | seed of the random draws above, so a faulty run can be replayed |
"""

from __future__ import annotations

import asyncio
import random
import threading
from dataclasses import dataclass, replace

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from sandbox.crm_schema import HubSpotError

# Exempt from faults: what tells a caller the sandbox is up must not lie about it.
FAULT_FREE_PATHS = {"/health"}


class FaultSpecError(ValueError):
    """A fault spec that cannot be read."""


@dataclass(frozen=True)
class Limits:
    """The vendors' published limits, as the stand-ins enforce them."""

    crm_requests_per_10s: int = 100  # HubSpot private app burst limit
    crm_search_requests_per_s: int = 5  # HubSpot search endpoints, per token, besides the burst limit
    crm_batch_inputs: int = 100  # HubSpot batch endpoints
    marketing_requests_per_20s: int = 100  # Marketo: 606 past this
    marketing_concurrent_requests: int = 10  # Marketo: 615 past this
    marketing_daily_quota: int = 50_000  # Marketo: 607 past this
    marketing_token_ttl_s: int = 3600  # Marketo access token lifetime
    marketing_batch_records: int = 300  # Marketo leads.json
    marketing_daily_export_bytes: int = 500 * 1024 * 1024  # Marketo Bulk Extract: 1029 past this

    def under_pressure(self, factor: float) -> Limits:
        """Every rate limit scaled by ``factor`` (at least 1)."""
        scale = lambda value: max(1, int(value * factor))  # noqa: E731
        return replace(
            self,
            crm_requests_per_10s=scale(self.crm_requests_per_10s),
            crm_search_requests_per_s=scale(self.crm_search_requests_per_s),
            marketing_requests_per_20s=scale(self.marketing_requests_per_20s),
            marketing_concurrent_requests=scale(self.marketing_concurrent_requests),
            marketing_daily_quota=scale(self.marketing_daily_quota),
            marketing_daily_export_bytes=scale(self.marketing_daily_export_bytes),
        )


@dataclass(frozen=True)
class Faults:
    latency_s: float = 0.0
    error_rate: float = 0.0
    pressure: float = 1.0
    token_ttl_s: int | None = None
    schema_drift: bool = False
    churn: float = 0.0
    seed: int = 0

    @classmethod
    def parse(cls, spec: str | None) -> Faults:
        if not spec:
            return cls()
        values: dict = {}
        for item in (part.strip() for part in spec.split(",") if part.strip()):
            key, _, raw = item.partition("=")
            try:
                if key == "latency":
                    values["latency_s"] = _seconds(raw)
                elif key == "errors":
                    values["error_rate"] = _share(raw)
                elif key == "pressure":
                    values["pressure"] = float(raw)
                    if values["pressure"] <= 0:
                        raise ValueError("must be positive")
                elif key == "token_ttl":
                    values["token_ttl_s"] = max(1, int(_seconds(raw)))
                elif key == "drift":
                    values["schema_drift"] = True
                elif key == "churn":
                    values["churn"] = _share(raw)
                elif key == "seed":
                    values["seed"] = int(raw)
                else:
                    raise FaultSpecError(f"unknown fault {key!r} in {spec!r}")
            except ValueError as error:
                if isinstance(error, FaultSpecError):
                    raise
                raise FaultSpecError(f"fault {item!r}: {error}") from error
        return cls(**values)

    def limits(self, base: Limits | None = None) -> Limits:
        limits = (base or Limits()).under_pressure(self.pressure)
        if self.token_ttl_s is not None:
            limits = replace(limits, marketing_token_ttl_s=self.token_ttl_s)
        return limits


def _seconds(raw: str) -> float:
    if raw.endswith("ms"):
        return float(raw[:-2]) / 1000
    return float(raw.removesuffix("s"))


def _share(raw: str) -> float:
    share = float(raw)
    if not 0 <= share <= 1:
        raise ValueError("must be between 0 and 1")
    return share


class FaultInjection:
    """ASGI middleware: ``Faults.latency_s`` delays every response and ``Faults.error_rate`` answers that
    share of requests with a 502 or 503 before they reach a stand-in (so nothing is written), in the
    vendor's error shape: HubSpot's body under its prefix, a JSON ``code``/``message`` elsewhere. Which
    requests fail is drawn from ``Faults.seed``, so the same sequence of requests meets the same faults."""

    def __init__(self, app: ASGIApp, faults: Faults, hubspot_prefix: str):
        self.app = app
        self.faults = faults
        self.hubspot_prefix = hubspot_prefix
        self._draws = random.Random(faults.seed)
        self._draw_lock = threading.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in FAULT_FREE_PATHS:
            await self.app(scope, receive, send)
            return
        failure_status = self._failure_status()
        if self.faults.latency_s:
            await asyncio.sleep(self.faults.latency_s)
        if failure_status is None:
            await self.app(scope, receive, send)
            return
        await self._failure(scope["path"], failure_status)(scope, receive, send)

    def _failure_status(self) -> int | None:
        if not self.faults.error_rate:
            return None
        with self._draw_lock:
            if self._draws.random() >= self.faults.error_rate:
                return None
            return self._draws.choice((502, 503))

    def _failure(self, path: str, status: int) -> JSONResponse:
        reason = {502: "Bad Gateway", 503: "Service Unavailable"}[status]
        message = f"{reason}: the sandbox injected this fault (faults errors={self.faults.error_rate})"
        if path == self.hubspot_prefix or path.startswith(f"{self.hubspot_prefix}/"):
            return HubSpotError(status, "SERVICE_UNAVAILABLE" if status == 503 else "BAD_GATEWAY", message).response()
        return JSONResponse({"code": reason.lower().replace(" ", "_"), "message": message}, status_code=status)
