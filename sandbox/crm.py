"""The CRM stand-in: HubSpot CRM v3 shape (objects, properties, owners, batch update).

Responses and error bodies follow HubSpot's public API reference so that HubSpot's own SDK
and Handoff's pipeline cannot tell the difference for the endpoints served here.
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from sandbox.company import Company

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


def hubspot_timestamp(moment: datetime) -> str:
    moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


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
    created_at: datetime
    updated_at: datetime
    properties: dict[str, str | None]
    history: dict[str, list[dict]] = field(default_factory=dict)
    archived: bool = False

    def set(self, name: str, value: str | None, at: datetime, source: str) -> None:
        self.properties[name] = value
        self.history.setdefault(name, []).insert(
            0, {"value": value, "timestamp": hubspot_timestamp(at), "sourceType": source})


class CrmStore:
    """The CRM's records; what is written through the API is kept and reads back.

    With a journal file, every accepted write is appended (and fsync'd) before it is answered and
    replayed on start, so the CRM keeps what it was sent across restarts, as a real one does.
    """

    def __init__(self, company: Company, journal: Path | None = None):
        self._lock = threading.Lock()
        self._journal = journal
        self.properties = {"contacts": {p.name: p for p in CONTACT_PROPERTIES}}
        self.objects: dict[str, dict[int, CrmObject]] = {"contacts": {}}
        self.owners = company.owners
        for person in company.people:
            contact = CrmObject(id=int(person.id), created_at=person.created_at,
                                updated_at=person.updated_at, properties={})
            for stage, entered_at in person.lifecycle_history:
                contact.set("lifecyclestage", stage, entered_at, "CRM_UI")
            for name, value in (("email", person.email), ("firstname", person.first_name),
                                ("lastname", person.last_name), ("hubspot_owner_id", person.owner_id),
                                ("createdate", hubspot_timestamp(person.created_at)),
                                ("hs_object_id", person.id)):
                contact.set(name, value, person.created_at, "CRM_UI")
            contact.properties["lastmodifieddate"] = hubspot_timestamp(person.updated_at)
            self.objects["contacts"][contact.id] = contact
        if journal and journal.exists():
            self._replay(journal)

    def _replay(self, journal: Path) -> None:
        for line in journal.read_text().splitlines():
            write = json.loads(line)
            record = self.objects[write["object_type"]].get(write["id"])
            if record is not None:
                self._apply(record, write["properties"], datetime.fromisoformat(write["at"]))

    def _apply(self, record: CrmObject, properties: dict[str, str | None], at: datetime) -> None:
        for name, value in properties.items():
            record.set(name, value, at, "INTEGRATION")
        record.updated_at = at
        record.properties["lastmodifieddate"] = hubspot_timestamp(at)

    def _append_to_journal(self, writes: list[dict]) -> None:
        if not self._journal or not writes:
            return
        self._journal.parent.mkdir(parents=True, exist_ok=True)
        with open(self._journal, "a") as journal:
            journal.writelines(json.dumps(write) + "\n" for write in writes)
            journal.flush()
            os.fsync(journal.fileno())

    def object_type(self, name: str) -> dict[int, CrmObject]:
        if name not in self.objects:
            raise HubSpotError(400, "OBJECT_NOT_FOUND", f"Unable to infer object type from: {name}")
        return self.objects[name]

    def page(self, object_type: str, after: int, limit: int, archived: bool) -> tuple[list[CrmObject], int | None]:
        with self._lock:
            # Ids only grow, so an id cursor never skips or repeats a record while others change.
            matching = [obj for obj_id, obj in sorted(self.object_type(object_type).items())
                        if obj_id >= after and obj.archived == archived]
        page = matching[:limit]
        next_after = matching[limit].id if len(matching) > limit else None
        return page, next_after

    def batch_update(self, object_type: str, inputs: list[BatchInput]) -> tuple[list[CrmObject], list[str]]:
        records = self.object_type(object_type)
        definitions = self.properties[object_type]
        for item in inputs:
            for name, value in item.properties.items():
                _validate_property_value(definitions, name, value)
        updated, missing = [], []
        now = datetime.now(timezone.utc)
        with self._lock:
            for item in inputs:
                record = records.get(int(item.id)) if item.id.isdigit() else None
                if record is None or record.archived:
                    missing.append(item.id)
                    continue
                updated.append((record, item.properties))
            self._append_to_journal([{"object_type": object_type, "id": record.id,
                                      "properties": properties, "at": now.isoformat()}
                                     for record, properties in updated])
            for record, properties in updated:
                self._apply(record, properties, now)
        return [record for record, _ in updated], missing


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


def present(record: CrmObject, names: list[str], with_history: list[str]) -> dict:
    body: dict[str, Any] = {
        "id": str(record.id),
        "properties": {name: record.properties.get(name) for name in names},
        "createdAt": hubspot_timestamp(record.created_at),
        "updatedAt": hubspot_timestamp(record.updated_at),
        "archived": record.archived,
    }
    if with_history:
        body["propertiesWithHistory"] = {name: record.history.get(name, []) for name in with_history}
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
        history = requested(object_type, propertiesWithHistory) if propertiesWithHistory else []
        body: dict[str, Any] = {"results": [present(record, names, history) for record in page]}
        if next_after is not None:
            link = request.url.include_query_params(after=str(next_after))
            body["paging"] = {"next": {"after": str(next_after), "link": str(link)}}
        return body

    @router.get("/objects/{object_type}/{object_id}")
    def read_object(object_type: str, object_id: str, properties: str | None = None,
                    propertiesWithHistory: str | None = None, archived: bool = False) -> dict:
        record = store.object_type(object_type).get(int(object_id)) if object_id.isdigit() else None
        if record is None or record.archived != archived:
            raise HubSpotError(404, "OBJECT_NOT_FOUND", "resource not found")
        history = requested(object_type, propertiesWithHistory) if propertiesWithHistory else []
        return present(record, requested(object_type, properties), history)

    @router.post("/objects/{object_type}/batch/update")
    def batch_update(object_type: str, request: BatchUpdateRequest) -> JSONResponse:
        if len(request.inputs) > BATCH_INPUTS_MAX:
            raise HubSpotError(400, "VALIDATION_ERROR",
                               f"Batch input limit is {BATCH_INPUTS_MAX}, got {len(request.inputs)}")
        started_at = hubspot_timestamp(datetime.now(timezone.utc))
        updated, missing = store.batch_update(object_type, request.inputs)
        names = sorted({name for item in request.inputs for name in item.properties})
        body: dict[str, Any] = {
            "status": "COMPLETE",
            "results": [present(record, names, []) for record in updated],
            "startedAt": started_at,
            "completedAt": hubspot_timestamp(datetime.now(timezone.utc)),
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
        store.object_type(object_type)
        return {"results": [p.as_json() for p in store.properties[object_type].values()]}

    @router.get("/owners")
    def list_owners(limit: int = Query(100, ge=1, le=500)) -> dict:
        return {"results": [{
            "id": owner.id, "email": owner.email, "firstName": owner.first_name,
            "lastName": owner.last_name, "userId": int(owner.id) * 7, "archived": False,
            "createdAt": "2024-01-02T09:00:00.000Z", "updatedAt": "2024-01-02T09:00:00.000Z",
            "teams": [],
        } for owner in store.owners[:limit]]}

    return router
