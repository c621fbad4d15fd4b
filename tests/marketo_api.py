"""A Marketo REST client for the tests, as an integration calls the API: a token first, then bearer
calls, every answer (errors included) in HTTP 200; and the helpers to page and read its answers."""

from contextlib import contextmanager
from pathlib import Path

import httpx

from sandbox.faults import Faults
from sandbox.server import SandboxServer, build_sandbox

SINCE = "2025-01-01T00:00:00Z"
ALL_BUT_DELETE = "1,2,6,7,10,11,12,13,22,104"  # ten types: Marketo's maximum per call


class Marketo:
    """Calls the stand-in the way a Marketo integration does: token first, then bearer calls, and
    every answer (errors included) in HTTP 200."""

    def __init__(self, server: SandboxServer):
        self.server = server
        self.connection = server.connections()["marketing"]
        self.http = httpx.Client(base_url=self.connection["base_url"], timeout=10)
        self.token = self.new_token()["access_token"]

    def new_token(self, **overrides: str) -> dict:
        credentials = {
            "grant_type": "client_credentials",
            "client_id": self.connection["client_id"],
            "client_secret": self.connection["client_secret"],
            **overrides,
        }
        return self.http.get("/identity/oauth/token", params=credentials).json()

    def get(self, path: str, token: str | None = None, **params) -> dict:
        return self._answer(self.http.get(path, params=params, headers=self._auth(token)))

    def post(self, path: str, body: dict | None = None, **request) -> dict:
        return self._answer(self.http.post(path, json=body, headers=self._auth(None), **request))

    def _auth(self, token: str | None) -> dict:
        return {"Authorization": f"Bearer {token or self.token}"}

    @staticmethod
    def _answer(response: httpx.Response) -> dict:
        assert response.status_code == 200, response.text
        return response.json()


def error_of(body: dict) -> dict:
    assert body["success"] is False and "result" not in body, body
    assert set(body) == {"requestId", "success", "errors"} and "#" in body["requestId"]
    (error,) = body["errors"]
    return error


@contextmanager
def serving(state: Path, company: Path, faults: Faults | None = None):
    with SandboxServer(build_sandbox(state, dataset_dir=company, faults=faults)) as server:
        yield Marketo(server)


def page_through(api: Marketo, path: str, since: str = SINCE, **params) -> list[dict]:
    token = api.get("/rest/v1/activities/pagingtoken.json", sinceDatetime=since)["nextPageToken"]
    pages = []
    while True:
        page = api.get(path, nextPageToken=token, **params)
        assert page["success"] is True, page
        pages.append(page)
        token = page["nextPageToken"]
        if not page["moreResult"]:
            return pages


def listed(pages: list[dict]) -> list[dict]:
    return [item for page in pages for item in page.get("result", [])]


def marketo_activity(
    activity_id: int, lead_id: int, type_id: int, date: str, primary: tuple | None = None, attributes: tuple = ()
) -> dict:
    """An activity as Marketo's REST API lists it."""
    return {
        "id": activity_id,
        "marketoGUID": str(activity_id),
        "leadId": lead_id,
        "activityDate": date,
        "activityTypeId": type_id,
        **({"primaryAttributeValueId": primary[0], "primaryAttributeValue": primary[1]} if primary else {}),
        "attributes": [{"name": name, "value": value} for name, value in attributes],
    }
