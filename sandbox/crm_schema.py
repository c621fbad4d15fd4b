"""What HubSpot's CRM defines, as the stand-in serves it: object types, property definitions,
association types, and HubSpot's error body.

Property definitions follow HubSpot's default properties (names, types, field types, options) for
every property the simulated company holds, plus the company's own custom properties and Handoff's
(group ``handoff``), which an installed Handoff writes back to.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

from fastapi.responses import JSONResponse

PROPERTY_NAME = re.compile(r"[a-z][a-z0-9_]*")


class HubSpotError(Exception):
    """An error answered with HubSpot's error body."""

    def __init__(self, status_code: int, category: str, message: str, **extra: Any):
        super().__init__(message)
        self.status_code, self.category, self.message, self.extra = status_code, category, message, extra

    def response(self) -> JSONResponse:
        body = {
            "status": "error",
            "message": self.message,
            "correlationId": str(uuid.uuid4()),
            "category": self.category,
            **self.extra,
        }
        return JSONResponse(body, status_code=self.status_code)


def not_found() -> HubSpotError:
    return HubSpotError(404, "OBJECT_NOT_FOUND", "resource not found")


@dataclass(frozen=True)
class ObjectKind:
    name: str
    type_id: str
    singular: str
    association_name: str  # how HubSpot's v3 association type names call it
    created: str
    modified: str
    group: str
    defaults: tuple[str, ...]  # properties a read returns when none are asked for
    searchable: tuple[str, ...]  # properties a free-text search ``query`` looks in


def _record(
    name, type_id, singular, group, defaults, searchable, created="createdate", modified="hs_lastmodifieddate"
) -> ObjectKind:
    return ObjectKind(name, type_id, singular, singular, created, modified, group, defaults, searchable)


def _activity(name, type_id, singular, searchable, association_name=None) -> ObjectKind:
    return ObjectKind(
        name,
        type_id,
        singular,
        association_name or singular,
        "hs_createdate",
        "hs_lastmodifieddate",
        f"{singular}information",
        ("hs_createdate", "hs_lastmodifieddate", "hs_object_id"),
        searchable,
    )


OBJECT_KINDS = {
    kind.name: kind
    for kind in (
        _record(
            "contacts",
            "0-1",
            "contact",
            "contactinformation",
            ("createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname"),
            ("firstname", "lastname", "email", "jobtitle"),
            modified="lastmodifieddate",
        ),
        _record(
            "companies",
            "0-2",
            "company",
            "companyinformation",
            ("createdate", "domain", "hs_lastmodifieddate", "hs_object_id", "name"),
            ("name", "domain"),
        ),
        _record(
            "deals",
            "0-3",
            "deal",
            "dealinformation",
            (
                "amount",
                "closedate",
                "createdate",
                "dealname",
                "dealstage",
                "hs_lastmodifieddate",
                "hs_object_id",
                "pipeline",
            ),
            ("dealname", "pipeline", "dealstage"),
        ),
        _activity("calls", "0-48", "call", ("hs_call_title", "hs_call_body")),
        _activity("emails", "0-49", "email", ("hs_email_subject",)),
        _activity("meetings", "0-47", "meeting", ("hs_meeting_title", "hs_meeting_body"), "meeting_event"),
        _activity("tasks", "0-27", "task", ("hs_task_body", "hs_task_subject")),
        # Standard objects the simulated company keeps none of: served, empty, as a portal without
        # such records serves them.
        _record(
            "tickets",
            "0-5",
            "ticket",
            "ticketinformation",
            (
                "content",
                "createdate",
                "hs_lastmodifieddate",
                "hs_object_id",
                "hs_pipeline",
                "hs_pipeline_stage",
                "hs_ticket_category",
                "hs_ticket_priority",
                "subject",
            ),
            ("subject", "content"),
        ),
        _record(
            "products",
            "0-7",
            "product",
            "productinformation",
            ("createdate", "description", "hs_lastmodifieddate", "hs_object_id", "name", "price"),
            ("name", "description", "hs_sku"),
        ),
        _record(
            "line_items",
            "0-8",
            "line_item",
            "lineiteminformation",
            ("amount", "createdate", "description", "hs_lastmodifieddate", "hs_object_id", "name", "price", "quantity"),
            ("name",),
        ),
        _record(
            "quotes",
            "0-14",
            "quote",
            "quoteinformation",
            ("hs_createdate", "hs_expiration_date", "hs_lastmodifieddate", "hs_object_id", "hs_status", "hs_title"),
            ("hs_title",),
            created="hs_createdate",
        ),
        _activity("notes", "0-46", "note", ("hs_note_body",)),
        _activity("communications", "0-18", "communication", ("hs_communication_body",)),
        _activity("postal_mail", "0-116", "postal_mail", ("hs_postal_mail_body",)),
    )
}
KIND_ALIASES = {
    alias: kind
    for kind in OBJECT_KINDS.values()
    for alias in (kind.name, kind.type_id, kind.singular, kind.association_name)
}


def object_kind(name: str) -> ObjectKind:
    kind = KIND_ALIASES.get(name.lower())
    if kind is None:
        raise HubSpotError(400, "OBJECT_NOT_FOUND", f"Unable to infer object type from: {name}")
    return kind


@dataclass(frozen=True)
class PropertyDefinition:
    name: str
    label: str
    type: str
    field_type: str
    group_name: str
    options: tuple[tuple[str, str], ...] = ()  # (value, label)
    options_from: str | None = None  # "owners", "pipelines" or "stages": options the account's data defines
    hubspot_defined: bool = True
    read_only: bool = False
    has_unique_value: bool = False
    description: str = ""
    created_at: str | None = None

    def as_json(self, options: tuple[tuple[str, str], ...]) -> dict:
        body = {
            "name": self.name,
            "label": self.label,
            "type": self.type,
            "fieldType": self.field_type,
            "description": self.description,
            "groupName": self.group_name,
            "options": [
                {"label": label, "value": value, "description": "", "displayOrder": order, "hidden": False}
                for order, (value, label) in enumerate(options)
            ],
            "displayOrder": -1,
            "calculated": False,
            "externalOptions": self.options_from is not None,
            "hasUniqueValue": self.has_unique_value,
            "hidden": False,
            "hubspotDefined": self.hubspot_defined,
            "formField": not self.read_only,
            "archived": False,
            "dataSensitivity": "non_sensitive",
            "modificationMetadata": {
                "archivable": not self.hubspot_defined,
                "readOnlyDefinition": self.hubspot_defined,
                "readOnlyValue": self.read_only,
            },
        }
        if self.options_from == "owners":
            body["referencedObjectType"] = "OWNER"
        if self.created_at:
            body["createdAt"] = body["updatedAt"] = self.created_at
        return body

    @classmethod
    def from_json(cls, body: dict) -> PropertyDefinition:
        return cls(
            name=body["name"],
            label=body["label"],
            type=body["type"],
            field_type=body["fieldType"],
            group_name=body["groupName"],
            description=body.get("description", ""),
            options=tuple((o["value"], o["label"]) for o in body.get("options", [])),
            hubspot_defined=False,
            has_unique_value=body.get("hasUniqueValue", False),
            created_at=body.get("createdAt"),
        )


P = PropertyDefinition


def choices(*values: str) -> tuple[tuple[str, str], ...]:
    """Options labelled as HubSpot labels its upper-case internal values (IN_PROGRESS → In progress)."""
    return tuple((value, value.replace("_", " ").capitalize()) for value in values)


def owner(label: str, group: str) -> PropertyDefinition:
    return P("hubspot_owner_id", label, "enumeration", "select", group, options_from="owners")


LIFECYCLE_STAGES = (
    ("subscriber", "Subscriber"),
    ("lead", "Lead"),
    ("marketingqualifiedlead", "Marketing Qualified Lead"),
    ("salesqualifiedlead", "Sales Qualified Lead"),
    ("opportunity", "Opportunity"),
    ("customer", "Customer"),
    ("evangelist", "Evangelist"),
    ("other", "Other"),
)
LEAD_STATUSES = (
    ("NEW", "New"),
    ("OPEN", "Open"),
    ("IN_PROGRESS", "In Progress"),
    ("OPEN_DEAL", "Open Deal"),
    ("UNQUALIFIED", "Unqualified"),
    ("ATTEMPTED_TO_CONTACT", "Attempted to Contact"),
    ("CONNECTED", "Connected"),
    ("BAD_TIMING", "Bad Timing"),
)
ANALYTICS_SOURCES = (
    ("ORGANIC_SEARCH", "Organic Search"),
    ("PAID_SEARCH", "Paid Search"),
    ("EMAIL_MARKETING", "Email Marketing"),
    ("SOCIAL_MEDIA", "Organic Social"),
    ("REFERRALS", "Referrals"),
    ("OTHER_CAMPAIGNS", "Other Campaigns"),
    ("DIRECT_TRAFFIC", "Direct Traffic"),
    ("OFFLINE", "Offline Sources"),
    ("PAID_SOCIAL", "Paid Social"),
)
INDUSTRIES = choices(
    "ACCOUNTING",
    "BANKING",
    "BIOTECHNOLOGY",
    "COMPUTER_HARDWARE",
    "COMPUTER_NETWORK_SECURITY",
    "COMPUTER_SOFTWARE",
    "CONSTRUCTION",
    "CONSUMER_GOODS",
    "EDUCATION_MANAGEMENT",
    "FINANCIAL_SERVICES",
    "HOSPITAL_HEALTH_CARE",
    "INFORMATION_TECHNOLOGY_AND_SERVICES",
    "INSURANCE",
    "INTERNET",
    "LOGISTICS_AND_SUPPLY_CHAIN",
    "MACHINERY",
    "MANAGEMENT_CONSULTING",
    "MARKETING_AND_ADVERTISING",
    "MECHANICAL_OR_INDUSTRIAL_ENGINEERING",
    "MEDICAL_DEVICES",
    "NON_PROFIT_ORGANIZATION_MANAGEMENT",
    "PHARMACEUTICALS",
    "REAL_ESTATE",
    "RETAIL",
    "TELECOMMUNICATIONS",
    "TRANSPORTATION_TRUCKING_RAILROAD",
    "UTILITIES",
)
REJECTION_REASONS = (
    ("bad_fit", "Bad fit"),
    ("bad_timing", "Bad timing"),
    ("no_budget", "No budget"),
    ("duplicate", "Duplicate"),
    ("no_response", "No response"),
    ("competitor", "Competitor"),
)

SPECIFIC_PROPERTIES: dict[str, tuple[PropertyDefinition, ...]] = {
    "contacts": (
        P("email", "Email", "string", "text", "contactinformation"),
        P("firstname", "First Name", "string", "text", "contactinformation"),
        P("lastname", "Last Name", "string", "text", "contactinformation"),
        P("jobtitle", "Job Title", "string", "text", "contactinformation"),
        P("company", "Company Name", "string", "text", "contactinformation"),
        P("country", "Country/Region", "string", "text", "contactinformation"),
        P("lifecyclestage", "Lifecycle Stage", "enumeration", "radio", "contactinformation", LIFECYCLE_STAGES),
        P("hs_lead_status", "Lead Status", "enumeration", "radio", "sales_properties", LEAD_STATUSES),
        owner("Contact owner", "sales_properties"),
        P(
            "hs_analytics_source",
            "Original Source",
            "enumeration",
            "select",
            "analyticsinformation",
            ANALYTICS_SOURCES,
            read_only=True,
        ),
        # The company's own custom property for why sales turned a lead down.
        P(
            "rejection_reason",
            "Rejection reason",
            "enumeration",
            "select",
            "sales_properties",
            REJECTION_REASONS,
            hubspot_defined=False,
        ),
        # Handoff's own properties, installed in the account, which the write-back fills.
        P("handoff_funnel_stage", "Funnel stage (Handoff)", "string", "text", "handoff", hubspot_defined=False),
        P("handoff_sla_state", "SLA state (Handoff)", "string", "text", "handoff", hubspot_defined=False),
        P("handoff_sla_due_at", "SLA due at (Handoff)", "datetime", "date", "handoff", hubspot_defined=False),
        P("handoff_mql_reason", "MQL reason (Handoff)", "string", "text", "handoff", hubspot_defined=False),
        P(
            "handoff_engagement_score",
            "Engagement score (Handoff)",
            "number",
            "number",
            "handoff",
            hubspot_defined=False,
        ),
        P(
            "handoff_first_touch_campaign",
            "First-touch campaign (Handoff)",
            "string",
            "text",
            "handoff",
            hubspot_defined=False,
        ),
        P(
            "handoff_last_touch_campaign",
            "Last-touch campaign (Handoff)",
            "string",
            "text",
            "handoff",
            hubspot_defined=False,
        ),
        P("handoff_recent_content", "Recent content (Handoff)", "string", "textarea", "handoff", hubspot_defined=False),
    ),
    "companies": (
        P("name", "Company name", "string", "text", "companyinformation"),
        P("domain", "Company Domain Name", "string", "text", "companyinformation"),
        P("industry", "Industry", "enumeration", "select", "companyinformation", INDUSTRIES),
        P("numberofemployees", "Number of Employees", "number", "number", "companyinformation"),
        P("country", "Country/Region", "string", "text", "companyinformation"),
        owner("Company owner", "companyinformation"),
    ),
    "deals": (
        P("dealname", "Deal Name", "string", "text", "dealinformation"),
        P("amount", "Amount", "number", "number", "dealinformation"),
        P("dealstage", "Deal Stage", "enumeration", "radio", "dealinformation", options_from="stages"),
        P("pipeline", "Pipeline", "enumeration", "select", "dealinformation", options_from="pipelines"),
        P("closedate", "Close Date", "datetime", "date", "dealinformation"),
        P(
            "dealtype",
            "Deal Type",
            "enumeration",
            "radio",
            "dealinformation",
            (("newbusiness", "New Business"), ("existingbusiness", "Existing Business")),
        ),
        P("closed_lost_reason", "Closed Lost Reason", "string", "textarea", "dealinformation"),
        owner("Deal owner", "dealinformation"),
    ),
    "calls": (
        P("hs_call_title", "Call Title", "string", "text", "callinformation"),
        P("hs_call_body", "Call notes", "string", "textarea", "callinformation"),
        P(
            "hs_call_direction",
            "Call direction",
            "enumeration",
            "select",
            "callinformation",
            choices("INBOUND", "OUTBOUND"),
        ),
        P("hs_call_disposition", "Call outcome", "string", "text", "callinformation"),
        P("hs_call_duration", "Call duration", "number", "number", "callinformation"),
        P(
            "hs_call_status",
            "Call status",
            "enumeration",
            "select",
            "callinformation",
            choices(
                "BUSY",
                "CALLING_CRM_USER",
                "CANCELED",
                "COMPLETED",
                "CONNECTING",
                "FAILED",
                "IN_PROGRESS",
                "MISSED",
                "NO_ANSWER",
                "QUEUED",
                "RINGING",
            ),
        ),
    ),
    "emails": (
        P("hs_email_subject", "Email subject", "string", "text", "emailinformation"),
        P("hs_email_text", "Email body", "string", "textarea", "emailinformation"),
        P(
            "hs_email_direction",
            "Email direction",
            "enumeration",
            "select",
            "emailinformation",
            (
                ("EMAIL", "Email sent from CRM"),
                ("INCOMING_EMAIL", "Incoming email"),
                ("FORWARDED_EMAIL", "Forwarded email"),
            ),
        ),
        P(
            "hs_email_status",
            "Email send status",
            "enumeration",
            "select",
            "emailinformation",
            choices("BOUNCED", "FAILED", "SCHEDULED", "SENDING", "SENT"),
        ),
    ),
    "meetings": (
        P("hs_meeting_title", "Meeting name", "string", "text", "meetinginformation"),
        P("hs_meeting_body", "Meeting description", "string", "textarea", "meetinginformation"),
        P("hs_meeting_start_time", "Meeting start time", "datetime", "date", "meetinginformation"),
        P("hs_meeting_end_time", "Meeting end time", "datetime", "date", "meetinginformation"),
        P(
            "hs_meeting_outcome",
            "Meeting outcome",
            "enumeration",
            "select",
            "meetinginformation",
            choices("SCHEDULED", "COMPLETED", "RESCHEDULED", "NO_SHOW", "CANCELED"),
        ),
        P("hs_meeting_location", "Meeting location", "string", "text", "meetinginformation"),
    ),
    "tickets": (
        P("subject", "Ticket name", "string", "text", "ticketinformation"),
        P("content", "Ticket description", "string", "textarea", "ticketinformation"),
        P("hs_pipeline", "Pipeline", "enumeration", "select", "ticketinformation", options_from="pipelines"),
        P("hs_pipeline_stage", "Ticket status", "enumeration", "select", "ticketinformation", options_from="stages"),
        P(
            "hs_ticket_category",
            "Category",
            "enumeration",
            "checkbox",
            "ticketinformation",
            choices("PRODUCT_ISSUE", "BILLING_ISSUE", "FEATURE_REQUEST", "GENERAL_INQUIRY"),
        ),
        P(
            "hs_ticket_priority",
            "Priority",
            "enumeration",
            "select",
            "ticketinformation",
            choices("LOW", "MEDIUM", "HIGH"),
        ),
        P(
            "source_type",
            "Source",
            "enumeration",
            "select",
            "ticketinformation",
            choices("CHAT", "EMAIL", "FORM", "PHONE"),
        ),
        P("closed_date", "Close date", "datetime", "date", "ticketinformation", read_only=True),
        owner("Ticket owner", "ticketinformation"),
    ),
    "products": (
        P("name", "Name", "string", "text", "productinformation"),
        P("description", "Description", "string", "textarea", "productinformation"),
        P("price", "Unit price", "number", "number", "productinformation"),
        P("hs_sku", "SKU", "string", "text", "productinformation"),
        P("hs_cost_of_goods_sold", "Unit cost", "number", "number", "productinformation"),
        P(
            "hs_recurring_billing_period",
            "Term",
            "string",
            "text",
            "productinformation",
        ),
    ),
    "line_items": (
        P("name", "Name", "string", "text", "lineiteminformation"),
        P("description", "Description", "string", "textarea", "lineiteminformation"),
        P("price", "Unit price", "number", "number", "lineiteminformation"),
        P("quantity", "Quantity", "number", "number", "lineiteminformation"),
        P("amount", "Net price", "number", "number", "lineiteminformation", read_only=True),
        P("hs_product_id", "Product ID", "number", "number", "lineiteminformation"),
        P("discount", "Unit discount", "number", "number", "lineiteminformation"),
    ),
    "quotes": (
        P("hs_title", "Quote name", "string", "text", "quoteinformation"),
        P("hs_expiration_date", "Expiration date", "datetime", "date", "quoteinformation"),
        P(
            "hs_status",
            "Quote approval status",
            "enumeration",
            "select",
            "quoteinformation",
            choices("DRAFT", "APPROVAL_NOT_NEEDED", "PENDING_APPROVAL", "APPROVED", "REJECTED"),
        ),
        P("hs_quote_amount", "Amount", "number", "number", "quoteinformation", read_only=True),
        P("hs_currency", "Currency", "string", "text", "quoteinformation"),
        P("hs_public_url_key", "Public URL key", "string", "text", "quoteinformation", read_only=True),
    ),
    "notes": (P("hs_note_body", "Note body", "string", "html", "noteinformation"),),
    "communications": (
        P("hs_communication_body", "Communication body", "string", "html", "communicationinformation"),
        P(
            "hs_communication_channel_type",
            "Channel type",
            "enumeration",
            "select",
            "communicationinformation",
            choices("SMS", "WHATS_APP", "LINKEDIN_MESSAGE"),
        ),
        P(
            "hs_communication_logged_from",
            "Logged from",
            "enumeration",
            "select",
            "communicationinformation",
            choices("CRM"),
        ),
    ),
    "postal_mail": (P("hs_postal_mail_body", "Postal mail body", "string", "html", "postal_mailinformation"),),
    "tasks": (
        P("hs_task_subject", "Task title", "string", "text", "taskinformation"),
        P("hs_task_body", "Task notes", "string", "textarea", "taskinformation"),
        P(
            "hs_task_status",
            "Task status",
            "enumeration",
            "select",
            "taskinformation",
            choices("NOT_STARTED", "IN_PROGRESS", "WAITING", "COMPLETED", "DEFERRED"),
        ),
        P(
            "hs_task_priority",
            "Priority",
            "enumeration",
            "select",
            "taskinformation",
            choices("NONE", "LOW", "MEDIUM", "HIGH"),
        ),
        P(
            "hs_task_type",
            "Task type",
            "enumeration",
            "select",
            "taskinformation",
            choices("CALL", "EMAIL", "LINKED_IN", "MEETING", "LINKED_IN_CONNECT", "LINKED_IN_MESSAGE", "TODO"),
        ),
        P("hs_task_completion_date", "Completed at", "datetime", "date", "taskinformation", read_only=True),
    ),
}
ACTIVITY_PROPERTIES = (P("hs_timestamp", "Activity date", "datetime", "date", "engagement"),)
MERGEABLE = ("contacts", "companies", "deals", "tickets")


def _catalog(kind: ObjectKind) -> dict[str, PropertyDefinition]:
    system = [
        P("hs_object_id", "Record ID", "number", "number", kind.group, read_only=True),
        P(kind.created, "Create Date", "datetime", "date", kind.group, read_only=True),
        P(kind.modified, "Last Modified Date", "datetime", "date", kind.group, read_only=True),
    ]
    if kind.name in MERGEABLE:
        system.append(
            P("hs_merged_object_ids", "Merged record IDs", "enumeration", "checkbox", kind.group, read_only=True)
        )
    else:
        system += [*ACTIVITY_PROPERTIES, owner("Activity assigned to", kind.group)]
    return {p.name: p for p in (*system, *SPECIFIC_PROPERTIES[kind.name])}


CATALOG = {name: _catalog(kind) for name, kind in OBJECT_KINDS.items()}
# Object types HubSpot defines that the stand-in keeps no records of and serves no object endpoints for.
# Properties v2 still answers for them, as connectors ask it for every type they know; the stand-in lists
# only the properties every HubSpot object has, where HubSpot lists more.
UNRECORDED_TYPE_PROPERTIES = {
    name: (
        P("hs_object_id", "Record ID", "number", "number", group, read_only=True),
        P("hs_createdate", "Create Date", "datetime", "date", group, read_only=True),
        P("hs_lastmodifieddate", "Last Modified Date", "datetime", "date", group, read_only=True),
    )
    for name, group in (
        ("deal_split", "dealsplitinformation"),
        ("form", "forminformation"),
        ("goal_targets", "goaltargetinformation"),
        ("leads", "leadinformation"),
    )
}
FIELD_TYPES = {
    "bool": {"booleancheckbox", "calculation_equation"},
    "enumeration": {"booleancheckbox", "checkbox", "radio", "select", "calculation_equation"},
    "date": {"date"},
    "datetime": {"date"},
    "string": {"file", "text", "textarea", "calculation_equation", "html", "phonenumber"},
    "number": {"number", "calculation_equation"},
}


def check_creatable(definition: PropertyDefinition) -> None:
    """What HubSpot requires of a custom property before it creates one."""
    if not PROPERTY_NAME.fullmatch(definition.name):
        raise HubSpotError(
            400,
            "VALIDATION_ERROR",
            f"Property name {definition.name!r} must start with a lowercase "
            "letter and hold only lowercase letters, digits and underscores",
        )
    if definition.field_type not in FIELD_TYPES.get(definition.type, ()):
        raise HubSpotError(
            400,
            "VALIDATION_ERROR",
            f"{definition.field_type!r} is not a valid fieldType for a property of type {definition.type!r}",
        )


# HubSpot-defined association type ids by (from, to); some pairs also have a "Primary" label.
UNLABELED_TYPE_IDS = {
    ("contacts", "tickets"): 15,
    ("tickets", "contacts"): 16,
    ("tickets", "companies"): 339,
    ("companies", "tickets"): 340,
    ("deals", "tickets"): 27,
    ("tickets", "deals"): 28,
    ("deals", "line_items"): 19,
    ("line_items", "deals"): 20,
    ("deals", "quotes"): 63,
    ("quotes", "deals"): 64,
    ("quotes", "line_items"): 67,
    ("line_items", "quotes"): 68,
    ("quotes", "contacts"): 69,
    ("contacts", "quotes"): 70,
    ("quotes", "companies"): 71,
    ("companies", "quotes"): 72,
    ("companies", "notes"): 189,
    ("notes", "companies"): 190,
    ("contacts", "notes"): 201,
    ("notes", "contacts"): 202,
    ("deals", "notes"): 213,
    ("notes", "deals"): 214,
    ("tickets", "notes"): 227,
    ("notes", "tickets"): 228,
    ("contacts", "communications"): 81,
    ("communications", "contacts"): 82,
    ("companies", "communications"): 87,
    ("communications", "companies"): 88,
    ("deals", "communications"): 85,
    ("communications", "deals"): 86,
    ("contacts", "companies"): 279,
    ("companies", "contacts"): 280,
    ("deals", "companies"): 341,
    ("companies", "deals"): 342,
    ("contacts", "deals"): 4,
    ("deals", "contacts"): 3,
    ("calls", "contacts"): 194,
    ("contacts", "calls"): 193,
    ("calls", "companies"): 182,
    ("companies", "calls"): 181,
    ("calls", "deals"): 206,
    ("deals", "calls"): 205,
    ("emails", "contacts"): 198,
    ("contacts", "emails"): 197,
    ("emails", "companies"): 186,
    ("companies", "emails"): 185,
    ("emails", "deals"): 210,
    ("deals", "emails"): 209,
    ("meetings", "contacts"): 200,
    ("contacts", "meetings"): 199,
    ("meetings", "companies"): 188,
    ("companies", "meetings"): 187,
    ("meetings", "deals"): 212,
    ("deals", "meetings"): 211,
    ("tasks", "contacts"): 204,
    ("contacts", "tasks"): 203,
    ("tasks", "companies"): 192,
    ("companies", "tasks"): 191,
    ("tasks", "deals"): 216,
    ("deals", "tasks"): 215,
}
PRIMARY_TYPE_IDS = {
    ("companies", "tickets"): 25,
    ("tickets", "companies"): 26,
    ("contacts", "companies"): 1,
    ("companies", "contacts"): 2,
    ("deals", "companies"): 5,
    ("companies", "deals"): 6,
}


# The pipeline every portal has for tickets, until its owners change it.
DEFAULT_TICKET_PIPELINE = {
    "id": "0",
    "label": "Support Pipeline",
    "displayOrder": 0,
    "stages": [
        {"id": str(n), "label": label, "displayOrder": n - 1, "metadata": {"ticketState": state, "isClosed": closed}}
        for n, label, state, closed in (
            (1, "New", "OPEN", "false"),
            (2, "Waiting on contact", "OPEN", "false"),
            (3, "Waiting on us", "OPEN", "false"),
            (4, "Closed", "CLOSED", "true"),
        )
    ],
}


def association_name(from_kind: ObjectKind, to_kind: ObjectKind, primary: bool) -> str:
    """HubSpot's v3 name of an association type (``contact_to_company``, ``…_unlabeled``)."""
    name = f"{from_kind.association_name}_to_{to_kind.association_name}"
    has_primary = (from_kind.name, to_kind.name) in PRIMARY_TYPE_IDS
    return name if primary or not has_primary else f"{name}_unlabeled"
