"""dlt source for a HubSpot-shaped CRM (v3 objects API, bearer token).

Every object type is one resource, merged on ``id`` and loaded incrementally by its last-modified
property: the first run lists everything; later runs search for what changed since the cursor.
Pages become Arrow tables typed by the CRM's own property definitions (HubSpot sends every value
as a string); a record whose values do not fit its definitions goes to ``quarantine`` with the
reason, never silently dropped. Archived records are loaded with ``archived = true``; merged-away
records are named by their survivor's ``hs_merged_object_ids``. Each page's property history and
associations are read right after it, as Arrow tables too; the next page and its related records are
read while the last page is typed and written.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from typing import Any, NamedTuple

import dlt
import orjson
import pyarrow as pa
import pyarrow.compute as pc
from dlt.common.jsonpath import compile_path
from dlt.extract.hints import TResourceHints
from dlt.sources.helpers.requests import Client
from dlt.sources.helpers.rest_client import RESTClient
from dlt.sources.helpers.rest_client.auth import BearerTokenAuth
from dlt.sources.helpers.rest_client.paginators import JSONResponseCursorPaginator

from pipeline.ingest.arrow import TableBatches
from pipeline.ingest.pacing import SlidingWindowLimiter, paced
from pipeline.ingest.read_ahead import read_ahead
from pipeline.settings import load_settings

# Object type → the property that says when a record last changed.
OBJECT_TYPES = {
    "contacts": "lastmodifieddate",
    "companies": "hs_lastmodifieddate",
    "deals": "hs_lastmodifieddate",
    "calls": "hs_lastmodifieddate",
    "emails": "hs_lastmodifieddate",
    "meetings": "hs_lastmodifieddate",
    "tasks": "hs_lastmodifieddate",
}
# Properties whose every past value the funnel needs (stage transitions, reassignments).
HISTORY_PROPERTIES = {
    "contacts": ("lifecyclestage", "hs_lead_status", "hubspot_owner_id", "rejection_reason"),
    "deals": ("dealstage",),
}
# What the funnel reads of each object type (the staging models, the record rules and the raw
# suites): loaded whatever the ``crm_properties`` setting narrows, with the modification date and
# the properties whose history is read.
FUNNEL_PROPERTIES = {
    "contacts": (
        "email",
        "firstname",
        "lastname",
        "jobtitle",
        "company",
        "country",
        "lifecyclestage",
        "hs_lead_status",
        "hubspot_owner_id",
        "rejection_reason",
        "hs_analytics_source",
        "hs_merged_object_ids",
        "createdate",
    ),
    "companies": ("name", "domain", "industry", "numberofemployees", "country", "createdate"),
    "deals": (
        "dealname",
        "amount",
        "dealstage",
        "pipeline",
        "closedate",
        "dealtype",
        "closed_lost_reason",
        "hubspot_owner_id",
        "createdate",
    ),
    "calls": ("hubspot_owner_id", "hs_timestamp", "hs_createdate", "hs_call_direction", "hs_call_status"),
    "emails": ("hubspot_owner_id", "hs_timestamp", "hs_createdate", "hs_email_direction", "hs_email_status"),
    "meetings": ("hubspot_owner_id", "hs_timestamp", "hs_createdate", "hs_meeting_outcome"),
    "tasks": ("hubspot_owner_id", "hs_timestamp", "hs_createdate", "hs_task_status"),
}
ASSOCIATED_TYPES = {
    "contacts": ("companies",),
    "deals": ("contacts", "companies"),
    "calls": ("contacts",),
    "emails": ("contacts",),
    "meetings": ("contacts",),
    "tasks": ("contacts",),
}
LIST_PAGE_SIZE = 100  # HubSpot's maximum for list endpoints
SEARCH_PAGE_SIZE = 200  # HubSpot's maximum for search
SEARCH_RESULT_CAP = 10_000  # HubSpot's search returns no more than this per query
BATCH_SIZE = 100
WRITE_BATCH_ROWS = 10_000  # rows of a table handed to dlt at a time
REQUESTS_PER_10S_VARIABLE = "HANDOFF_CRM_REQUESTS_PER_10S"  # another tier's limit than HubSpot's 100 per 10 s
SEARCHES_PER_S_VARIABLE = "HANDOFF_CRM_SEARCH_REQUESTS_PER_S"  # and than its 5 searches a second

TIMESTAMP = pa.timestamp("us", tz="UTC")
ENVELOPE = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        ("created_at", TIMESTAMP),
        ("updated_at", TIMESTAMP),
        ("archived", pa.bool_()),
        ("archived_at", TIMESTAMP),
    ]
)
ENVELOPE_NAMES = frozenset(ENVELOPE.names)
ARROW_TYPES = {"number": pa.float64(), "datetime": TIMESTAMP, "date": pa.date32(), "bool": pa.bool_()}


class InvalidValue(ValueError):
    """A property value that does not fit the property's definition."""


def requests_per_10s() -> int:
    """The CRM request budget Handoff paces itself to."""
    return load_settings().crm_requests_per_10s


def crm_client(base_url: str, access_token: str) -> RESTClient:
    searches = SlidingWindowLimiter(load_settings().crm_search_requests_per_s, 1)
    return RESTClient(
        base_url=base_url,
        session=paced(
            Client(raise_for_status=False).session,
            SlidingWindowLimiter(requests_per_10s(), 10),
            base_url,
            endpoint_limiters={"/search": searches},
        ),
        auth=BearerTokenAuth(access_token),
        paginator=JSONResponseCursorPaginator(cursor_path="paging.next.after", cursor_param="after"),
        # Compiled once: the client would parse the path again for every page.
        data_selector=compile_path("results"),
    )


def loaded_properties(object_type: str, definitions: list[dict], narrowed_to: str) -> list[dict]:
    """The definitions of the properties to load: every one the CRM defines (the raw layer is the
    source, complete), or, when ``narrowed_to`` lists names (comma-separated), those of them this
    object type defines plus what the funnel reads."""
    asked = {name.strip() for name in narrowed_to.split(",") if name.strip()}
    if not asked:
        return definitions
    kept = asked | {
        *FUNNEL_PROPERTIES[object_type],
        OBJECT_TYPES[object_type],
        *HISTORY_PROPERTIES.get(object_type, ()),
    }
    return [definition for definition in definitions if definition["name"] in kept]


def parse_timestamp(value: str) -> datetime:
    """HubSpot datetimes arrive as ISO 8601 or as epoch milliseconds."""
    if value.isdigit():
        return datetime.fromtimestamp(int(value) / 1000, tz=UTC)
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as error:
        raise InvalidValue(f"{value!r} is not a timestamp") from error


def _number(value: str) -> float:
    try:
        return float(value)
    except ValueError as error:
        raise InvalidValue(f"{value!r} is not a number") from error


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value[:10]) if not value.isdigit() else parse_timestamp(value).date()
    except ValueError as error:
        raise InvalidValue(f"{value!r} is not a date") from error


def _bool(value: str) -> bool:
    if value.lower() not in ("true", "false"):
        raise InvalidValue(f"{value!r} is not true or false")
    return value.lower() == "true"


CONVERTERS: dict[str, Callable[[str], Any]] = {
    "number": _number,
    "datetime": parse_timestamp,
    "date": _date,
    "bool": _bool,
}


def _text(values: list) -> pa.Array:
    return pa.array(values, pa.string())


def _timestamps(values: list) -> pa.Array:
    text = _text(values)
    try:
        return pc.cast(text, TIMESTAMP)
    except pa.ArrowInvalid:
        if not pc.all(pc.utf8_is_digit(text)).as_py():
            raise
        return pc.cast(pc.cast(text, pa.int64()), pa.timestamp("ms", tz="UTC")).cast(TIMESTAMP)


def _bools(values: list) -> pa.Array:
    lowered = pc.utf8_lower(_text(values))
    if not pc.all(pc.or_(pc.is_null(lowered), pc.is_in(lowered, pa.array(["true", "false"])))).as_py():
        raise InvalidValue("a value is not true or false")
    return pc.equal(lowered, "true")


# Whole columns at once, by Arrow's own parsers; any value they refuse sends the page record by
# record through CONVERTERS, which say which record and why.
COLUMN_CONVERTERS: dict[str, Callable[[list], pa.Array]] = {
    "number": lambda values: pc.cast(_text(values), pa.float64()),
    "datetime": _timestamps,
    "date": lambda values: pc.cast(pc.utf8_slice_codeunits(_text(values), 0, 10), pa.date32()),
    "bool": _bools,
}


class RecordTyper:
    """Turns pages of HubSpot records into typed Arrow tables, setting aside records that do not fit."""

    def __init__(self, object_type: str, definitions: list[dict]):
        self.object_type = object_type
        properties = [p for p in definitions if p["name"] not in ENVELOPE_NAMES]
        self.converters = {p["name"]: CONVERTERS.get(p["type"]) for p in properties}
        self.column_converters = {p["name"]: COLUMN_CONVERTERS.get(p["type"], _text) for p in properties}
        self.schema = pa.schema(
            list(ENVELOPE) + [pa.field(p["name"], ARROW_TYPES.get(p["type"], pa.string())) for p in properties]
        )

    def type_page(self, records: list[dict]) -> tuple[pa.Table, list[dict]]:
        try:
            return self._typed_columns(records), []
        except (pa.ArrowInvalid, pa.ArrowTypeError, InvalidValue):
            return self._typed_rows(records)

    def _typed_columns(self, records: list[dict]) -> pa.Table:
        """The page typed column by column, or an error if any value does not fit."""
        if not all(record.get("id") and record.get("updatedAt") for record in records):
            raise InvalidValue("a record has no id or no updatedAt")
        properties = [record.get("properties") or {} for record in records]
        columns = {
            "id": _text([str(record["id"]) for record in records]),
            "archived": pa.array([bool(record.get("archived")) for record in records], pa.bool_()),
        }
        for envelope, source in (
            ("created_at", "createdAt"),
            ("updated_at", "updatedAt"),
            ("archived_at", "archivedAt"),
        ):
            columns[envelope] = _timestamps([record.get(source) or None for record in records])
        for name, convert in self.column_converters.items():
            columns[name] = convert([None if (value := values.get(name)) == "" else value for values in properties])
        return pa.Table.from_pydict(columns, schema=self.schema)

    def _typed_rows(self, records: list[dict]) -> tuple[pa.Table, list[dict]]:
        rows, quarantined = [], []
        for record in records:
            try:
                rows.append(self._row(record))
            except InvalidValue as error:
                quarantined.append(quarantine_row(self.object_type, record, str(error)))
        return pa.Table.from_pylist(rows, schema=self.schema), quarantined

    def _row(self, record: dict) -> dict:
        if not record.get("id"):
            raise InvalidValue("record has no id")
        row = {"id": str(record["id"]), "archived": bool(record.get("archived"))}
        for envelope, source in (
            ("created_at", "createdAt"),
            ("updated_at", "updatedAt"),
            ("archived_at", "archivedAt"),
        ):
            value = record.get(source)
            row[envelope] = parse_timestamp(value) if value else None
        if row["updated_at"] is None:
            raise InvalidValue("record has no updatedAt")
        for name, value in record.get("properties", {}).items():
            if name not in self.converters:
                continue
            convert = self.converters[name]
            try:
                row[name] = None if value in (None, "") else (convert(value) if convert else value)
            except InvalidValue as error:
                raise InvalidValue(f"property {name}: {error}") from error
        return row


# History and associations of the records read, in tables of their own.
HISTORY = pa.schema(
    [
        pa.field("object_type", pa.string(), nullable=False),
        pa.field("id", pa.string(), nullable=False),
        pa.field("property", pa.string(), nullable=False),
        ("value", pa.string()),
        ("source_type", pa.string()),
        pa.field("changed_at", TIMESTAMP, nullable=False),
    ]
)
HISTORY_HINTS = dlt.mark.make_hints(
    table_name="property_history",
    write_disposition="merge",
    primary_key=["object_type", "id", "property", "changed_at"],
)
ASSOCIATIONS = pa.schema(
    [
        pa.field("from_type", pa.string(), nullable=False),
        pa.field("from_id", pa.string(), nullable=False),
        pa.field("to_type", pa.string(), nullable=False),
        pa.field("to_id", pa.string(), nullable=False),
        ("association_type", pa.int64()),  # HubSpot's type id; a labelled link also has its label
        ("association_label", pa.string()),
    ]
)
ASSOCIATION_HINTS = dlt.mark.make_hints(
    table_name="associations", write_disposition="merge", primary_key=["from_type", "from_id", "to_type", "to_id"]
)


class RelatedTable(NamedTuple):
    table: pa.Table
    hints: TResourceHints
    record_id: str  # the column naming the record it relates to


# A quarantined version of a record is kept once however often it is read again.
QUARANTINE_HINTS = dlt.mark.make_hints(
    table_name="quarantine", primary_key=["object_type", "record_id", "record_updated_at"]
)


def quarantine_row(object_type: str, record: dict, reason: str) -> dict:
    return {
        "object_type": object_type,
        "record_id": str(record.get("id")),
        "record_updated_at": record.get("updatedAt") or "",
        "reason": reason,
        "record": json.dumps(record, sort_keys=True),
        "quarantined_at": datetime.now(UTC),
    }


def to_search_value(moment: datetime) -> str:
    return str(int(moment.timestamp() * 1000))


class CrmReader:
    """The CRM API calls the resources need, with HubSpot's paging rules."""

    def __init__(self, client: RESTClient):
        self.client = client

    def definitions(self, object_type: str) -> list[dict]:
        response = self.client.get(f"/crm/v3/properties/{object_type}")
        response.raise_for_status()
        return response.json()["results"]

    def list_all(self, object_type: str, properties: list[str], archived: bool = False) -> Iterator[list[dict]]:
        params = {"limit": LIST_PAGE_SIZE, "properties": ",".join(properties), "archived": str(archived).lower()}
        yield from self.client.paginate(f"/crm/v3/objects/{object_type}", params=params)

    def modified_since(self, object_type: str, properties: list[str], since: datetime) -> Iterator[list[dict]]:
        """Records changed at or after ``since``, oldest first. Search stops at 10,000 results, so a
        long change set is read as a series of queries, each starting where the last one ended."""
        modified = OBJECT_TYPES[object_type]
        lower_bound = since
        while True:
            body = {
                "filterGroups": [
                    {"filters": [{"propertyName": modified, "operator": "GTE", "value": to_search_value(lower_bound)}]}
                ],
                "sorts": [{"propertyName": modified, "direction": "ASCENDING"}],
                "properties": properties,
                "limit": SEARCH_PAGE_SIZE,
            }
            seen = 0
            last_modified = None
            for page in self.client.paginate(
                f"/crm/v3/objects/{object_type}/search",
                method="POST",
                json=body,
                paginator=JSONResponseCursorPaginator(cursor_path="paging.next.after", cursor_body_path="after"),
            ):
                seen += len(page)
                if page:
                    last_modified = page[-1]["properties"].get(modified) or page[-1]["updatedAt"]
                yield page
            if seen < SEARCH_RESULT_CAP or last_modified is None:
                return
            next_bound = parse_timestamp(last_modified)
            if next_bound <= lower_bound:
                raise RuntimeError(
                    f"more than {SEARCH_RESULT_CAP} {object_type} share the modification "
                    f"time {lower_bound.isoformat()}; the search API cannot page past them"
                )
            lower_bound = next_bound

    def _post(self, path: str, body: dict) -> dict:
        response = self.client.post(path, json=body)
        response.raise_for_status()
        return orjson.loads(response.content)  # several times faster than requests' own parser

    def related(self, object_type: str, ids: list[str]) -> list[RelatedTable]:
        """The history and associations of the records ``ids``."""
        tables = []
        if object_type in HISTORY_PROPERTIES:
            tables.append(
                RelatedTable(self.history(object_type, ids, HISTORY_PROPERTIES[object_type]), HISTORY_HINTS, "id")
            )
        if object_type in ASSOCIATED_TYPES:
            tables.append(
                RelatedTable(
                    pa.concat_tables(
                        [self.associations(object_type, ids, to_type) for to_type in ASSOCIATED_TYPES[object_type]]
                    ),
                    ASSOCIATION_HINTS,
                    "from_id",
                )
            )
        return tables

    def history(self, object_type: str, ids: list[str], properties: tuple[str, ...]) -> pa.Table:
        versions: list[dict] = []
        for start in range(0, len(ids), BATCH_SIZE):
            body = self._post(
                f"/crm/v3/objects/{object_type}/batch/read",
                {
                    "inputs": [{"id": record_id} for record_id in ids[start : start + BATCH_SIZE]],
                    "properties": [],
                    "propertiesWithHistory": list(properties),
                },
            )
            versions.extend(
                {
                    "object_type": object_type,
                    "id": record["id"],
                    "property": name,
                    "value": version.get("value"),
                    "source_type": version.get("sourceType"),
                    "changed_at": parse_timestamp(version["timestamp"]),
                }
                for record in body.get("results", [])
                for name, property_versions in record.get("propertiesWithHistory", {}).items()
                for version in property_versions
            )
        return pa.Table.from_pylist(versions, schema=HISTORY)

    def associations(self, object_type: str, ids: list[str], to_type: str) -> pa.Table:
        links = []
        for start in range(0, len(ids), BATCH_SIZE):
            body = self._post(
                f"/crm/v4/associations/{object_type}/{to_type}/batch/read",
                {"inputs": [{"id": i} for i in ids[start : start + BATCH_SIZE]]},
            )
            for result in body.get("results", []):
                for target in result.get("to", []):
                    types = target.get("associationTypes") or [{}]
                    links.append(
                        {
                            "from_type": object_type,
                            "from_id": str(result["from"]["id"]),
                            "to_type": to_type,
                            "to_id": str(target["toObjectId"]),
                            "association_type": types[0].get("typeId"),
                            "association_label": next((t["label"] for t in types if t.get("label")), None),
                        }
                    )
        return pa.Table.from_pylist(links, schema=ASSOCIATIONS)


def _object_resource(reader: CrmReader, object_type: str, only_properties: str):
    @dlt.resource(name=object_type, primary_key="id", write_disposition="merge")
    def records() -> Iterator:
        # The cursor is the newest modification time loaded. Searching from it inclusively re-reads
        # the records that share it, which the merge absorbs: nothing between two runs is missed.
        state = dlt.current.resource_state()
        since = datetime.fromisoformat(state["modified_since"]) if "modified_since" in state else None
        definitions = loaded_properties(object_type, reader.definitions(object_type), only_properties)
        typer = RecordTyper(object_type, definitions)
        names = [p["name"] for p in definitions]
        changed = (
            reader.modified_since(object_type, names, since)
            if since is not None
            else reader.list_all(object_type, names)
        )
        archived = reader.list_all(object_type, names, archived=True)
        newest = since
        pages = itertools.chain(changed, archived)
        fetched = (
            (page, reader.related(object_type, [str(record["id"]) for record in page if record.get("id")]))
            for page in pages
        )
        batches = TableBatches(WRITE_BATCH_ROWS)
        for page, related in read_ahead(fetched):
            table, quarantined = typer.type_page(page)
            if quarantined:
                yield dlt.mark.with_hints(quarantined, QUARANTINE_HINTS, create_table_variant=True)
                related = [_of_loaded_records(of, table.column("id")) for of in related]
            if table.num_rows:
                yield from batches.add(table)
                for of in related:
                    yield from batches.add(of.table, of.hints)
                page_newest = pc.max(table.column("updated_at")).as_py()
                newest = page_newest if newest is None else max(newest, page_newest)
        yield from batches.flush()
        if newest is not None:
            state["modified_since"] = newest.isoformat()

    return records


def _of_loaded_records(related: RelatedTable, loaded_ids: pa.ChunkedArray) -> RelatedTable:
    """History or associations without those of the records set aside for quarantine."""
    kept = pc.is_in(related.table.column(related.record_id), value_set=loaded_ids.combine_chunks())
    return related._replace(table=related.table.filter(kept))


@dlt.source(name="crm", max_table_nesting=0)
def crm_source(
    base_url: str = dlt.config.value,
    access_token: str = dlt.secrets.value,
    object_types: tuple[str, ...] = tuple(OBJECT_TYPES),
    only_properties: str | None = None,
):
    """``only_properties`` narrows the properties loaded (names, comma-separated; what the funnel
    reads is always loaded); by default, and when empty, every property the CRM defines is loaded."""
    reader = CrmReader(crm_client(base_url, access_token))
    if only_properties is None:
        only_properties = load_settings().crm_properties

    @dlt.resource(name="owners", primary_key="id", write_disposition="merge")
    def owners() -> Iterator[list[dict]]:
        """Sales users who own records."""
        yield from reader.client.paginate("/crm/v3/owners", params={"limit": 100})

    @dlt.resource(name="deal_pipelines", primary_key="id", write_disposition="replace")
    def deal_pipelines() -> Iterator[list[dict]]:
        """Deal pipelines and their stages."""
        response = reader.client.get("/crm/v3/pipelines/deals")
        response.raise_for_status()
        yield response.json()["results"]

    return [owners, deal_pipelines, *(_object_resource(reader, t, only_properties) for t in object_types)]
