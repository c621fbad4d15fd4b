"""The Marketo stand-in of one company: its records, credentials, tokens, limits and export jobs, the
identity endpoint, and the gate every REST and bulk call passes (token, then limits, then the resource)."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response

from sandbox.faults import Limits
from sandbox.marketing.bulk import BulkExports
from sandbox.marketing.limits import RequestLimiter
from sandbox.marketing.params import Params
from sandbox.marketing.schema import MarketoError, new_request_id
from sandbox.marketing.store import MarketingStore
from sandbox.marketing.tokens import API_USER, AccessTokens
from sandbox.store import SandboxStore

logger = logging.getLogger(__name__)


class MarketingStandIn:
    """The Marketo stand-in of one company: its records, the custom service's credentials, the tokens
    handed out, and the limits every REST call passes."""

    def __init__(self, store: SandboxStore, client_id: str, client_secret: str, limits: Limits):
        self.records = MarketingStore(store)
        self.client_id, self.client_secret = client_id, client_secret
        # Read on every call, so a test can tighten a running sandbox (a real day's quota is too big).
        self.limits = limits
        self.tokens = AccessTokens()
        self.limiter = RequestLimiter()
        self.exports = BulkExports()

    def token_response(self, params: Params) -> JSONResponse:
        """The identity endpoint: OAuth 2.0 client credentials, answered in OAuth's own shape."""
        grant_type, client_id = params.text("grant_type"), params.text("client_id")
        if grant_type is None:
            return JSONResponse({"error": "invalid_request", "error_description": "Missing grant type"}, 400)
        if grant_type != "client_credentials":
            return JSONResponse(
                {"error": "unsupported_grant_type", "error_description": f"Unsupported grant type: {grant_type}"}, 400
            )
        if client_id != self.client_id:
            return JSONResponse(
                {"error": "unauthorized", "error_description": f"No client with requested id: {client_id}"}, 401
            )
        if not secrets.compare_digest((params.text("client_secret") or "").encode(), self.client_secret.encode()):
            return JSONResponse({"error": "invalid_client", "error_description": "Bad client credentials"}, 401)
        token, expires_in = self.tokens.issue(self.limits.marketing_token_ttl_s)
        return JSONResponse(
            {"access_token": token, "token_type": "bearer", "expires_in": expires_in, "scope": API_USER}
        )

    async def answer(self, request: Request, handle: Callable[[Request], Awaitable[Response]]) -> Response:
        """Every REST call: token first, then the limits, then the resource, in Marketo's error shape."""
        request.state.request_id = new_request_id()
        try:
            self.tokens.check(_presented_token(request))
            with self.limiter.admit(self.limits):
                return await handle(request)
        except MarketoError as error:
            return error.response(request.state.request_id)
        except RequestValidationError:
            raise  # the app answers it, in Marketo's shape for this prefix
        except Exception:
            logger.exception("marketing stand-in failed on %s", request.url.path)
            return MarketoError("611", "System error").response(request.state.request_id)


def _presented_token(request: Request) -> str | None:
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return request.query_params.get("access_token")
