"""dlt source for a Marketo-shaped marketing-automation system (REST API, OAuth client credentials).

Activities are read incrementally through paging tokens kept in the pipeline state, page by page,
so a run that stops (a crash, or the daily quota running out) resumes exactly where it stopped.
Leads are read by id for the leads the new activities touched (every lead has a New Lead activity,
so the first run reads them all); deleted leads and program memberships (all of them first, then
those updated since the last run) complete the picture.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import dlt
import orjson
import pyarrow as pa
import pyarrow.compute as pc
from dlt.common import logger
from dlt.sources.helpers import requests

from pipeline.ingest.arrow import with_key_required, with_row_ids
from pipeline.ingest.pacing import SlidingWindowLimiter, paced
from pipeline.ingest.read_ahead import read_ahead
from pipeline.settings import load_settings

ACTIVITY_TYPES_PER_CALL = 10  # Marketo's most for one activities.json call
ACTIVITY_CHUNK = 3_000  # activities handed on together, so leads are looked up in full batches
LEADS_PER_CALL = 300  # Marketo's maximum filter values and batch size
PAGE_SIZE = 300
TOKEN_ERRORS = {"601", "602"}  # invalid or expired access token: get a new one
BACK_OFF_ERRORS = {"604", "606", "608", "611", "615", "713"}  # timeouts, rate and concurrency limits
QUOTA_ERROR = "607"
MAX_ATTEMPTS = 8
CALLS_PER_20S_VARIABLE = "HANDOFF_MARKETING_CALLS_PER_20S"  # another subscription's limit than Marketo's 100 per 20 s
MEMBER_FIELDS = "leadId,statusName,reachedSuccess,membershipDate,acquiredBy,updatedAt"
HISTORY_DAYS = 730  # how far back the first run reads activities and deleted leads
MEMBER_UPDATE_WINDOW = timedelta(days=7)  # the longest updatedAt range Marketo's members filter takes
# Memberships updated this long before a run began are read again by the next: Marketo stamps them
# with its own clock, and the merge absorbs what is read twice.
MEMBER_UPDATE_OVERLAP = timedelta(minutes=10)


def member_filters(updated_since: datetime | None, until: datetime) -> list[dict]:
    """How to ask for a program's members: all of them (the filter needs a value, and reached
    success true-or-false is every member), or those updated since, a week at a time."""
    if updated_since is None:
        return [{"filterType": "reachedSuccess", "filterValues": "true,false"}]
    windows, start = [], updated_since
    while start < until:
        end = min(start + MEMBER_UPDATE_WINDOW, until)
        windows.append({"filterType": "updatedAt", "startAt": start.isoformat(), "endAt": end.isoformat()})
        start = end
    return windows


def activity_type_groups(read_before: list[str], wanted: list[int]) -> list[tuple[str, list[int]]]:
    """The calls that read the ``wanted`` activity types: each as the key its paging token is saved
    under and the type ids it asks for. Groups read before keep their key, and so continue from
    their token (asking only for the types still wanted); types no group has read yet form new
    groups, which start from the beginning of the history. Each call scans the whole activity
    stream whatever types it asks for, so the groups are as full as Marketo allows."""
    wanted_set = set(wanted)
    groups = []
    for key in read_before:
        asked = [type_id for type_id in map(int, key.split(",")) if type_id in wanted_set]
        if asked:
            groups.append((key, asked))
    grouped = {type_id for key in read_before for type_id in map(int, key.split(","))}
    new = sorted(wanted_set - grouped)
    for start in range(0, len(new), ACTIVITY_TYPES_PER_CALL):
        group = new[start : start + ACTIVITY_TYPES_PER_CALL]
        groups.append((",".join(map(str, group)), group))
    return groups


def wanted_activity_types(described: list[dict], narrowed_to: str) -> list[int]:
    """Every activity type the instance describes, or those ``narrowed_to`` names (ids or names,
    comma-separated); a name the instance does not describe is an error, not a silent gap."""
    if not narrowed_to.strip():
        return sorted(int(t["id"]) for t in described)
    by_name = {str(t["id"]): int(t["id"]) for t in described} | {t["name"].lower(): int(t["id"]) for t in described}
    asked = [name.strip() for name in narrowed_to.split(",") if name.strip()]
    unknown = [name for name in asked if name.lower() not in by_name]
    if unknown:
        raise ValueError(
            f"HANDOFF_MARKETING_ACTIVITY_TYPES names activity types the instance does not describe: "
            f"{', '.join(unknown)} (activities/types.json lists {len(described)})"
        )
    return sorted({by_name[name.lower()] for name in asked})


def calls_per_20s() -> int:
    """The marketing-automation call budget Handoff paces itself to."""
    return load_settings().marketing_calls_per_20s


class MarketoError(RuntimeError):
    """An error Marketo reported inside an HTTP 200 answer that retrying does not cure."""


class DailyQuotaReached(MarketoError):
    """The daily API quota is spent: stop cleanly and resume tomorrow where this run stopped."""


class MarketoClient:
    """Marketo answers errors inside HTTP 200 bodies (``success: false``), which generic REST clients
    treat as success; this client reads those codes: it renews the token on 601/602, backs off on
    rate and concurrency limits, and raises ``DailyQuotaReached`` on 607. HTTP-level retries (5xx,
    connection errors) come from dlt's requests helper."""

    def __init__(self, base_url: str, client_id: str, client_secret: str, back_off_seconds: float = 2.0):
        self.base_url = base_url.rstrip("/")
        self._session = paced(
            requests.Client(raise_for_status=False).session, SlidingWindowLimiter(calls_per_20s(), 20), self.base_url
        )
        self._client_id, self._client_secret = client_id, client_secret
        self._token: str | None = None
        self._token_expires_at = 0.0
        # Activity pages are read ahead in a thread of their own while leads are looked up: one call
        # at a time still, as the vendor's concurrency limit and a single token renewal want, but
        # whichever thread has one ready sends it while the other works on what it got.
        self._one_call_at_a_time = threading.Lock()
        self._back_off_seconds = back_off_seconds

    def _access_token(self) -> str:
        if self._token is None or time.monotonic() >= self._token_expires_at:
            response = self._session.get(
                f"{self.base_url}/identity/oauth/token",
                params={
                    "grant_type": "client_credentials",
                    "client_id": self._client_id,
                    "client_secret": self._client_secret,
                },
            )
            response.raise_for_status()
            body = response.json()
            if "access_token" not in body:
                raise MarketoError(f"no access token: {body.get('error_description') or body}")
            self._token = body["access_token"]
            # Renew a little early so a token does not expire between check and use.
            self._token_expires_at = time.monotonic() + max(0, int(body.get("expires_in", 0)) - 5)
        return self._token

    def call(self, path: str, method: str = "GET", params: dict | None = None, json: dict | None = None) -> dict:
        for attempt in range(MAX_ATTEMPTS):
            with self._one_call_at_a_time:
                response = self._session.request(
                    method,
                    f"{self.base_url}{path}",
                    params=params,
                    json=json,
                    headers={"Authorization": f"Bearer {self._access_token()}"},
                )
            response.raise_for_status()
            body = orjson.loads(response.content)  # several times faster than the requests' parser
            if body.get("success", True):
                return body
            codes = {str(error.get("code")) for error in body.get("errors", [])}
            if QUOTA_ERROR in codes:
                raise DailyQuotaReached(f"Marketo daily quota reached: {body['errors']}")
            if codes & TOKEN_ERRORS:
                self._token = None
            elif codes & BACK_OFF_ERRORS:
                time.sleep(self._back_off_seconds * 2 ** min(attempt, 5))
            else:
                raise MarketoError(f"Marketo {method} {path} failed: {body.get('errors')}")
        raise MarketoError(f"Marketo {method} {path} still failing after {MAX_ATTEMPTS} attempts")

    def pages(self, path: str, params: dict) -> Iterator[tuple[list[dict], str | None]]:
        """Pages of a ``nextPageToken`` listing with the token that follows each page. Marketo can
        answer short (even empty) pages with ``moreResult: true``, so only ``moreResult`` ends it."""
        params = dict(params)
        while True:
            body = self.call(path, params=params)
            yield body.get("result", []), body.get("nextPageToken")
            if not body.get("moreResult") or not body.get("nextPageToken"):
                return
            params["nextPageToken"] = body["nextPageToken"]

    def paging_token(self, since: datetime) -> str:
        return self.call(
            "/rest/v1/activities/pagingtoken.json", params={"sinceDatetime": since.strftime("%Y-%m-%dT%H:%M:%SZ")}
        )["nextPageToken"]


def stopping_at_quota(read: Callable[..., Iterator]) -> Callable[..., Iterator]:
    """A spent daily quota ends a resource cleanly: what was read still loads, with the state that
    lets the next run resume where this one stopped."""

    @functools.wraps(read)
    def reading(*args, **kwargs) -> Iterator:
        try:
            yield from read(*args, **kwargs)
        except DailyQuotaReached as stop:
            logger.warning(f"{read.__name__}: {stop}; the next run resumes where this one stopped")

    return reading


# Marketo's activity record, column by column; ``attributes`` becomes the text of one JSON object of
# name to value, which the warehouses' JSON functions read as they read a JSON column.
ACTIVITY_FIELDS = {
    "id": ("id", pa.int64()),
    "marketoGUID": ("marketo_guid", pa.string()),
    "leadId": ("lead_id", pa.int64()),
    "activityDate": ("activity_date", pa.string()),
    "activityTypeId": ("activity_type_id", pa.int64()),
    "campaignId": ("campaign_id", pa.int64()),
    "primaryAttributeValueId": ("primary_attribute_value_id", pa.int64()),
    "primaryAttributeValue": ("primary_attribute_value", pa.string()),
}
# Arrow reads these fields out of the records in one pass (other fields are skipped, missing ones null).
ACTIVITY_RECORD = pa.struct([(field, arrow_type) for field, (_, arrow_type) in ACTIVITY_FIELDS.items()])


def activities_table(activities: list[dict]) -> pa.Table:
    """Activities as an Arrow table, which dlt writes as Parquet without normalizing each row.
    The table carries dlt's row id: tables first loaded row by row require one."""
    table = pa.Table.from_struct_array(pa.array(activities, ACTIVITY_RECORD)).rename_columns(
        [column for column, _ in ACTIVITY_FIELDS.values()]
    )
    table = table.set_column(
        table.schema.get_field_index("activity_date"),
        "activity_date",
        pc.cast(table["activity_date"], pa.timestamp("us", tz="UTC")),
    )
    attributes = pa.array(
        [
            orjson.dumps(
                {a.get("name"): a.get("value") for a in activity.get("attributes", [])}, option=orjson.OPT_NON_STR_KEYS
            )
            for activity in activities
        ],
        pa.binary(),
    ).cast(pa.string())
    return with_key_required(with_row_ids(table.append_column("attributes", attributes)), "id")


@dlt.source(name="marketing", max_table_nesting=0)
def marketing_source(
    base_url: str = dlt.config.value,
    client_id: str = dlt.secrets.value,
    client_secret: str = dlt.secrets.value,
    history_days: int = HISTORY_DAYS,
    only_activity_types: str | None = None,
):
    """``only_activity_types`` narrows the activity types loaded (ids or names, comma-separated);
    by default, and when empty, every type the instance describes is loaded."""
    client = MarketoClient(base_url, client_id, client_secret)
    if only_activity_types is None:
        only_activity_types = load_settings().marketing_activity_types

    described: list[dict] = []  # read once a run, by whichever resource asks first

    def described_types() -> list[dict]:
        if not described:
            described.extend(client.call("/rest/v1/activities/types.json")["result"])
        return described

    @dlt.resource(name="activity_types", primary_key="id", write_disposition="replace")
    @stopping_at_quota
    def activity_types() -> Iterator[list[dict]]:
        """Marketo's activity types and their attributes."""
        yield described_types()

    @dlt.resource(name="activities", primary_key="id", write_disposition="merge")
    def activities() -> Iterator[pa.Table]:
        """Lead activities, resumed from the paging token saved after the last page read."""
        tokens: dict = dlt.current.resource_state().setdefault("next_page_tokens", {})
        first_since = datetime.now(UTC) - timedelta(days=history_days)
        try:
            wanted = wanted_activity_types(described_types(), only_activity_types)
        except DailyQuotaReached as stop:
            logger.warning(f"{stop}; the next run resumes from the saved paging tokens")
            return
        for key, asked in activity_type_groups(list(tokens), wanted):
            params = {
                "activityTypeIds": ",".join(map(str, asked)),
                "batchSize": PAGE_SIZE,
                "nextPageToken": tokens.get(key) or client.paging_token(first_since),
            }
            chunk: list[dict] = []
            try:
                # The next pages are fetched while the last ones are handed on and their leads looked up:
                # up to two chunks ahead, so the sandbox or vendor is never idle while a chunk is written.
                for page, next_token in read_ahead(
                    client.pages("/rest/v1/activities.json", params), depth=2 * ACTIVITY_CHUNK // PAGE_SIZE
                ):
                    chunk.extend(page)
                    if len(chunk) >= ACTIVITY_CHUNK:
                        yield activities_table(chunk)
                        chunk = []
                    # dlt commits state together with the load, so a crash re-reads from the last load.
                    if next_token:
                        tokens[key] = next_token
            except DailyQuotaReached as stop:
                logger.warning(f"{stop}; the next run resumes from the saved paging token")
                quota_reached = True
            else:
                quota_reached = False
            if chunk:
                yield activities_table(chunk)
            if quota_reached:
                return

    @functools.cache
    def lead_fields() -> str:
        """Every lead field the instance describes, asked once per run."""
        described = client.call("/rest/v1/leads/describe.json")["result"]
        return ",".join(field["rest"]["name"] for field in described if "rest" in field)

    looked_up: set[int] = set()

    @dlt.transformer(name="leads", data_from=activities, primary_key="id", write_disposition="merge")
    def leads(chunk: pa.Table) -> Iterator[list[dict]]:
        """Leads touched by the activities just read, each looked up once per run, 300 ids per call.
        Ids the daily quota left unread are kept in the state and read first next time."""
        state = dlt.current.resource_state()
        wanted = set(state.pop("unread_lead_ids", [])) | set(pc.unique(chunk["lead_id"]).to_pylist())
        lead_ids = sorted(wanted - looked_up)
        for start in range(0, len(lead_ids), LEADS_PER_CALL):
            batch = lead_ids[start : start + LEADS_PER_CALL]
            try:
                found = client.call(
                    "/rest/v1/leads.json",
                    params={"filterType": "id", "filterValues": ",".join(map(str, batch)), "fields": lead_fields()},
                )
            except DailyQuotaReached as stop:
                state["unread_lead_ids"] = lead_ids[start:]
                logger.warning(f"{stop}; {len(lead_ids) - start} leads are read first on the next run")
                return
            looked_up.update(batch)
            yield found.get("result", [])

    @dlt.resource(name="deleted_leads", primary_key="leadId", write_disposition="merge")
    @stopping_at_quota
    def deleted_leads() -> Iterator[list[dict]]:
        """Leads deleted in Marketo, since the last token."""
        state = dlt.current.resource_state()
        token = state.get("next_page_token") or client.paging_token(datetime.now(UTC) - timedelta(days=history_days))
        for page, next_token in client.pages(
            "/rest/v1/activities/deletedleads.json", {"nextPageToken": token, "batchSize": PAGE_SIZE}
        ):
            if page:
                yield page
            if next_token:
                state["next_page_token"] = next_token

    @dlt.resource(name="programs", primary_key="id", write_disposition="merge")
    @stopping_at_quota
    def programs() -> Iterator[list[dict]]:
        """Marketing programs (campaigns)."""
        offset = 0
        while True:
            body = client.call("/rest/asset/v1/programs.json", params={"offset": offset, "maxReturn": 200})
            batch = body.get("result") or []
            if batch:
                yield batch
            if len(batch) < 200:
                return
            offset += len(batch)

    @dlt.transformer(
        name="program_members", data_from=programs, primary_key=["programId", "leadId"], write_disposition="merge"
    )
    @stopping_at_quota
    def program_members(batch: list[dict]) -> Iterator[list[dict]]:
        """Who is in each program and how far they progressed: every member of a program the first
        time, then the memberships updated since its last complete read began. A program's mark
        moves only once all its members were read, so a run the daily quota stops misses none."""
        updated_since: dict = dlt.current.resource_state().setdefault("updated_since", {})
        for program in batch:
            since, reading_from = updated_since.get(str(program["id"])), datetime.now(UTC)
            for member_filter in member_filters(since and datetime.fromisoformat(since), reading_from):
                for page, _ in client.pages(
                    f"/rest/v1/programs/{program['id']}/members.json",
                    {"batchSize": PAGE_SIZE, "fields": MEMBER_FIELDS, **member_filter},
                ):
                    if page:
                        yield [{"programId": program["id"], **member} for member in page]
            updated_since[str(program["id"])] = (reading_from - MEMBER_UPDATE_OVERLAP).isoformat()

    return [activity_types, activities, leads, deleted_leads, programs, program_members]
