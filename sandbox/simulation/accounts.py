"""Accounts and people: the companies visitors work at (the CRM's ``companies``), their employees'
names and e-mail addresses, and job titles."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from sandbox.simulation.clock import Clock
from sandbox.simulation.sampling import Weighted, clamp
from sandbox.simulation.territories import TERRITORIES

INDUSTRIES = [
    ("COMPUTER_SOFTWARE", 1.0, 24),
    ("INFORMATION_TECHNOLOGY_AND_SERVICES", 0.9, 18),
    ("MARKETING_AND_ADVERTISING", 0.8, 12),
    ("FINANCIAL_SERVICES", 0.7, 10),
    ("HOSPITAL_HEALTH_CARE", 0.45, 8),
    ("LOGISTICS_AND_SUPPLY_CHAIN", 0.5, 7),
    ("MACHINERY", 0.4, 7),
    ("RETAIL", 0.4, 6),
    ("EDUCATION_MANAGEMENT", 0.25, 5),
    ("NON_PROFIT_ORGANIZATION_MANAGEMENT", 0.15, 3),
]
ACCOUNT_PREFIXES = [
    "North",
    "Blue",
    "Bright",
    "Silver",
    "Iron",
    "Cedar",
    "Harbor",
    "Summit",
    "Granite",
    "Lumen",
    "Nova",
    "Atlas",
    "Pioneer",
    "Vertex",
    "Crimson",
    "Evergreen",
    "Quantum",
    "Beacon",
    "Orbit",
    "Sterling",
    "Falcon",
    "Maple",
    "Coral",
    "Aurora",
    "Delta",
    "Echo",
    "Juniper",
    "Kestrel",
    "Meridian",
    "Onyx",
    "Pacific",
    "Redwood",
    "Sable",
    "Tidal",
    "Union",
    "Willow",
    "Zephyr",
    "Copper",
    "Prairie",
    "Alpine",
]
ACCOUNT_NOUNS = [
    "wind",
    "peak",
    "stone",
    "bridge",
    "field",
    "works",
    "point",
    "line",
    "gate",
    "wave",
    "path",
    "forge",
    "light",
    "crest",
    "ridge",
    "port",
    "scale",
    "mark",
    "stack",
    "loop",
    "yard",
    "grid",
    "shift",
    "vault",
    "spring",
    "hive",
    "craft",
    "flow",
    "base",
    "lane",
    "rock",
    "bay",
    "cloud",
    "link",
    "core",
    "dock",
    "sight",
    "wing",
    "tree",
    "fleet",
]
FIRST_NAMES = [
    "Olivia",
    "James",
    "Emma",
    "Lucas",
    "Sofia",
    "Henry",
    "Chloe",
    "Leo",
    "Grace",
    "Omar",
    "Priya",
    "Mateo",
    "Hannah",
    "Yuki",
    "Ines",
    "Felix",
    "Nora",
    "Ravi",
    "Amelia",
    "Oscar",
    "Lena",
    "Hugo",
    "Aisha",
    "Daniel",
    "Freya",
    "Arjun",
    "Clara",
    "Tomas",
    "Maya",
    "Samuel",
    "Elena",
    "Kai",
    "Julia",
    "Max",
    "Zara",
    "Adam",
    "Laura",
    "Nico",
    "Eva",
    "Jonah",
    "Alice",
    "Marco",
    "Ruth",
    "Ivan",
    "Lila",
    "Aaron",
    "Mina",
    "Pablo",
    "Sara",
    "Theo",
    "Anna",
    "Carlos",
    "Ida",
    "Kenji",
    "Rosa",
    "Victor",
    "Amir",
    "Ella",
    "Paul",
    "Nadia",
]
LAST_NAMES = [
    "Smith",
    "Garcia",
    "Mueller",
    "Rossi",
    "Dubois",
    "Kowalski",
    "Nguyen",
    "Patel",
    "Okafor",
    "Silva",
    "Jensen",
    "Haddad",
    "Kim",
    "Novak",
    "Lopez",
    "Fischer",
    "Brown",
    "Martin",
    "Berg",
    "Santos",
    "Walker",
    "Moreau",
    "Ivanova",
    "Tanaka",
    "Costa",
    "Schmidt",
    "Hughes",
    "Larsen",
    "Ali",
    "Murphy",
    "Young",
    "Wagner",
    "Chen",
    "Romero",
    "Bakker",
    "Evans",
    "Sato",
    "Kaur",
    "Owens",
    "Keller",
    "Ward",
    "Reyes",
    "Nowak",
    "Hall",
    "Dias",
    "Lund",
    "Price",
    "Wolf",
    "Singh",
    "Ortiz",
    "Fox",
    "Bianchi",
    "Carr",
    "Meyer",
    "Lee",
    "Weiss",
    "Stone",
    "Vega",
    "Ito",
    "Quinn",
]
NAME_GRID = len(FIRST_NAMES) * len(LAST_NAMES)
NAME_STRIDES = [7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47]  # coprime with NAME_GRID: names never repeat
EMAIL_PATTERNS = ["{f}.{l}", "{f}{l}", "{f}_{l}", "{l}.{f}"]
# title, how well the role fits what the company sells, how common it is among visitors
TITLES = Weighted(
    ((title, fit), weight)
    for title, fit, weight in [
        ("Chief Revenue Officer", 1.0, 2),
        ("Head of Revenue Operations", 1.0, 4),
        ("Revenue Operations Manager", 0.95, 7),
        ("Marketing Operations Manager", 0.95, 7),
        ("Director of Demand Generation", 0.9, 5),
        ("VP of Sales", 0.85, 4),
        ("VP Marketing", 0.8, 3),
        ("Sales Operations Analyst", 0.7, 5),
        ("Sales Development Manager", 0.7, 4),
        ("Founder", 0.6, 3),
        ("Marketing Manager", 0.55, 10),
        ("Data Analyst", 0.4, 6),
        ("Account Executive", 0.35, 7),
        ("Consultant", 0.3, 6),
        ("Software Engineer", 0.15, 8),
        ("Student", 0.02, 4),
    ]
)


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
        properties = {
            "name": self.name,
            "domain": self.domain,
            "industry": self.industry,
            "numberofemployees": str(self.employees),
            "country": self.country,
            "createdate": stamp,
            "hs_lastmodifieddate": stamp,
            "hs_object_id": self.id,
        }
        return {
            "objectType": "companies",
            "id": self.id,
            "properties": properties,
            "createdAt": stamp,
            "updatedAt": stamp,
            "archived": False,
            "archivedAt": None,
            "mergedInto": None,
        }


def found_accounts(rng: random.Random, how_many: int) -> list[Account]:
    industries = Weighted(((name, fit), weight) for name, fit, weight in INDUSTRIES)
    territories = Weighted((name, share) for name, (share, _, _) in TERRITORIES.items())
    countries = {
        name: Weighted((code, weight) for code, (weight, _, _) in spec.items())
        for name, (_, _, spec) in TERRITORIES.items()
    }
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
        accounts.append(
            Account(
                id=str(number),
                name=f"{brand} {legal_form}",
                domain=domain,
                industry=industry,
                employees=employees,
                country=country,
                territory=territory,
                fit=industry_fit * size_fit,
                competitor=industry == "COMPUTER_SOFTWARE" and rng.random() < 0.02,
                email_pattern=rng.choice(EMAIL_PATTERNS),
                name_offset=rng.randrange(NAME_GRID),
                name_stride=rng.choice(NAME_STRIDES),
            )
        )
    return accounts


class AccountPicker:
    """Which account a visitor from a territory works at: bigger companies send more visitors."""

    def __init__(self, rng: random.Random, accounts: list[Account]):
        everyone = Weighted((a, 1) for a in accounts)
        self._by_territory = {}
        for territory in TERRITORIES:
            local = [a for a in accounts if a.territory == territory]
            self._by_territory[territory] = (
                Weighted((a, rng.lognormvariate(0, 0.7) * a.employees**0.3) for a in local) if local else everyone
            )

    def draw(self, territory: str, rng: random.Random) -> Account:
        return self._by_territory[territory].draw(rng)
