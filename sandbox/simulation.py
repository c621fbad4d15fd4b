"""A simulated B2B company, written as a sandbox dataset, deterministic from a seed.

The same seed and ``now`` always give the same company. The company keeps its own ground truth
(each person's funnel journey) so tests can check the pipeline's figures against it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sandbox.dataset import Dataset, DatasetWriter, Manifest, iso

SCALES = {"tiny": 200, "small": 5_000, "medium": 100_000, "large": 1_000_000}

# HubSpot's lifecycle stages in funnel order, with the share of known people who reach at least
# that stage; the drop-off between stages is what a plausible B2B demand waterfall looks like.
LIFECYCLE_REACH = [
    ("subscriber", 1.00),
    ("lead", 0.80),
    ("marketingqualifiedlead", 0.30),
    ("salesqualifiedlead", 0.12),
    ("opportunity", 0.07),
    ("customer", 0.025),
]
SALES_STAGES = {"marketingqualifiedlead", "salesqualifiedlead", "opportunity", "customer"}

OWNER_PROFILES = [
    # (first name, last name, time zone, country, working hours start, end)
    ("Ava", "Brooks", "America/New_York", "US", 9, 17),
    ("Liam", "Carter", "America/Chicago", "US", 8, 16),
    ("Mia", "Schneider", "Europe/Berlin", "DE", 9, 18),
    ("Noah", "Wilson", "Europe/London", "GB", 9, 17),
    ("Zoe", "Martin", "Europe/Paris", "FR", 9, 18),
    ("Ethan", "Tanaka", "America/Los_Angeles", "US", 8, 17),
]
FIRST_NAMES = ["Olivia", "James", "Emma", "Lucas", "Sofia", "Henry", "Chloe", "Leo", "Grace",
               "Omar", "Priya", "Mateo", "Hannah", "Yuki", "Ines", "Felix", "Nora", "Ravi"]
LAST_NAMES = ["Smith", "Garcia", "Mueller", "Rossi", "Dubois", "Kowalski", "Nguyen", "Patel",
              "Okafor", "Silva", "Jensen", "Haddad", "Kim", "Novak", "Lopez", "Fischer"]
COMPANY_WORDS = ["acme", "globex", "initech", "umbrella", "stark", "wayne", "hooli", "vandelay",
                 "soylent", "tyrell", "wonka", "cyberdyne", "massive", "oscorp", "pied"]
DOMAIN_SUFFIXES = ["com", "io", "co", "net", "de", "fr"]

SIMULATED_DAYS = 365


@dataclass(frozen=True)
class Owner:
    id: str
    first_name: str
    last_name: str
    email: str
    time_zone: str
    country: str
    working_hours: tuple[int, int]

    def as_record(self) -> dict:
        return {"id": self.id, "email": self.email, "firstName": self.first_name, "lastName": self.last_name,
                "userId": int(self.id) * 7, "archived": False, "teams": [],
                "createdAt": "2024-01-02T09:00:00.000Z", "updatedAt": "2024-01-02T09:00:00.000Z",
                "timeZone": self.time_zone, "country": self.country,
                "workingHours": {"start": self.working_hours[0], "end": self.working_hours[1]},
                "team": "sales", "managerId": None}


def current_hour() -> datetime:
    return datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)


def generate(folder: Path, scale: str = "tiny", seed: int = 7, now: datetime | None = None) -> Manifest:
    """Simulate the company and stream it into a dataset folder."""
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; choose one of {', '.join(SCALES)}")
    now = now or current_hour()
    rng = random.Random(seed)
    owners = [
        Owner(id=str(1000 + index), first_name=first, last_name=last,
              email=f"{first.lower()}.{last.lower()}@handoff-demo.example", time_zone=zone,
              country=country, working_hours=(start, end))
        for index, (first, last, zone, country, start, end) in enumerate(OWNER_PROFILES)
    ]
    domains = [f"{rng.choice(COMPANY_WORDS)}{index}.{rng.choice(DOMAIN_SUFFIXES)}"
               for index in range(max(3, SCALES[scale] // 25))]
    with DatasetWriter(folder, scale=scale, seed=seed, now=now) as dataset:
        dataset.write_all("owners", (owner.as_record() for owner in owners))
        for index in range(SCALES[scale]):
            _simulate_person(dataset, rng, index, owners, domains, now)
    return Dataset(folder).manifest


def _simulate_person(dataset: DatasetWriter, rng: random.Random, index: int, owners: list[Owner],
                     domains: list[str], now: datetime) -> None:
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    contact_id = str(index + 1)
    email = f"{first.lower()}.{last.lower()}{index}@{rng.choice(domains)}"
    created_at = now - timedelta(seconds=rng.randrange(SIMULATED_DAYS * 86_400))
    reach = rng.random()
    history: list[tuple[str, datetime]] = []
    moment = created_at
    for stage, share in LIFECYCLE_REACH:
        if reach > share:
            break
        history.append((stage, moment))
        # Each later stage follows after a few days, never past the end of the simulation.
        moment = min(now, moment + timedelta(hours=rng.uniform(2, 24 * 21)))
    stage, updated_at = history[-1]
    owner_id = rng.choice(owners).id if stage in SALES_STAGES else None
    properties = {"email": email, "firstname": first, "lastname": last, "lifecyclestage": stage,
                  "hubspot_owner_id": owner_id, "createdate": iso(created_at),
                  "lastmodifieddate": iso(updated_at), "hs_object_id": contact_id}
    dataset.write("crm_objects", {"objectType": "contacts", "id": contact_id, "properties": properties,
                                  "createdAt": iso(created_at), "updatedAt": iso(updated_at),
                                  "archived": False, "archivedAt": None, "mergedInto": None})
    for past_stage, entered_at in history:
        dataset.write("crm_property_history", {"objectType": "contacts", "id": contact_id,
                                               "property": "lifecyclestage", "value": past_stage,
                                               "timestamp": iso(entered_at), "sourceType": "CRM_UI"})
    dataset.write("truth_people", {"personId": f"p{index + 1}", "crmContactIds": [contact_id],
                                   "marketingLeadId": None, "anonymousIds": [], "email": email,
                                   "stage": stage, "ownerId": owner_id})


def summarize(dataset: Dataset) -> dict[str, object]:
    """The company's key figures, from its ground truth."""
    stages: dict[str, int] = {}
    people = 0
    for person in dataset.rows("truth_people"):
        people += 1
        stages[person["stage"]] = stages.get(person["stage"], 0) + 1
    return {"people": people, **{f"people at {stage}": count for stage, count in sorted(stages.items())}}
