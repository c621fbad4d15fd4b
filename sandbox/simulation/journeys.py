"""A person's journey: from first visit (or an offline import) through marketing, handoffs to sales
and back, to wherever they are at ``now``; with the person's ground truth."""

from __future__ import annotations

import heapq
import random
from bisect import bisect_left
from itertools import count

from sandbox.simulation.accounts import TITLES
from sandbox.simulation.catalog import BLOG_POSTS, Page, Program, Source, campaign_source, slug
from sandbox.simulation.clock import DAY, HOUR
from sandbox.simulation.company import Company
from sandbox.simulation.crm_records import CrmRecord
from sandbox.simulation.handoffs import Handoff
from sandbox.simulation.leads import (
    CLICK_EMAIL,
    DELETE_LEAD,
    EMAIL_DELIVERED,
    FILL_OUT_FORM,
    MERGE_LEADS,
    OPEN_EMAIL,
    SEND_EMAIL,
    VISIT_WEBPAGE,
    Lead,
)
from sandbox.simulation.sampling import Weighted, clamp

MQL_SCORE = 100

# Shares of people whose journeys take these turns.
OFFLINE_SHARE = 0.2  # first known from a tradeshow or list import, not the website
PERSONAL_EMAIL_SHARE = 0.12  # use a free-mail address, so the CRM cannot tie them to their company
DUPLICATE_SHARE = 0.03  # of known people: sign up again with another address
DELETION_SHARE = 0.008  # of known people: ask to be erased
PERSONAL_PROVIDERS = ["gmail.com", "outlook.com", "yahoo.com", "icloud.com", "proton.me"]

# Marketing events on a person's own timeline.
VISIT, EMAIL_CLICK_VISIT, NURTURE_EMAIL, WEBINAR_INVITE, WEBINAR_LIVE, WEBINAR_ON_DEMAND = range(6)
MAX_PAGES = 12
DEFECTS = ("invalid_email", "missing_timestamp", "unknown_enum_value")
# Values some import wrote that are not in the field's vocabulary.
UNKNOWN_LIFECYCLE_STAGE = "prospect"  # HubSpot's stages do not include it
UNKNOWN_LEAD_STATUS = "Prospect"  # the company's lead statuses are Nurture, MQL and Recycled
IMPORTED_FIT_SHIFT = 0.05  # tradeshow and syndication lists are bought for fit


class Journey:
    """One person, from first visit to wherever they are at ``now``, written as it happens."""

    def __init__(self, company: Company, number: int, arrival: int, territory: str):
        self.company = company
        rng = company.rng
        self.number = number
        self.person_id = f"p{number}"
        self.account = company.account_picker.draw(territory, rng)
        self.first_name, self.last_name, work_email = self.account.next_employee()
        self.title, title_fit = TITLES.draw(rng)
        personal = f"{self.first_name.lower()}.{self.last_name.lower()}{company.personal_number(number)}"
        provider = rng.choice(PERSONAL_PROVIDERS)
        self.email = f"{personal}@{provider}" if rng.random() < PERSONAL_EMAIL_SHARE else work_email
        # Drawn for everyone, so a different malformed share changes defects and nothing else.
        defect_roll, defect, broken_email = rng.random(), rng.choice(DEFECTS), self._broken(self.email, rng)
        self.defect = defect if defect_roll < company.malformed_share else None
        if self.defect == "invalid_email":
            self.email = broken_email
        self.imported = None
        if rng.random() < OFFLINE_SHARE:
            batch = bisect_left(company.catalog.import_times, arrival)
            if batch < len(company.catalog.imports):
                self.imported = company.catalog.imports[batch]
        self.first_source = None if self.imported else company.catalog.first_visits.draw(rng)
        fit_shift, interest_shift = (
            (self.first_source.fit_shift, self.first_source.interest_shift)
            if self.first_source
            else (IMPORTED_FIT_SHIFT, 0.0)
        )
        self.fit = clamp(0.5 * self.account.fit + 0.5 * title_fit + rng.gauss(0, 0.08) + fit_shift)
        self.interest = clamp(rng.random() ** 1.8 + interest_shift)
        self.arrival = self.imported[0] if self.imported else arrival
        self.erasure_delay = rng.expovariate(1 / (90 * DAY)) if rng.random() < DELETION_SHARE else None
        self.signs_up_twice = rng.random() < DUPLICATE_SHARE
        self.horizon = company.clock.last  # nothing of this person happens after it
        self.devices: list[str] = []
        self.device_lead: dict[str, Lead] = {}
        self.lead: Lead | None = None
        self.leads: list[Lead] = []
        self.contact: CrmRecord | None = None
        self.contacts: list[CrmRecord] = []
        self.deals: list[CrmRecord] = []
        self.handoffs: list[Handoff] = []
        self.stage = "visitor"
        self.erased_at: int | None = None
        self.nurture = company.catalog.early_nurture
        self.nurture_position = 0
        self.queue: list = []
        self._queued = count()

    @staticmethod
    def _broken(email: str, rng: random.Random) -> str:
        local, domain = email.split("@")
        return rng.choice(
            [f"{local}@{domain.rsplit('.', 1)[0]}", f"{local}.{domain}", f"{local} @{domain}", f"{local}@@{domain}"]
        )

    # -- the whole journey

    def run(self) -> None:
        resume, source = self.arrival, self.first_source
        if self.imported:
            self._import()
        while resume is not None:
            mql = self._market(resume, source)
            if mql is None:
                break
            handoff = Handoff(self, self.lead, self._contact_for_handoff(mql[0]), *mql)
            self.handoffs.append(handoff)
            resume, source = handoff.work(), None
        self._finish()

    def _finish(self) -> None:
        if self.signs_up_twice and self.lead is not None:
            self._sign_up_again()
        if self.lead is not None and self.erasure_delay is not None and self.horizon < self.company.clock.last:
            self._erase(self.horizon)
        true_lifecycle = self.contact.properties["lifecyclestage"] if self.contact else None
        defect = self._apply_defect()
        for record in (*self.contacts, *self.deals):
            record.write()
        for lead in self.leads:
            lead.write()
        write = self.company.write
        write(
            "truth_people",
            {
                "personId": self.person_id,
                "email": self.lead.email if self.lead else None,
                "crmContactIds": [c.id for c in self.contacts],
                "crmContactId": self.contact.id if self.contact and self.erased_at is None else None,
                "marketingLeadId": self.lead.id if self.lead else None,
                "marketingLeadIds": [lead.id for lead in self.leads],
                "anonymousIds": self.devices,
                "crmCompanyId": self.account.id,
                "stage": self.stage,
                "lifecycleStage": true_lifecycle,
                "ownerId": self.contact.properties["hubspot_owner_id"] if self.contact else None,
                "deleted": self.erased_at is not None,
                "malformed": defect is not None,
                "defect": defect,
            },
        )
        for handoff in self.handoffs:
            write("truth_handoffs", handoff.truth())

    # -- marketing phase

    def _push(self, t: int, kind: int, payload=None) -> None:
        heapq.heappush(self.queue, (t, next(self._queued), kind, payload))

    def _market(self, start: int, first_source: Source | None) -> tuple[int, str] | None:
        """Marketing events from ``start`` until the person qualifies (when and why), or None."""
        rng = self.company.rng
        self.queue = []
        if first_source is not None:
            self._push(start, VISIT, first_source)
        else:
            self._push(start + self._return_gap(), VISIT)
        if self.lead is not None:
            self._start_emails(start)
        while self.queue:
            t, _, kind, payload = heapq.heappop(self.queue)
            if t > self.horizon:
                break
            if kind == VISIT:
                end, mql = self._visit(t, payload or self.company.catalog.return_visits.draw(rng))
                keeps_coming = (0.6 if self.lead else 0.55) + 0.3 * self.interest
                if mql is None and rng.random() < keeps_coming:
                    self._push(end + self._return_gap(), VISIT)
            elif kind == EMAIL_CLICK_VISIT:
                _, mql = self._visit(t, payload)
            elif kind == NURTURE_EMAIL:
                mql = self._nurture(t)
            elif kind == WEBINAR_INVITE:
                mql = self._invite(t, payload)
            else:
                mql = self._webinar(t, payload, kind)
            if mql is not None:
                return mql if mql[0] <= self.horizon else None
        return None

    def _return_gap(self) -> int:
        return HOUR + int(self.company.rng.expovariate(1 / ((3 + 35 * (1 - self.interest)) * DAY)))

    def _start_emails(self, t: int) -> None:
        rng = self.company.rng
        self._push(t + rng.randrange(DAY, 4 * DAY), NURTURE_EMAIL)
        upcoming = bisect_left(self.company.catalog.webinar_lives, t + 14 * DAY)
        if upcoming < len(self.company.catalog.webinars):
            self._push(self.company.catalog.webinar_lives[upcoming] - 14 * DAY, WEBINAR_INVITE, upcoming)

    def _device(self, via_email: bool) -> str:
        rng = self.company.rng
        if not self.devices or (rng.random() < (0.2 if via_email else 0.06) and len(self.devices) < 4):
            self.devices.append(self.company.new_device())
            return self.devices[-1]
        return self.devices[0] if rng.random() < 0.75 else rng.choice(self.devices)

    def _visit(self, t: int, source: Source) -> tuple[int, tuple[int, str] | None]:
        """One web session; returns when it ended and, if the visitor qualified in it, the MQL."""
        company, rng, catalog = self.company, self.company.rng, self.company.catalog
        # The hot loop of the whole simulation: look things up once.
        random, page_event, resolve, horizon = rng.random, company.page_event, catalog.resolve, self.horizon
        device = self._device(source.via_email)
        page = resolve(source.landing.draw(rng), t, rng)
        if source.via_email and self.lead is not None and self.device_lead.get(device) is None:
            self._identify(device, self.lead, t, page)  # the e-mail link's token tells who clicked
        lead = self.device_lead.get(device)
        referrer, search, campaign = source.referrer, source.search, source.campaign
        navigate = (catalog.buying if random() < self.interest else catalog.browsing).draw
        exit_chance = 0.2 - 0.1 * self.interest
        form_appetite = 0.3 + 1.4 * self.interest
        scored: set[str] = set()
        for _ in range(MAX_PAGES):
            user_id = lead.user_id if lead else None
            page_event(device, user_id, t, page, referrer, search, campaign)
            if lead is not None:
                if page.tracked:
                    lead.log(
                        VISIT_WEBPAGE,
                        t,
                        page.id,
                        page.path,
                        [
                            {"name": "Webpage URL", "value": page.url},
                            {"name": "Query Parameters", "value": search},
                            {"name": "Referrer URL", "value": referrer},
                        ],
                    )
                if page.score and page.kind not in scored:
                    scored.add(page.kind)
                    mql = self._score(t, page.score, page.score_reason)
                    if mql:
                        return t, mql
            if page.form is not None and random() < page.form_chance * form_appetite:
                t += 15 + int(random() * 90)
                if t > horizon:
                    break
                mql = self._submit(page, device, t, search, referrer, source)
                if mql:
                    return t, mql
                lead = self.device_lead[device]
            elif page.cta_chance and random() < page.cta_chance:
                company.track_event(
                    device, user_id, t, "CTA Clicked", {"label": "Book a demo", "location": page.path}, page
                )
            if random() < exit_chance:
                break
            t += 8 + int(min(rng.expovariate(1 / 60), 900))
            if t > horizon:
                break
            referrer, search, campaign = page.url, "", None
            page = resolve(navigate(rng), t, rng)
        return t, None

    def _identify(self, device: str, lead: Lead, t: int, page: Page) -> None:
        self.device_lead[device] = lead
        self.company.identify_event(
            device,
            lead.user_id,
            t,
            {
                "email": lead.email,
                "firstName": self.first_name,
                "lastName": self.last_name,
                "company": self.account.name,
                "title": self.title,
            },
            page,
        )

    def _submit(
        self, page: Page, device: str, t: int, search: str, referrer: str, source: Source, lead: Lead | None = None
    ) -> tuple[int, str] | None:
        """A form fill: identifies the visitor (creating the lead if new) and scores it."""
        company, rng = self.company, self.company.rng
        form, program = page.form, company.catalog.offer(page, t, rng)
        if lead is None:
            if self.lead is None:
                self._become_known(Lead(self, self.email, t, source.lead_source, program, "Web form fill"))
                self._start_emails(t)
            lead = self.lead
        if self.device_lead.get(device) is not lead:
            self._identify(device, lead, t, page)
        company.track_event(device, lead.user_id, t, "Form Submitted", {"formId": form.id, "formName": form.name}, page)
        lead.log(
            FILL_OUT_FORM,
            t,
            form.id,
            form.name,
            [
                {"name": "Webpage URL", "value": page.url},
                {"name": "Query Parameters", "value": search},
                {"name": "Referrer URL", "value": referrer},
            ],
        )
        if source.program is not None and not source.via_email:
            lead.progress(source.program, t, "Responded")  # the campaign that brought them converted them
        if form.kind == "demo":
            company.track_event(device, lead.user_id, t, "Demo Requested", {"formName": form.name}, page)
            lead.progress(program, t, "Requested")
            self._score(t, 30, "Requested a demo", lead)
            return t + rng.randrange(30, 300), "demo_request"
        if form.kind == "content":
            company.track_event(device, lead.user_id, t, "Content Downloaded", {"asset": program.name}, page)
            lead.progress(program, t, "Downloaded")
            return self._score(t, 15, "Downloaded content", lead)
        if form.kind == "webinar":
            if program.id not in lead.memberships:
                self._push(program.live, WEBINAR_LIVE, program)
            lead.progress(program, t, "Registered")
            return self._score(t, 10, "Registered for webinar", lead)
        lead.progress(program, t, "Subscribed")
        return self._score(t, 5, "Subscribed to newsletter", lead)

    def _score(self, t: int, points: int, reason: str, lead: Lead | None = None) -> tuple[int, str] | None:
        lead = lead or self.lead
        lead.change_score(t, points, reason)
        if lead is self.lead and lead.score >= MQL_SCORE:
            return t + self.company.rng.randrange(30, 300), "score"
        return None

    def _become_known(self, lead: Lead) -> None:
        t = lead.created
        self.lead = lead
        self.leads.append(lead)
        self.stage = "known"
        if self.erasure_delay is not None:
            self.horizon = min(self.horizon, t + int(self.erasure_delay))
        lead.change_score(t, 5 * round(8 * self.fit), "Demographic fit")
        lead.progress(self.nurture, t, "Member")

    def _import(self) -> None:
        """A person first known offline: a tradeshow badge scan or a syndicated-content list."""
        t, program, status, lead_source = self.imported
        lead = Lead(self, self.email, t, lead_source, program, "List import")
        lead.progress(program, t, status)
        self._become_known(lead)
        lead.change_score(t, 15, f"{status} – {program.channel}")

    # -- e-mail

    def _nurture(self, t: int) -> tuple[int, str] | None:
        lead, rng = self.lead, self.company.rng
        if lead.unsubscribed or self.nurture_position >= len(self.nurture.emails):
            return None  # unsubscribed, or the stream is exhausted
        email = self.nurture.emails[self.nurture_position]
        self.nurture_position += 1
        targets = (
            "resource",
            self.company.catalog.blog[self.nurture_position % len(BLOG_POSTS)],
            "resource",
            self.company.catalog.customers,
            "webinar",
            self.company.catalog.demo_page,
        )
        mql = self._email(t, self.nurture, email, targets[self.nurture_position % len(targets)])
        self._push(self._send_slot(t + (26 + rng.randrange(10)) * DAY), NURTURE_EMAIL)
        return mql

    def _invite(self, t: int, webinar_index: int) -> tuple[int, str] | None:
        catalog = self.company.catalog
        if webinar_index + 1 < len(catalog.webinars):
            self._push(catalog.webinar_lives[webinar_index + 1] - 14 * DAY, WEBINAR_INVITE, webinar_index + 1)
        webinar = catalog.webinars[webinar_index]
        if self.lead.unsubscribed or webinar.id in self.lead.memberships or self.company.rng.random() < 0.6:
            return None  # only part of the database is invited to each webinar
        return self._email(self._send_slot(t), webinar, webinar.emails[0], catalog.webinar_pages[webinar_index])

    def _send_slot(self, t: int) -> int:
        """Bulk sends go out at 15:00 UTC on a weekday, spread over half an hour by the send queue."""
        clock = self.company.clock
        day = t // DAY + (t % DAY > 15 * HOUR)
        while clock.weekday(day * DAY) >= 5:
            day += 1
        return day * DAY + 15 * HOUR + self.company.rng.randrange(1800)

    def _email(self, t: int, program: Program, email: tuple[int, str], landing: Page | str) -> tuple[int, str] | None:
        lead, rng = self.lead, self.company.rng
        if t > self.horizon:
            return None
        asset_id, name = email
        lead.log(SEND_EMAIL, t, asset_id, name, [{"name": "Campaign Run ID", "value": program.id}])
        delivered = t + 5 + rng.randrange(120)
        if rng.random() < 0.02 or delivered > self.horizon:
            return None  # bounced, or not yet
        lead.log(EMAIL_DELIVERED, delivered, asset_id, name, [])
        if rng.random() < 0.002:
            unsubscribed = delivered + rng.randrange(HOUR, DAY)
            if unsubscribed <= self.horizon:
                lead.unsubscribe(unsubscribed)
            return None
        if rng.random() >= 0.12 + 0.35 * self.interest:
            return None
        opened = t + 60 + int(rng.expovariate(1 / (5 * HOUR)))
        mobile = rng.random() < 0.4
        device_attributes = [
            {"name": "Device", "value": "iPhone" if mobile else "Desktop"},
            {"name": "Is Mobile Device", "value": mobile},
        ]
        if opened > self.horizon:
            return None
        lead.log(OPEN_EMAIL, opened, asset_id, name, device_attributes)
        if rng.random() >= 0.08 + 0.3 * self.interest:
            return None
        clicked = opened + 5 + rng.randrange(300)
        if clicked > self.horizon:
            return None
        page = self.company.catalog.resolve(landing, clicked, rng)
        lead.log(CLICK_EMAIL, clicked, asset_id, name, [{"name": "Link", "value": page.url}, *device_attributes])
        if program.channel == "Nurture":
            lead.progress(program, clicked, "Engaged")
        self._push(
            clicked + 2,
            EMAIL_CLICK_VISIT,
            campaign_source(
                "email",
                "EMAIL_MARKETING",
                "Email",
                Weighted([(page, 1)]),
                "marketo",
                "email",
                program,
                slug(name.rsplit(".", 1)[-1]),
                via_email=True,
            ),
        )
        return self._score(clicked, 5, "Clicked e-mail")

    def _webinar(self, t: int, webinar: Program, kind: int) -> tuple[int, str] | None:
        lead, rng = self.lead, self.company.rng
        if kind == WEBINAR_ON_DEMAND:
            lead.progress(webinar, t, "Attended On-demand")
            return self._score(t, 10, "Watched webinar on demand")
        ended = t + 3 * HOUR // 2  # attendance is synced from the webinar platform when it ends
        if ended > self.horizon:
            return None
        if rng.random() < 0.35 + 0.35 * self.interest:
            lead.progress(webinar, ended, "Attended")
            return self._score(ended, 20, "Attended webinar")
        lead.progress(webinar, ended, "No Show")
        if rng.random() < 0.2:
            self._push(t + rng.randrange(DAY, 14 * DAY), WEBINAR_ON_DEMAND, webinar)
        return None

    # -- the CRM side of a person

    def _contact_for_handoff(self, t: int) -> CrmRecord:
        """The person's CRM contact, created by the marketing-automation sync on the first MQL."""
        if self.contact is None:
            self.contact = self._new_contact(t, self.lead)
        return self.contact

    def _new_contact(self, t: int, lead: Lead) -> CrmRecord:
        source = self.first_source.hubspot_source if self.first_source else "OFFLINE"
        contact = CrmRecord(
            self.company,
            "contacts",
            t,
            {
                "email": lead.email,
                "firstname": self.first_name,
                "lastname": self.last_name,
                "jobtitle": self.title,
                "company": self.account.name,
                "country": self.account.country,
                "hs_analytics_source": source,
                "lifecyclestage": None,
                "hs_lead_status": None,
                "hubspot_owner_id": None,
                "rejection_reason": None,
                "hs_merged_object_ids": None,
            },
        )
        if lead.email.endswith("@" + self.account.domain):  # HubSpot associates companies by e-mail domain
            self.company.associate("contacts", contact.id, "companies", self.account.id)
        self.contacts.append(contact)
        return contact

    def _sign_up_again(self) -> None:
        """The person fills a form with another address: a second lead, merged later; if they ask
        for a demo while already a CRM contact, a second contact too, rejected as a duplicate."""
        company, rng, clock = self.company, self.company.rng, self.company.clock
        first, last = self.lead.created + DAY, self.horizon - 10 * 60
        if first >= last:
            return
        t = rng.randrange(first, last)
        email = f"{self.first_name.lower()}{company.personal_number(self.number)}@{rng.choice(PERSONAL_PROVIDERS)}"
        asks_for_demo = self.contact is not None and self.contact.created < t and rng.random() < 0.7
        page = company.catalog.demo_page if asks_for_demo else company.catalog.resolve("resource", t, rng)
        device = self._device(via_email=False)
        company.page_event(device, None, t, page, "", "", None)
        t += 30 + rng.randrange(90)
        duplicate = Lead(self, email, t, "Direct", company.catalog.offer(page, t, rng), "Web form fill")
        self.leads.append(duplicate)
        duplicate.change_score(t, 5 * round(8 * self.fit), "Demographic fit")
        mql = self._submit(page, device, t, "", "", company.catalog.direct, lead=duplicate)
        merged_at = t + rng.randrange(DAY, 20 * DAY)
        if asks_for_demo and mql[0] <= self.horizon:
            contact = self._new_contact(mql[0], duplicate)
            handoff = Handoff(self, duplicate, contact, mql[0], mql[1])
            self.handoffs.append(handoff)
            handoff.work(rejection="duplicate")
            if handoff.decided_at is None:
                return
            merged_at = handoff.decided_at + rng.randrange(5 * 60, HOUR)
            if merged_at > self.horizon:
                return
            contact.merged_into = self.contact.id
            contact.updated = merged_at
            self.contact.properties["hs_merged_object_ids"] = contact.id
            self.contact.updated = max(self.contact.updated, merged_at)
            merged_at += rng.randrange(HOUR, 3 * DAY)  # marketing ops merge the leads afterwards
        if merged_at > min(self.horizon, clock.last):
            return
        duplicate.deleted = duplicate.updated = merged_at
        duplicate.merged_into = self.lead.id
        self.lead.updated = max(self.lead.updated, merged_at)
        self.lead.log(
            MERGE_LEADS,
            merged_at,
            self.lead.id,
            f"{self.first_name} {self.last_name}",
            [
                {"name": "Merge IDs", "value": [duplicate.id]},
                {"name": "Merged in Sales", "value": False},
                {"name": "Merge Source", "value": "Marketo UI"},
                {"name": "Master Updated", "value": False},
            ],
        )

    def _erase(self, t: int) -> None:
        """A deletion request honoured in both systems."""
        self.erased_at = t
        for lead in self.leads:
            if lead.deleted is None:
                lead.deleted = lead.updated = t
                lead.log(DELETE_LEAD, t, lead.id, lead.email, [{"name": "Remove from CRM", "value": False}])
        for contact in self.contacts:
            if contact.merged_into is None:
                contact.archived_at = contact.updated = t

    def _apply_defect(self) -> str | None:
        """Break the record the defect applies to; the defect that was applied (or None)."""
        if self.defect is None or self.lead is None:
            return None
        if self.defect == "unknown_enum_value":
            if self.contact is not None:
                self.contact.set("lifecyclestage", UNKNOWN_LIFECYCLE_STAGE, self.contact.updated, "IMPORT")
            else:
                self.lead.status = UNKNOWN_LEAD_STATUS
        elif self.defect == "missing_timestamp":
            # The lead's: HubSpot sets a contact's createdate itself, so the CRM never serves one without.
            self.lead.created_missing = True
        return self.defect
