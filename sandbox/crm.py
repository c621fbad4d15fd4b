"""The CRM stand-in's HTTP API: HubSpot's CRM v3 (objects, search, batch read/update/upsert,
properties, owners, pipelines, custom object schemas) and associations v4, with bearer-token auth and
HubSpot's burst limit; and the two legacy reads HubSpot still serves that open-source connectors use
(properties v2, pipelines v1), shaped from the same definitions.

Responses and error bodies follow HubSpot's public API reference so that HubSpot's own SDK and
Handoff's pipeline cannot tell the difference for the endpoints served here. What HubSpot defines is
in ``crm_schema``, the records in ``crm_store``, and search's rules in ``crm_search``.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import deque
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from sandbox.crm_schema import (
    KIND_ALIASES,
    PRIMARY_TYPE_IDS,
    UNLABELED_TYPE_IDS,
    UNRECORDED_TYPE_PROPERTIES,
    HubSpotError,
    ObjectKind,
    PropertyDefinition,
    association_name,
    check_creatable,
    not_found,
    object_kind,
)
from sandbox.crm_search import SEARCH_RESULT_CAP, SearchRequest, Text
from sandbox.crm_store import Association, CrmObject, CrmStore, WriteInput, as_record_id, now_iso
from sandbox.dataset import parse_iso

if TYPE_CHECKING:  # sandbox.faults answers injected errors with HubSpotError, so it imports this module
    from sandbox.faults import Limits

__all__ = ["CrmStore", "HubSpotError", "crm_router"]

LIST_LIMIT_MAX = 100
LIST_WITH_HISTORY_LIMIT_MAX = 50  # HubSpot reads fewer records a page when it sends history too
OWNERS_LIMIT_MAX = 500
ASSOCIATIONS_LIMIT_MAX = 500
ASSOCIATION_BATCH_INPUTS_MAX = 1_000
RATE_WINDOW_S = 10
# The pipeline every account starts with, which pipelines v1 flags as its object's default.
LEGACY_DEFAULT_PIPELINE_IDS = {"deals": "default", "tickets": "0"}


def invalid_request(error: RequestValidationError) -> HubSpotError:
    problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
    return HubSpotError(400, "VALIDATION_ERROR", f"Invalid input JSON on line 1: {problems}")


class RequestBudget:
    """HubSpot's burst limit: at most ``limit`` requests in any rolling window of ``window_s`` seconds."""

    def __init__(self, limit: int, window_s: float = RATE_WINDOW_S, clock=time.monotonic):
        self.limit, self.window_s, self._clock = limit, window_s, clock
        self._admitted: deque[float] = deque()
        self._lock = threading.Lock()

    def admit(self) -> int | None:
        """Requests left in the window once this one is counted, or None when it is over budget."""
        with self._lock:
            now = self._clock()
            while self._admitted and self._admitted[0] <= now - self.window_s:
                self._admitted.popleft()
            if len(self._admitted) >= self.limit:
                return None
            self._admitted.append(now)
            return self.limit - len(self._admitted)

    def headers(self, remaining: int) -> dict[str, str]:
        return {
            "X-HubSpot-RateLimit-Max": str(self.limit),
            "X-HubSpot-RateLimit-Remaining": str(remaining),
            "X-HubSpot-RateLimit-Interval-Milliseconds": str(int(self.window_s * 1000)),
        }

    def refusal(self) -> JSONResponse:
        # HubSpot sends no Retry-After on its burst limit; the window headers say when to come back.
        body = {
            "status": "error",
            "message": "You have reached your secondly limit.",
            "errorType": "RATE_LIMIT",
            "correlationId": str(uuid.uuid4()),
            "policyName": "SECONDLY",
            "groupName": "publicapi:private-app:handoff-sandbox",
            "requestId": str(uuid.uuid4()),
        }
        return JSONResponse(body, status_code=429, headers=self.headers(0))


class IdInput(BaseModel):
    id: Text


class BatchReadRequest(BaseModel):
    inputs: list[IdInput] = Field(min_length=1)
    properties: list[str] = Field(default_factory=list)
    propertiesWithHistory: list[str] = Field(default_factory=list)
    idProperty: str | None = None


class BatchInput(BaseModel):
    id: Text
    properties: dict[str, Text | None]
    idProperty: str | None = None


class BatchUpdateRequest(BaseModel):
    inputs: list[BatchInput] = Field(min_length=1)


class PropertyOption(BaseModel):
    label: str
    value: str


class PropertyCreate(BaseModel):
    name: str
    label: str
    type: str
    fieldType: str
    groupName: str
    description: str = ""
    options: list[PropertyOption] = Field(default_factory=list)
    hasUniqueValue: bool = False


class AssociationBatchRequest(BaseModel):
    inputs: list[IdInput] = Field(min_length=1, max_length=ASSOCIATION_BATCH_INPUTS_MAX)


Names = Annotated[list[str] | None, Query()]


def split_names(values: list[str] | None) -> list[str]:
    """Property names as HubSpot takes them: comma-separated, repeated, or both."""
    names = [name.strip() for value in values or [] for name in value.split(",")]
    return list(dict.fromkeys(name for name in names if name))


def present(
    record: CrmObject,
    names: list[str],
    history: dict[str, list[dict]] | None = None,
    associations: dict[str, dict] | None = None,
) -> dict:
    body: dict[str, Any] = {
        "id": str(record.id),
        "properties": {name: record.properties.get(name) for name in names},
        "createdAt": record.created_at,
        "updatedAt": record.updated_at,
        "archived": record.archived,
    }
    if record.archived:
        body["archivedAt"] = record.archived_at
    if history is not None:
        body["propertiesWithHistory"] = history
    if associations:
        body["associations"] = associations
    return body


def owner_body(owner: dict) -> dict:
    # The dataset's owners carry their calendars too; HubSpot's owners API does not.
    return {
        "id": str(owner["id"]),
        "email": owner.get("email"),
        "type": "PERSON",
        "firstName": owner.get("firstName"),
        "lastName": owner.get("lastName"),
        "userId": owner.get("userId"),
        "userIdIncludingInactive": owner.get("userId"),
        "createdAt": owner.get("createdAt"),
        "updatedAt": owner.get("updatedAt"),
        "archived": bool(owner.get("archived")),
        "teams": owner.get("teams", []),
    }


def epoch_ms(moment: str | None) -> int | None:
    return None if moment is None else int(parse_iso(moment).timestamp() * 1000)


def legacy_property(body: dict) -> dict:
    """A v3 property definition as properties v2 shapes it: its flags at the top level, its times in
    epoch milliseconds, and ``deleted`` for ``archived``."""
    metadata = body["modificationMetadata"]
    legacy = {
        name: body[name]
        for name in (
            "name",
            "label",
            "description",
            "groupName",
            "type",
            "fieldType",
            "displayOrder",
            "formField",
            "hidden",
            "calculated",
            "externalOptions",
            "hasUniqueValue",
            "hubspotDefined",
        )
    }
    legacy |= {
        "options": [{**option, "readOnly": False} for option in body["options"]],
        "readOnlyValue": metadata["readOnlyValue"],
        "readOnlyDefinition": metadata["readOnlyDefinition"],
        "mutableDefinitionNotDeletable": body["hubspotDefined"],
        "deleted": body["archived"],
        "createdAt": epoch_ms(body.get("createdAt")),
        "updatedAt": epoch_ms(body.get("updatedAt")),
    }
    if "referencedObjectType" in body:
        legacy["referencedObjectType"] = body["referencedObjectType"]
    return legacy


def legacy_pipeline(kind: ObjectKind, pipeline: dict) -> dict:
    """A v3 pipeline as pipelines v1 shapes it: ``pipelineId``/``stageId`` for ``id``, ``active`` for
    not ``archived``, times in epoch milliseconds; stage metadata as v3 has it."""

    def times(item: dict) -> dict:
        return {"createdAt": epoch_ms(item.get("createdAt")), "updatedAt": epoch_ms(item.get("updatedAt"))}

    return {
        "pipelineId": pipeline["id"],
        **times(pipeline),
        "objectType": kind.singular.upper(),
        "objectTypeId": kind.type_id,
        "label": pipeline.get("label"),
        "displayOrder": pipeline.get("displayOrder", 0),
        "active": not pipeline["archived"],
        "default": pipeline["id"] == LEGACY_DEFAULT_PIPELINE_IDS[kind.name],
        "stages": [
            {
                "stageId": stage["id"],
                **times(stage),
                "label": stage.get("label"),
                "displayOrder": stage.get("displayOrder", 0),
                "active": not stage.get("archived", False),
                "metadata": stage.get("metadata", {}),
            }
            for stage in pipeline["stages"]
        ],
    }


def batch_error(kind: ObjectKind, missing: list[str]) -> dict:
    return {
        "status": "error",
        "category": "OBJECT_NOT_FOUND",
        "message": f"Could not get some {kind.singular.upper()} objects, they may be deleted or not exist. "
        "Check that ids are valid.",
        "context": {"ids": missing},
        "errors": [],
        "links": {},
    }


def batch_response(results: list[dict], started_at: str, errors: list[dict]) -> JSONResponse:
    body: dict[str, Any] = {"status": "COMPLETE", "results": results, "startedAt": started_at, "completedAt": now_iso()}
    if errors:
        body.update(numErrors=len(errors), errors=errors)
    return JSONResponse(body, status_code=207 if errors else 200)


def crm_router(store: CrmStore, access_token: str, limits: Limits) -> APIRouter:
    budget = RequestBudget(limits.crm_requests_per_10s)
    search_budget = RequestBudget(limits.crm_search_requests_per_s, window_s=1)

    class CrmRoute(APIRoute):
        """Every CRM endpoint: bearer token first, then the request budgets (search has one of its
        own besides the burst limit), and HubSpot's error shapes."""

        def get_route_handler(self):
            handle = super().get_route_handler()
            is_search = self.path.endswith("/search")

            async def guarded(request: Request) -> Response:
                if request.headers.get("authorization") != f"Bearer {access_token}":
                    return HubSpotError(
                        401,
                        "INVALID_AUTHENTICATION",
                        "Authentication credentials not found. This API supports OAuth 2.0 authentication and you "
                        "can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
                    ).response()
                remaining = budget.admit()
                if remaining is None:
                    return budget.refusal()
                if is_search and search_budget.admit() is None:
                    return search_budget.refusal()
                try:
                    response = await handle(request)
                except HubSpotError as error:
                    response = error.response()
                except RequestValidationError as error:
                    response = invalid_request(error).response()
                except HTTPException as error:  # a body FastAPI cannot even decode
                    response = HubSpotError(
                        error.status_code, "VALIDATION_ERROR", f"Invalid input JSON on line 1: {error.detail}"
                    ).response()
                store.note_request()
                response.headers.update(budget.headers(remaining))
                return response

            return guarded

    router = APIRouter(route_class=CrmRoute)

    def requested(kind: ObjectKind, names: list[str]) -> list[str]:
        if not names:
            return list(kind.defaults)
        known = store.definitions(kind)
        return [name for name in names if name in known]

    def shaped(
        kind: ObjectKind,
        records: list[CrmObject],
        properties: list[str],
        with_history: list[str] = (),
        associated: list[str] = (),
    ) -> list[dict]:
        names = requested(kind, properties)
        history_names = requested(kind, with_history) if with_history else []
        to_kinds = [KIND_ALIASES[name.lower()] for name in associated if name.lower() in KIND_ALIASES]
        to_kinds = [k for k in to_kinds if (kind.name, k.name) in UNLABELED_TYPE_IDS]
        store.with_stage_timestamps(kind, records, names)
        return [
            present(
                record,
                names,
                store.history(kind, record, history_names) if history_names else None,
                v3_associations(kind, record.id, to_kinds),
            )
            for record in records
        ]

    def v3_associations(kind: ObjectKind, object_id: int, to_kinds: list[ObjectKind]) -> dict:
        found = {}
        for to_kind in to_kinds:
            results = [
                {"id": str(link.to_id), "type": association_name(kind, to_kind, primary)}
                for link in store.associations(kind, object_id, to_kind)
                for primary in ((True, False) if link.primary else (False,))
            ]
            if results:
                found[to_kind.name] = {"results": results}
        return found

    def v4_targets(kind: ObjectKind, to_kind: ObjectKind, links: list[Association]) -> list[dict]:
        def types(link: Association) -> list[dict]:
            unlabeled = {
                "category": "HUBSPOT_DEFINED",
                "typeId": UNLABELED_TYPE_IDS[(kind.name, to_kind.name)],
                "label": None,
            }
            if not link.primary:
                return [unlabeled]
            return [
                {
                    "category": "HUBSPOT_DEFINED",
                    "typeId": PRIMARY_TYPE_IDS[(kind.name, to_kind.name)],
                    "label": "Primary",
                },
                unlabeled,
            ]

        return [{"toObjectId": link.to_id, "associationTypes": types(link)} for link in links]

    def next_page(request: Request, after: int | str | None) -> dict:
        if after is None:
            return {}
        link = request.url.include_query_params(after=str(after))
        return {"paging": {"next": {"after": str(after), "link": str(link)}}}

    def cursor(after: str | None) -> int:
        start = 0 if after is None else as_record_id(after)
        if start is None:
            raise HubSpotError(400, "VALIDATION_ERROR", f"Invalid after cursor: {after}")
        return start

    def batch_limit(count: int) -> None:
        if count > limits.crm_batch_inputs:
            raise HubSpotError(400, "VALIDATION_ERROR", f"Batch input limit is {limits.crm_batch_inputs}, got {count}")

    @router.get("/crm/v3/objects/{object_type}")
    def list_objects(
        request: Request,
        object_type: str,
        limit: int = 10,
        after: str | None = None,
        properties: Names = None,
        propertiesWithHistory: Names = None,
        associations: Names = None,
        archived: bool = False,
    ) -> dict:
        kind = object_kind(object_type)
        with_history = split_names(propertiesWithHistory)
        most = LIST_WITH_HISTORY_LIMIT_MAX if with_history else LIST_LIMIT_MAX
        if not 1 <= limit <= most:
            raise HubSpotError(400, "VALIDATION_ERROR", f"limit must be between 1 and {most}")
        page, next_after = store.page(kind, cursor(after), limit, archived)
        body = {
            "results": shaped(kind, page, split_names(properties), with_history, split_names(associations)),
            **next_page(request, next_after),
        }
        store.churn(kind, page)
        return body

    @router.get("/crm/v3/objects/{object_type}/{object_id}")
    def read_object(
        object_type: str,
        object_id: str,
        properties: Names = None,
        propertiesWithHistory: Names = None,
        associations: Names = None,
        archived: bool = False,
        idProperty: str | None = None,
    ) -> dict:
        kind = object_kind(object_type)
        record = store.get(kind, object_id, archived, idProperty)
        if record is None:
            raise not_found()
        return shaped(
            kind, [record], split_names(properties), split_names(propertiesWithHistory), split_names(associations)
        )[0]

    @router.post("/crm/v3/objects/{object_type}/search")
    def search(object_type: str, request: SearchRequest) -> dict:
        kind = object_kind(object_type)
        total, page, offset = store.search(kind, request)
        body: dict[str, Any] = {"total": total, "results": shaped(kind, page, request.properties)}
        following = offset + len(page)
        if page and following < total and following < SEARCH_RESULT_CAP:
            body["paging"] = {"next": {"after": str(following)}}
        store.churn(kind, page)
        return body

    @router.post("/crm/v3/objects/{object_type}/batch/read")
    def batch_read(object_type: str, request: BatchReadRequest, archived: bool = False) -> JSONResponse:
        kind = object_kind(object_type)
        batch_limit(len(request.inputs))
        started_at = now_iso()
        found, missing = {}, []
        for item in request.inputs:
            record = store.get(kind, item.id, archived, request.idProperty)
            if record is None:
                missing.append(item.id)
            else:
                found.setdefault(record.id, record)
        results = shaped(kind, list(found.values()), request.properties, request.propertiesWithHistory)
        return batch_response(results, started_at, [batch_error(kind, missing)] if missing else [])

    @router.post("/crm/v3/objects/{object_type}/batch/update")
    def batch_update(object_type: str, request: BatchUpdateRequest) -> JSONResponse:
        kind = object_kind(object_type)
        batch_limit(len(request.inputs))
        started_at = now_iso()
        updated, missing = store.update(kind, [WriteInput(i.id, i.properties, i.idProperty) for i in request.inputs])
        names = list(dict.fromkeys(name for item in request.inputs for name in item.properties))
        return batch_response(
            [present(record, names) for record in updated], started_at, [batch_error(kind, missing)] if missing else []
        )

    @router.post("/crm/v3/objects/{object_type}/batch/upsert")
    def batch_upsert(object_type: str, request: BatchUpdateRequest) -> JSONResponse:
        kind = object_kind(object_type)
        batch_limit(len(request.inputs))
        if any(not item.idProperty for item in request.inputs):
            raise HubSpotError(400, "VALIDATION_ERROR", "Every upsert input needs an idProperty")
        started_at = now_iso()
        written = store.upsert(kind, [WriteInput(i.id, i.properties, i.idProperty) for i in request.inputs])
        names = list(dict.fromkeys(name for item in request.inputs for name in (item.idProperty, *item.properties)))
        return batch_response(
            [{**present(record, requested(kind, names)), "new": new} for record, new in written], started_at, []
        )

    @router.get("/crm/v3/properties/{object_type}")
    def list_properties(object_type: str) -> dict:
        kind = object_kind(object_type)
        return {"results": [p.as_json(store.options(kind, p)) for p in store.definitions(kind).values()]}

    @router.get("/crm/v3/properties/{object_type}/{property_name}")
    def read_property(object_type: str, property_name: str) -> dict:
        kind = object_kind(object_type)
        definition = store.definitions(kind).get(property_name)
        if definition is None:
            raise not_found()
        return definition.as_json(store.options(kind, definition))

    @router.post("/crm/v3/properties/{object_type}")
    def create_property(object_type: str, request: PropertyCreate) -> JSONResponse:
        kind = object_kind(object_type)
        definition = PropertyDefinition(
            name=request.name,
            label=request.label,
            type=request.type,
            field_type=request.fieldType,
            group_name=request.groupName,
            description=request.description,
            hubspot_defined=False,
            options=tuple((o.value, o.label) for o in request.options),
            has_unique_value=request.hasUniqueValue,
            created_at=now_iso(),
        )
        check_creatable(definition)
        store.create_property(kind, definition)
        return JSONResponse(definition.as_json(definition.options), status_code=201)

    @router.get("/crm/v3/owners")
    def list_owners(
        request: Request, limit: int = 100, after: str | None = None, email: str | None = None, archived: bool = False
    ) -> dict:
        if not 1 <= limit <= OWNERS_LIMIT_MAX:
            raise HubSpotError(400, "VALIDATION_ERROR", f"limit must be between 1 and {OWNERS_LIMIT_MAX}")
        owners, next_after = store.owners(cursor(after), limit, email, archived)
        return {"results": [owner_body(o) for o in owners], **next_page(request, next_after)}

    @router.get("/crm/v3/owners/{owner_id}")
    def read_owner(owner_id: str, idProperty: Literal["id", "userId"] = "id", archived: bool = False) -> dict:
        found = store.owner(idProperty, owner_id, archived)
        if found is None:
            raise not_found()
        return owner_body(found)

    @router.get("/crm/v3/pipelines/{object_type}")
    def list_pipelines(object_type: str) -> dict:
        return {"results": store.pipelines(object_kind(object_type).name)}

    @router.get("/crm/v3/pipelines/{object_type}/{pipeline_id}")
    def read_pipeline(object_type: str, pipeline_id: str) -> dict:
        for pipeline in store.pipelines(object_kind(object_type).name):
            if str(pipeline.get("id")) == pipeline_id:
                return pipeline
        raise not_found()

    @router.get("/crm/v3/schemas")
    def list_custom_object_schemas() -> dict:
        return {"results": []}  # the account defines no custom objects

    @router.get("/properties/v2/{object_type}/properties")
    def list_properties_v2(object_type: str) -> list[dict]:
        unrecorded = UNRECORDED_TYPE_PROPERTIES.get(object_type.lower())
        if unrecorded is not None:
            return [legacy_property(p.as_json(p.options)) for p in unrecorded]
        kind = object_kind(object_type)
        return [legacy_property(p.as_json(store.options(kind, p))) for p in store.definitions(kind).values()]

    @router.get("/crm-pipelines/v1/pipelines/{object_type}")
    def list_pipelines_v1(
        object_type: Literal["deals", "tickets"],
        includeInactive: Literal["EXCLUDE_DELETED", "INCLUDE_DELETED"] = "EXCLUDE_DELETED",
    ) -> dict:
        kind = object_kind(object_type)
        pipelines = store.pipelines(kind.name)
        if includeInactive == "EXCLUDE_DELETED":
            pipelines = [pipeline for pipeline in pipelines if not pipeline["archived"]]
        return {"results": [legacy_pipeline(kind, pipeline) for pipeline in pipelines]}

    @router.get("/crm/v4/objects/{from_type}/{object_id}/associations/{to_type}")
    def read_associations(
        request: Request, from_type: str, object_id: str, to_type: str, limit: int = 500, after: str | None = None
    ) -> dict:
        kind, to_kind = object_kind(from_type), object_kind(to_type)
        if not 1 <= limit <= ASSOCIATIONS_LIMIT_MAX:
            raise HubSpotError(400, "VALIDATION_ERROR", f"limit must be between 1 and {ASSOCIATIONS_LIMIT_MAX}")
        record_id, start = as_record_id(object_id), cursor(after)
        if record_id is None:
            raise not_found()
        links = [link for link in store.associations(kind, record_id, to_kind) if link.to_id >= start]
        following = links[limit].to_id if len(links) > limit else None
        return {"results": v4_targets(kind, to_kind, links[:limit]), **next_page(request, following)}

    @router.post("/crm/v4/associations/{from_type}/{to_type}/batch/read")
    def batch_read_associations(from_type: str, to_type: str, request: AssociationBatchRequest) -> JSONResponse:
        kind, to_kind = object_kind(from_type), object_kind(to_type)
        started_at = now_iso()
        results, errors = [], []
        for item in request.inputs:
            record_id = as_record_id(item.id)
            links = store.associations(kind, record_id, to_kind) if record_id is not None else []
            if links:
                results.append({"from": {"id": item.id}, "to": v4_targets(kind, to_kind, links)})
            else:
                errors.append(
                    {
                        "status": "error",
                        "category": "OBJECT_NOT_FOUND",
                        "subCategory": "crm.associations.NO_ASSOCIATIONS_FOUND",
                        "message": f"No {to_kind.singular} is associated with {kind.singular} {item.id}.",
                        "context": {
                            "fromObjectId": [item.id],
                            "fromObjectType": [kind.singular],
                            "toObjectType": [to_kind.singular],
                        },
                        "errors": [],
                        "links": {},
                    }
                )
        return batch_response(results, started_at, errors)

    @router.api_route("/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
    def unknown_endpoint(path: str) -> dict:
        raise not_found()

    return router
