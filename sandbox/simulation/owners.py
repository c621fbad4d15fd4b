"""The sales team: CRM owners with their desks and calendars, hired per territory, and the round-robin
routing that assigns them leads."""

from __future__ import annotations

import random
from dataclasses import dataclass
from itertools import count, cycle
from zoneinfo import ZoneInfo

import holidays

from sandbox.simulation.business_calendar import BusinessCalendar, local_days, working_intervals
from sandbox.simulation.clock import DAY, Clock
from sandbox.simulation.territories import TERRITORIES

STAFF_DOMAIN = "handoff-demo.example"

# Who covers a territory's leads when it has no rep of its own.
COVERAGE = {"AMER": ("AMER", "EMEA"), "EMEA": ("EMEA", "AMER"), "APAC": ("APAC", "AMER")}
# Desks reps sit at: time zone, country, local working hours.
DESKS = {
    "AMER": [
        ("America/New_York", "US", (9, 17)),
        ("America/Chicago", "US", (8, 16)),
        ("America/Denver", "US", (8, 17)),
        ("America/Los_Angeles", "US", (8, 17)),
        ("America/Toronto", "CA", (9, 17)),
    ],
    "EMEA": [
        ("Europe/London", "GB", (9, 17)),
        ("Europe/Berlin", "DE", (9, 18)),
        ("Europe/Paris", "FR", (9, 18)),
        ("Europe/Dublin", "IE", (9, 17)),
        ("Europe/Madrid", "ES", (9, 18)),
        ("Europe/Amsterdam", "NL", (9, 17)),
    ],
    "APAC": [("Australia/Sydney", "AU", (8, 16)), ("Asia/Singapore", "SG", (9, 18))],
}
STAFF_NAMES = [
    ("Ava", "Brooks"),
    ("Liam", "Carter"),
    ("Mia", "Schneider"),
    ("Noah", "Wilson"),
    ("Zoe", "Martin"),
    ("Ethan", "Tanaka"),
    ("Isla", "Murphy"),
    ("Lucas", "Moreau"),
    ("Sara", "Lindqvist"),
    ("Omar", "Haddad"),
    ("Chloe", "Nguyen"),
    ("Jonas", "Weber"),
    ("Maya", "Patel"),
    ("Diego", "Ramos"),
    ("Ella", "Byrne"),
]


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
        return {
            "id": self.id,
            "email": self.email,
            "firstName": self.first_name,
            "lastName": self.last_name,
            "userId": int(self.id) * 7,
            "archived": False,
            "createdAt": clock.iso(self.hired),
            "updatedAt": clock.iso(self.hired),
            "teams": [{"id": team_id, "name": team_name, "primary": True}],
            "timeZone": self.time_zone,
            "country": self.country,
            "workingHours": {"start": self.working_hours[0], "end": self.working_hours[1]},
            "team": self.team,
            "territory": self.territory,
            "managerId": self.manager_id,
            "worksDaysOff": self.works_days_off,
        }


def hire_team(rng: random.Random, clock: Clock) -> list[Owner]:
    """Two managers, SDRs and AEs per territory (7–12 sales users), and one marketing-ops user."""
    days = local_days(clock)
    names = iter(rng.sample(STAFF_NAMES, len(STAFF_NAMES)))
    ids = count(1001)
    holiday_calendars: dict[str, holidays.HolidayBase] = {}

    def hire(team: str, territory: str, desk: tuple, manager: Owner | None) -> Owner:
        zone_name, country, hours = desk
        zone = ZoneInfo(zone_name)
        off = holiday_calendars.setdefault(
            country, holidays.country_holidays(country, years=range(days[0].year, days[-1].year + 1))
        )
        workdays = [d for d in days if d.weekday() < 5 and d not in off]
        vacation = set()
        for _ in range(2):  # two weeks away a year, which the SLA clock does not know about
            first = rng.randrange(len(workdays) - 5)
            vacation.update(workdays[first : first + 5])
        works_days_off = team == "sdr" and rng.random() < 0.3
        days_off = [d for d in days if d.weekday() >= 5 or d in off]
        days_off_worked = [d for d in days_off if rng.random() < 0.35] if works_days_off else []
        first_name, last_name = next(names)
        return Owner(
            id=str(next(ids)),
            first_name=first_name,
            last_name=last_name,
            team=team,
            territory=territory,
            time_zone=zone_name,
            country=country,
            working_hours=hours,
            manager_id=manager.id if manager else None,
            works_days_off=works_days_off,
            responsiveness=rng.lognormvariate(0, 0.35),
            never_touch_share=rng.uniform(0.02, 0.10),
            hired=clock.start - rng.randrange(30, 900) * DAY,
            sla_calendar=BusinessCalendar(working_intervals(clock, zone, hours, workdays)),
            working_calendar=BusinessCalendar(
                working_intervals(clock, zone, hours, [d for d in workdays if d not in vacation])
                + working_intervals(clock, zone, (10, 14), days_off_worked)
            ),
        )

    sdr_manager = hire("sdr", "AMER", DESKS["AMER"][0], None)
    ae_manager = hire("ae", "EMEA", DESKS["EMEA"][0], None)
    team = [sdr_manager, ae_manager]
    for role, manager, sizes in (
        ("sdr", sdr_manager, {"AMER": (2, 3), "EMEA": (1, 2), "APAC": (0, 1)}),
        ("ae", ae_manager, {"AMER": (1, 2), "EMEA": (1, 2), "APAC": (0, 0)}),
    ):
        for territory, (fewest, most) in sizes.items():
            team += [
                hire(role, territory, rng.choice(DESKS[territory]), manager) for _ in range(rng.randint(fewest, most))
            ]
    team.append(hire("marketing", "AMER", DESKS["AMER"][0], None))
    return team


class Routing:
    """Round-robin assignment per team and territory."""

    def __init__(self, owners: list[Owner]):
        self._turns = {}
        for team in ("sdr", "ae"):
            for territory, covering in COVERAGE.items():
                candidates = (
                    [o for o in owners if o.assignable and o.team == team and o.territory == covered]
                    for covered in covering
                )
                self._turns[team, territory] = cycle(next(reps for reps in candidates if reps))

    def assign(self, team: str, territory: str) -> Owner:
        return next(self._turns[team, territory])
