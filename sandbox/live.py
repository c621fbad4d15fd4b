"""Live mode: the simulated company keeps living, in real time, while the sandbox serves.

At ``pace`` events a minute, one thing happens at a time:

| event | what changes |
|---|---|
| visit | a new anonymous visitor lands on the website (Segment ``page``) |
| page view | a visitor reads another page (``page``) |
| form fill | an anonymous visitor fills a form: Segment ``identify`` + ``track`` "Form Submitted"; a new Marketo lead with New Lead and Fill Out Form activities |
| MQL | a lead reaches the score threshold (Change Score, Change Data Value activities) and is handed to sales: its CRM contact is created, or updated, with lifecycle stage MQL and an owner from the owners table |
| sales touch | the owner logs a call, e-mail, meeting or task on an MQL contact (an engagement associated with it) |
| duplicate | a rep creates a second contact for an MQL person, under another e-mail address |
| clean-up | a duplicate is merged into the original, or deleted |

Website calls go, in Segment batch requests, to a tracking URL (by default the sandbox's own collector).
Everything else is written through the store's transaction API, so the stand-ins serve it at once, and is
announced by webhook once committed. The same seed and starting state give the same sequence of changes;
only their timestamps follow the clock.
"""

from __future__ import annotations

import json
import logging
import random
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import httpx

from sandbox.crm_schema import association_name, object_kind
from sandbox.dataset import iso
from sandbox.marketing import LEAD_FIELDS_BY_NAME
from sandbox.webhooks import contact_created, contact_deleted, contacts_merged, object_created, property_changed
from sandbox.website import SEGMENT_PREFIX, TrackingError, segment_batches, send_batch

if TYPE_CHECKING:
    from sandbox.app import Sandbox

log = logging.getLogger(__name__)

MQL = "marketingqualifiedlead"
# HubSpot's lifecycle stages from MQL on: a contact there was handed to sales already, and stages do not
# move backwards.
HANDED_OFF_STAGES = {MQL, "salesqualifiedlead", "opportunity", "customer", "evangelist"}
MQL_SCORE = 100
# Marketo's standard activity types.
FILL_OUT_FORM, NEW_LEAD, CHANGE_DATA_VALUE, CHANGE_SCORE = 2, 12, 13, 22
# How much of the past live mode picks up at start: the most recent open leads and MQLs.
CANDIDATES_FROM_STORE = 200
MAX_VISITORS = 500
MAX_UNSENT_CALLS = 10_000
PAUSED_POLL_S = 0.02
MERGE_SHARE = 0.7  # of duplicates cleaned up; the rest are deleted
SYNC_SOURCE = "INTEGRATION"  # changes made by the marketing-automation sync
REP_SOURCE = "CRM_UI"  # changes a sales rep makes by hand
# A step creates or changes at most two records: a lead and its contact, or a duplicate and its original.
MOST_RECORDS_PER_STEP = 2

WEBSITE = "https://www.handoff-demo.example"
PAGES = {
    "/": "Home",
    "/product": "Product",
    "/pricing": "Pricing",
    "/customers": "Customers",
    "/blog/slas-for-revenue-teams": "SLAs for revenue teams",
    "/whitepaper/handoff-playbook": "The handoff playbook",
    "/demo": "Request a demo",
}
FORMS = [
    (2001, "Request a demo", "/demo"),
    (2002, "Handoff playbook download", "/whitepaper/handoff-playbook"),
    (2003, "Newsletter sign-up", "/blog/slas-for-revenue-teams"),
]
CAMPAIGNS = [
    None,
    None,
    {"name": "handoff-playbook", "source": "google", "medium": "cpc", "term": "lead handoff sla"},
    {"name": "spring-webinar", "source": "linkedin", "medium": "paid-social"},
    {"name": "monthly-newsletter", "source": "newsletter", "medium": "email"},
]
GIVEN_NAMES = ["Alma", "Bruno", "Carla", "Dev", "Elif", "Farid", "Greta", "Hugo", "Ivy", "Jonas", "Kofi", "Lena"]
FAMILY_NAMES = ["Andersen", "Bianchi", "Costa", "Demir", "Eriksen", "Fontaine", "Gruber", "Hale", "Ito", "Jovanovic"]
COMPANIES = ["Northwind", "Contoso", "Fabrikam", "Tailspin", "Litware", "Proseware", "Adatum", "Wingtip"]
EMAIL_SUBJECTS = [
    "Following up on your demo request",
    "The handoff playbook, and a question",
    "Quick intro",
    "Can we find 20 minutes?",
]
ENGAGEMENT_TYPES = ("calls", "emails", "meetings", "tasks")
WEBPAGE_IDS = {path: 3001 + index for index, path in enumerate(PAGES)}
USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"


@dataclass(frozen=True)
class LiveSettings:
    pace: float = 60.0  # events per minute
    seed: int = 7
    tracking_url: str | None = None  # default: the sandbox's own collector
    tracking_write_key: str | None = None  # default: the sandbox's own write key

    def __post_init__(self) -> None:
        if self.pace <= 0:
            raise ValueError(f"live mode's pace must be positive, got {self.pace}")


@dataclass
class Visitor:
    anonymous_id: str
    campaign: dict | None
    lead_id: int | None = None


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _next_id(db: sqlite3.Connection, table: str, where: str = "", params: tuple = ()) -> int:
    # Inside the write transaction, so two writers never take the same id.
    return db.execute(f"select coalesce(max(id), 0) + 1 from {table} {where}", params).fetchone()[0]


def _date_properties(object_type: str) -> tuple[str, str]:
    return ("createdate", "lastmodifieddate") if object_type == "contacts" else ("hs_createdate", "hs_lastmodifieddate")


def _record_history(
    db: sqlite3.Connection, object_type: str, object_id: int, values: dict, stamp: str, source: str
) -> None:
    db.executemany(
        "insert into crm_property_history (object_type, id, property, value, timestamp, source_type) "
        "values (?, ?, ?, ?, ?, ?)",
        [(object_type, object_id, name, value, stamp, source) for name, value in values.items()],
    )


def _create_object(db: sqlite3.Connection, object_type: str, values: dict, stamp: str, source: str) -> int:
    object_id = _next_id(db, "crm_objects", "where object_type = ?", (object_type,))
    created, modified = _date_properties(object_type)
    properties = {**values, created: stamp, modified: stamp, "hs_object_id": str(object_id)}
    db.execute(
        "insert into crm_objects (object_type, id, created_at, updated_at, properties) values (?, ?, ?, ?, ?)",
        (object_type, object_id, stamp, stamp, json.dumps(properties)),
    )
    _record_history(db, object_type, object_id, values, stamp, source)
    return object_id


def _update_object(
    db: sqlite3.Connection, object_type: str, object_id: int, properties: dict, values: dict, stamp: str, source: str
) -> dict:
    """Apply the values that differ from ``properties`` (the record's current ones); return those."""
    changed = {name: value for name, value in values.items() if properties.get(name) != value}
    if changed:
        updated = {**properties, **changed, _date_properties(object_type)[1]: stamp}
        db.execute(
            "update crm_objects set properties = ?, updated_at = ? where object_type = ? and id = ?",
            (json.dumps(updated), stamp, object_type, object_id),
        )
        _record_history(db, object_type, object_id, changed, stamp, source)
    return changed


def _live_contact(db: sqlite3.Connection, contact_id: int) -> dict | None:
    row = db.execute(
        "select properties from crm_objects where object_type = 'contacts' and id = ? "
        "and archived = 0 and merged_into is null",
        (contact_id,),
    ).fetchone()
    return json.loads(row["properties"]) if row else None


def _page_properties(path: str) -> dict:
    return {"path": path, "url": f"{WEBSITE}{path}", "title": PAGES[path], "referrer": "", "search": ""}


def _field(name: str) -> tuple[int, str]:
    """A lead field as Marketo's Change activities name it: (field id, display name)."""
    field = LEAD_FIELDS_BY_NAME[name]
    return field.id, field.display_name


def _engagement_properties(kind: str, rng: random.Random, now: datetime) -> dict[str, str]:
    stamp = iso(now)
    if kind == "calls":
        return {
            "hs_timestamp": stamp,
            "hs_call_title": "Discovery call",
            "hs_call_direction": "OUTBOUND",
            "hs_call_status": "COMPLETED",
            "hs_call_duration": str(rng.randint(60, 1800) * 1000),
        }
    if kind == "emails":
        return {
            "hs_timestamp": stamp,
            "hs_email_direction": "EMAIL",
            "hs_email_status": "SENT",
            "hs_email_subject": rng.choice(EMAIL_SUBJECTS),
        }
    if kind == "meetings":
        return {
            "hs_timestamp": stamp,
            "hs_meeting_title": "Introduction",
            "hs_meeting_start_time": stamp,
            "hs_meeting_end_time": iso(now + timedelta(minutes=30)),
            "hs_meeting_outcome": "COMPLETED",
        }
    return {
        "hs_timestamp": stamp,
        "hs_task_subject": "Follow up on the hand-raise",
        "hs_task_status": "COMPLETED",
        "hs_task_type": rng.choice(("CALL", "EMAIL", "TODO")),
    }


class LiveCompany:
    """The company's life in real time; ``start`` runs it on a background thread, ``stop`` ends it."""

    def __init__(self, sandbox: Sandbox, settings: LiveSettings, tracking_url: str, write_key: str):
        self.store = sandbox.store
        self.webhooks = sandbox.webhooks
        self.settings = settings
        self.tracking_url = tracking_url
        self.write_key = write_key
        self.rng = random.Random(settings.seed)
        self.visitors: list[Visitor] = []
        self.duplicates: list[tuple[int, int]] = []  # (original, duplicate) contact ids
        self.owners = [
            row["id"]
            for row in self.store.query("select id, body from owners order by id")
            if not json.loads(row["body"]).get("archived")
        ]
        self.open_leads = [
            row["id"]
            for row in self.store.query(
                "select id from marketing_leads where deleted_at is null order by id desc limit ?",
                (CANDIDATES_FROM_STORE,),
            )
        ]
        self.open_mqls = [
            row["id"]
            for row in self.store.query(
                """select id from crm_objects where object_type = 'contacts' and archived = 0 and merged_into is null
               and json_extract(properties, '$.lifecyclestage') = ? order by id desc limit ?""",
                (MQL, CANDIDATES_FROM_STORE),
            )
        ]
        self._unsent_calls: list[bytes] = []
        self._website_failing = False
        self._client = httpx.Client(timeout=5)
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, serving: Callable[[], bool] = lambda: True) -> LiveCompany:
        """Live from a background thread, pausing whenever ``serving()`` is false (the collector is not
        up yet, or shutting down), so no call is sent where nobody listens."""
        self._thread = threading.Thread(target=self._live, args=(serving,), name="live-company", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._thread:
            self._thread.join(timeout=15)
            self._thread = None
        self._client.close()

    def _live(self, serving: Callable[[], bool]) -> None:
        interval = 60 / self.settings.pace
        next_step = time.monotonic() + interval
        while not self._stopping.wait(max(0.0, next_step - time.monotonic())):
            if not serving():
                next_step = time.monotonic() + PAUSED_POLL_S
                continue
            try:
                self.step()
            except Exception:
                log.exception("live mode: a step failed; the company carries on")
            # After a stall, carry on at pace rather than catching up in a burst.
            next_step = max(next_step + interval, time.monotonic() - interval)

    def step(self) -> None:
        """One thing happens at the company."""
        anonymous = [visitor for visitor in self.visitors if visitor.lead_id is None]
        happenings = [
            (self._visit, 30),
            (self._view_page, 20 if self.visitors else 0),
            (self._fill_form, 20 if anonymous else 0),
            (self._qualify, 12 if self.open_leads else 0),
            (self._touch, 12 if self.open_mqls and self.owners else 0),
            (self._create_duplicate, 2 if self.open_mqls and self.owners else 0),
            (self._clean_up_duplicate, 4 if self.duplicates else 0),
        ]
        happen = self.rng.choices([action for action, _ in happenings], [weight for _, weight in happenings])[0]
        happen(datetime.now(UTC))
        self._send_website_calls()

    def change_records(self, count: int) -> None:
        """Live flat out, without waiting between steps, until at least ``count`` CRM records and
        marketing leads were created or changed: a burst of the company's ordinary life (updates,
        new activities and website events, duplicates merged or deleted), as a benchmark's
        "1 % of records changed"."""
        since = iso(datetime.now(UTC))
        # Counting scans two tables, so it is done only as often as the count could have been reached.
        while (missing := count - self.records_changed_since(since)) > 0:
            for _ in range(max(1, missing // MOST_RECORDS_PER_STEP)):
                self.step()

    def records_changed_since(self, stamp: str) -> int:
        """CRM records and marketing leads created or changed at or after ``stamp``."""
        return self.store.query_one(
            """select (select count(*) from crm_objects where updated_at >= ?)
                      + (select count(*) from marketing_leads where updated_at >= ?) as changed""",
            (stamp, stamp),
        )["changed"]

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def _website_call(self, kind: str, visitor: Visitor, path: str, now: datetime, **fields: object) -> None:
        context = {
            "page": _page_properties(path),
            "userAgent": USER_AGENT,
            "library": {"name": "handoff-sandbox-website", "version": "1"},
        }
        if visitor.campaign:
            context["campaign"] = visitor.campaign
        call = {
            "type": kind,
            "messageId": self._uuid(),
            "anonymousId": visitor.anonymous_id,
            "userId": None,
            "timestamp": iso(now),
            "context": context,
            **fields,
        }
        self._unsent_calls.append(json.dumps(call, separators=(",", ":")).encode())

    def _page(self, visitor: Visitor, now: datetime) -> None:
        path = self.rng.choice(list(PAGES))
        self._website_call("page", visitor, path, now, name=PAGES[path], properties=_page_properties(path))

    def _visit(self, now: datetime) -> None:
        visitor = Visitor(self._uuid(), self.rng.choice(CAMPAIGNS))
        self.visitors.append(visitor)
        del self.visitors[:-MAX_VISITORS]
        self._page(visitor, now)

    def _view_page(self, now: datetime) -> None:
        self._page(self.rng.choice(self.visitors), now)

    def _fill_form(self, now: datetime) -> None:
        visitor = self.rng.choice([visitor for visitor in self.visitors if visitor.lead_id is None])
        form_id, form_name, path = self.rng.choice(FORMS)
        first, last, company = self.rng.choice(GIVEN_NAMES), self.rng.choice(FAMILY_NAMES), self.rng.choice(COMPANIES)
        stamp = iso(now)
        query = "&".join(f"utm_{key}={value}" for key, value in (visitor.campaign or {}).items())
        with self.store.transaction() as db:
            lead_id = _next_id(db, "marketing_leads")
            lead = {
                "id": lead_id,
                "email": f"{first}.{last}.{lead_id}@{company}.example".lower(),
                "firstName": first,
                "lastName": last,
                "company": company,
                "leadScore": self.rng.randint(10, 60),
                "leadStatus": "New",
                "leadSource": "Website",
                "createdAt": stamp,
                "updatedAt": stamp,
                "deletedAt": None,
            }
            db.execute(
                "insert into marketing_leads (id, email, updated_at, deleted_at, body) values (?, ?, ?, ?, ?)",
                (lead_id, lead["email"], stamp, None, json.dumps(lead)),
            )
            self._activity(
                db,
                lead_id,
                NEW_LEAD,
                stamp,
                None,
                {
                    "Created Date": stamp[:10],
                    "Form Name": form_name,
                    "Lead Source": "Website",
                    "Source Type": "Web form fillout",
                },
            )
            self._activity(
                db,
                lead_id,
                FILL_OUT_FORM,
                stamp,
                (form_id, form_name),
                {
                    "Form Fields": json.dumps(
                        {"Email": lead["email"], "FirstName": first, "LastName": last, "Company": company}
                    ),
                    "Query Parameters": query,
                    "Referrer URL": "",
                    "User Agent": USER_AGENT,
                    "Webpage ID": WEBPAGE_IDS[path],
                },
            )
        visitor.lead_id = lead_id
        self.open_leads.append(lead_id)
        traits = {"email": lead["email"], "firstName": first, "lastName": last, "company": company}
        self._website_call("identify", visitor, path, now, traits=traits)
        self._website_call(
            "track", visitor, path, now, event="Form Submitted", properties={"formId": form_id, "formName": form_name}
        )
        self.webhooks.notify_marketing(
            "lead.created",
            lead_id,
            lead["email"],
            {
                name: lead[name]
                for name in ("email", "firstName", "lastName", "company", "leadScore", "leadStatus", "leadSource")
            },
            stamp,
        )

    @staticmethod
    def _activity(
        db: sqlite3.Connection,
        lead_id: int,
        type_id: int,
        stamp: str,
        primary: tuple[int, str] | None,
        attributes: dict,
    ) -> None:
        activity_id = _next_id(db, "marketing_activities")
        activity = {
            "id": activity_id,
            "marketoGUID": str(activity_id),
            "leadId": lead_id,
            "activityDate": stamp,
            "activityTypeId": type_id,
            **({"primaryAttributeValueId": primary[0], "primaryAttributeValue": primary[1]} if primary else {}),
            "attributes": [{"name": name, "value": value} for name, value in attributes.items()],
        }
        db.execute(
            "insert into marketing_activities (id, lead_id, activity_date, activity_type_id, body) "
            "values (?, ?, ?, ?, ?)",
            (activity_id, lead_id, stamp, type_id, json.dumps(activity)),
        )

    def hand_over_a_lead(self) -> int:
        """Qualify open leads until one is handed to sales, now; returns its CRM contact's id."""
        while self.open_leads:
            contact_id = self._qualify(datetime.now(UTC))
            if contact_id is not None:
                return contact_id
        raise LookupError("live mode has no open lead left to qualify")

    def _qualify(self, now: datetime) -> int | None:
        """Marketing qualifies a lead and hands it to sales; returns the CRM contact handed over."""
        lead_id = self.open_leads.pop(self.rng.randrange(len(self.open_leads)))
        assigned_owner = self.rng.choice(self.owners) if self.owners else None
        stamp = iso(now)
        with self.store.transaction() as db:
            row = db.execute(
                "select body from marketing_leads where id = ? and deleted_at is null", (lead_id,)
            ).fetchone()
            lead = json.loads(row["body"]) if row else {}
            if not lead.get("email"):
                return None
            found = db.execute(
                """select id, properties from crm_objects where object_type = 'contacts' and archived = 0
                   and merged_into is null and lower(json_extract(properties, '$.email')) = lower(?)
                   order by id limit 1""",
                (lead["email"],),
            ).fetchone()
            contact = json.loads(found["properties"]) if found else None
            if (contact or {}).get("lifecyclestage") in HANDED_OFF_STAGES:
                return None
            old_score, old_status = lead.get("leadScore"), lead.get("leadStatus")
            lead.update(leadScore=max(MQL_SCORE, int(old_score or 0)), leadStatus="MQL", updatedAt=stamp)
            db.execute(
                "update marketing_leads set updated_at = ?, body = ? where id = ?", (stamp, json.dumps(lead), lead_id)
            )
            self._activity(
                db,
                lead_id,
                CHANGE_SCORE,
                stamp,
                _field("leadScore"),
                {
                    "Change Value": f"+{lead['leadScore'] - int(old_score or 0)}",
                    "New Value": lead["leadScore"],
                    "Old Value": old_score,
                    "Reason": "Score threshold reached",
                },
            )
            self._activity(
                db,
                lead_id,
                CHANGE_DATA_VALUE,
                stamp,
                _field("leadStatus"),
                {
                    "New Value": "MQL",
                    "Old Value": old_status,
                    "Reason": "Marketing qualified",
                    "Source": "Marketo flow action",
                },
            )
            handoff = {
                "lifecyclestage": MQL,
                "hubspot_owner_id": (contact or {}).get("hubspot_owner_id") or assigned_owner,
            }
            if contact is None:
                contact_id = _create_object(
                    db,
                    "contacts",
                    {
                        "email": lead["email"],
                        "firstname": lead.get("firstName"),
                        "lastname": lead.get("lastName"),
                        **handoff,
                    },
                    stamp,
                    SYNC_SOURCE,
                )
                events = [contact_created(contact_id, SYNC_SOURCE)]
                changed = handoff
            else:
                contact_id = found["id"]
                events = []
                changed = _update_object(db, "contacts", contact_id, contact, handoff, stamp, SYNC_SOURCE)
        self.open_mqls.append(contact_id)
        events += [property_changed(contact_id, name, value, SYNC_SOURCE) for name, value in changed.items()]
        self.webhooks.notify_crm(events, _ms(now))
        self.webhooks.notify_marketing(
            "lead.updated", lead_id, lead["email"], {"leadScore": lead["leadScore"], "leadStatus": "MQL"}, stamp
        )
        return contact_id

    def _touch(self, now: datetime) -> None:
        contact_id = self.rng.choice(self.open_mqls)
        kind = self.rng.choice(ENGAGEMENT_TYPES)
        properties = _engagement_properties(kind, self.rng, now)
        fallback_owner = self.rng.choice(self.owners)
        with self.store.transaction() as db:
            contact = _live_contact(db, contact_id)
            if contact is None:
                self.open_mqls.remove(contact_id)
                return
            owner = contact.get("hubspot_owner_id") or fallback_owner
            engagement_id = _create_object(db, kind, {**properties, "hubspot_owner_id": owner}, iso(now), REP_SOURCE)
            # One record per association, as HubSpot keeps it; the stand-in reads it from either side.
            db.execute(
                "insert into crm_associations (from_type, from_id, to_type, to_id, association_type) "
                "values (?, ?, 'contacts', ?, ?)",
                (
                    kind,
                    engagement_id,
                    contact_id,
                    association_name(object_kind(kind), object_kind("contacts"), primary=False),
                ),
            )
        self.webhooks.notify_crm([object_created(kind, engagement_id, REP_SOURCE)], _ms(now))

    def _create_duplicate(self, now: datetime) -> None:
        original_id = self.rng.choice(self.open_mqls)
        owner = self.rng.choice(self.owners)
        phone = f"+1 555 {self.rng.randint(100, 999)} {self.rng.randint(1000, 9999)}"
        with self.store.transaction() as db:
            original = _live_contact(db, original_id)
            if original is None:
                return
            first, last = original.get("firstname") or "unknown", original.get("lastname") or "person"
            values = {
                "email": f"{first}.{last}.{self._uuid()[:8]}@mail.example".lower(),
                "firstname": first,
                "lastname": last,
                "phone": phone,
                "lifecyclestage": "lead",
                "hubspot_owner_id": owner,
            }
            duplicate_id = _create_object(db, "contacts", values, iso(now), REP_SOURCE)
        self.duplicates.append((original_id, duplicate_id))
        self.webhooks.notify_crm(
            [
                contact_created(duplicate_id, REP_SOURCE),
                *(property_changed(duplicate_id, name, value, REP_SOURCE) for name, value in values.items()),
            ],
            _ms(now),
        )

    def _clean_up_duplicate(self, now: datetime) -> None:
        original_id, duplicate_id = self.duplicates.pop(0)
        merge = self.rng.random() < MERGE_SHARE
        stamp = iso(now)
        with self.store.transaction() as db:
            original, duplicate = _live_contact(db, original_id), _live_contact(db, duplicate_id)
            if original is None or duplicate is None:
                return
            if merge:
                # The primary keeps its values and takes over those it lacks.
                # (The stand-in derives hs_merged_object_ids from merged_into.)
                moved = {
                    name: value
                    for name, value in duplicate.items()
                    if value not in (None, "") and original.get(name) in (None, "")
                }
                _update_object(db, "contacts", original_id, original, moved, stamp, REP_SOURCE)
                db.execute(
                    "update crm_objects set merged_into = ?, updated_at = ? where object_type = 'contacts' and id = ?",
                    (original_id, stamp, duplicate_id),
                )
                event = contacts_merged(original_id, [duplicate_id], len(moved), REP_SOURCE)
            else:
                db.execute(
                    "update crm_objects set archived = 1, archived_at = ?, updated_at = ? "
                    "where object_type = 'contacts' and id = ?",
                    (stamp, stamp, duplicate_id),
                )
                event = contact_deleted(duplicate_id, REP_SOURCE)
        self.webhooks.notify_crm([event], _ms(now))

    def _send_website_calls(self) -> None:
        done = 0
        for batch in segment_batches(self._unsent_calls):
            try:
                send_batch(self._client, self.tracking_url, self.write_key, batch, attempts=1)
            except TrackingError as error:
                if error.retryable:
                    if not self._website_failing:
                        log.warning("live mode: website calls not accepted yet, kept to resend: %s", error)
                    self._website_failing = True
                    break
                log.error("live mode: %d website calls refused, dropped: %s", len(batch), error)
            self._website_failing = False
            done += len(batch)
        del self._unsent_calls[:done]
        del self._unsent_calls[:-MAX_UNSENT_CALLS]


class SandboxBackground:
    """Webhook deliveries, and live mode when asked for, while the server serves: started with it,
    and stopped before it stops, so live mode never talks to a server that is closing."""

    def __init__(self, sandbox: Sandbox, live: LiveSettings | None, base_url: str, serving: Callable[[], bool]):
        self.sandbox = sandbox
        self.live = live
        self.base_url = base_url
        self.serving = serving
        self._company: LiveCompany | None = None

    def start(self) -> None:
        self.sandbox.webhooks.start()
        if self.live:
            tracking_url = self.live.tracking_url or f"{self.base_url}{SEGMENT_PREFIX}"
            self._company = LiveCompany(
                self.sandbox, self.live, tracking_url, self.live.tracking_write_key or self.sandbox.website.write_key
            )
            self._company.start(serving=self.serving)

    def stop(self) -> None:
        if self._company:
            self._company.stop()
            self._company = None
        self.sandbox.webhooks.stop()
