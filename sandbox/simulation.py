"""A simulated B2B company written as a sandbox dataset: behaviour, not random rows.

People arrive on the website from campaigns (or from tradeshows and list imports), browse in
sessions, may identify through a form and become marketing leads, are nurtured by e-mail and
scored, and on reaching the score threshold or asking for a demo are handed to sales: their CRM
contact gets lifecycle stage MQL and an owner, who touches, accepts or rejects them in the owner's
own business time. Accepted leads may become sales-qualified, get a deal and close it won or lost;
rejected and lost ones go back to nurture and may qualify again (a new handoff). A few people sign
up twice (duplicates, later merged), ask to be deleted, or carry a malformed record.

The company is deterministic from its seed and ``now``, is streamed person by person (never held
in memory as a whole), and keeps its own ground truth (``truth_people``, ``truth_handoffs``).
"""

from __future__ import annotations

import heapq
import math
import random
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from itertools import accumulate, count, cycle
from pathlib import Path
from zoneinfo import ZoneInfo

import holidays
import numpy as np

from sandbox.dataset import TABLES, Dataset, DatasetWriter, Manifest, iso, parse_iso

SCALES = {"tiny": 200, "small": 5_000, "medium": 100_000, "large": 1_000_000}
SIMULATED_DAYS = 365
MALFORMED_SHARE = 0.0075  # of known people: their records carry one defect (see Journey._apply_defect)
MQL_SCORE = 100
SITE = "https://www.handoff-demo.example"
STAFF_DOMAIN = "handoff-demo.example"

DAY = 86_400
HOUR = 3_600
CALENDAR_LOOKAHEAD_DAYS = 60  # business calendars reach past now, so a pending touch can be placed


@dataclass(frozen=True)
class Policy:
    """How soon, in the owner's business minutes, a handoff must get its first touch."""

    name: str
    minutes: int


POLICIES = {"demo_request": Policy("demo_request", 60), "score": Policy("mql", 480)}

# Marketo's standard activity types used here.
VISIT_WEBPAGE, FILL_OUT_FORM, SEND_EMAIL, EMAIL_DELIVERED, OPEN_EMAIL, CLICK_EMAIL = 1, 2, 6, 7, 10, 11
NEW_LEAD, CHANGE_DATA_VALUE, CHANGE_SCORE, MERGE_LEADS, DELETE_LEAD, CHANGE_PROGRAM_STATUS = 12, 13, 22, 32, 37, 104
ACTIVITY_TYPE_NAMES = {
    VISIT_WEBPAGE: "Visit Webpage", FILL_OUT_FORM: "Fill Out Form", SEND_EMAIL: "Send Email",
    EMAIL_DELIVERED: "Email Delivered", OPEN_EMAIL: "Open Email", CLICK_EMAIL: "Click Email",
    NEW_LEAD: "New Lead", CHANGE_DATA_VALUE: "Change Data Value", CHANGE_SCORE: "Change Score",
    MERGE_LEADS: "Merge Leads", DELETE_LEAD: "Delete Lead", CHANGE_PROGRAM_STATUS: "Change Status in Progression",
}

# HubSpot's default deal pipeline: (stage id, label, probability, closed?).
DEAL_STAGES = [
    ("appointmentscheduled", "Appointment Scheduled", "0.2", False),
    ("qualifiedtobuy", "Qualified To Buy", "0.4", False),
    ("presentationscheduled", "Presentation Scheduled", "0.6", False),
    ("decisionmakerboughtin", "Decision Maker Bought-In", "0.8", False),
    ("contractsent", "Contract Sent", "0.9", False),
    ("closedwon", "Closed Won", "1.0", True),
    ("closedlost", "Closed Lost", "0.0", True),
]
# Each open stage: median days spent in it, and the base chance the deal is lost while in it.
DEAL_PATH = [("appointmentscheduled", 6, 0.30), ("qualifiedtobuy", 10, 0.28), ("presentationscheduled", 12, 0.24),
             ("decisionmakerboughtin", 9, 0.16), ("contractsent", 7, 0.14)]
CLOSED_LOST_REASONS = ["Chose a competitor", "No decision", "Budget", "Timing", "Missing integration"]

TRACKED_PROPERTIES = {"lifecyclestage", "hs_lead_status", "hubspot_owner_id", "rejection_reason", "dealstage"}
DATE_PROPERTIES = {"contacts": ("createdate", "lastmodifieddate"), "companies": ("createdate", "hs_lastmodifieddate"),
                   "deals": ("createdate", "hs_lastmodifieddate")}
ASSOCIATION_NAMES = {"calls": "call", "emails": "email", "meetings": "meeting", "tasks": "task", "deals": "deal",
                     "contacts": "contact", "companies": "company"}

# Shares of people whose journeys take these turns.
OFFLINE_SHARE = 0.2          # first known from a tradeshow or list import, not the website
PERSONAL_EMAIL_SHARE = 0.12  # use a free-mail address, so the CRM cannot tie them to their company
DUPLICATE_SHARE = 0.03       # of known people: sign up again with another address
DELETION_SHARE = 0.008       # of known people: ask to be erased
PERSONAL_PROVIDERS = ["gmail.com", "outlook.com", "yahoo.com", "icloud.com", "proton.me"]


class Weighted:
    """Draws items in proportion to their weights (faster than ``random.choices`` for one item)."""

    __slots__ = ("items", "cumulative", "total")

    def __init__(self, pairs: Iterable[tuple[object, float]]):
        pairs = list(pairs)
        self.items = [item for item, _ in pairs]
        self.cumulative = list(accumulate(weight for _, weight in pairs))
        self.total = self.cumulative[-1]

    def draw(self, rng: random.Random):
        return self.items[bisect_right(self.cumulative, rng.random() * self.total)]


def clamp(value: float, low: float = 0.0, high: float = 1.0) -> float:
    return low if value < low else high if value > high else value


def slug(text: str) -> str:
    return "-".join("".join(c if c.isalnum() else " " for c in text.lower()).split())


# ---------------------------------------------------------------------------------------------
# Time

_TIME_OF_DAY = [f"{h:02d}:{m:02d}:{s:02d}." for h in range(24) for m in range(60) for s in range(60)]
_MILLIS = [f"{ms:03d}Z" for ms in range(1000)]


class Clock:
    """Simulation time as whole seconds since midnight UTC of the span's first day; formats
    timestamps from precomputed parts, because millions of ``strftime`` calls are slow."""

    def __init__(self, now: datetime, days: int):
        first_day = (now - timedelta(days=days)).date()
        self.origin = datetime(first_day.year, first_day.month, first_day.day, tzinfo=timezone.utc)
        self.now = int((now - self.origin).total_seconds())
        self.start = self.now - days * DAY
        # Records carry milliseconds, so the latest second one may use is the one before now.
        self.last = self.now - 1
        self._days = [(self.origin + timedelta(days=d)).strftime("%Y-%m-%dT") for d in range(self.now // DAY + 1)]

    def stamp(self, t: int, millis: int = 0) -> str:
        """ISO timestamp of a moment within the span (as ``sandbox.dataset.iso`` writes it)."""
        return self._days[t // DAY] + _TIME_OF_DAY[t % DAY] + _MILLIS[millis]

    def iso(self, t: int) -> str:
        """ISO timestamp of any moment, also before the span (setup records)."""
        return iso(self.moment(t))

    def moment(self, t: int) -> datetime:
        return self.origin + timedelta(seconds=t)

    def seconds(self, moment: datetime) -> int:
        return int((moment - self.origin).total_seconds())

    def weekday(self, t: int) -> int:
        return (self.origin.weekday() + t // DAY) % 7


class BusinessCalendar:
    """Working time as ordered, disjoint ``[open, close)`` intervals of simulation seconds."""

    def __init__(self, intervals: Iterable[tuple[int, int]]):
        ordered = sorted(intervals)
        self.opens = [begin for begin, _ in ordered]
        self.closes = [end for _, end in ordered]

    def advance(self, t: int, seconds: int) -> int | None:
        """The moment ``seconds`` of working time after ``t`` (None past the calendar's end)."""
        opens, closes = self.opens, self.closes
        index = bisect_right(closes, t)
        while index < len(opens):
            begin = opens[index] if opens[index] > t else t
            available = closes[index] - begin
            if seconds < available:
                return begin + seconds
            seconds -= available
            index += 1
        return None

    def between(self, start: int, end: int) -> int:
        """Working seconds in ``[start, end)``."""
        total, index = 0, bisect_right(self.closes, start)
        while index < len(self.opens) and self.opens[index] < end:
            total += min(self.closes[index], end) - max(self.opens[index], start)
            index += 1
        return total


def local_days(clock: Clock) -> list[date]:
    """Every calendar day a business calendar needs, from just before the span to past now."""
    first = clock.origin.date() - timedelta(days=2)
    return [first + timedelta(days=n) for n in range(clock.now // DAY + 3 + CALENDAR_LOOKAHEAD_DAYS)]


def working_intervals(clock: Clock, zone: ZoneInfo, hours: tuple[int, int],
                      days: Iterable[date]) -> list[tuple[int, int]]:
    """Local working hours on the given days as simulation seconds (zoneinfo handles DST)."""
    start, end = hours
    return [(clock.seconds(datetime(d.year, d.month, d.day, start, tzinfo=zone)),
             clock.seconds(datetime(d.year, d.month, d.day, end, tzinfo=zone))) for d in days]


# ---------------------------------------------------------------------------------------------
# The sales team

TERRITORIES = {
    # share of people, rough UTC offset of its visitors' daytime, countries (weight, TLD, legal form)
    "AMER": (0.55, -5, {"US": (80, "com", "Inc."), "CA": (12, "ca", "Inc."), "BR": (5, "com.br", "Ltda."),
                        "MX": (3, "mx", "S.A. de C.V.")}),
    "EMEA": (0.35, 1, {"GB": (30, "co.uk", "Ltd"), "DE": (25, "de", "GmbH"), "FR": (15, "fr", "SAS"),
                       "NL": (10, "nl", "B.V."), "ES": (8, "es", "S.L."), "SE": (7, "se", "AB"),
                       "IE": (5, "ie", "Ltd")}),
    "APAC": (0.10, 9, {"AU": (50, "com.au", "Pty Ltd"), "SG": (20, "sg", "Pte Ltd"), "JP": (15, "jp", "K.K."),
                       "IN": (15, "in", "Pvt Ltd")}),
}
# Who covers a territory's leads when it has no rep of its own.
COVERAGE = {"AMER": ("AMER", "EMEA"), "EMEA": ("EMEA", "AMER"), "APAC": ("APAC", "AMER")}
# Desks reps sit at: time zone, country, local working hours.
DESKS = {
    "AMER": [("America/New_York", "US", (9, 17)), ("America/Chicago", "US", (8, 16)), ("America/Denver", "US", (8, 17)),
             ("America/Los_Angeles", "US", (8, 17)), ("America/Toronto", "CA", (9, 17))],
    "EMEA": [("Europe/London", "GB", (9, 17)), ("Europe/Berlin", "DE", (9, 18)), ("Europe/Paris", "FR", (9, 18)),
             ("Europe/Dublin", "IE", (9, 17)), ("Europe/Madrid", "ES", (9, 18)), ("Europe/Amsterdam", "NL", (9, 17))],
    "APAC": [("Australia/Sydney", "AU", (8, 16)), ("Asia/Singapore", "SG", (9, 18))],
}
STAFF_NAMES = [("Ava", "Brooks"), ("Liam", "Carter"), ("Mia", "Schneider"), ("Noah", "Wilson"), ("Zoe", "Martin"),
               ("Ethan", "Tanaka"), ("Isla", "Murphy"), ("Lucas", "Moreau"), ("Sara", "Lindqvist"), ("Omar", "Haddad"),
               ("Chloe", "Nguyen"), ("Jonas", "Weber"), ("Maya", "Patel"), ("Diego", "Ramos"), ("Ella", "Byrne")]


@dataclass
class Owner:
    """A CRM owner with their calendars: ``sla_calendar`` is what SLAs are measured in (working
    hours, weekends and public holidays of their country); ``working_calendar`` is when they really
    work (minus vacation, plus some days off for reps who work them)."""

    id: str
    first_name: str
    last_name: str
    team: str  # sdr, ae or marketing
    territory: str
    time_zone: str
    country: str
    working_hours: tuple[int, int]
    manager_id: str | None
    works_days_off: bool
    responsiveness: float  # multiplies how long they take to react
    never_touch_share: float
    hired: int
    sla_calendar: BusinessCalendar
    working_calendar: BusinessCalendar

    @property
    def email(self) -> str:
        return f"{self.first_name.lower()}.{self.last_name.lower()}@{STAFF_DOMAIN}"

    @property
    def assignable(self) -> bool:
        return self.team in ("sdr", "ae") and self.manager_id is not None

    def as_record(self, clock: Clock) -> dict:
        team_name = "Marketing" if self.team == "marketing" else f"{self.team.upper()} {self.territory}"
        team_id = str(100 * (1 + ["sdr", "ae", "marketing"].index(self.team)) + list(TERRITORIES).index(self.territory))
        return {"id": self.id, "email": self.email, "firstName": self.first_name, "lastName": self.last_name,
                "userId": int(self.id) * 7, "archived": False, "createdAt": clock.iso(self.hired),
                "updatedAt": clock.iso(self.hired),
                "teams": [{"id": team_id, "name": team_name, "primary": True}],
                "timeZone": self.time_zone, "country": self.country,
                "workingHours": {"start": self.working_hours[0], "end": self.working_hours[1]},
                "team": self.team, "territory": self.territory, "managerId": self.manager_id,
                "worksDaysOff": self.works_days_off}


def hire_team(rng: random.Random, clock: Clock) -> list[Owner]:
    """Two managers, SDRs and AEs per territory (7–12 sales users), and one marketing-ops user."""
    days = local_days(clock)
    names = iter(rng.sample(STAFF_NAMES, len(STAFF_NAMES)))
    ids = count(1001)
    holiday_calendars: dict[str, holidays.HolidayBase] = {}

    def hire(team: str, territory: str, desk: tuple, manager: Owner | None) -> Owner:
        zone_name, country, hours = desk
        zone = ZoneInfo(zone_name)
        off = holiday_calendars.setdefault(country, holidays.country_holidays(
            country, years=range(days[0].year, days[-1].year + 1)))
        workdays = [d for d in days if d.weekday() < 5 and d not in off]
        vacation = set()
        for _ in range(2):  # two weeks away a year, which the SLA clock does not know about
            first = rng.randrange(len(workdays) - 5)
            vacation.update(workdays[first:first + 5])
        works_days_off = team == "sdr" and rng.random() < 0.3
        days_off = [d for d in days if d.weekday() >= 5 or d in off]
        days_off_worked = [d for d in days_off if rng.random() < 0.35] if works_days_off else []
        first_name, last_name = next(names)
        return Owner(
            id=str(next(ids)), first_name=first_name, last_name=last_name, team=team, territory=territory,
            time_zone=zone_name, country=country, working_hours=hours,
            manager_id=manager.id if manager else None, works_days_off=works_days_off,
            responsiveness=rng.lognormvariate(0, 0.35), never_touch_share=rng.uniform(0.02, 0.10),
            hired=clock.start - rng.randrange(30, 900) * DAY,
            sla_calendar=BusinessCalendar(working_intervals(clock, zone, hours, workdays)),
            working_calendar=BusinessCalendar(
                working_intervals(clock, zone, hours, [d for d in workdays if d not in vacation])
                + working_intervals(clock, zone, (10, 14), days_off_worked)))

    sdr_manager = hire("sdr", "AMER", DESKS["AMER"][0], None)
    ae_manager = hire("ae", "EMEA", DESKS["EMEA"][0], None)
    team = [sdr_manager, ae_manager]
    for role, manager, sizes in (("sdr", sdr_manager, {"AMER": (2, 3), "EMEA": (1, 2), "APAC": (0, 1)}),
                                 ("ae", ae_manager, {"AMER": (1, 2), "EMEA": (1, 2), "APAC": (0, 0)})):
        for territory, (fewest, most) in sizes.items():
            team += [hire(role, territory, rng.choice(DESKS[territory]), manager)
                     for _ in range(rng.randint(fewest, most))]
    team.append(hire("marketing", "AMER", DESKS["AMER"][0], None))
    return team


class Routing:
    """Round-robin assignment per team and territory."""

    def __init__(self, owners: list[Owner]):
        self._turns = {}
        for team in ("sdr", "ae"):
            for territory, covering in COVERAGE.items():
                candidates = ([o for o in owners if o.assignable and o.team == team and o.territory == covered]
                              for covered in covering)
                self._turns[team, territory] = cycle(next(reps for reps in candidates if reps))

    def assign(self, team: str, territory: str) -> Owner:
        return next(self._turns[team, territory])


# ---------------------------------------------------------------------------------------------
# Accounts and people

INDUSTRIES = [("COMPUTER_SOFTWARE", 1.0, 24), ("INFORMATION_TECHNOLOGY_AND_SERVICES", 0.9, 18),
              ("MARKETING_AND_ADVERTISING", 0.8, 12), ("FINANCIAL_SERVICES", 0.7, 10),
              ("HOSPITAL_HEALTH_CARE", 0.45, 8), ("LOGISTICS_AND_SUPPLY_CHAIN", 0.5, 7), ("MACHINERY", 0.4, 7),
              ("RETAIL", 0.4, 6),
              ("EDUCATION_MANAGEMENT", 0.25, 5), ("NON_PROFIT_ORGANIZATION_MANAGEMENT", 0.15, 3)]
ACCOUNT_PREFIXES = ["North", "Blue", "Bright", "Silver", "Iron", "Cedar", "Harbor", "Summit", "Granite", "Lumen",
                    "Nova", "Atlas", "Pioneer", "Vertex", "Crimson", "Evergreen", "Quantum", "Beacon", "Orbit",
                    "Sterling", "Falcon", "Maple", "Coral", "Aurora", "Delta", "Echo", "Juniper", "Kestrel",
                    "Meridian", "Onyx",
                    "Pacific", "Redwood", "Sable", "Tidal", "Union", "Willow", "Zephyr", "Copper", "Prairie", "Alpine"]
ACCOUNT_NOUNS = ["wind", "peak", "stone", "bridge", "field", "works", "point", "line", "gate", "wave", "path", "forge",
                 "light", "crest", "ridge", "port", "scale", "mark", "stack", "loop", "yard", "grid", "shift", "vault",
                 "spring", "hive", "craft", "flow", "base", "lane", "rock", "bay", "cloud", "link", "core", "dock",
                 "sight", "wing", "tree", "fleet"]
FIRST_NAMES = ["Olivia", "James", "Emma", "Lucas", "Sofia", "Henry", "Chloe", "Leo", "Grace", "Omar", "Priya", "Mateo",
               "Hannah", "Yuki", "Ines", "Felix", "Nora", "Ravi", "Amelia", "Oscar", "Lena", "Hugo", "Aisha", "Daniel",
               "Freya", "Arjun", "Clara", "Tomas", "Maya", "Samuel", "Elena", "Kai", "Julia", "Max", "Zara", "Adam",
               "Laura", "Nico", "Eva", "Jonah", "Alice", "Marco", "Ruth", "Ivan", "Lila", "Aaron", "Mina", "Pablo",
               "Sara", "Theo", "Anna", "Carlos", "Ida", "Kenji", "Rosa", "Victor", "Amir", "Ella", "Paul", "Nadia"]
LAST_NAMES = ["Smith", "Garcia", "Mueller", "Rossi", "Dubois", "Kowalski", "Nguyen", "Patel", "Okafor", "Silva",
              "Jensen", "Haddad", "Kim", "Novak", "Lopez", "Fischer", "Brown", "Martin", "Berg", "Santos", "Walker",
              "Moreau", "Ivanova", "Tanaka", "Costa", "Schmidt", "Hughes", "Larsen", "Ali", "Murphy", "Young",
              "Wagner", "Chen", "Romero", "Bakker", "Evans", "Sato", "Kaur", "Owens", "Keller", "Ward", "Reyes",
              "Nowak", "Hall", "Dias", "Lund", "Price", "Wolf", "Singh", "Ortiz", "Fox", "Bianchi", "Carr",
              "Meyer", "Lee", "Weiss", "Stone", "Vega", "Ito", "Quinn"]
NAME_GRID = len(FIRST_NAMES) * len(LAST_NAMES)
NAME_STRIDES = [7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47]  # coprime with NAME_GRID: names never repeat
EMAIL_PATTERNS = ["{f}.{l}", "{f}{l}", "{f}_{l}", "{l}.{f}"]
# title, how well the role fits what the company sells, how common it is among visitors
TITLES = Weighted(((title, fit), weight) for title, fit, weight in [
    ("Chief Revenue Officer", 1.0, 2), ("Head of Revenue Operations", 1.0, 4), ("Revenue Operations Manager", 0.95, 7),
    ("Marketing Operations Manager", 0.95, 7), ("Director of Demand Generation", 0.9, 5), ("VP of Sales", 0.85, 4),
    ("VP Marketing", 0.8, 3), ("Sales Operations Analyst", 0.7, 5), ("Sales Development Manager", 0.7, 4),
    ("Founder", 0.6, 3), ("Marketing Manager", 0.55, 10), ("Data Analyst", 0.4, 6), ("Account Executive", 0.35, 7),
    ("Consultant", 0.3, 6), ("Software Engineer", 0.15, 8), ("Student", 0.02, 4)])


@dataclass
class Account:
    """A company people work at; the CRM holds it as a ``companies`` record."""

    id: str
    name: str
    domain: str
    industry: str
    employees: int
    country: str
    territory: str
    fit: float
    competitor: bool
    email_pattern: str
    name_offset: int
    name_stride: int
    headcount: int = 0

    def next_employee(self) -> tuple[str, str, str]:
        """The next person's first name, last name and work e-mail, never repeating one."""
        index = (self.name_offset + self.headcount * self.name_stride) % NAME_GRID
        first, last = FIRST_NAMES[index % len(FIRST_NAMES)], LAST_NAMES[index // len(FIRST_NAMES)]
        local = self.email_pattern.format(f=first.lower(), l=last.lower())
        if self.headcount >= NAME_GRID:
            local += str(self.headcount // NAME_GRID)
        self.headcount += 1
        return first, last, f"{local}@{self.domain}"

    def as_record(self, clock: Clock, created: int) -> dict:
        stamp = clock.iso(created)
        properties = {"name": self.name, "domain": self.domain, "industry": self.industry,
                      "numberofemployees": str(self.employees), "country": self.country, "createdate": stamp,
                      "hs_lastmodifieddate": stamp, "hs_object_id": self.id}
        return {"objectType": "companies", "id": self.id, "properties": properties, "createdAt": stamp,
                "updatedAt": stamp, "archived": False, "archivedAt": None, "mergedInto": None}


def found_accounts(rng: random.Random, how_many: int) -> list[Account]:
    industries = Weighted(((name, fit), weight) for name, fit, weight in INDUSTRIES)
    territories = Weighted((name, share) for name, (share, _, _) in TERRITORIES.items())
    countries = {name: Weighted((code, weight) for code, (weight, _, _) in spec.items())
                 for name, (_, _, spec) in TERRITORIES.items()}
    taken: set[str] = set()
    accounts = []
    for number in range(1, how_many + 1):
        territory = territories.draw(rng)
        country = countries[territory].draw(rng)
        _, tld, legal_form = TERRITORIES[territory][2][country]
        industry, industry_fit = industries.draw(rng)
        employees = int(clamp(rng.lognormvariate(math.log(180), 1.4), 5, 60_000))
        size_fit = clamp(1 - abs(math.log10(employees) - 2.8) / 2, 0.1)
        brand = rng.choice(ACCOUNT_PREFIXES) + rng.choice(ACCOUNT_NOUNS)
        domain_tld = "io" if industry == "COMPUTER_SOFTWARE" and rng.random() < 0.3 else tld
        domain, suffix = f"{brand.lower()}.{domain_tld}", 1
        while domain in taken:
            suffix += 1
            domain = f"{brand.lower()}{suffix}.{domain_tld}"
        taken.add(domain)
        accounts.append(Account(
            id=str(number), name=f"{brand} {legal_form}", domain=domain, industry=industry, employees=employees,
            country=country, territory=territory, fit=industry_fit * size_fit,
            competitor=industry == "COMPUTER_SOFTWARE" and rng.random() < 0.02,
            email_pattern=rng.choice(EMAIL_PATTERNS), name_offset=rng.randrange(NAME_GRID),
            name_stride=rng.choice(NAME_STRIDES)))
    return accounts


class AccountPicker:
    """Which account a visitor from a territory works at: bigger companies send more visitors."""

    def __init__(self, rng: random.Random, accounts: list[Account]):
        everyone = Weighted((a, 1) for a in accounts)
        self._by_territory = {}
        for territory in TERRITORIES:
            local = [a for a in accounts if a.territory == territory]
            self._by_territory[territory] = Weighted(
                (a, rng.lognormvariate(0, 0.7) * a.employees ** 0.3) for a in local) if local else everyone

    def draw(self, territory: str, rng: random.Random) -> Account:
        return self._by_territory[territory].draw(rng)


# ---------------------------------------------------------------------------------------------
# Marketing: programs, forms, the website and its traffic sources

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
        record = {"id": self.id, "name": self.name, "description": "", "type": self.type, "channel": self.channel,
                  "status": self.status, "workspace": "Default", "createdAt": clock.iso(self.created),
                  "updatedAt": clock.iso(self.created)}
        if self.live is not None:
            record["startDate"] = record["endDate"] = clock.iso(self.live)
        return record


@dataclass(frozen=True)
class Form:
    id: int
    name: str
    kind: str  # content, webinar, demo or newsletter


FORMS = {kind: Form(3001 + n, name, kind) for n, (kind, name) in enumerate(
    [("content", "Form – Content Download"), ("webinar", "Form – Webinar Registration"),
     ("demo", "Form – Demo Request"), ("newsletter", "Form – Newsletter Signup")])}


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


BLOG_POSTS = ["Why MQLs die in the inbox", "Lead response time: the five-minute myth", "SLA design for SDR teams",
              "Attribution models compared", "Stop arguing about the funnel", "Routing leads across time zones",
              "What sales wants from marketing", "Recycling leads without losing them"]
CONTENT_ASSETS = ["Ebook – The Revenue Handoff Playbook", "Report – Lead Response Benchmark",
                  "Template – MQL Definition Worksheet", "Guide – Attribution Models Explained",
                  "Checklist – SLA Rollout", "Report – State of RevOps", "Ebook – Scoring That Sales Trusts",
                  "Guide – Closed-Loop Reporting"]
WEBINAR_TOPICS = ["Fixing the MQL handoff", "Forecasting pipeline from marketing", "Lead scoring teardown",
                  "RevOps metrics that matter", "Speed to lead in practice", "Building a shared funnel",
                  "Attribution without the drama", "SDR playbooks for inbound", "From MQL to revenue",
                  "Recycling done right", "Sales and marketing SLAs", "Account-based handoffs"]
TRADESHOWS = [("SaaStr Annual", 0.12), ("B2B Marketing Exchange", 0.37), ("Pipeline Summit", 0.62),
              ("RevOps Live", 0.87)]


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


def campaign_source(name: str, hubspot_source: str, lead_source: str, landing: Weighted, utm_source: str,
                    utm_medium: str, program: Program, content: str, term: str | None = None, referrer: str = "",
                    fit_shift: float = 0.0, interest_shift: float = 0.0, via_email: bool = False) -> Source:
    """A source whose links carry UTM parameters naming a program (``utm_campaign`` is its slug)."""
    campaign = {"source": utm_source, "medium": utm_medium, "name": program.slug, "content": content}
    if term:
        campaign["term"] = term
    search = "?" + "&".join(f"utm_{key}={value.replace(' ', '+')}" for key, value in campaign.items())
    return Source(name, hubspot_source, lead_source, referrer, landing, program, campaign, search, fit_shift,
                  interest_shift, via_email)


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
        self.early_nurture = program("Nurture – Early Stage", "Engagement", "Nurture", "on", before_span, {"Engaged"},
                                     emails=[f"Email {n:02d}" for n in range(1, 13)])
        self.recycled_nurture = program("Nurture – Recycled", "Engagement", "Nurture", "on", before_span, {"Engaged"},
                                        emails=[f"Email {n:02d}" for n in range(1, 9)])
        self.content = [
            program(name, "Default", "Content", "", release - 14 * DAY, {"Downloaded"})
            for name, release in ((name, clock.start - 90 * DAY + n * (span + 80 * DAY) // len(CONTENT_ASSETS))
                                  for n, name in enumerate(CONTENT_ASSETS))]
        self.content_releases = [p.created + 14 * DAY for p in self.content]
        self.webinars = []
        for month, live in enumerate(self._second_thursdays(clock)):
            if live <= clock.last:
                name = f"Webinar – {clock.moment(live):%b %Y}: {WEBINAR_TOPICS[month % len(WEBINAR_TOPICS)]}"
                self.webinars.append(program(name, "Event", "Webinar", "unlocked", live - 35 * DAY,
                                             {"Attended", "Attended On-demand"}, live, emails=["Invitation"]))
        self.webinar_lives = [p.live for p in self.webinars]
        # People first known offline arrive in batches: badge scans and syndicated-content lists.
        self.imports: list[tuple[int, Program, str, str]] = []
        for name, fraction in TRADESHOWS:
            live = clock.start + int(span * fraction) + 15 * HOUR
            show = program(f"Tradeshow – {name} {clock.moment(live):%Y}", "Event", "Tradeshow", "unlocked",
                           live - 60 * DAY, {"Visited Booth"}, live)
            self.imports.append((live + 3 * DAY, show, "Visited Booth", "Tradeshow"))
        for quarter in range(4):
            opens = clock.start + quarter * span // 4
            syndication = program(f"Content Syndication – {clock.moment(opens + 45 * DAY):%Y} Q{quarter + 1}",
                                  "Default", "Content Syndication", "", opens - 10 * DAY, {"Engaged"})
            self.imports += [(opens + month * span // 12 + 10 * HOUR, syndication, "Engaged", "Content Syndication")
                             for month in range(3)]
        self.imports = sorted((i for i in self.imports if i[0] <= clock.last), key=lambda i: i[0])
        self.import_times = [i[0] for i in self.imports]
        self.programs = sorted([self.paid_brand, self.paid_category, self.linkedin_abm, self.retargeting, self.g2,
                                self.demo_requests, self.newsletter, self.early_nurture, self.recycled_nurture,
                                *self.content, *self.webinars, *{i[1].id: i[1] for i in self.imports}.values()],
                               key=lambda p: p.id)
        self._build_site()
        self._build_sources()

    @staticmethod
    def _second_thursdays(clock: Clock) -> Iterator[int]:
        month = clock.moment(clock.start).date().replace(day=1)
        while clock.seconds(datetime(month.year, month.month, 1, tzinfo=timezone.utc)) <= clock.last:
            first_thursday = 1 + (3 - month.weekday()) % 7
            yield clock.seconds(datetime(month.year, month.month, first_thursday + 7, 16, tzinfo=timezone.utc))
            month = (month + timedelta(days=32)).replace(day=1)

    def _build_site(self) -> None:
        ids = count(5001)

        def page(path, name, kind, tracked=True, **details) -> Page:
            return Page(next(ids), path, name, kind, tracked, SITE + path, f"{name} | Handoff Demo", **details)

        home = page("/", "Home", "home", cta_chance=0.06)
        product = page("/product", "Product", "product", cta_chance=0.08)
        pricing = page("/pricing", "Pricing", "pricing", score=10, score_reason="Visited pricing page", cta_chance=0.05)
        customers = page("/customers", "Customers", "customers")
        self.demo_page = page("/demo", "Request a demo", "demo", program=self.demo_requests, form=FORMS["demo"],
                              form_chance=0.045, score=5, score_reason="Visited demo page")
        contact = page("/contact", "Contact sales", "demo", program=self.demo_requests, form=FORMS["demo"],
                       form_chance=0.04, score=5, score_reason="Visited demo page")
        self.blog = [page(f"/blog/{slug(title)}", title, "blog", tracked=False, program=self.newsletter,
                          form=FORMS["newsletter"], form_chance=0.008) for title in BLOG_POSTS]
        statics = [
            (home, 10, 4), (product, 8, 8),
            (page("/product/sla-alerts", "SLA alerts", "product", cta_chance=0.05), 4, 5),
            (page("/product/attribution", "Attribution", "product", cta_chance=0.05), 4, 5),
            (page("/integrations", "Integrations", "product"), 4, 4), (pricing, 4, 14), (customers, 3, 8),
            (page("/customers/northwind-analytics", "Northwind Analytics case study", "customers"), 1, 3),
            (self.demo_page, 1, 4), (contact, 0.5, 2), (page("/about", "About us", "about"), 2, 1),
            (page("/careers", "Careers", "careers"), 2, 0.2),
            (page("/docs/getting-started", "Docs: Getting started", "docs", tracked=False), 2, 2),
            *((post, 1.5, 0.5) for post in self.blog), ("resource", 4, 4), ("webinar", 2, 2)]
        self.browsing = Weighted((target, browse) for target, browse, _ in statics)
        self.buying = Weighted((target, buy) for target, _, buy in statics)
        self.resource_pages = [page(f"/resources/{p.slug}", p.name, "resource", program=p, form=FORMS["content"],
                                    form_chance=0.09) for p in self.content]
        self.webinar_pages = [page(f"/webinars/{p.slug}", p.name, "webinar", program=p, form=FORMS["webinar"],
                                   form_chance=0.15) for p in self.webinars]
        self.landing_pages = {p.id: page(f"/lp/{p.slug}", p.name, "landing", program=p, form=FORMS["content"],
                                         form_chance=0.1)
                              for p in (self.paid_category, self.linkedin_abm)}
        self.home, self.pricing, self.customers = home, pricing, customers

    def _build_sources(self) -> None:
        blog_landing = Weighted((post, 1) for post in self.blog)
        search_landing = Weighted([*((post, 6) for post in self.blog), (self.home, 20), (self.pricing, 5),
                                   ("resource", 6)])
        self.first_visits = Weighted([
            (Source("organic_search", "ORGANIC_SEARCH", "Organic Search", "https://www.google.com/", search_landing,
                    fit_shift=-0.03), 30),
            (campaign_source("paid_search_brand", "PAID_SEARCH", "Paid Search",
                             Weighted([(self.demo_page, 3), (self.pricing, 2)]), "google", "cpc", self.paid_brand,
                             "brand-ad-a", "handoff demo", interest_shift=0.2), 6),
            (campaign_source("paid_search_category", "PAID_SEARCH", "Paid Search",
                             Weighted([(self.landing_pages[self.paid_category.id], 1)]), "google", "cpc",
                             self.paid_category, "playbook-ad-b", "lead routing software"), 10),
            (campaign_source("paid_social_abm", "PAID_SOCIAL", "Paid Social",
                             Weighted([(self.landing_pages[self.linkedin_abm.id], 1)]), "linkedin", "paid_social",
                             self.linkedin_abm, "carousel-1", fit_shift=0.2), 12),
            (campaign_source("review_site", "REFERRALS", "Referral",
                             Weighted([(self.customers, 2), (self.pricing, 2), (self.home, 1)]), "g2", "referral",
                             self.g2, "profile-cta", referrer="https://www.g2.com/products/handoff-demo/reviews",
                             interest_shift=0.15), 9),
            (Source("organic_social", "SOCIAL_MEDIA", "Social", "https://www.linkedin.com/", blog_landing,
                    fit_shift=-0.05), 8),
            (Source("direct", "DIRECT_TRAFFIC", "Direct", "",
                    Weighted([(self.home, 7), (self.pricing, 2), (self.demo_page, 1)])), 15),
        ])
        by_name = {source.name: source for source in self.first_visits.items}
        self.return_visits = Weighted([
            (by_name["direct"], 45), (by_name["organic_search"], 30), (by_name["review_site"], 8),
            (by_name["organic_social"], 5),
            (campaign_source("retargeting", "PAID_SOCIAL", "Paid Social",
                             Weighted([(self.pricing, 2), (self.customers, 1)]), "linkedin", "paid_social",
                             self.retargeting, "retargeting-pricing"), 12)])
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


# ---------------------------------------------------------------------------------------------
# The company: shared state and the record writers


class Company:
    """Everything people share: clock, random stream, team, accounts, catalog, id sequences, and the
    writers that put records in their vendors' shapes."""

    def __init__(self, writer: DatasetWriter, people: int, seed: int, now: datetime, malformed_share: float):
        self.people = people
        self.write = writer.write
        self.rng = random.Random(seed)
        self.clock = Clock(now, SIMULATED_DAYS)
        self.malformed_share = malformed_share
        self._stamp, self._random = self.clock.stamp, self.rng.random  # bound once: called millions of times
        self.owners = hire_team(self.rng, self.clock)
        self.owner_by_id = {owner.id: owner for owner in self.owners}
        self.routing = Routing(self.owners)
        self.marketing_user = next(o for o in self.owners if o.team == "marketing")
        self.accounts = found_accounts(self.rng, max(24, people // 8))
        self.account_picker = AccountPicker(self.rng, self.accounts)
        self.catalog = Catalog(self.clock)
        self._salt = self.rng.getrandbits(64)
        # Millions of message ids and activity GUIDs: a random prefix per company and a counter.
        prefix = f"{self.rng.getrandbits(64):016x}"
        self._message_prefix = f"ajs-next-{prefix}"
        self._guid_prefix = f"{prefix[:8]}-{prefix[8:12]}-4{prefix[13:16]}-"
        self._crm_ids = {kind: count(1) for kind in ("contacts", "deals", "calls", "emails", "meetings", "tasks")}
        self.lead_ids = count(1_000_001)
        self.activity_ids = count(1)
        self.handoff_numbers = count(1)
        self._event_numbers = count(1)
        self._device_numbers = count(1)
        self._personal_number_offset = self.rng.randrange(1_000_000)

    # -- identities

    def crm_id(self, object_type: str) -> str:
        return str(next(self._crm_ids[object_type]))

    def new_device(self) -> str:
        """A random-looking, unique, seed-dependent anonymous id (an odd multiplier is a bijection
        modulo 2**128)."""
        h = f"{(next(self._device_numbers) * 0x9E3779B97F4A7C15F39CC0605CEDC835 + self._salt) & ((1 << 128) - 1):032x}"
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{h[16:20]}-{h[20:]}"

    def personal_number(self, person_number: int) -> int:
        """A number unique to the person (7919 is coprime with 10**6), for free-mail addresses."""
        return (person_number * 7919 + self._personal_number_offset) % 1_000_000

    # -- setup records

    def write_setup(self) -> None:
        clock, rng = self.clock, self.rng
        for owner in self.owners:
            self.write("owners", owner.as_record(clock))
        created = clock.iso(clock.start - 400 * DAY)
        self.write("crm_pipelines", {
            "id": "default", "objectType": "deals", "label": "Sales Pipeline", "displayOrder": 0, "archived": False,
            "createdAt": created, "updatedAt": created,
            "stages": [{"id": stage, "label": label, "displayOrder": order, "archived": False, "createdAt": created,
                        "updatedAt": created, "metadata": {"probability": probability, "isClosed": str(closed).lower()}}
                       for order, (stage, label, probability, closed) in enumerate(DEAL_STAGES)]})
        for account in self.accounts:
            self.write("crm_objects", account.as_record(clock, clock.start - rng.randrange(1, 700) * DAY))
        for program in self.catalog.programs:
            self.write("marketing_programs", program.as_record(clock))

    # -- web (Segment spec)

    def page_event(self, device: str, user_id: str | None, t: int, page: Page, referrer: str, search: str,
                   campaign: dict | None) -> None:
        properties = {"path": page.path, "url": page.url + search, "title": page.title,
                      "referrer": referrer, "search": search}
        context = {"page": properties} if campaign is None else {"page": properties, "campaign": campaign}
        self.write("web_events", {
            "type": "page", "messageId": self._message_id(), "anonymousId": device, "userId": user_id,
            "timestamp": self._stamp(t, int(self._random() * 1000)), "name": page.name, "properties": properties,
            "context": context})

    def track_event(self, device: str, user_id: str | None, t: int, event: str, properties: dict, page: Page) -> None:
        self.write("web_events", {
            "type": "track", "messageId": self._message_id(), "anonymousId": device, "userId": user_id,
            "timestamp": self._stamp(t, int(self._random() * 1000)), "event": event,
            "properties": properties, "context": {"page": {"path": page.path, "url": page.url}}})

    def identify_event(self, device: str, user_id: str, t: int, traits: dict, page: Page) -> None:
        self.write("web_events", {
            "type": "identify", "messageId": self._message_id(), "anonymousId": device, "userId": user_id,
            "timestamp": self._stamp(t), "traits": traits,
            "context": {"page": {"path": page.path, "url": page.url}}})

    def _message_id(self) -> str:
        return f"{self._message_prefix}{next(self._event_numbers):08x}"

    # -- marketing automation (Marketo)

    def activity(self, lead_id: int, t: int, type_id: int, value_id: int | None, value: str | None,
                 attributes: list[dict]) -> None:
        number = next(self.activity_ids)
        self.write("marketing_activities", {
            "id": number, "marketoGUID": f"{self._guid_prefix}{number >> 48:04x}-{number & 0xFFFFFFFFFFFF:012x}",
            "leadId": lead_id, "activityDate": self._stamp(t), "activityTypeId": type_id,
            "primaryAttributeValueId": value_id, "primaryAttributeValue": value, "attributes": attributes})

    # -- CRM (HubSpot)

    def crm_object(self, object_type: str, object_id: str, properties: dict, created: int, updated: int,
                   archived_at: int | None = None, merged_into: str | None = None) -> None:
        stamp = self._stamp
        self.write("crm_objects", {
            "objectType": object_type, "id": object_id, "properties": properties, "createdAt": stamp(created),
            "updatedAt": stamp(updated), "archived": archived_at is not None,
            "archivedAt": None if archived_at is None else stamp(archived_at), "mergedInto": merged_into})

    def associate(self, from_type: str, from_id: str, to_type: str, to_id: str) -> None:
        association_type = f"{ASSOCIATION_NAMES[from_type]}_to_{ASSOCIATION_NAMES[to_type]}"
        self.write("crm_associations", {"fromType": from_type, "fromId": from_id, "toType": to_type, "toId": to_id,
                                        "associationType": association_type})

    def engagement(self, object_type: str, owner: Owner, contact_id: str, created: int, timestamp: int,
                   properties: dict) -> str:
        """A logged sales (or marketing) activity on a contact; its id."""
        engagement_id = self.crm_id(object_type)
        stamp = self._stamp(created)
        properties.update(hs_timestamp=self._stamp(timestamp), hubspot_owner_id=owner.id, hs_createdate=stamp,
                          hs_lastmodifieddate=stamp, hs_object_id=engagement_id)
        self.crm_object(object_type, engagement_id, properties, created, created)
        self.associate(object_type, engagement_id, "contacts", contact_id)
        return engagement_id

    # -- time

    def arrivals(self) -> Iterator[tuple[int, str]]:
        """When each person first shows up, in time order: traffic grows over the year, dips at
        weekends and over the year-end holidays, and follows each territory's working day."""
        clock = self.clock
        generator = np.random.default_rng(self.rng.getrandbits(64))
        names = list(TERRITORIES)
        shares = np.array([TERRITORIES[n][0] for n in names])
        territory_of = generator.choice(len(names), size=self.people, p=shares / shares.sum())
        hour_starts = np.arange(clock.start - clock.start % HOUR, clock.now - HOUR + 1, HOUR, dtype=np.int64)
        growth = 0.75 + 0.5 * (hour_starts - clock.start) / (clock.now - clock.start)
        hour_weights = np.array([0.2, 0.15, 0.1, 0.1, 0.1, 0.2, 0.4, 0.8, 1.3, 1.6, 1.7, 1.6, 1.4, 1.5, 1.6, 1.5,
                                 1.3, 1.0, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3])
        times = np.empty(self.people, dtype=np.int64)
        for index, name in enumerate(names):
            local = hour_starts + TERRITORIES[name][1] * HOUR
            local_day = local // DAY
            weekday = (clock.origin.weekday() + local_day) % 7
            dates = [clock.moment(int(d) * DAY).date() for d in range(int(local_day.min()), int(local_day.max()) + 1)]
            year_end = np.array([(d.month == 12 and d.day >= 20) or (d.month == 1 and d.day <= 3) for d in dates])
            weights = (growth * hour_weights[(local % DAY) // HOUR] * np.where(weekday >= 5, 0.45, 1.0)
                       * np.where(year_end[local_day - local_day.min()], 0.5, 1.0))
            chosen = territory_of == index
            cells = generator.choice(len(hour_starts), size=int(chosen.sum()), p=weights / weights.sum())
            times[chosen] = hour_starts[cells] + generator.integers(0, HOUR, size=cells.size)
        times = np.clip(times, clock.start, clock.last)
        order = np.argsort(times, kind="stable")
        times, territory_of = times[order], territory_of[order]
        for begin in range(0, self.people, 10_000):
            chunk = slice(begin, begin + 10_000)
            for t, territory in zip(times[chunk].tolist(), territory_of[chunk].tolist()):
                yield t, names[territory]


# ---------------------------------------------------------------------------------------------
# Records that change over a journey and are written once, in their final state


class CrmRecord:
    """A CRM contact or deal: property changes are kept as history as they happen."""

    __slots__ = ("company", "object_type", "id", "properties", "created", "updated", "archived_at", "merged_into")

    def __init__(self, company: Company, object_type: str, created: int, properties: dict):
        self.company = company
        self.object_type = object_type
        self.id = company.crm_id(object_type)
        self.created = self.updated = created
        self.archived_at: int | None = None
        self.merged_into: str | None = None
        created_name, _ = DATE_PROPERTIES[object_type]
        self.properties = {**properties, created_name: company.clock.stamp(created), "hs_object_id": self.id}

    def set(self, name: str, value: str | None, t: int, source: str) -> None:
        self.properties[name] = value
        self.updated = max(self.updated, t)
        if name in TRACKED_PROPERTIES:
            self.company.write("crm_property_history", {
                "objectType": self.object_type, "id": self.id, "property": name, "value": value,
                "timestamp": self.company.clock.stamp(t), "sourceType": source})

    def write(self) -> None:
        _, modified_name = DATE_PROPERTIES[self.object_type]
        self.properties[modified_name] = self.company.clock.stamp(self.updated)
        self.company.crm_object(self.object_type, self.id, self.properties, self.created, self.updated,
                                self.archived_at, self.merged_into)


class Lead:
    """A Marketo lead: its activities are written as they happen, the lead and its program
    memberships once its story is over."""

    __slots__ = ("company", "person", "id", "user_id", "email", "created", "updated", "score", "status", "source",
                 "acquisition_program", "unsubscribed", "deleted", "merged_into", "memberships", "created_missing")

    def __init__(self, person: Journey, email: str, t: int, lead_source: str, program: Program, how: str):
        company = self.company = person.company
        self.person = person
        self.id = next(company.lead_ids)
        self.user_id = str(self.id)  # the website's Segment userId
        self.email = email
        self.created = self.updated = t
        self.score = 0
        self.status = "Nurture"
        self.source = lead_source
        self.acquisition_program = program
        self.unsubscribed = False
        self.deleted: int | None = None
        self.merged_into: int | None = None
        self.memberships: dict[int, dict] = {}
        self.created_missing = False
        detail = "Form Name" if how == "Web form fill" else "List Name"
        self.log(NEW_LEAD, t, None, program.name, [{"name": "Source Type", "value": how},
                                                   {"name": detail, "value": program.name},
                                                   {"name": "Lead Source", "value": lead_source}])

    def log(self, type_id: int, t: int, value_id: int | None, value: str | None, attributes: list[dict]) -> None:
        self.company.activity(self.id, t, type_id, value_id, value, attributes)

    def change_score(self, t: int, points: int, reason: str) -> None:
        old, self.score = self.score, self.score + points
        self.updated = max(self.updated, t)
        self.log(CHANGE_SCORE, t, None, "Lead Score", [
            {"name": "Change Value", "value": f"{points:+d}"}, {"name": "New Value", "value": self.score},
            {"name": "Old Value", "value": old}, {"name": "Reason", "value": reason}])

    def change_status(self, t: int, status: str, reason: str) -> None:
        self._changed(t, "Lead Status", status, self.status, reason)
        self.status = status

    def unsubscribe(self, t: int) -> None:
        self._changed(t, "Unsubscribed", True, False, "Unsubscribed via e-mail link")
        self.unsubscribed = True

    def _changed(self, t: int, field: str, new, old, reason: str) -> None:
        self.updated = max(self.updated, t)
        self.log(CHANGE_DATA_VALUE, t, None, field, [
            {"name": "New Value", "value": new}, {"name": "Old Value", "value": old},
            {"name": "Reason", "value": reason}, {"name": "Source", "value": "Marketo Flow Action"}])

    def progress(self, program: Program, t: int, status: str) -> None:
        member = self.memberships.get(program.id)
        old = member["progressionStatus"] if member else "Not in Program"
        if old == status:
            return
        success = status in program.success
        stamp = self.company.clock.stamp(t)
        if member is None:
            member = self.memberships[program.id] = {
                "programId": program.id, "leadId": self.id, "progressionStatus": status, "membershipDate": stamp,
                "reachedSuccess": False, "reachedSuccessDate": None,
                "acquiredBy": program is self.acquisition_program, "updatedAt": stamp}
        member["progressionStatus"], member["updatedAt"] = status, stamp
        if success and not member["reachedSuccess"]:
            member["reachedSuccess"], member["reachedSuccessDate"] = True, stamp
        self.log(CHANGE_PROGRAM_STATUS, t, program.id, program.name, [
            {"name": "New Status", "value": status}, {"name": "Old Status", "value": old},
            {"name": "Success", "value": success}, {"name": "Acquired By", "value": member["acquiredBy"]}])

    def write(self) -> None:
        stamp, person = self.company.clock.stamp, self.person
        self.company.write("marketing_leads", {
            "id": self.id, "email": self.email, "firstName": person.first_name, "lastName": person.last_name,
            "title": person.title, "company": person.account.name, "country": person.account.country,
            "leadScore": self.score, "leadStatus": self.status, "leadSource": self.source,
            "unsubscribed": self.unsubscribed, "acquisitionProgramId": self.acquisition_program.id,
            "createdAt": None if self.created_missing else stamp(self.created), "updatedAt": stamp(self.updated),
            "deletedAt": None if self.deleted is None else stamp(self.deleted), "mergedInto": self.merged_into})
        for member in self.memberships.values():
            self.company.write("marketing_program_members", member)


# ---------------------------------------------------------------------------------------------
# A person's journey

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
        fit_shift, interest_shift = ((self.first_source.fit_shift, self.first_source.interest_shift)
                                     if self.first_source else (IMPORTED_FIT_SHIFT, 0.0))
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
        return rng.choice([f"{local}@{domain.rsplit('.', 1)[0]}", f"{local}.{domain}", f"{local} @{domain}",
                           f"{local}@@{domain}"])

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
        write("truth_people", {
            "personId": self.person_id, "email": self.lead.email if self.lead else None,
            "crmContactIds": [c.id for c in self.contacts],
            "crmContactId": self.contact.id if self.contact and self.erased_at is None else None,
            "marketingLeadId": self.lead.id if self.lead else None,
            "marketingLeadIds": [lead.id for lead in self.leads],
            "anonymousIds": self.devices, "crmCompanyId": self.account.id, "stage": self.stage,
            "lifecycleStage": true_lifecycle,
            "ownerId": self.contact.properties["hubspot_owner_id"] if self.contact else None,
            "deleted": self.erased_at is not None, "malformed": defect is not None, "defect": defect})
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
                    lead.log(VISIT_WEBPAGE, t, page.id, page.path, [
                        {"name": "Webpage URL", "value": page.url}, {"name": "Query Parameters", "value": search},
                        {"name": "Referrer URL", "value": referrer}])
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
                company.track_event(device, user_id, t, "CTA Clicked",
                                    {"label": "Book a demo", "location": page.path}, page)
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
        self.company.identify_event(device, lead.user_id, t, {
            "email": lead.email, "firstName": self.first_name, "lastName": self.last_name,
            "company": self.account.name, "title": self.title}, page)

    def _submit(self, page: Page, device: str, t: int, search: str, referrer: str, source: Source,
                lead: Lead | None = None) -> tuple[int, str] | None:
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
        lead.log(FILL_OUT_FORM, t, form.id, form.name, [
            {"name": "Webpage URL", "value": page.url}, {"name": "Query Parameters", "value": search},
            {"name": "Referrer URL", "value": referrer}])
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
        company, t = self.company, lead.created
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
        targets = ("resource", self.company.catalog.blog[self.nurture_position % len(BLOG_POSTS)], "resource",
                   self.company.catalog.customers, "webinar", self.company.catalog.demo_page)
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
        device_attributes = [{"name": "Device", "value": "iPhone" if mobile else "Desktop"},
                             {"name": "Is Mobile Device", "value": mobile}]
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
        self._push(clicked + 2, EMAIL_CLICK_VISIT, campaign_source(
            "email", "EMAIL_MARKETING", "Email", Weighted([(page, 1)]), "marketo", "email", program,
            slug(name.rsplit(".", 1)[-1]), via_email=True))
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
        contact = CrmRecord(self.company, "contacts", t, {
            "email": lead.email, "firstname": self.first_name, "lastname": self.last_name, "jobtitle": self.title,
            "company": self.account.name, "country": self.account.country, "hs_analytics_source": source,
            "lifecyclestage": None, "hs_lead_status": None, "hubspot_owner_id": None, "rejection_reason": None,
            "hs_merged_object_ids": None})
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
        email = (f"{self.first_name.lower()}{company.personal_number(self.number)}@"
                 f"{rng.choice(PERSONAL_PROVIDERS)}")
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
        self.lead.log(MERGE_LEADS, merged_at, self.lead.id, f"{self.first_name} {self.last_name}", [
            {"name": "Merge IDs", "value": [duplicate.id]}, {"name": "Merged in Sales", "value": False},
            {"name": "Merge Source", "value": "Marketo UI"}, {"name": "Master Updated", "value": False}])

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
            if self.contact is not None:
                self.contact.properties["createdate"] = None
            else:
                self.lead.created_missing = True
        return self.defect


# ---------------------------------------------------------------------------------------------
# The handoff: sales working an MQL

ATTEMPT_CHANNELS = Weighted([("calls", 55), ("emails", 35), ("tasks", 10)])
DISQUALIFICATION_REASONS = Weighted([("bad_timing", 40), ("no_budget", 35), ("bad_fit", 15), ("competitor", 10)])
MAX_ATTEMPTS = 6


class Handoff:
    """One person × one MQL event, worked by its owner in the owner's business time."""

    def __init__(self, person: Journey, lead: Lead, contact: CrmRecord, mql_at: int, reason: str):
        company = self.company = person.company
        self.person, self.lead, self.contact = person, lead, contact
        self.id = f"h{next(company.handoff_numbers)}"
        self.mql_at, self.reason, self.policy = mql_at, reason, POLICIES[reason]
        previous = company.owner_by_id.get(contact.properties["hubspot_owner_id"])
        keeps_owner = previous is not None and previous.team == "sdr" and company.rng.random() < 0.7
        self.owner = previous if keeps_owner else company.routing.assign("sdr", person.account.territory)
        self.due_at = self.owner.sla_calendar.advance(mql_at, self.policy.minutes * 60)
        self.first_touch_at: int | None = None
        self.first_touch: tuple[str, str] | None = None
        self.decision: str | None = None
        self.decided_at: int | None = None
        self.rejection_reason: str | None = None
        self.outcome = "none"
        self.deal: CrmRecord | None = None
        self.won_amount: int | None = None
        self.last_attempt: int | None = None

    @property
    def horizon(self) -> int:
        return self.person.horizon

    def _reach(self, stage: str) -> None:
        if self.contact is self.person.contact:
            self.person.stage = stage

    def _reaction(self) -> int:
        """Business seconds the owner takes to react: mostly within policy, with a long tail."""
        seconds = self.policy.minutes * 60 * 0.4 * self.owner.responsiveness * self.company.rng.lognormvariate(0, 1.0)
        return max(60, int(seconds))

    def work(self, rejection: str | None = None) -> int | None:
        """Play the handoff out; returns when the person goes back to marketing, or None."""
        company, rng, contact, owner = self.company, self.company.rng, self.contact, self.owner
        t = self.mql_at
        contact.set("lifecyclestage", "marketingqualifiedlead", t, "INTEGRATION")
        contact.set("hs_lead_status", "NEW", t, "INTEGRATION")
        contact.set("hubspot_owner_id", owner.id, t, "AUTOMATION_PLATFORM")
        if contact.properties["rejection_reason"] is not None:
            contact.set("rejection_reason", None, t, "AUTOMATION_PLATFORM")
        self.lead.change_status(t, "MQL", "Demo request" if self.reason == "demo_request" else "Score")
        self._reach("mql")
        if self.reason == "demo_request" and rng.random() < 0.8 and t + 300 <= self.horizon:
            # Marketing's automatic confirmation is logged on the contact, but it is no sales touch.
            company.engagement("emails", company.marketing_user, contact.id, t + 120, t + 120, {
                "hs_email_direction": "EMAIL", "hs_email_subject": "Thanks for requesting a demo",
                "hs_email_status": "SENT"})
        rejection = rejection or self._gate_rejection()
        if rejection:
            reviewed = owner.working_calendar.advance(t, self._reaction())
            if reviewed is None or reviewed > self.horizon:
                return None
            self.decision, self.decided_at = "rejected", reviewed
            return self._disqualify(reviewed, rejection)
        if rng.random() < owner.never_touch_share:
            return None
        reaction = self._reaction()
        if rng.random() < 0.15:  # some owners mark the lead as worked before reaching out
            accepted = owner.working_calendar.advance(t, int(reaction * rng.uniform(0.2, 0.6)))
            if accepted is None or accepted > self.horizon:
                return None
            contact.set("hs_lead_status", "IN_PROGRESS", accepted, "CRM_UI")
            self.decision, self.decided_at = "accepted", accepted
            self._reach("sal")
        connected = self._reach_out(owner.working_calendar.advance(t, reaction))
        if connected is None:
            return None
        if connected == "no_response":
            gave_up = owner.working_calendar.advance(self.last_attempt, rng.randrange(HOUR, 8 * HOUR))
            return None if gave_up is None else self._disqualify(gave_up, "no_response")
        return self._discover(connected)

    def _gate_rejection(self) -> str | None:
        rng, person = self.company.rng, self.person
        if person.account.competitor and rng.random() < 0.85:
            return "competitor"
        if rng.random() < 0.45 * (1 - person.fit) ** 2:
            return "bad_fit"
        return None

    def _reach_out(self, first_attempt: int | None) -> int | str | None:
        """The owner's cadence of calls and e-mails; when the person answered, "no_response", or
        None when the story runs past the horizon."""
        company, rng, contact, owner = self.company, self.company.rng, self.contact, self.owner
        answer_chance = 0.18 + 0.25 * self.person.interest + (0.25 if self.reason == "demo_request" else 0)
        t = first_attempt
        for attempt in range(MAX_ATTEMPTS):
            if t is None or t + 30 * 60 > self.horizon:  # room to log a call of up to 25 minutes
                return None
            channel, answered = ATTEMPT_CHANNELS.draw(rng), rng.random() < answer_chance
            if channel == "calls":
                duration = rng.randrange(3 * 60, 25 * 60) if answered else 0
                touch = company.engagement("calls", owner, contact.id, t + duration + 30, t, {
                    "hs_call_title": f"Call with {self.person.first_name} {self.person.last_name}",
                    "hs_call_direction": "OUTBOUND", "hs_call_status": "COMPLETED" if answered else "NO_ANSWER",
                    "hs_call_duration": str(duration * 1000)})
                answered_at = t + duration if answered else None
            elif channel == "emails":
                subject = ("Your demo request" if self.reason == "demo_request"
                           else f"Quick question about {self.person.account.name}")
                touch = company.engagement("emails", owner, contact.id, t, t, {
                    "hs_email_direction": "EMAIL", "hs_email_subject": subject, "hs_email_status": "SENT"})
                answered_at = t + 120 + int(rng.expovariate(1 / (5 * HOUR))) if answered else None
                if answered_at is not None and answered_at <= self.horizon:
                    company.engagement("emails", owner, contact.id, answered_at, answered_at, {
                        "hs_email_direction": "INCOMING_EMAIL", "hs_email_subject": f"Re: {subject}",
                        "hs_email_status": "SENT"})
            else:
                touch = company.engagement("tasks", owner, contact.id, t, t, {
                    "hs_task_subject": f"LinkedIn message to {self.person.first_name} {self.person.last_name}",
                    "hs_task_status": "COMPLETED", "hs_task_type": "TODO",
                    "hs_task_completion_date": company.clock.stamp(t)})
                answered_at = None
            if attempt == 0:
                self.first_touch_at, self.first_touch = t, (channel, touch)
                if self.decision is None:
                    self.decision, self.decided_at = "accepted", t
                    self._reach("sal")
                contact.set("hs_lead_status", "ATTEMPTED_TO_CONTACT", t, "CRM_UI")
            self.last_attempt = t
            if answered_at is not None:
                if answered_at > self.horizon:
                    return None
                contact.set("hs_lead_status", "CONNECTED", answered_at, "CRM_UI")
                return answered_at
            t = owner.working_calendar.advance(t, rng.randrange(4 * HOUR, 20 * HOUR))
        if self.last_attempt + 60 * DAY <= self.horizon:
            company.engagement("tasks", owner, contact.id, self.last_attempt, self.last_attempt + 60 * DAY, {
                "hs_task_subject": f"Re-engage {self.person.first_name} {self.person.last_name}",
                "hs_task_status": "NOT_STARTED", "hs_task_type": "CALL", "hs_task_completion_date": None})
        return "no_response"

    def _meeting(self, owner: Owner, booked: int, business_delay: int, title: str) -> tuple[int, str] | None:
        """Book and hold a meeting; its start and outcome, or None if it lies past the horizon."""
        start = owner.working_calendar.advance(booked, business_delay)
        if start is None or start - start % 900 + 1800 > self.horizon:
            return None
        start -= start % 900  # calendars book on the quarter hour
        rng = self.company.rng
        outcome = "NO_SHOW" if rng.random() < 0.15 else "COMPLETED"
        if start > self.company.clock.last - DAY:
            outcome = "SCHEDULED"  # held recently; the owner has not logged the outcome yet
        self.company.engagement("meetings", owner, self.contact.id, booked, start, {
            "hs_meeting_title": title, "hs_meeting_outcome": outcome,
            "hs_meeting_start_time": self.company.clock.stamp(start),
            "hs_meeting_end_time": self.company.clock.stamp(start + 1800)})
        return start, outcome

    def _discover(self, connected: int) -> int | None:
        """A discovery meeting, then the owner qualifies the person or not."""
        company, rng, person, owner = self.company, self.company.rng, self.person, self.owner
        booked = connected
        for _ in range(2):  # one no-show gets a second chance
            held = self._meeting(owner, booked, rng.randrange(4 * HOUR, 32 * HOUR),
                                 f"Discovery call: {person.account.name}")
            if held is None or held[1] == "SCHEDULED":
                return None
            if held[1] == "COMPLETED":
                break
            booked = held[0] + 1800
        else:
            return self._disqualify(booked + rng.randrange(HOUR, DAY), "no_response")
        ended = held[0] + 1800
        self.contact.set("hs_lead_status", "IN_PROGRESS", ended, "CRM_UI")
        decided = owner.working_calendar.advance(ended, rng.randrange(30 * 60, 16 * HOUR))
        if decided is None or decided > self.horizon:
            return None
        hand_raise_bonus = 0.1 if self.reason == "demo_request" else 0
        sql_chance = 0.05 + 0.55 * person.fit * (0.6 + 0.4 * person.interest) + hand_raise_bonus
        if rng.random() >= sql_chance:
            return self._disqualify(decided, DISQUALIFICATION_REASONS.draw(rng))
        self.contact.set("lifecyclestage", "salesqualifiedlead", decided, "CRM_UI")
        self.outcome = "sql"
        self._reach("sql")
        return self._sell(decided) if rng.random() < 0.85 else None

    def _disqualify(self, t: int, reason: str) -> int | None:
        """The owner sets the lead unqualified with a reason; the person is recycled to nurture
        (competitors are set aside, duplicates wait to be merged)."""
        if t > self.horizon:
            return None
        self.contact.set("hs_lead_status", "UNQUALIFIED", t, "CRM_UI")
        self.contact.set("rejection_reason", reason, t, "CRM_UI")
        self.rejection_reason = reason
        self._reach("rejected")
        if reason == "duplicate":
            return None
        return self._recycle(t, "other" if reason == "competitor" else "lead")

    def _recycle(self, t: int, lifecycle_stage: str) -> int | None:
        """A nightly workflow moves the contact back; marketing resets the score and re-nurtures."""
        rng, person = self.company.rng, self.person
        recycled = t + rng.randrange(2 * HOUR, 2 * DAY)
        if recycled > self.horizon:
            return None
        self.contact.set("lifecyclestage", lifecycle_stage, recycled, "AUTOMATION_PLATFORM")
        if lifecycle_stage == "other":
            return None
        self.lead.change_status(recycled, "Recycled", "Recycled by sales")
        self.lead.change_score(recycled, 5 * round(8 * person.fit) - self.lead.score, "Recycled: score reset")
        self.lead.progress(self.company.catalog.recycled_nurture, recycled, "Member")
        person.nurture, person.nurture_position = self.company.catalog.recycled_nurture, 0
        return recycled

    def _sell(self, qualified: int) -> int | None:
        """An account executive opens a deal and works it through the pipeline to a close."""
        company, rng, person, contact = self.company, self.company.rng, self.person, self.contact
        executive = company.routing.assign("ae", person.account.territory)
        created = executive.working_calendar.advance(qualified, rng.randrange(HOUR, 24 * HOUR))
        if created is None or created > self.horizon:
            return None
        amount = int(12_000 * (person.account.employees / 100) ** 0.45 * rng.lognormvariate(0, 0.35)) // 500 * 500
        deal = self.deal = CrmRecord(company, "deals", created, {
            "dealname": f"{person.account.name} – New business", "amount": str(amount), "pipeline": "default",
            "dealtype": "newbusiness", "closedate": None, "closed_lost_reason": None, "hubspot_owner_id": executive.id})
        person.deals.append(deal)
        deal.set("dealstage", "appointmentscheduled", created, "CRM_UI")
        company.associate("deals", deal.id, "contacts", contact.id)
        company.associate("deals", deal.id, "companies", person.account.id)
        contact.set("hubspot_owner_id", executive.id, created, "CRM_UI")
        contact.set("lifecyclestage", "opportunity", created, "CRM_UI")
        contact.set("hs_lead_status", "OPEN_DEAL", created, "CRM_UI")
        self.outcome = "opportunity"
        self._reach("opportunity")
        t = created
        for index, (stage, median_days, loss_chance) in enumerate(DEAL_PATH):
            if stage == "presentationscheduled":
                self._meeting(executive, t, rng.randrange(2 * HOUR, 16 * HOUR), f"Demo: {person.account.name}")
            elif stage == "contractsent":
                company.engagement("emails", executive, contact.id, t, t, {
                    "hs_email_direction": "EMAIL", "hs_email_subject": f"Order form for {person.account.name}",
                    "hs_email_status": "SENT"})
            t = executive.working_calendar.advance(
                t + int(median_days * DAY * rng.lognormvariate(0, 0.5)), rng.randrange(HOUR))
            if t is None or t > self.horizon:
                return None
            if rng.random() < loss_chance * (1.8 - person.fit):
                deal.set("dealstage", "closedlost", t, "CRM_UI")
                deal.properties.update(closedate=company.clock.stamp(t),
                                       closed_lost_reason=rng.choice(CLOSED_LOST_REASONS))
                self.outcome = "lost"
                self._reach("closed_lost")
                return self._recycle(t + rng.randrange(DAY, 14 * DAY), "lead") if rng.random() < 0.5 else None
            deal.set("dealstage", DEAL_PATH[index + 1][0] if index + 1 < len(DEAL_PATH) else "closedwon", t, "CRM_UI")
        deal.properties["closedate"] = company.clock.stamp(t)
        contact.set("lifecyclestage", "customer", t, "AUTOMATION_PLATFORM")
        self.outcome, self.won_amount = "won", amount
        self._reach("closed_won")
        return None

    def truth(self) -> dict:
        clock = self.company.clock
        stamp = clock.stamp
        touched = self.first_touch_at
        return {
            "handoffId": self.id, "personId": self.person.person_id, "crmContactId": self.contact.id,
            "marketingLeadId": self.lead.id, "ownerId": self.owner.id, "mqlAt": stamp(self.mql_at),
            "mqlReason": self.reason, "policy": self.policy.name, "policyMinutes": self.policy.minutes,
            "firstTouchDueAt": None if self.due_at is None or self.due_at > clock.last else stamp(self.due_at),
            "firstTouchDelayMinutes": None if touched is None else round(
                self.owner.sla_calendar.between(self.mql_at, touched) / 60, 2),
            "firstTouchAt": None if touched is None else stamp(touched),
            "firstTouchType": self.first_touch[0] if self.first_touch else None,
            "firstTouchId": self.first_touch[1] if self.first_touch else None,
            "decision": self.decision, "decidedAt": None if self.decided_at is None else stamp(self.decided_at),
            "rejectionReason": self.rejection_reason, "outcome": self.outcome,
            "dealId": self.deal.id if self.deal else None, "wonAmount": self.won_amount}


# ---------------------------------------------------------------------------------------------


def current_hour() -> datetime:
    return datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)


def generate(folder: Path, scale: str = "tiny", seed: int = 7, now: datetime | None = None,
             malformed_share: float = MALFORMED_SHARE) -> Manifest:
    """Simulate the company over the year before ``now`` and stream it into a dataset folder.

    ``malformed_share`` is the share of known people whose records carry one defect; changing it
    changes those defects and nothing else about the company."""
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; choose one of {', '.join(SCALES)}")
    now = (now or current_hour()).astimezone(timezone.utc)
    with DatasetWriter(folder, scale=scale, seed=seed, now=now) as writer:
        company = Company(writer, SCALES[scale], seed, now, malformed_share)
        company.write_setup()
        for number, (arrival, territory) in enumerate(company.arrivals(), start=1):
            Journey(company, number, arrival, territory).run()
    return Dataset(folder).manifest


def summarize(dataset: Dataset) -> dict[str, object]:
    """The company's key figures, from its ground truth and record counts."""
    now = parse_iso(dataset.manifest.now)
    people = Counter()
    for person in dataset.rows("truth_people"):
        people["people"] += 1
        people["known leads"] += person["marketingLeadId"] is not None
        people["deleted people"] += person["deleted"]
        people["malformed people"] += person["malformed"]
        people["people who signed up twice"] += len(person["crmContactIds"]) > 1 or len(person["marketingLeadIds"]) > 1
    handoffs, mql_people, delays = Counter(), set(), []
    for handoff in dataset.rows("truth_handoffs"):
        handoffs["handoffs"] += 1
        mql_people.add(handoff["personId"])
        handoffs[handoff["decision"]] += 1
        handoffs[handoff["outcome"]] += 1
        if handoff["firstTouchDelayMinutes"] is not None:
            delays.append(handoff["firstTouchDelayMinutes"])
        due = handoff["firstTouchDueAt"]
        cancelled = handoff["decision"] == "rejected" and (due is None or handoff["decidedAt"] <= due)
        if due is not None and parse_iso(due) <= now and not cancelled:
            handoffs["matured"] += 1
            delay = handoff["firstTouchDelayMinutes"]
            handoffs["within policy"] += delay is not None and delay <= handoff["policyMinutes"]
        handoffs["revenue"] += handoff["wonAmount"] or 0
    p50, p90 = np.percentile(delays, [50, 90]) if delays else (0.0, 0.0)
    share = lambda part, whole: round(100 * part / whole, 1) if whole else 0.0  # noqa: E731
    qualified = handoffs["sql"] + handoffs["opportunity"] + handoffs["won"] + handoffs["lost"]
    return {
        **people, "MQL people": len(mql_people), "handoffs": handoffs["handoffs"],
        "first touch p50 (business min)": round(float(p50), 1), "first touch p90 (business min)": round(float(p90), 1),
        "touched within policy %": share(handoffs["within policy"], handoffs["matured"]),
        "acceptance rate %": share(handoffs["accepted"], handoffs["accepted"] + handoffs["rejected"]),
        "MQL→SQL %": share(qualified, handoffs["handoffs"]),
        "deals won": handoffs["won"], "deals lost": handoffs["lost"],
        "win rate %": share(handoffs["won"], handoffs["won"] + handoffs["lost"]), "revenue (won)": handoffs["revenue"],
        **{f"records: {table}": dataset.manifest.counts.get(table, 0) for table in TABLES},
    }
