"""Download-only: every page a system's full load fetches, fetched by a tight loop that does nothing
with them, so a load's time can be set against the time the bytes alone take.

The loops send the ingest's requests (the same endpoints, page sizes, cursors, batches of ids and
lead look-ups, paced to the same budgets) through httpx, parsing only what the next request needs;
the benchmark checks that the sandbox was sent as many requests as by the load. The website's events
are files, not pages, so for them the floor is reading the files the way the web source does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import orjson

from pipeline.ingest.crm import (
    ASSOCIATED_TYPES,
    BATCH_SIZE,
    HISTORY_PROPERTIES,
    LIST_PAGE_SIZE,
    OBJECT_TYPES,
    requests_per_10s,
)
from pipeline.ingest.marketing import (
    ACTIVITY_CHUNK,
    HISTORY_DAYS,
    LEADS_PER_CALL,
    MEMBER_FIELDS,
    PAGE_SIZE,
    activity_type_groups,
    calls_per_20s,
    wanted_activity_types,
)
from pipeline.ingest.pacing import SlidingWindowLimiter
from pipeline.ingest.web import read_new_lines
from pipeline.settings import DataHome, load_connections, load_settings

TIMEOUT_S = 60
PROGRAMS_PER_CALL = 200
OWNERS_PER_PAGE = 100


@dataclass
class Downloaded:
    requests: int = 0
    bytes: int = 0


class PacedFetcher:
    """Sends each request in its turn under the budget, and counts what came back."""

    def __init__(self, client: httpx.Client, limiter: SlidingWindowLimiter):
        self.client, self.limiter = client, limiter
        self.downloaded = Downloaded()

    def json(self, method: str, path: str, **request) -> dict:
        self.limiter.wait_turn()
        response = self.client.request(method, path, **request).raise_for_status()
        self.downloaded.requests += 1
        self.downloaded.bytes += len(response.content)
        body = orjson.loads(response.content)
        # Marketo reports errors inside HTTP 200; a download that met one did not download the page.
        if body.get("success") is False:
            raise RuntimeError(f"{method} {path} failed: {body.get('errors')}")
        return body


def download_crm(_: DataHome) -> Downloaded:
    crm = load_connections().crm
    with httpx.Client(
        base_url=crm.base_url, timeout=TIMEOUT_S, headers={"Authorization": f"Bearer {crm.access_token}"}
    ) as client:
        fetch = PacedFetcher(client, SlidingWindowLimiter(requests_per_10s(), 10))
        for _ in _hubspot_pages(fetch, "/crm/v3/owners", {"limit": OWNERS_PER_PAGE}):
            pass
        fetch.json("GET", "/crm/v3/pipelines/deals")
        for object_type in OBJECT_TYPES:
            names = ",".join(p["name"] for p in fetch.json("GET", f"/crm/v3/properties/{object_type}")["results"])
            for archived in ("false", "true"):
                for page in _hubspot_pages(
                    fetch,
                    f"/crm/v3/objects/{object_type}",
                    {"limit": LIST_PAGE_SIZE, "properties": names, "archived": archived},
                ):
                    _crm_related(fetch, object_type, [record["id"] for record in page])
    return fetch.downloaded


def _hubspot_pages(fetch: PacedFetcher, path: str, params: dict) -> Iterator[list[dict]]:
    params = dict(params)
    while True:
        body = fetch.json("GET", path, params=params)
        yield body.get("results", [])
        after = ((body.get("paging") or {}).get("next") or {}).get("after")
        if not after:
            return
        params["after"] = after


def _crm_related(fetch: PacedFetcher, object_type: str, ids: list[str]) -> None:
    for start in range(0, len(ids), BATCH_SIZE):
        inputs = [{"id": record_id} for record_id in ids[start : start + BATCH_SIZE]]
        if object_type in HISTORY_PROPERTIES:
            fetch.json(
                "POST",
                f"/crm/v3/objects/{object_type}/batch/read",
                json={
                    "inputs": inputs,
                    "properties": [],
                    "propertiesWithHistory": list(HISTORY_PROPERTIES[object_type]),
                },
            )
        for to_type in ASSOCIATED_TYPES.get(object_type, ()):
            fetch.json("POST", f"/crm/v4/associations/{object_type}/{to_type}/batch/read", json={"inputs": inputs})


def download_marketing(_: DataHome) -> Downloaded:
    marketing = load_connections().require_marketing()
    with httpx.Client(base_url=marketing.base_url, timeout=TIMEOUT_S) as client:
        fetch = PacedFetcher(client, SlidingWindowLimiter(calls_per_20s(), 20))
        token = fetch.json(
            "GET",
            "/identity/oauth/token",
            params={
                "grant_type": "client_credentials",
                "client_id": marketing.client_id,
                "client_secret": marketing.client_secret,
            },
        )["access_token"]
        client.headers["Authorization"] = f"Bearer {token}"
        since = (datetime.now(UTC) - timedelta(days=HISTORY_DAYS)).strftime("%Y-%m-%dT%H:%M:%SZ")

        def paging_token() -> str:
            return fetch.json("GET", "/rest/v1/activities/pagingtoken.json", params={"sinceDatetime": since})[
                "nextPageToken"
            ]

        described = fetch.json("GET", "/rest/v1/activities/types.json")["result"]
        wanted = wanted_activity_types(described, load_settings().marketing_activity_types)
        look_up_leads = _lead_look_up(fetch)
        for _, group in activity_type_groups([], wanted):
            # Leads are looked up per chunk of activities, as the ingest hands them on.
            lead_ids: set[int] = set()
            activities = 0
            for page in _marketo_pages(
                fetch,
                "/rest/v1/activities.json",
                {"activityTypeIds": ",".join(map(str, group)), "batchSize": PAGE_SIZE, "nextPageToken": paging_token()},
            ):
                lead_ids.update(activity["leadId"] for activity in page)
                activities += len(page)
                if activities >= ACTIVITY_CHUNK:
                    look_up_leads(lead_ids)
                    lead_ids, activities = set(), 0
            if activities:
                look_up_leads(lead_ids)
        for _ in _marketo_pages(
            fetch, "/rest/v1/activities/deletedleads.json", {"nextPageToken": paging_token(), "batchSize": PAGE_SIZE}
        ):
            pass
        offset = 0
        while True:
            programs = (
                fetch.json(
                    "GET", "/rest/asset/v1/programs.json", params={"offset": offset, "maxReturn": PROGRAMS_PER_CALL}
                ).get("result")
                or []
            )
            for program in programs:
                for _ in _marketo_pages(
                    fetch,
                    f"/rest/v1/programs/{program['id']}/members.json",
                    {
                        "batchSize": PAGE_SIZE,
                        "filterType": "reachedSuccess",
                        "filterValues": "true,false",
                        "fields": MEMBER_FIELDS,
                    },
                ):
                    pass
            if len(programs) < PROGRAMS_PER_CALL:
                return fetch.downloaded
            offset += len(programs)


def _marketo_pages(fetch: PacedFetcher, path: str, params: dict) -> Iterator[list[dict]]:
    params = dict(params)
    while True:
        body = fetch.json("GET", path, params=params)
        yield body.get("result", [])
        if not body.get("moreResult") or not body.get("nextPageToken"):
            return
        params["nextPageToken"] = body["nextPageToken"]


def _lead_look_up(fetch: PacedFetcher) -> Callable[[set[int]], None]:
    """Reads leads not read before, in calls of the most ids Marketo takes, with every described field."""
    looked_up: set[int] = set()
    fields: list[str] = []

    def look_up(lead_ids: set[int]) -> None:
        unread = sorted(lead_ids - looked_up)
        if unread and not fields:
            fields.extend(
                field["rest"]["name"]
                for field in fetch.json("GET", "/rest/v1/leads/describe.json")["result"]
                if "rest" in field
            )
        for start in range(0, len(unread), LEADS_PER_CALL):
            batch = unread[start : start + LEADS_PER_CALL]
            fetch.json(
                "GET",
                "/rest/v1/leads.json",
                params={"filterType": "id", "filterValues": ",".join(map(str, batch)), "fields": ",".join(fields)},
            )
            looked_up.update(batch)

    return look_up


def download_web(home: DataHome) -> Downloaded:
    downloaded = Downloaded()
    for folder in home.web_event_folders():
        for path in sorted(folder.rglob("*.ndjson")):
            _, end = read_new_lines(path, 0)
            downloaded.bytes += end
    return downloaded


DOWNLOADS: dict[str, Callable[[DataHome], Downloaded]] = {
    "crm": download_crm,
    "marketing": download_marketing,
    "web": download_web,
}
