"""The marketing stand-in's REST API: the identity endpoint, and the lead, activity and program
resources and the Bulk Extract jobs behind the stand-in's gate, answering in Marketo's shapes
(malformed calls included)."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.routing import APIRoute
from starlette.routing import Match

from sandbox.dataset import iso, parse_iso
from sandbox.marketing.bulk import EXPORT_DEFINITIONS, MEDIA_TYPES, STATUS_NAMES, ExportEntity
from sandbox.marketing.params import ActivityPage, ActivityPosition, Params, integer_value, paging_token, position_after
from sandbox.marketing.schema import (
    ACTIVITY_TYPE_IDS,
    ACTIVITY_TYPES,
    CHANGE_DATA_VALUE,
    CHANGED_VALUE_ATTRIBUTES,
    DEFAULT_LEAD_FIELDS,
    DEFAULT_MEMBER_FIELDS,
    DELETE_LEAD,
    LEAD_FIELDS,
    LEAD_FIELDS_BY_DISPLAY_NAME,
    LEAD_FIELDS_BY_ID,
    LEAD_FIELDS_BY_NAME,
    MEMBER_FIELD_TYPES,
    MEMBER_FIELDS,
    MEMBER_FILTER_TYPES,
    NEW_LEAD,
    LeadField,
    MarketoError,
    asset_time,
    client_time,
    marketo_time,
    utc,
)
from sandbox.marketing.stand_in import MarketingStandIn
from sandbox.marketing.tokens import API_USER

MAX_ACTIVITY_TYPES_PER_CALL = 10
MAX_LEAD_IDS_PER_ACTIVITY_CALL = 30
DEFAULT_PROGRAMS_PER_CALL, MAX_PROGRAMS_PER_CALL = 20, 200
MAX_MEMBER_UPDATE_WINDOW = timedelta(days=7)
SYNC_ACTIONS = ("createOrUpdate", "createOnly", "updateOnly", "createDuplicate")
NO_PROGRAMS_WARNING = "No assets found for the given search criteria."
HTTP_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


def invalid_request_response(error: RequestValidationError) -> JSONResponse:
    """The answer to a call under the Marketo prefix that FastAPI could not parse."""
    problems = error.errors()
    if any(problem["type"] == "json_invalid" for problem in problems):
        return MarketoError("609", "Invalid JSON").response()
    if any(problem["loc"][:1] == ("path",) for problem in problems):
        # A URI that does not fit a resource's pattern, e.g. a lead id that is not a number.
        return MarketoError("610", "Requested resource not found").response()
    detail = "; ".join(f"{'.'.join(map(str, problem['loc'][1:]))}: {problem['msg']}" for problem in problems)
    return MarketoError("1003", f"Invalid data: {detail}").response()


def _lead_change(activity: dict, field_names: set[str]) -> dict | None:
    """A "New Lead" or a "Change Data Value" activity as ``leadchanges.json`` lists it, or ``None``
    for a change to a field not asked for."""
    changed = []
    if activity["activityTypeId"] == CHANGE_DATA_VALUE:
        field = LEAD_FIELDS_BY_ID.get(activity.get("primaryAttributeValueId")) or LEAD_FIELDS_BY_DISPLAY_NAME.get(
            activity.get("primaryAttributeValue")
        )
        if field is None or field.name not in field_names:
            return None
        values = {attribute["name"]: attribute.get("value") for attribute in activity["attributes"]}
        changed = [
            {
                "id": field.id,
                "name": field.name,
                "newValue": values.get("New Value"),
                "oldValue": values.get("Old Value"),
            }
        ]
    return {
        **{key: activity[key] for key in ("id", "marketoGUID", "leadId", "activityDate", "activityTypeId")},
        "fields": changed,
        "attributes": [a for a in activity["attributes"] if a["name"] not in CHANGED_VALUE_ATTRIBUTES],
    }


def present_lead(lead: dict, fields: list[LeadField]) -> dict:
    """The lead's requested fields; Marketo leaves out the empty ones."""
    return {field.name: field.present(lead[field.name]) for field in fields if lead.get(field.name) is not None}


def present_member(member: dict, fields: list[str]) -> dict:
    presented = {}
    for name in fields:
        value = member.get(MEMBER_FIELDS[name], False if name == "acquiredBy" else None)
        if value is None:
            continue
        if MEMBER_FIELD_TYPES[name] == "datetime":
            value = marketo_time(value)
        elif MEMBER_FIELD_TYPES[name] == "integer":
            value = int(value)
        presented[name] = value
    return presented


def present_program(program: dict) -> dict:
    return {
        "id": int(program["id"]),
        "name": program.get("name"),
        "description": program.get("description", ""),
        "createdAt": asset_time(program["createdAt"]),
        "updatedAt": asset_time(program["updatedAt"]),
        "url": f"https://app-sandbox.marketo.com/#PG{program['id']}A1",
        "type": program.get("type"),
        "channel": program.get("channel"),
        "folder": program.get("folder", {"type": "Folder", "value": 1, "folderName": "Marketing Activities"}),
        "status": program.get("status", ""),
        "workspace": program.get("workspace", "Default"),
    }


def _gated_by(marketing: MarketingStandIn) -> type[APIRoute]:
    class MarketoRoute(APIRoute):
        """A REST resource reached only through the stand-in's token check and limits."""

        def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
            handle = super().get_route_handler()

            async def answer(request: Request) -> Response:
                return await marketing.answer(request, handle)

            return answer

    return MarketoRoute


def reply(request: Request, **members: Any) -> dict:
    return {"requestId": request.state.request_id, "success": True, **members}


def activity_reply(request: Request, page: ActivityPage, result: list[dict]) -> dict:
    # Marketo leaves ``result`` out of a page that has no activities.
    return reply(
        request, nextPageToken=page.position.token(), moreResult=page.more, **({"result": result} if result else {})
    )


def _lead_fields(params: Params) -> list[LeadField]:
    names = params.listed("fields") or DEFAULT_LEAD_FIELDS
    unknown = [name for name in names if name not in LEAD_FIELDS_BY_NAME]
    if unknown:
        raise MarketoError("1006", f"Field '{unknown[0]}' not found")
    return [LEAD_FIELDS_BY_NAME[name] for name in names]


def _searchable_field(name: str) -> LeadField:
    field = LEAD_FIELDS_BY_NAME.get(name)
    if field is None:
        raise MarketoError("1006", f"Field '{name}' not found")
    if not field.searchable:
        raise MarketoError("1011", f"Field '{name}' not supported")
    return field


def _member_condition(params: Params, most_values: int) -> tuple[str, tuple]:
    filter_type = params.required("filterType")
    if filter_type not in MEMBER_FIELDS:
        raise MarketoError("1006", f"Field '{filter_type}' not found")
    if filter_type not in MEMBER_FILTER_TYPES:
        raise MarketoError("1011", f"Field '{filter_type}' not supported")
    if filter_type == "updatedAt":
        start, end = client_time(params.required("startAt")), client_time(params.required("endAt"))
        if not start <= end <= start + MAX_MEMBER_UPDATE_WINDOW:
            raise MarketoError("1003", "startAt must precede endAt by at most 7 days")
        return "updated_at >= ? and updated_at <= ?", (iso(start), iso(end))
    values = params.listed("filterValues", most_values)
    if not values:
        raise MarketoError("701", "filterValues cannot be blank")
    if filter_type == "leadId":
        return f"lead_id in ({', '.join('?' * len(values))})", tuple(integer_value("filterValues", v) for v in values)
    if filter_type == "reachedSuccess":
        if any(value not in ("true", "false") for value in values):
            raise MarketoError("1001", "Invalid value for reachedSuccess. Required of type 'boolean'")
        return (
            f"json_extract(body, '$.reachedSuccess') in ({', '.join('?' * len(values))})",
            tuple(int(value == "true") for value in values),
        )
    return f"json_extract(body, '$.progressionStatus') in ({', '.join('?' * len(values))})", tuple(values)


def _activity_type_ids(params: Params) -> set[int]:
    type_ids = params.integers("activityTypeIds", MAX_ACTIVITY_TYPES_PER_CALL)
    if not type_ids:
        raise MarketoError("701", "activityTypeIds cannot be blank")
    unknown = type_ids - ACTIVITY_TYPE_IDS
    if unknown:
        raise MarketoError("1003", f"Invalid activity type id '{min(unknown)}'")
    return type_ids


def _of_requested_leads(params: Params) -> Callable[[sqlite3.Row], bool]:
    if params.text("listId") is not None:
        raise MarketoError("1013", "Static list not found")  # the sandbox's company keeps no static lists
    lead_ids = params.integers("leadIds", MAX_LEAD_IDS_PER_ACTIVITY_CALL)
    return lambda row: not lead_ids or row["lead_id"] in lead_ids


def _json_body(request: Request, body: bytes) -> dict:
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
        raise MarketoError("612", "Invalid Content Type")
    try:
        parsed = json.loads(body)
    except ValueError:
        raise MarketoError("609", "Invalid JSON") from None
    if not isinstance(parsed, dict):
        raise MarketoError("609", "Invalid JSON")
    return parsed


def file_response(content: bytes, media_type: str, byte_range: str | None) -> Response:
    """A file, or the part of it a ``Range: bytes=first-last`` header asks for (RFC 7233, one range;
    a header that is not of that form is ignored, as the RFC allows)."""
    size = len(content)
    match = re.fullmatch(r"bytes=(\d*)-(\d*)", (byte_range or "").strip())
    if match is None or match.groups() == ("", ""):
        return Response(content, media_type=media_type, headers={"Accept-Ranges": "bytes"})
    first_text, last_text = match.groups()
    if first_text:
        first, last = int(first_text), min(int(last_text) if last_text else size - 1, size - 1)
    else:  # a suffix: the last N bytes
        first, last = max(size - int(last_text), 0), size - 1
    if first > last:
        return Response(status_code=416, headers={"Content-Range": f"bytes */{size}"})
    return Response(
        content[first : last + 1],
        status_code=206,
        media_type=media_type,
        headers={"Accept-Ranges": "bytes", "Content-Range": f"bytes {first}-{last}/{size}"},
    )


def marketing_router(marketing: MarketingStandIn) -> APIRouter:
    records = marketing.records
    router = APIRouter()
    rest = APIRouter(route_class=_gated_by(marketing))

    @router.api_route("/identity/oauth/token", methods=["GET", "POST"])
    async def issue_token(request: Request) -> JSONResponse:
        return marketing.token_response(Params.of(request, await request.body()))

    def leads_by_filter(request: Request, params: Params) -> dict:
        most = marketing.limits.marketing_batch_records
        field = _searchable_field(params.required("filterType"))
        values = params.listed("filterValues", most)
        if not values:
            raise MarketoError("701", "filterValues cannot be blank")
        fields = _lead_fields(params)
        leads, more = records.find_leads(
            field, values, position_after(params), params.integer("batchSize", most, 1, most)
        )
        body = reply(request, result=[present_lead(lead, fields) for lead in leads])
        if more:
            body["nextPageToken"] = paging_token(leads[-1]["id"])
        return body

    def sync_leads(request: Request, body: dict) -> dict:
        action = body.get("action") or "createOrUpdate"
        if action not in SYNC_ACTIONS:
            raise MarketoError("1003", f"Invalid action '{action}'")
        lookup = _searchable_field(body.get("lookupField") or "email")
        inputs, most = body.get("input"), marketing.limits.marketing_batch_records
        if not inputs:
            raise MarketoError("701", "input cannot be blank")
        if not isinstance(inputs, list) or len(inputs) > most:
            raise MarketoError("1003", f"input must be a list of at most {most} records")
        return reply(request, result=records.sync_leads(action, lookup, inputs, request.state.request_id))

    @rest.get("/rest/v1/leads.json")
    def get_leads(request: Request) -> dict:
        return leads_by_filter(request, Params.of(request))

    @rest.post("/rest/v1/leads.json")
    async def post_leads(request: Request) -> dict:
        body = await request.body()
        params = Params.of(request, body)
        if params.text("_method") == "GET":
            return await run_in_threadpool(leads_by_filter, request, params)
        return await run_in_threadpool(sync_leads, request, _json_body(request, body))

    @rest.get("/rest/v1/lead/{lead_id}.json")
    def get_lead(request: Request, lead_id: int) -> dict:
        fields = _lead_fields(Params.of(request))
        lead = records.lead(lead_id)
        return reply(request, result=[present_lead(lead, fields)] if lead else [])

    @rest.get("/rest/v1/leads/describe.json")
    def describe_leads(request: Request) -> dict:
        return reply(request, result=[field.describe() for field in LEAD_FIELDS])

    @rest.get("/rest/v1/leads/describe2.json")
    def describe_leads2(request: Request) -> dict:
        return reply(
            request,
            result=[
                {
                    "name": "API Lead",
                    "searchableFields": [[field.name] for field in LEAD_FIELDS if field.searchable],
                    "fields": [field.describe2() for field in LEAD_FIELDS],
                }
            ],
        )

    @rest.get("/rest/v1/activities/types.json")
    def activity_types(request: Request) -> dict:
        return reply(request, result=[activity_type.as_json() for activity_type in ACTIVITY_TYPES])

    @rest.get("/rest/v1/activities/pagingtoken.json")
    def activities_paging_token(request: Request) -> dict:
        since = client_time(Params.of(request).required("sinceDatetime"))
        return reply(request, nextPageToken=ActivityPosition.since(since).token())

    def activity_listing(params: Params) -> tuple[ActivityPosition, int, Callable[[sqlite3.Row], bool]]:
        most = marketing.limits.marketing_batch_records
        return (
            ActivityPosition.from_token(params.required("nextPageToken")),
            params.integer("batchSize", most, 1, most),
            _of_requested_leads(params),
        )

    @rest.get("/rest/v1/activities.json")
    def lead_activities(request: Request) -> dict:
        params = Params.of(request)
        type_ids = _activity_type_ids(params)
        position, batch_size, of_leads = activity_listing(params)
        page = records.activity_page(
            position, batch_size, lambda row: row["activity_type_id"] in type_ids and of_leads(row)
        )
        return activity_reply(request, page, page.activities)

    @rest.get("/rest/v1/activities/leadchanges.json")
    def lead_changes(request: Request) -> dict:
        params = Params.of(request)
        if not params.listed("fields"):
            raise MarketoError("701", "fields cannot be blank")
        field_names = {field.name for field in _lead_fields(params)}
        position, batch_size, of_leads = activity_listing(params)
        page = records.activity_page(
            position, batch_size, lambda row: row["activity_type_id"] in (NEW_LEAD, CHANGE_DATA_VALUE) and of_leads(row)
        )
        changes = [_lead_change(activity, field_names) for activity in page.activities]
        return activity_reply(request, page, [change for change in changes if change])

    @rest.get("/rest/v1/activities/deletedleads.json")
    def deleted_leads(request: Request) -> dict:
        params = Params.of(request)
        most = marketing.limits.marketing_batch_records
        page = records.activity_page(
            ActivityPosition.from_token(params.required("nextPageToken")),
            params.integer("batchSize", most, 1, most),
            lambda row: row["activity_type_id"] == DELETE_LEAD,
        )
        return activity_reply(request, page, page.activities)

    @rest.get("/rest/v1/stats/usage.json")
    def daily_usage(request: Request) -> dict:
        # Every call is made as the custom service's one API user, this one included.
        day, calls = marketing.limiter.spent_today()
        return reply(
            request, result=[{"date": day.isoformat(), "total": calls, "users": [{"userId": API_USER, "count": calls}]}]
        )

    @rest.get("/rest/asset/v1/programs.json")
    def browse_programs(request: Request) -> dict:
        params = Params.of(request)
        max_return = params.integer("maxReturn", DEFAULT_PROGRAMS_PER_CALL, 1, MAX_PROGRAMS_PER_CALL)
        offset = params.integer("offset", 0, 0, 2**31 - 1)
        earliest, latest = params.moment("earliestUpdatedAt"), params.moment("latestUpdatedAt")
        status = params.text("status")
        filter_type = params.text("filterType")
        if filter_type not in (None, "id", "programId"):
            raise MarketoError("1003", f"filterType '{filter_type}' is not supported here")
        program_ids = params.integers("filterValues", MAX_PROGRAMS_PER_CALL) if filter_type else None
        selected = [
            program
            for program in records.programs()
            if (earliest is None or utc(parse_iso(program["updatedAt"])) >= earliest)
            and (latest is None or utc(parse_iso(program["updatedAt"])) <= latest)
            and (status is None or program.get("status") == status)
            and (program_ids is None or int(program["id"]) in program_ids)
        ]
        page = selected[offset : offset + max_return]
        if not page:
            return reply(request, warnings=[NO_PROGRAMS_WARNING], errors=[])
        return reply(request, warnings=[], errors=[], result=[present_program(program) for program in page])

    @rest.get("/rest/v1/programs/members/describe.json")
    def describe_program_members(request: Request) -> dict:
        return reply(
            request,
            result=[
                {
                    "name": "API Program Membership",
                    "description": "Map for API program membership fields",
                    "dedupeFields": ["leadId", "programId"],
                    "searchableFields": [[name] for name in MEMBER_FILTER_TYPES],
                    "fields": [
                        {
                            "name": name,
                            "displayName": name,
                            "dataType": data_type,
                            "updateable": False,
                            "crmManaged": False,
                        }
                        for name, data_type in MEMBER_FIELD_TYPES.items()
                    ],
                }
            ],
        )

    @rest.get("/rest/v1/programs/{program_id}/members.json")
    def program_members(request: Request, program_id: int) -> dict:
        params = Params.of(request)
        most = marketing.limits.marketing_batch_records
        condition = _member_condition(params, most)
        fields = params.listed("fields") or list(DEFAULT_MEMBER_FIELDS)
        unknown = [name for name in fields if name not in MEMBER_FIELDS]
        if unknown:
            raise MarketoError("1006", f"Field '{unknown[0]}' not found")
        members, more = records.program_members(
            program_id, condition, position_after(params), params.integer("batchSize", most, 1, most)
        )
        body = reply(
            request,
            result=[{"seq": seq, **present_member(member, fields)} for seq, member in enumerate(members)],
            moreResult=more,
        )
        if more:
            body["nextPageToken"] = paging_token(int(members[-1]["leadId"]))
        return body

    exports = marketing.exports

    @rest.post("/bulk/v1/{entity}/export/create.json")
    async def create_export(request: Request, entity: ExportEntity) -> dict:
        body = _json_body(request, await request.body())
        definition = EXPORT_DEFINITIONS[entity](records, body)
        return reply(request, result=[exports.create(entity, definition, marketing.limits).as_json()])

    @rest.post("/bulk/v1/{entity}/export/{export_id}/enqueue.json")
    def enqueue_export(request: Request, entity: ExportEntity, export_id: str) -> dict:
        return reply(request, result=[exports.enqueue(entity, export_id, marketing.limits).as_json()])

    @rest.get("/bulk/v1/{entity}/export/{export_id}/status.json")
    def export_status(request: Request, entity: ExportEntity, export_id: str) -> dict:
        return reply(request, result=[exports.poll(entity, export_id).as_json()])

    @rest.post("/bulk/v1/{entity}/export/{export_id}/cancel.json")
    def cancel_export(request: Request, entity: ExportEntity, export_id: str) -> dict:
        return reply(request, result=[exports.cancel(entity, export_id).as_json()])

    @rest.get("/bulk/v1/{entity}/export/{export_id}/file.json")
    def export_file(request: Request, entity: ExportEntity, export_id: str) -> Response:
        job = exports.completed_file(entity, export_id)
        if job is None:
            # Unlike every other resource, Marketo answers a missing file with a plain-text 404.
            return PlainTextResponse(f"Export file '{export_id}' not found", 404)
        return file_response(job.file, MEDIA_TYPES[job.definition.format], request.headers.get("range"))

    @rest.get("/bulk/v1/{entity}/export.json")
    def list_exports(request: Request, entity: ExportEntity) -> dict:
        params = Params.of(request)
        statuses = set()
        for name in params.listed("status"):
            if name.lower() not in STATUS_NAMES:
                raise MarketoError("1003", f"Invalid status '{name}'")
            statuses.add(STATUS_NAMES[name.lower()])
        most = marketing.limits.marketing_batch_records
        jobs, more = exports.listing(
            entity, statuses, position_after(params), params.integer("batchSize", most, 1, most)
        )
        body = reply(request, result=[job.as_json() for _, job in jobs])
        if more:
            body["nextPageToken"] = paging_token(jobs[-1][0])
        return body

    router.include_router(rest)

    @router.api_route("/{path:path}", methods=HTTP_METHODS)
    def unknown_resource(request: Request, path: str) -> JSONResponse:
        # A known path called with another method is 605; anything else is not a resource (610).
        # The probe matches this router's own routes, whose paths do not carry the app's prefix.
        probe = {"type": "http", "path": f"/{path}", "method": request.method}
        resources = [route for route in (*router.routes, *rest.routes) if isinstance(route, APIRoute)]
        if any(route.matches(probe)[0] is Match.PARTIAL for route in resources):
            return MarketoError("605", "HTTP Method not supported").response()
        return MarketoError("610", "Requested resource not found").response()

    return router
