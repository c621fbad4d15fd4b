"""One HTTP app serving every stand-in, each under its own prefix as its own base URL."""

from __future__ import annotations

from collections import Counter

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.types import ASGIApp, Receive, Scope, Send

from sandbox.crm import CrmStore, HubSpotError, crm_router
from sandbox.dataset import Dataset
from sandbox.faults import FaultInjection, Faults
from sandbox.marketing import MarketingStandIn, invalid_request_response, marketing_router
from sandbox.store import SandboxStore
from sandbox.webhooks import WebhookSender
from sandbox.website import SEGMENT_PREFIX, Website, segment_router

CRM_PREFIX = "/hubspot"
MARKETING_PREFIX = "/marketo"
STAND_IN_PREFIXES = {CRM_PREFIX: "crm", MARKETING_PREFIX: "marketing", SEGMENT_PREFIX: "web"}


class Sandbox:
    """The stand-in systems' shared state and credentials for one company."""

    def __init__(
        self,
        store: SandboxStore,
        dataset: Dataset,
        crm_access_token: str,
        faults: Faults | None = None,
        *,
        website: Website,
        webhooks: WebhookSender,
        marketing_client_id: str,
        marketing_client_secret: str,
    ):
        self.store = store
        self.dataset = dataset
        self.faults = faults or Faults()
        self.limits = self.faults.limits()
        self.crm = CrmStore(store, self.faults)
        self.crm_access_token = crm_access_token
        self.marketing = MarketingStandIn(store, marketing_client_id, marketing_client_secret, self.limits)
        self.website = website
        self.webhooks = webhooks

    def connections(self, base_url: str) -> dict:
        """Connection details in the connection-file format Handoff reads."""
        connections = {"crm": {"base_url": f"{base_url}{CRM_PREFIX}", "access_token": self.crm_access_token}}
        connections["web"] = self.website.connections(base_url)
        connections["marketing"] = {
            "base_url": f"{base_url}{MARKETING_PREFIX}",
            "client_id": self.marketing.client_id,
            "client_secret": self.marketing.client_secret,
        }
        connections["crm"]["webhook_client_secret"] = self.webhooks.crm_client_secret
        connections.setdefault("marketing", {})["webhook_secret"] = self.webhooks.marketing_secret
        return connections


class RequestCounter:
    """ASGI middleware counting the requests each stand-in was sent (shown by ``/health``), so a
    client can see how many calls a run took, retries and refusals included."""

    def __init__(self, app: ASGIApp, served: Counter):
        self.app = app
        self.served = served

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            prefix = "/" + scope["path"].split("/", 2)[1]
            if prefix in STAND_IN_PREFIXES:
                self.served[STAND_IN_PREFIXES[prefix]] += 1
        await self.app(scope, receive, send)


class WithoutTrailingSlash:
    """ASGI middleware: HubSpot answers ``/crm/v3/owners/`` as it answers ``/crm/v3/owners`` (its
    owners client calls the first), so a path under ``prefix`` is routed without its trailing slash
    rather than redirected."""

    def __init__(self, app: ASGIApp, prefix: str):
        self.app = app
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and path.startswith(f"{self.prefix}/") and path.endswith("/"):
            scope = {**scope, "path": path.rstrip("/"), "raw_path": scope["raw_path"].rstrip(b"/")}
        await self.app(scope, receive, send)


def create_app(sandbox: Sandbox) -> FastAPI:
    app = FastAPI(title="Handoff sandbox", docs_url=None, redoc_url=None)
    app.include_router(crm_router(sandbox.crm, sandbox.crm_access_token, sandbox.limits), prefix=CRM_PREFIX)
    app.include_router(marketing_router(sandbox.marketing), prefix=MARKETING_PREFIX)
    app.include_router(segment_router(sandbox.website), prefix=SEGMENT_PREFIX)
    app.add_middleware(FaultInjection, faults=sandbox.faults, hubspot_prefix=CRM_PREFIX)
    app.add_middleware(WithoutTrailingSlash, prefix=CRM_PREFIX)
    served: Counter = Counter()
    app.add_middleware(RequestCounter, served=served)

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok", "company": sandbox.store.manifest(), "requests_served": dict(served)}

    @app.exception_handler(HubSpotError)
    def hubspot_error(_: Request, error: HubSpotError):
        return error.response()

    @app.exception_handler(RequestValidationError)
    def invalid_request(request: Request, error: RequestValidationError):
        # Vendors answer malformed requests with their own 400 bodies, not FastAPI's 422.
        if request.url.path.startswith(f"{MARKETING_PREFIX}/"):
            return invalid_request_response(error)  # Marketo's: HTTP 200, success false
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        return HubSpotError(400, "VALIDATION_ERROR", f"Invalid input JSON on line 1: {problems}").response()

    return app
