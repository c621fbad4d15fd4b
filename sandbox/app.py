"""One HTTP app serving every stand-in, each under its own prefix as its own base URL."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError

from sandbox.crm import CrmStore, HubSpotError, crm_router
from sandbox.dataset import Dataset
from sandbox.faults import Faults
from sandbox.store import SandboxStore

CRM_PREFIX = "/hubspot"


class Sandbox:
    """The stand-in systems' shared state and credentials for one company."""

    def __init__(self, store: SandboxStore, dataset: Dataset, crm_access_token: str,
                 faults: Faults | None = None):
        self.store = store
        self.dataset = dataset
        self.faults = faults or Faults()
        self.limits = self.faults.limits()
        self.crm = CrmStore(store)
        self.crm_access_token = crm_access_token

    def connections(self, base_url: str) -> dict:
        """Connection details in the connection-file format Handoff reads."""
        return {"crm": {"base_url": f"{base_url}{CRM_PREFIX}", "access_token": self.crm_access_token}}


def create_app(sandbox: Sandbox) -> FastAPI:
    app = FastAPI(title="Handoff sandbox", docs_url=None, redoc_url=None)
    app.include_router(crm_router(sandbox.crm, sandbox.crm_access_token), prefix=CRM_PREFIX)

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok", "company": sandbox.store.manifest()}

    @app.exception_handler(HubSpotError)
    def hubspot_error(_: Request, error: HubSpotError):
        return error.response()

    @app.exception_handler(RequestValidationError)
    def invalid_request(request: Request, error: RequestValidationError):
        # Vendors answer malformed requests with their own 400 bodies, not FastAPI's 422.
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        return HubSpotError(400, "VALIDATION_ERROR", f"Invalid input JSON on line 1: {problems}").response()

    return app
