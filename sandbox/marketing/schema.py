"""What Marketo defines, as the stand-in serves it: its error bodies, its datetime formats, the lead
database's fields and activity types, and program member fields."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi.responses import JSONResponse

from sandbox.dataset import parse_iso


class MarketoError(Exception):
    """A response-level error: HTTP 200 with ``success: false`` and Marketo's code as a string."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code} {message}")
        self.code, self.message = code, message

    def response(self, request_id: str | None = None) -> JSONResponse:
        return JSONResponse(
            {
                "requestId": request_id or new_request_id(),
                "success": False,
                "errors": [{"code": self.code, "message": self.message}],
            }
        )


class RecordSkipped(Exception):
    """A record-level error: the record is answered ``skipped`` with a reason; the call goes on."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message

    def result(self) -> dict:
        return {"status": "skipped", "reasons": [{"code": self.code, "message": self.message}]}


def new_request_id() -> str:
    """Marketo's request id shape, e.g. ``e42b#14272d07d78``."""
    return f"{secrets.token_hex(2)}#{int(time.time() * 1000):x}"


def utc(moment: datetime) -> datetime:
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


def marketo_time(moment: str | datetime) -> str:
    """Marketo's REST datetime: UTC, whole seconds, ``Z``."""
    return utc(parse_iso(moment) if isinstance(moment, str) else moment).strftime("%Y-%m-%dT%H:%M:%SZ")


def asset_time(moment: str) -> str:
    """The asset API's datetime, ``2015-11-18T15:25:35Z+0000``: odd, but what Marketo writes."""
    return marketo_time(moment) + "+0000"


def client_time(text: str) -> datetime:
    """An ISO 8601 datetime sent by a client (offset or ``Z``; UTC when it has neither)."""
    try:
        return utc(datetime.fromisoformat(text))
    except ValueError:
        raise MarketoError("704", "Invalid date format") from None


# --- what the lead database holds ------------------------------------------------------------------


@dataclass(frozen=True)
class LeadField:
    id: int
    name: str  # the REST API name
    display_name: str
    data_type: str
    length: int | None = None
    read_only: bool = False
    custom: bool = False

    @property
    def searchable(self) -> bool:
        # Marketo filters and looks leads up by id, email and custom string or integer fields only.
        return self.name in ("id", "email") or (self.custom and self.data_type in ("string", "integer"))

    def describe(self) -> dict:
        """The field as ``leads/describe.json`` lists it."""
        return {
            "id": self.id,
            "displayName": self.display_name,
            "dataType": self.data_type,
            **({"length": self.length} if self.length else {}),
            "rest": {"name": self.name, "readOnly": self.read_only},
        }

    def describe2(self) -> dict:
        """The field as ``leads/describe2.json`` lists it."""
        return {
            "name": self.name,
            "displayName": self.display_name,
            "dataType": self.data_type,
            **({"length": self.length} if self.length else {}),
            "updateable": not self.read_only,
            "crmManaged": False,
        }

    def present(self, value: Any) -> Any:
        return marketo_time(value) if self.data_type == "datetime" else value

    def accept(self, value: Any) -> Any:
        """A value written to the field as Marketo keeps it; ``ValueError`` with Marketo's message
        (code 1001) when it does not fit."""
        if value is None:
            return None
        try:
            if isinstance(value, (bool, dict, list)):
                raise ValueError(value)
            if self.data_type == "integer":
                if isinstance(value, float) and not value.is_integer():
                    raise ValueError(value)
                return int(value)
            if self.data_type == "currency":
                return float(value)
            if self.length and len(str(value)) > self.length:
                raise ValueError(value)
            return str(value)
        except ValueError:
            raise ValueError(f"Invalid value '{value}'. Required of type '{self.data_type}'") from None


LEAD_FIELDS = (
    LeadField(1, "id", "Id", "integer", read_only=True),
    LeadField(2, "company", "Company Name", "string", 255),
    LeadField(47, "title", "Job Title", "string", 255),
    LeadField(48, "firstName", "First Name", "string", 255),
    LeadField(50, "lastName", "Last Name", "string", 255),
    LeadField(51, "email", "Email Address", "email", 255),
    LeadField(56, "leadScore", "Lead Score", "integer"),
    LeadField(57, "leadStatus", "Lead Status", "string", 255),
    LeadField(58, "leadSource", "Lead Source", "string", 255),
    LeadField(61, "createdAt", "Created At", "datetime", read_only=True),
    LeadField(62, "updatedAt", "Updated At", "datetime", read_only=True),
    # The company has installed Handoff's own fields, which the write-back fills with sales outcomes.
    LeadField(3001, "handoffSalesOutcome", "Handoff Sales Outcome", "string", 255, custom=True),
    LeadField(3002, "handoffRejectionReason", "Handoff Rejection Reason", "string", 255, custom=True),
    LeadField(3003, "handoffOpportunityStage", "Handoff Opportunity Stage", "string", 255, custom=True),
    LeadField(3004, "handoffWonRevenue", "Handoff Won Revenue", "currency", custom=True),
)
LEAD_FIELDS_BY_NAME = {field.name: field for field in LEAD_FIELDS}
LEAD_FIELDS_BY_ID = {field.id: field for field in LEAD_FIELDS}
LEAD_FIELDS_BY_DISPLAY_NAME = {field.display_name: field for field in LEAD_FIELDS}
DEFAULT_LEAD_FIELDS = ("id", "updatedAt", "lastName", "email", "createdAt", "firstName")


@dataclass(frozen=True)
class ActivityType:
    id: int
    name: str
    description: str
    primary_attribute: tuple[str, str] | None  # (name, dataType)
    attributes: tuple[tuple[str, str], ...]

    def as_json(self) -> dict:
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            **(
                {"primaryAttribute": {"name": self.primary_attribute[0], "dataType": self.primary_attribute[1]}}
                if self.primary_attribute
                else {}
            ),
            "attributes": [{"name": name, "dataType": data_type} for name, data_type in self.attributes],
        }


_EMAIL_RUN = (("Campaign Run ID", "integer"), ("Choice Number", "integer"), ("Step ID", "integer"))
_EMAIL_CLIENT = (
    ("Device", "string"),
    ("Is Mobile Device", "boolean"),
    ("Platform", "string"),
    ("User Agent", "string"),
)
_API_WRITE = (("Api Method Name", "string"), ("Modifying User", "string"), ("Request Id", "string"))
ACTIVITY_TYPES = (
    ActivityType(
        1,
        "Visit Webpage",
        "User visits a web page",
        ("Webpage ID", "integer"),
        (
            ("Client IP Address", "string"),
            ("Query Parameters", "string"),
            ("Referrer URL", "string"),
            ("Search Engine", "string"),
            ("Search Query", "string"),
            ("Token", "string"),
            ("User Agent", "string"),
            ("Webpage URL", "string"),
        ),
    ),
    ActivityType(
        2,
        "Fill Out Form",
        "User fills out and submits form on web page",
        ("Webform ID", "integer"),
        (
            ("Client IP Address", "string"),
            ("Form Fields", "text"),
            ("Query Parameters", "string"),
            ("Referrer URL", "string"),
            ("User Agent", "string"),
            ("Webpage ID", "integer"),
        ),
    ),
    ActivityType(6, "Send Email", "Send Marketo Email to a person", ("Mailing ID", "integer"), _EMAIL_RUN),
    ActivityType(7, "Email Delivered", "Marketo Email is delivered to a person", ("Mailing ID", "integer"), _EMAIL_RUN),
    ActivityType(10, "Open Email", "User opens Marketo Email", ("Mailing ID", "integer"), _EMAIL_RUN + _EMAIL_CLIENT),
    ActivityType(
        11,
        "Click Email",
        "User clicks on a link in a Marketo Email",
        ("Mailing ID", "integer"),
        _EMAIL_RUN + _EMAIL_CLIENT + (("Link", "string"),),
    ),
    ActivityType(
        12,
        "New Lead",
        "New person/record is added to the lead database",
        None,
        (
            ("Created Date", "date"),
            ("Form Name", "string"),
            ("Lead Source", "string"),
            ("List Name", "string"),
            ("Source Type", "string"),
        )
        + _API_WRITE,
    ),
    ActivityType(
        13,
        "Change Data Value",
        "Changed attribute value for a person",
        ("Attribute Name", "integer"),
        (("New Value", "string"), ("Old Value", "string"), ("Reason", "string"), ("Source", "string")) + _API_WRITE,
    ),
    ActivityType(
        22,
        "Change Score",
        "Changed score value for a person",
        ("Attribute Name", "integer"),
        (
            ("Change Value", "string"),
            ("New Value", "integer"),
            ("Old Value", "integer"),
            ("Reason", "string"),
            ("Urgency", "float"),
            ("Priority", "integer"),
            ("Relative Score", "integer"),
            ("Relative Urgency", "integer"),
        ),
    ),
    ActivityType(
        32,
        "Merge Leads",
        "Merge two or more duplicate persons into a single record",
        ("Lead ID", "integer"),
        (
            ("Master Updated", "boolean"),
            ("Merge Fields", "string"),
            ("Merge IDs", "string"),
            ("Merge Source", "string"),
            ("Merged in Sales", "boolean"),
        ),
    ),
    ActivityType(
        37,
        "Delete Lead",
        "Delete a person from the lead database",
        ("Lead ID", "integer"),
        (("Remove from CRM", "boolean"),),
    ),
    ActivityType(
        104,
        "Change Status in Progression",
        "Changes the program status of a person in a program",
        ("Program ID", "integer"),
        (
            ("Acquired By", "boolean"),
            ("New Status", "string"),
            ("New Status ID", "integer"),
            ("Old Status", "string"),
            ("Old Status ID", "integer"),
            ("Program Member ID", "integer"),
            ("Reason", "string"),
            ("Success", "boolean"),
        ),
    ),
)
ACTIVITY_TYPE_IDS = {activity_type.id for activity_type in ACTIVITY_TYPES}
NEW_LEAD, CHANGE_DATA_VALUE, DELETE_LEAD = 12, 13, 37
ACTIVITY_KEYS = (
    "id",
    "marketoGUID",
    "leadId",
    "activityDate",
    "activityTypeId",
    "campaignId",
    "primaryAttributeValueId",
    "primaryAttributeValue",
    "attributes",
)
CHANGED_VALUE_ATTRIBUTES = ("New Value", "Old Value")

# Program member fields: REST name -> the dataset's name for it.
MEMBER_FIELDS = {
    "acquiredBy": "acquiredBy",
    "leadId": "leadId",
    "membershipDate": "membershipDate",
    "programId": "programId",
    "reachedSuccess": "reachedSuccess",
    "statusName": "progressionStatus",
    "updatedAt": "updatedAt",
}
MEMBER_FIELD_TYPES = {
    "acquiredBy": "boolean",
    "leadId": "integer",
    "membershipDate": "datetime",
    "programId": "integer",
    "reachedSuccess": "boolean",
    "statusName": "string",
    "updatedAt": "datetime",
}
DEFAULT_MEMBER_FIELDS = ("leadId", "reachedSuccess", "programId", "acquiredBy", "membershipDate")
MEMBER_FILTER_TYPES = ("leadId", "reachedSuccess", "statusName", "updatedAt")
