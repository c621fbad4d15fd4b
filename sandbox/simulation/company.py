"""The company: state every person shares (clock, random stream, team, accounts, catalog, id sequences),
the writers that put records in their vendors' shapes, and when people arrive."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import datetime
from itertools import count

import numpy as np

from sandbox.dataset import DatasetWriter
from sandbox.simulation.accounts import AccountPicker, found_accounts
from sandbox.simulation.catalog import Catalog, Page
from sandbox.simulation.clock import DAY, HOUR, Clock
from sandbox.simulation.owners import Owner, Routing, hire_team
from sandbox.simulation.territories import TERRITORIES

SIMULATED_DAYS = 365

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

ASSOCIATION_NAMES = {
    "calls": "call",
    "emails": "email",
    "meetings": "meeting",
    "tasks": "task",
    "deals": "deal",
    "contacts": "contact",
    "companies": "company",
}


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
        self.write(
            "crm_pipelines",
            {
                "id": "default",
                "objectType": "deals",
                "label": "Sales Pipeline",
                "displayOrder": 0,
                "archived": False,
                "createdAt": created,
                "updatedAt": created,
                "stages": [
                    {
                        "id": stage,
                        "label": label,
                        "displayOrder": order,
                        "archived": False,
                        "createdAt": created,
                        "updatedAt": created,
                        "metadata": {"probability": probability, "isClosed": str(closed).lower()},
                    }
                    for order, (stage, label, probability, closed) in enumerate(DEAL_STAGES)
                ],
            },
        )
        for account in self.accounts:
            self.write("crm_objects", account.as_record(clock, clock.start - rng.randrange(1, 700) * DAY))
        for program in self.catalog.programs:
            self.write("marketing_programs", program.as_record(clock))

    # -- web (Segment spec)

    def page_event(
        self, device: str, user_id: str | None, t: int, page: Page, referrer: str, search: str, campaign: dict | None
    ) -> None:
        properties = {
            "path": page.path,
            "url": page.url + search,
            "title": page.title,
            "referrer": referrer,
            "search": search,
        }
        context = {"page": properties} if campaign is None else {"page": properties, "campaign": campaign}
        self.write(
            "web_events",
            {
                "type": "page",
                "messageId": self._message_id(),
                "anonymousId": device,
                "userId": user_id,
                "timestamp": self._stamp(t, int(self._random() * 1000)),
                "name": page.name,
                "properties": properties,
                "context": context,
            },
        )

    def track_event(self, device: str, user_id: str | None, t: int, event: str, properties: dict, page: Page) -> None:
        self.write(
            "web_events",
            {
                "type": "track",
                "messageId": self._message_id(),
                "anonymousId": device,
                "userId": user_id,
                "timestamp": self._stamp(t, int(self._random() * 1000)),
                "event": event,
                "properties": properties,
                "context": {"page": {"path": page.path, "url": page.url}},
            },
        )

    def identify_event(self, device: str, user_id: str, t: int, traits: dict, page: Page) -> None:
        self.write(
            "web_events",
            {
                "type": "identify",
                "messageId": self._message_id(),
                "anonymousId": device,
                "userId": user_id,
                "timestamp": self._stamp(t),
                "traits": traits,
                "context": {"page": {"path": page.path, "url": page.url}},
            },
        )

    def _message_id(self) -> str:
        return f"{self._message_prefix}{next(self._event_numbers):08x}"

    # -- marketing automation (Marketo)

    def activity(
        self, lead_id: int, t: int, type_id: int, value_id: int | None, value: str | None, attributes: list[dict]
    ) -> None:
        number = next(self.activity_ids)
        self.write(
            "marketing_activities",
            {
                "id": number,
                "marketoGUID": f"{self._guid_prefix}{number >> 48:04x}-{number & 0xFFFFFFFFFFFF:012x}",
                "leadId": lead_id,
                "activityDate": self._stamp(t),
                "activityTypeId": type_id,
                "primaryAttributeValueId": value_id,
                "primaryAttributeValue": value,
                "attributes": attributes,
            },
        )

    # -- CRM (HubSpot)

    def crm_object(
        self,
        object_type: str,
        object_id: str,
        properties: dict,
        created: int,
        updated: int,
        archived_at: int | None = None,
        merged_into: str | None = None,
    ) -> None:
        stamp = self._stamp
        self.write(
            "crm_objects",
            {
                "objectType": object_type,
                "id": object_id,
                "properties": properties,
                "createdAt": stamp(created),
                "updatedAt": stamp(updated),
                "archived": archived_at is not None,
                "archivedAt": None if archived_at is None else stamp(archived_at),
                "mergedInto": merged_into,
            },
        )

    def associate(self, from_type: str, from_id: str, to_type: str, to_id: str) -> None:
        association_type = f"{ASSOCIATION_NAMES[from_type]}_to_{ASSOCIATION_NAMES[to_type]}"
        self.write(
            "crm_associations",
            {
                "fromType": from_type,
                "fromId": from_id,
                "toType": to_type,
                "toId": to_id,
                "associationType": association_type,
            },
        )

    def engagement(
        self, object_type: str, owner: Owner, contact_id: str, created: int, timestamp: int, properties: dict
    ) -> str:
        """A logged sales (or marketing) activity on a contact; its id."""
        engagement_id = self.crm_id(object_type)
        stamp = self._stamp(created)
        properties.update(
            hs_timestamp=self._stamp(timestamp),
            hubspot_owner_id=owner.id,
            hs_createdate=stamp,
            hs_lastmodifieddate=stamp,
            hs_object_id=engagement_id,
        )
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
        hour_weights = np.array(
            [
                0.2,
                0.15,
                0.1,
                0.1,
                0.1,
                0.2,
                0.4,
                0.8,
                1.3,
                1.6,
                1.7,
                1.6,
                1.4,
                1.5,
                1.6,
                1.5,
                1.3,
                1.0,
                0.8,
                0.7,
                0.6,
                0.5,
                0.4,
                0.3,
            ]
        )
        times = np.empty(self.people, dtype=np.int64)
        for index, name in enumerate(names):
            local = hour_starts + TERRITORIES[name][1] * HOUR
            local_day = local // DAY
            weekday = (clock.origin.weekday() + local_day) % 7
            dates = [clock.moment(int(d) * DAY).date() for d in range(int(local_day.min()), int(local_day.max()) + 1)]
            year_end = np.array([(d.month == 12 and d.day >= 20) or (d.month == 1 and d.day <= 3) for d in dates])
            weights = (
                growth
                * hour_weights[(local % DAY) // HOUR]
                * np.where(weekday >= 5, 0.45, 1.0)
                * np.where(year_end[local_day - local_day.min()], 0.5, 1.0)
            )
            chosen = territory_of == index
            cells = generator.choice(len(hour_starts), size=int(chosen.sum()), p=weights / weights.sum())
            times[chosen] = hour_starts[cells] + generator.integers(0, HOUR, size=cells.size)
        times = np.clip(times, clock.start, clock.last)
        order = np.argsort(times, kind="stable")
        times, territory_of = times[order], territory_of[order]
        for begin in range(0, self.people, 10_000):
            chunk = slice(begin, begin + 10_000)
            for t, territory in zip(times[chunk].tolist(), territory_of[chunk].tolist(), strict=True):
                yield t, names[territory]
