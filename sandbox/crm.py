"""The CRM stand-in: HubSpot CRM v3 shape (objects, properties, owners, batch update).

Responses and error bodies follow HubSpot's public API reference so that HubSpot's own SDK
and Handoff's pipeline cannot tell the difference for the endpoints served here.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from sandbox.dataset import iso
from sandbox.store import SandboxStore

LIST_LIMIT_MAX = 100
BATCH_INPUTS_MAX = 100
DEFAULT_CONTACT_PROPERTIES = ["createdate", "email", "firstname", "hs_object_id",
                              "lastmodifieddate", "lastname"]
LIFECYCLE_STAGES = ["subscriber", "lead", "marketingqualifiedlead", "salesqualifiedlead",
                    "opportunity", "customer", "evangelist", "other"]


class HubSpotError(Exception):
    """An error answered with HubSpot's error body."""

    def __init__(self, status_code: int, category: str, message: str, **extra: Any):
        super().__init__(message)
        self.status_code, self.category, self.message, self.extra = status_code, category, message, extra

    def response(self) -> JSONResponse:
        body = {"status": "error", "message": self.message, "correlationId": str(uuid.uuid4()),
                "category": self.category, **self.extra}
        return JSONResponse(body, status_code=self.status_code)


@dataclass(frozen=True)
class PropertyDefinition:
    name: str
    label: str
    type: str
    field_type: str
    group_name: str
    hubspot_defined: bool = True
    read_only: bool = False
    options: tuple[str, ...] = ()

    def as_json(self) -> dict:
        return {
            "name": self.name, "label": self.label, "type": self.type, "fieldType": self.field_type,
            "groupName": self.group_name, "description": "", "hubspotDefined": self.hubspot_defined,
            "calculated": False, "hidden": False, "archived": False, "hasUniqueValue": False,
            "formField": not self.read_only,
            "modificationMetadata": {"archivable": not self.hubspot_defined,
                                     "readOnlyDefinition": self.hubspot_defined,
                                     "readOnlyValue": self.read_only},
            "options": [{"label": option, "value": option, "displayOrder": order, "hidden": False}
                        for order, option in enumerate(self.options)],
        }


CONTACT_PROPERTIES = [
    PropertyDefinition("email", "Email", "string", "text", "contactinformation"),
    PropertyDefinition("firstname", "First Name", "string", "text", "contactinformation"),
    PropertyDefinition("lastname", "Last Name", "string", "text", "contactinformation"),
    PropertyDefinition("lifecyclestage", "Lifecycle Stage", "enumeration", "radio",
                       "contactinformation", options=tuple(LIFECYCLE_STAGES)),
    PropertyDefinition("hubspot_owner_id", "Contact owner", "enumeration", "select",
                       "contactinformation"),
    PropertyDefinition("createdate", "Create Date", "datetime", "date", "contactinformation",
                       read_only=True),
    PropertyDefinition("lastmodifieddate", "Last Modified Date", "datetime", "date",
                       "contactinformation", read_only=True),
    PropertyDefinition("hs_object_id", "Record ID", "number", "number", "contactinformation",
                       read_only=True),
    # The company has installed Handoff's own properties, which the write-back fills.
    PropertyDefinition("handoff_funnel_stage", "Funnel stage (Handoff)", "string", "text", "handoff",
                       hubspot_defined=False),
]


@dataclass
class CrmObject:
    id: int
    created_at: str
    updated_at: str
    archived: bool
    properties: dict[str, str | None]

    @classmethod
    def from_row(cls, row) -> CrmObject:
        return cls(id=row["id"], created_at=row["created_at"], updated_at=row["updated_at"],
                   archived=bool(row["archived"]), properties=json.loads(row["properties"]))


class CrmStore:
    """The CRM's records in the sandbox store; what is written through the API is kept and reads back."""

    def __init__(self, store: SandboxStore):
        self.store = store
        self.properties = {"contacts": {p.name: p for p in CONTACT_PROPERTIES}}

    def check_object_type(self, name: str) -> None:
        if name not in self.properties:
            raise HubSpotError(400, "OBJECT_NOT_FOUND", f"Unable to infer object type from: {name}")

    def get(self, object_type: str, object_id: int) -> CrmObject | None:
        self.check_object_type(object_type)
        row = self.store.query_one("select * from crm_objects where object_type = ? and id = ?",
                                   (object_type, object_id))
        return CrmObject.from_row(row) if row else None

    def page(self, object_type: str, after: int, limit: int, archived: bool) -> tuple[list[CrmObject], int | None]:
        self.check_object_type(object_type)
        # Ids only grow, so an id cursor never skips or repeats a record while others change.
        rows = self.store.query(
            """select * from crm_objects where object_type = ? and id >= ? and archived = ?
               and merged_into is null order by id limit ?""",
            (object_type, after, int(archived), limit + 1))
        next_after = rows[limit]["id"] if len(rows) > limit else None
        return [CrmObject.from_row(row) for row in rows[:limit]], next_after

    def history(self, object_type: str, object_id: int, names: list[str]) -> dict[str, list[dict]]:
        rows = self.store.query(
            f"""select property, value, timestamp, source_type from crm_property_history
                where object_type = ? and id = ? and property in ({", ".join("?" * len(names))})
                order by timestamp desc""", (object_type, object_id, *names))
        history: dict[str, list[dict]] = {name: [] for name in names}
        for row in rows:
            history[row["property"]].append(
                {"value": row["value"], "timestamp": row["timestamp"], "sourceType": row["source_type"]})
        return history

    def batch_update(self, object_type: str, inputs: list[BatchInput]) -> tuple[list[CrmObject], list[str]]:
        self.check_object_type(object_type)
        definitions = self.properties[object_type]
        for item in inputs:
            for name, value in item.properties.items():
                _validate_property_value(definitions, name, value)
        updated, missing = [], []
        now = iso(datetime.now(timezone.utc))
        with self.store.transaction() as db:
            for item in inputs:
                row = db.execute("select * from crm_objects where object_type = ? and id = ?",
                                 (object_type, int(item.id))).fetchone() if item.id.isdigit() else None
                if row is None or row["archived"] or row["merged_into"] is not None:
                    missing.append(item.id)
                    continue
                record = CrmObject.from_row(row)
                record.properties.update(item.properties)
                record.properties["lastmodifieddate"] = record.updated_at = now
                db.execute("update crm_objects set properties = ?, updated_at = ? where object_type = ? and id = ?",
                           (json.dumps(record.properties), now, object_type, record.id))
                db.executemany(
                    "insert into crm_property_history values (?, ?, ?, ?, ?, 'INTEGRATION')",
                    [(object_type, record.id, name, value, now) for name, value in item.properties.items()])
                updated.append(record)
        return updated, missing


def _validate_property_value(definitions: dict[str, PropertyDefinition], name: str, value: str | None) -> None:
    definition = definitions.get(name)
    if definition is None:
        error, message = "PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist'
    elif definition.read_only:
        error, message = "READ_ONLY_VALUE", f'"{name}" is a read only property; its value cannot be set.'
    elif definition.options and value not in (*definition.options, "", None):
        error, message = "INVALID_OPTION", f"{value} was not one of the allowed options"
    else:
        return
    detail = json.dumps([{"isValid": False, "message": message, "error": error, "name": name}],
                        separators=(",", ":"))
    raise HubSpotError(400, "VALIDATION_ERROR", f"Property values were not valid: {detail}")


class BatchInput(BaseModel):
    id: str
    properties: dict[str, str | None]


class BatchUpdateRequest(BaseModel):
    inputs: list[BatchInput] = Field(min_length=1)


def present(record: CrmObject, names: list[str], history: dict[str, list[dict]] | None = None) -> dict:
    body: dict[str, Any] = {
        "id": str(record.id),
        "properties": {name: record.properties.get(name) for name in names},
        "createdAt": record.created_at,
        "updatedAt": record.updated_at,
        "archived": record.archived,
    }
    if history is not None:
        body["propertiesWithHistory"] = history
    return body


def crm_router(store: CrmStore, access_token: str) -> APIRouter:
    def require_token(authorization: Annotated[str | None, Header()] = None) -> None:
        if authorization != f"Bearer {access_token}":
            raise HubSpotError(
                401, "INVALID_AUTHENTICATION",
                "Authentication credentials not found. This API supports OAuth 2.0 authentication "
                "and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview")

    router = APIRouter(prefix="/crm/v3", dependencies=[Depends(require_token)])

    def requested(object_type: str, csv: str | None) -> list[str]:
        if not csv:
            return DEFAULT_CONTACT_PROPERTIES
        known = store.properties[object_type]
        return [name for name in csv.split(",") if name in known]

    @router.get("/objects/{object_type}")
    def list_objects(request: Request, object_type: str, limit: int = 10, after: str | None = None,
                     properties: str | None = None, propertiesWithHistory: str | None = None,
                     archived: bool = False) -> dict:
        if not 1 <= limit <= LIST_LIMIT_MAX:
            raise HubSpotError(400, "VALIDATION_ERROR", f"limit must be between 1 and {LIST_LIMIT_MAX}")
        if after is not None and not after.isdigit():
            raise HubSpotError(400, "VALIDATION_ERROR", f"Invalid after cursor: {after}")
        page, next_after = store.page(object_type, int(after or 0), limit, archived)
        names = requested(object_type, properties)
        with_history = requested(object_type, propertiesWithHistory) if propertiesWithHistory else []
        body: dict[str, Any] = {"results": [
            present(record, names, store.history(object_type, record.id, with_history) if with_history else None)
            for record in page]}
        if next_after is not None:
            link = request.url.include_query_params(after=str(next_after))
            body["paging"] = {"next": {"after": str(next_after), "link": str(link)}}
        return body

    @router.get("/objects/{object_type}/{object_id}")
    def read_object(object_type: str, object_id: str, properties: str | None = None,
                    propertiesWithHistory: str | None = None, archived: bool = False) -> dict:
        record = store.get(object_type, int(object_id)) if object_id.isdigit() else None
        if record is None or record.archived != archived:
            raise HubSpotError(404, "OBJECT_NOT_FOUND", "resource not found")
        with_history = requested(object_type, propertiesWithHistory) if propertiesWithHistory else []
        return present(record, requested(object_type, properties),
                       store.history(object_type, record.id, with_history) if with_history else None)

    @router.post("/objects/{object_type}/batch/update")
    def batch_update(object_type: str, request: BatchUpdateRequest) -> JSONResponse:
        if len(request.inputs) > BATCH_INPUTS_MAX:
            raise HubSpotError(400, "VALIDATION_ERROR",
                               f"Batch input limit is {BATCH_INPUTS_MAX}, got {len(request.inputs)}")
        started_at = iso(datetime.now(timezone.utc))
        updated, missing = store.batch_update(object_type, request.inputs)
        names = sorted({name for item in request.inputs for name in item.properties})
        body: dict[str, Any] = {
            "status": "COMPLETE",
            "results": [present(record, names) for record in updated],
            "startedAt": started_at,
            "completedAt": iso(datetime.now(timezone.utc)),
        }
        if missing:
            body["numErrors"] = 1
            body["errors"] = [{
                "status": "error", "category": "OBJECT_NOT_FOUND",
                "message": "Could not get some CONTACT objects, they may be deleted or not exist. "
                           "Check that ids are valid.",
                "context": {"ids": missing},
            }]
            return JSONResponse(body, status_code=207)
        return JSONResponse(body)

    @router.get("/properties/{object_type}")
    def list_properties(object_type: str) -> dict:
        store.check_object_type(object_type)
        return {"results": [p.as_json() for p in store.properties[object_type].values()]}

    @router.get("/owners")
    def list_owners(limit: int = Query(100, ge=1, le=500)) -> dict:
        # The dataset's owners carry their calendars too; HubSpot's owners API does not.
        owner_fields = ("id", "email", "firstName", "lastName", "userId", "archived", "createdAt",
                        "updatedAt", "teams")
        owners = [json.loads(row["body"]) for row in store.store.query(
            "select body from owners order by id limit ?", (limit,))]
        return {"results": [{name: owner.get(name) for name in owner_fields} for owner in owners]}

    return router
