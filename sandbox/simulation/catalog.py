"""The marketing catalog: programs, forms, the website's pages and the sources of its traffic."""

from __future__ import annotations

import random
from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import count

from sandbox.simulation.clock import DAY, HOUR, Clock
from sandbox.simulation.sampling import Weighted

SITE = "https://www.handoff-demo.example"


def slug(text: str) -> str:
    return "-".join("".join(c if c.isalnum() else " " for c in text.lower()).split())


@dataclass(frozen=True)
class Program:
    id: int
    name: str
    type: str
    channel: str
    status: str
    created: int
    success: frozenset[str]
    live: int | None = None  # when a webinar or tradeshow takes place
    emails: tuple[tuple[int, str], ...] = ()  # (asset id, Marketo's "Program.Email" name)

    @property
    def slug(self) -> str:
        return slug(self.name)

    def as_record(self, clock: Clock) -> dict:
        record = {
            "id": self.id,
            "name": self.name,
            "description": "",
            "type": self.type,
            "channel": self.channel,
            "status": self.status,
            "workspace": "Default",
            "createdAt": clock.iso(self.created),
            "updatedAt": clock.iso(self.created),
        }
        if self.live is not None:
            record["startDate"] = record["endDate"] = clock.iso(self.live)
        return record


@dataclass(frozen=True)
class Form:
    id: int
    name: str
    kind: str  # content, webinar, demo or newsletter


FORMS = {
    kind: Form(3001 + n, name, kind)
    for n, (kind, name) in enumerate(
        [
            ("content", "Form – Content Download"),
            ("webinar", "Form – Webinar Registration"),
            ("demo", "Form – Demo Request"),
            ("newsletter", "Form – Newsletter Signup"),
        ]
    )
}


@dataclass(frozen=True)
class Page:
    id: int
    path: str
    name: str
    kind: str
    tracked: bool  # Marketo's Munchkin runs on the www pages, not the blog or docs
    url: str
    title: str
    program: Program | None = None
    form: Form | None = None
    form_chance: float = 0.0
    score: int = 0
    score_reason: str | None = None
    cta_chance: float = 0.0


BLOG_POSTS = [
    "Why MQLs die in the inbox",
    "Lead response time: the five-minute myth",
    "SLA design for SDR teams",
    "Attribution models compared",
    "Stop arguing about the funnel",
    "Routing leads across time zones",
    "What sales wants from marketing",
    "Recycling leads without losing them",
]
CONTENT_ASSETS = [
    "Ebook – The Revenue Handoff Playbook",
    "Report – Lead Response Benchmark",
    "Template – MQL Definition Worksheet",
    "Guide – Attribution Models Explained",
    "Checklist – SLA Rollout",
    "Report – State of RevOps",
    "Ebook – Scoring That Sales Trusts",
    "Guide – Closed-Loop Reporting",
]
WEBINAR_TOPICS = [
    "Fixing the MQL handoff",
    "Forecasting pipeline from marketing",
    "Lead scoring teardown",
    "RevOps metrics that matter",
    "Speed to lead in practice",
    "Building a shared funnel",
    "Attribution without the drama",
    "SDR playbooks for inbound",
    "From MQL to revenue",
    "Recycling done right",
    "Sales and marketing SLAs",
    "Account-based handoffs",
]
TRADESHOWS = [
    ("SaaStr Annual", 0.12),
    ("B2B Marketing Exchange", 0.37),
    ("Pipeline Summit", 0.62),
    ("RevOps Live", 0.87),
]


@dataclass(frozen=True)
class Source:
    """Where a session comes from: referrer, UTM campaign and where visitors land."""

    name: str
    hubspot_source: str  # hs_analytics_source
    lead_source: str  # Marketo leadSource
    referrer: str
    landing: Weighted
    program: Program | None = None  # the Marketo program its UTM campaign stands for
    campaign: dict | None = None
    search: str = ""
    fit_shift: float = 0.0
    interest_shift: float = 0.0
    via_email: bool = False


def campaign_source(
    name: str,
    hubspot_source: str,
    lead_source: str,
    landing: Weighted,
    utm_source: str,
    utm_medium: str,
    program: Program,
    content: str,
    term: str | None = None,
    referrer: str = "",
    fit_shift: float = 0.0,
    interest_shift: float = 0.0,
    via_email: bool = False,
) -> Source:
    """A source whose links carry UTM parameters naming a program (``utm_campaign`` is its slug)."""
    campaign = {"source": utm_source, "medium": utm_medium, "name": program.slug, "content": content}
    if term:
        campaign["term"] = term
    search = "?" + "&".join(f"utm_{key}={value.replace(' ', '+')}" for key, value in campaign.items())
    return Source(
        name,
        hubspot_source,
        lead_source,
        referrer,
        landing,
        program,
        campaign,
        search,
        fit_shift,
        interest_shift,
        via_email,
    )


class Catalog:
    """The marketing calendar: programs, the website's pages and the sources of its traffic."""

    def __init__(self, clock: Clock):
        program_ids, asset_ids = count(1001), count(2001)
        span = clock.now - clock.start
        before_span = clock.start - 200 * DAY

        def program(name, type_, channel, status, created, success, live=None, emails=()) -> Program:
            assets = tuple((next(asset_ids), f"{name}.{email}") for email in emails)
            return Program(next(program_ids), name, type_, channel, status, created, frozenset(success), live, assets)

        def campaign(name, channel) -> Program:
            return program(name, "Default", channel, "", before_span, {"Responded"})

        self.paid_brand = campaign("Paid Search – Brand", "Paid Search")
        self.paid_category = campaign("Paid Search – Lead Response", "Paid Search")
        self.linkedin_abm = campaign("Paid Social – LinkedIn ABM", "Paid Social")
        self.retargeting = campaign("Paid Social – Retargeting", "Paid Social")
        self.g2 = campaign("Review Sites – G2", "Review Site")
        self.demo_requests = program("Website – Demo Requests", "Default", "Website", "", before_span, {"Requested"})
        self.newsletter = program("Website – Newsletter", "Default", "Newsletter", "", before_span, {"Subscribed"})
        self.early_nurture = program(
            "Nurture – Early Stage",
            "Engagement",
            "Nurture",
            "on",
            before_span,
            {"Engaged"},
            emails=[f"Email {n:02d}" for n in range(1, 13)],
        )
        self.recycled_nurture = program(
            "Nurture – Recycled",
            "Engagement",
            "Nurture",
            "on",
            before_span,
            {"Engaged"},
            emails=[f"Email {n:02d}" for n in range(1, 9)],
        )
        self.content = [
            program(name, "Default", "Content", "", release - 14 * DAY, {"Downloaded"})
            for name, release in (
                (name, clock.start - 90 * DAY + n * (span + 80 * DAY) // len(CONTENT_ASSETS))
                for n, name in enumerate(CONTENT_ASSETS)
            )
        ]
        self.content_releases = [p.created + 14 * DAY for p in self.content]
        self.webinars = []
        for month, live in enumerate(self._second_thursdays(clock)):
            if live <= clock.last:
                name = f"Webinar – {clock.moment(live):%b %Y}: {WEBINAR_TOPICS[month % len(WEBINAR_TOPICS)]}"
                self.webinars.append(
                    program(
                        name,
                        "Event",
                        "Webinar",
                        "unlocked",
                        live - 35 * DAY,
                        {"Attended", "Attended On-demand"},
                        live,
                        emails=["Invitation"],
                    )
                )
        self.webinar_lives = [p.live for p in self.webinars]
        # People first known offline arrive in batches: badge scans and syndicated-content lists.
        self.imports: list[tuple[int, Program, str, str]] = []
        for name, fraction in TRADESHOWS:
            live = clock.start + int(span * fraction) + 15 * HOUR
            show = program(
                f"Tradeshow – {name} {clock.moment(live):%Y}",
                "Event",
                "Tradeshow",
                "unlocked",
                live - 60 * DAY,
                {"Visited Booth"},
                live,
            )
            self.imports.append((live + 3 * DAY, show, "Visited Booth", "Tradeshow"))
        for quarter in range(4):
            opens = clock.start + quarter * span // 4
            syndication = program(
                f"Content Syndication – {clock.moment(opens + 45 * DAY):%Y} Q{quarter + 1}",
                "Default",
                "Content Syndication",
                "",
                opens - 10 * DAY,
                {"Engaged"},
            )
            self.imports += [
                (opens + month * span // 12 + 10 * HOUR, syndication, "Engaged", "Content Syndication")
                for month in range(3)
            ]
        self.imports = sorted((i for i in self.imports if i[0] <= clock.last), key=lambda i: i[0])
        self.import_times = [i[0] for i in self.imports]
        self.programs = sorted(
            [
                self.paid_brand,
                self.paid_category,
                self.linkedin_abm,
                self.retargeting,
                self.g2,
                self.demo_requests,
                self.newsletter,
                self.early_nurture,
                self.recycled_nurture,
                *self.content,
                *self.webinars,
                *{i[1].id: i[1] for i in self.imports}.values(),
            ],
            key=lambda p: p.id,
        )
        self._build_site()
        self._build_sources()

    @staticmethod
    def _second_thursdays(clock: Clock) -> Iterator[int]:
        month = clock.moment(clock.start).date().replace(day=1)
        while clock.seconds(datetime(month.year, month.month, 1, tzinfo=UTC)) <= clock.last:
            first_thursday = 1 + (3 - month.weekday()) % 7
            yield clock.seconds(datetime(month.year, month.month, first_thursday + 7, 16, tzinfo=UTC))
            month = (month + timedelta(days=32)).replace(day=1)

    def _build_site(self) -> None:
        ids = count(5001)

        def page(path, name, kind, tracked=True, **details) -> Page:
            return Page(next(ids), path, name, kind, tracked, SITE + path, f"{name} | Handoff Demo", **details)

        home = page("/", "Home", "home", cta_chance=0.06)
        product = page("/product", "Product", "product", cta_chance=0.08)
        pricing = page("/pricing", "Pricing", "pricing", score=10, score_reason="Visited pricing page", cta_chance=0.05)
        customers = page("/customers", "Customers", "customers")
        self.demo_page = page(
            "/demo",
            "Request a demo",
            "demo",
            program=self.demo_requests,
            form=FORMS["demo"],
            form_chance=0.045,
            score=5,
            score_reason="Visited demo page",
        )
        contact = page(
            "/contact",
            "Contact sales",
            "demo",
            program=self.demo_requests,
            form=FORMS["demo"],
            form_chance=0.04,
            score=5,
            score_reason="Visited demo page",
        )
        self.blog = [
            page(
                f"/blog/{slug(title)}",
                title,
                "blog",
                tracked=False,
                program=self.newsletter,
                form=FORMS["newsletter"],
                form_chance=0.008,
            )
            for title in BLOG_POSTS
        ]
        statics = [
            (home, 10, 4),
            (product, 8, 8),
            (page("/product/sla-alerts", "SLA alerts", "product", cta_chance=0.05), 4, 5),
            (page("/product/attribution", "Attribution", "product", cta_chance=0.05), 4, 5),
            (page("/integrations", "Integrations", "product"), 4, 4),
            (pricing, 4, 14),
            (customers, 3, 8),
            (page("/customers/northwind-analytics", "Northwind Analytics case study", "customers"), 1, 3),
            (self.demo_page, 1, 4),
            (contact, 0.5, 2),
            (page("/about", "About us", "about"), 2, 1),
            (page("/careers", "Careers", "careers"), 2, 0.2),
            (page("/docs/getting-started", "Docs: Getting started", "docs", tracked=False), 2, 2),
            *((post, 1.5, 0.5) for post in self.blog),
            ("resource", 4, 4),
            ("webinar", 2, 2),
        ]
        self.browsing = Weighted((target, browse) for target, browse, _ in statics)
        self.buying = Weighted((target, buy) for target, _, buy in statics)
        self.resource_pages = [
            page(f"/resources/{p.slug}", p.name, "resource", program=p, form=FORMS["content"], form_chance=0.09)
            for p in self.content
        ]
        self.webinar_pages = [
            page(f"/webinars/{p.slug}", p.name, "webinar", program=p, form=FORMS["webinar"], form_chance=0.15)
            for p in self.webinars
        ]
        self.landing_pages = {
            p.id: page(f"/lp/{p.slug}", p.name, "landing", program=p, form=FORMS["content"], form_chance=0.1)
            for p in (self.paid_category, self.linkedin_abm)
        }
        self.home, self.pricing, self.customers = home, pricing, customers

    def _build_sources(self) -> None:
        blog_landing = Weighted((post, 1) for post in self.blog)
        search_landing = Weighted(
            [*((post, 6) for post in self.blog), (self.home, 20), (self.pricing, 5), ("resource", 6)]
        )
        self.first_visits = Weighted(
            [
                (
                    Source(
                        "organic_search",
                        "ORGANIC_SEARCH",
                        "Organic Search",
                        "https://www.google.com/",
                        search_landing,
                        fit_shift=-0.03,
                    ),
                    30,
                ),
                (
                    campaign_source(
                        "paid_search_brand",
                        "PAID_SEARCH",
                        "Paid Search",
                        Weighted([(self.demo_page, 3), (self.pricing, 2)]),
                        "google",
                        "cpc",
                        self.paid_brand,
                        "brand-ad-a",
                        "handoff demo",
                        interest_shift=0.2,
                    ),
                    6,
                ),
                (
                    campaign_source(
                        "paid_search_category",
                        "PAID_SEARCH",
                        "Paid Search",
                        Weighted([(self.landing_pages[self.paid_category.id], 1)]),
                        "google",
                        "cpc",
                        self.paid_category,
                        "playbook-ad-b",
                        "lead routing software",
                    ),
                    10,
                ),
                (
                    campaign_source(
                        "paid_social_abm",
                        "PAID_SOCIAL",
                        "Paid Social",
                        Weighted([(self.landing_pages[self.linkedin_abm.id], 1)]),
                        "linkedin",
                        "paid_social",
                        self.linkedin_abm,
                        "carousel-1",
                        fit_shift=0.2,
                    ),
                    12,
                ),
                (
                    campaign_source(
                        "review_site",
                        "REFERRALS",
                        "Referral",
                        Weighted([(self.customers, 2), (self.pricing, 2), (self.home, 1)]),
                        "g2",
                        "referral",
                        self.g2,
                        "profile-cta",
                        referrer="https://www.g2.com/products/handoff-demo/reviews",
                        interest_shift=0.15,
                    ),
                    9,
                ),
                (
                    Source(
                        "organic_social",
                        "SOCIAL_MEDIA",
                        "Social",
                        "https://www.linkedin.com/",
                        blog_landing,
                        fit_shift=-0.05,
                    ),
                    8,
                ),
                (
                    Source(
                        "direct",
                        "DIRECT_TRAFFIC",
                        "Direct",
                        "",
                        Weighted([(self.home, 7), (self.pricing, 2), (self.demo_page, 1)]),
                    ),
                    15,
                ),
            ]
        )
        by_name = {source.name: source for source in self.first_visits.items}
        self.return_visits = Weighted(
            [
                (by_name["direct"], 45),
                (by_name["organic_search"], 30),
                (by_name["review_site"], 8),
                (by_name["organic_social"], 5),
                (
                    campaign_source(
                        "retargeting",
                        "PAID_SOCIAL",
                        "Paid Social",
                        Weighted([(self.pricing, 2), (self.customers, 1)]),
                        "linkedin",
                        "paid_social",
                        self.retargeting,
                        "retargeting-pricing",
                    ),
                    12,
                ),
            ]
        )
        self.direct = by_name["direct"]

    def recent_content(self, t: int, rng: random.Random) -> int:
        """Index of one of the three assets most recently released by ``t``."""
        released = max(1, bisect_right(self.content_releases, t))
        return released - 1 - rng.randrange(min(3, released))

    def upcoming_webinar(self, t: int) -> int | None:
        """Index of the next webinar whose registration is open at ``t``."""
        index = bisect_left(self.webinar_lives, t)
        if index < len(self.webinars) and self.webinars[index].created <= t:
            return index
        return None

    def resolve(self, target: Page | str, t: int, rng: random.Random) -> Page:
        """A concrete page for a navigation target ("resource" and "webinar" depend on the date)."""
        if target.__class__ is Page:
            return target
        if target == "webinar":
            index = self.upcoming_webinar(t)
            if index is not None:
                return self.webinar_pages[index]
        return self.resource_pages[self.recent_content(t, rng)]

    def offer(self, page: Page, t: int, rng: random.Random) -> Program:
        """The program a form on this page enrols its submitter in (a paid page offers content)."""
        return self.content[self.recent_content(t, rng)] if page.kind == "landing" else page.program
