"""The simulated company: deterministic, never in the future, and behaving like a B2B company."""

import re
from collections import defaultdict
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import holidays
import pytest

from sandbox.dataset import Dataset, parse_iso
from sandbox.simulation import ACTIVITY_TYPE_NAMES, POLICIES, generate, summarize

HUBSPOT_LIFECYCLE_STAGES = {
    "subscriber",
    "lead",
    "marketingqualifiedlead",
    "salesqualifiedlead",
    "opportunity",
    "customer",
    "evangelist",
    "other",
}
VALID_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
TIMESTAMP = re.compile(rb'"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)"')


@pytest.fixture(scope="module")
def simulate(company_now):
    """Generates a company into a folder as of ``company_now`` (the tiny one, seed 7, unless told) and opens it."""

    def simulate(folder, scale="tiny", seed=7, **options) -> Dataset:
        generate(folder, scale, seed=seed, now=company_now, **options)
        return Dataset(folder)

    return simulate


@pytest.fixture(scope="module")
def tiny(tiny_dataset):
    """The shared tiny company (seed 7, as of ``company_now``)."""
    return Dataset(tiny_dataset)


@pytest.fixture(scope="module")
def small(simulate, tmp_path_factory):
    """Big enough for rare events (merges, deletions, malformed records) and stable rates."""
    return simulate(tmp_path_factory.mktemp("small"), "small")


def files(dataset):
    return {path.name: path.read_bytes() for path in dataset.folder.glob("*.ndjson")}


def rows(dataset, table):
    return list(dataset.rows(table))


def crm(dataset, object_type):
    return {o["id"]: o for o in dataset.rows("crm_objects") if o["objectType"] == object_type}


def test_same_seed_and_now_give_byte_identical_files(tmp_path, tiny, simulate):
    assert files(simulate(tmp_path / "again")) == files(tiny)


def test_other_seed_gives_other_company(tmp_path, tiny, simulate):
    assert files(simulate(tmp_path / "other", seed=8)) != files(tiny)


def test_unknown_scale_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown scale"):
        generate(tmp_path, "huge")


def test_nothing_is_dated_after_now(tiny):
    now = tiny.manifest.now.encode()
    late = [
        (path.name, stamp)
        for path in tiny.folder.glob("*.ndjson")
        for stamp in TIMESTAMP.findall(path.read_bytes())
        if stamp > now
    ]
    assert late == []


def test_records_keep_their_vendors_shapes(tiny):
    for record in tiny.rows("crm_objects"):
        properties = record["properties"]
        assert properties["hs_object_id"] == record["id"]
        assert all(value is None or isinstance(value, str) for value in properties.values())
    contact = next(iter(crm(tiny, "contacts").values()))["properties"]
    assert {
        "email",
        "firstname",
        "lastname",
        "lifecyclestage",
        "hubspot_owner_id",
        "hs_lead_status",
        "createdate",
        "lastmodifieddate",
        "hs_object_id",
    } <= set(contact)
    assert {a["activityTypeId"] for a in tiny.rows("marketing_activities")} <= set(ACTIVITY_TYPE_NAMES)
    assert {e["type"] for e in tiny.rows("web_events")} == {"page", "track", "identify"}
    [pipeline] = rows(tiny, "crm_pipelines")
    assert [s["id"] for s in pipeline["stages"]][-2:] == ["closedwon", "closedlost"]
    sales = [o for o in rows(tiny, "owners") if o["team"] in ("sdr", "ae")]
    assert 6 <= len(sales) <= 12 and all(o["timeZone"] and o["country"] and o["workingHours"] for o in sales)


def test_people_go_down_a_plausible_demand_waterfall(small):
    people = rows(small, "truth_people")
    handoffs = rows(small, "truth_handoffs")

    def reached(*outcomes):
        return len({h["personId"] for h in handoffs if h["outcome"] in outcomes})

    known = sum(p["marketingLeadId"] is not None for p in people)
    waterfall = [
        len(people),
        known,
        len({h["personId"] for h in handoffs}),
        reached("sql", "opportunity", "won", "lost"),
        reached("opportunity", "won", "lost"),
        reached("won"),
    ]
    assert waterfall == sorted(waterfall, reverse=True) and waterfall[-1] > 0
    assert sum(p["stage"] == "visitor" for p in people) > len(people) / 2  # most visitors never identify
    figures = summarize(small)
    assert 20 <= figures["MQL→SQL %"] <= 40
    assert 15 <= figures["win rate %"] <= 30
    assert 70 <= figures["acceptance rate %"] <= 95
    assert {h["mqlReason"] for h in handoffs} == {"score", "demo_request"}
    assert any(
        h["personId"] == other["personId"] and h["mqlAt"] > other["mqlAt"]
        for h in handoffs
        for other in handoffs
        if other["decision"] == "rejected"
    )  # re-MQL after recycling


def is_sales_touch(engagement, owners) -> bool:
    properties = engagement["properties"]
    if owners[properties["hubspot_owner_id"]]["team"] not in ("sdr", "ae"):
        return False  # e.g. marketing's automatic e-mail
    if engagement["objectType"] == "emails":
        return properties["hs_email_direction"] == "EMAIL"
    return engagement["objectType"] != "tasks" or properties["hs_task_status"] == "COMPLETED"


def engagements_by_contact(dataset):
    engagements = {
        (o["objectType"], o["id"]): o
        for o in dataset.rows("crm_objects")
        if o["objectType"] in ("calls", "emails", "meetings", "tasks")
    }
    by_contact = defaultdict(list)
    for association in dataset.rows("crm_associations"):
        key = (association["fromType"], association["fromId"])
        if key in engagements and association["toType"] == "contacts":
            assert association["associationType"] == f"{key[0][:-1]}_to_contact"
            by_contact[association["toId"]].append(engagements[key])
    return by_contact


def test_each_handoffs_first_touch_is_the_earliest_sales_touch_on_its_contact(small):
    owners = {o["id"]: o for o in small.rows("owners")}
    contacts = crm(small, "contacts")
    handoffs = rows(small, "truth_handoffs")
    engagements = engagements_by_contact(small)
    starts = defaultdict(list)
    for handoff in handoffs:
        starts[handoff["crmContactId"]].append(handoff["mqlAt"])
    for handoff in handoffs:
        contact_id = handoff["crmContactId"]
        assert owners[handoff["ownerId"]]["team"] == "sdr" and contact_id in contacts
        # A handoff lasts until the contact's next one (a re-MQL after recycling).
        ends = min((m for m in starts[contact_id] if m > handoff["mqlAt"]), default="~")
        touches = sorted(
            (e["properties"]["hs_timestamp"], e["objectType"], e["id"])
            for e in engagements[contact_id]
            if is_sales_touch(e, owners) and handoff["mqlAt"] <= e["properties"]["hs_timestamp"] < ends
        )
        first = touches[0] if touches else (None, None, None)
        assert first == (handoff["firstTouchAt"], handoff["firstTouchType"], handoff["firstTouchId"])
    assert sum(h["firstTouchAt"] is not None for h in handoffs) > 0.7 * len(handoffs)


def business_minutes(owner: dict, start: str, end: str) -> float:
    """Working minutes between two moments in the owner's calendar, computed day by day."""
    zone, (begin, finish) = ZoneInfo(owner["timeZone"]), (parse_iso(start), parse_iso(end))
    hours = owner["workingHours"]
    total, day = 0.0, begin.astimezone(zone).date()
    while (opens := datetime(day.year, day.month, day.day, hours["start"], tzinfo=zone)) < finish:
        closes = datetime(day.year, day.month, day.day, hours["end"], tzinfo=zone)
        if day.weekday() < 5 and day not in holidays.country_holidays(owner["country"], years=day.year):
            total += max(timedelta(0), min(closes, finish) - max(opens, begin)).total_seconds() / 60
        day += timedelta(days=1)
    return total


def in_working_hours(owner: dict, stamp: str) -> bool:
    local = parse_iso(stamp).astimezone(ZoneInfo(owner["timeZone"]))
    public_holidays = holidays.country_holidays(owner["country"], years=local.year)
    hours = owner["workingHours"]
    return local.weekday() < 5 and local.date() not in public_holidays and hours["start"] <= local.hour < hours["end"]


def test_first_touch_delays_are_business_minutes_in_the_owners_calendar(small):
    owners = {o["id"]: o for o in small.rows("owners")}
    touched = [h for h in small.rows("truth_handoffs") if h["firstTouchAt"]]
    for handoff in touched:
        expected = business_minutes(owners[handoff["ownerId"]], handoff["mqlAt"], handoff["firstTouchAt"])
        assert handoff["firstTouchDelayMinutes"] == pytest.approx(expected, abs=0.01)
        assert handoff["policyMinutes"] == POLICIES[handoff["mqlReason"]].minutes
    delays = [h["firstTouchDelayMinutes"] <= h["policyMinutes"] for h in touched]
    assert 0.6 < sum(delays) / len(delays) < 0.95  # most within policy, some late


def test_reps_who_keep_their_days_off_touch_leads_only_in_working_hours(small):
    owners = {o["id"]: o for o in small.rows("owners")}
    touches = [
        e for engagements in engagements_by_contact(small).values() for e in engagements if is_sales_touch(e, owners)
    ]
    keeping, working_days_off = [], []
    for touch in touches:
        owner = owners[touch["properties"]["hubspot_owner_id"]]
        (working_days_off if owner["worksDaysOff"] else keeping).append(
            in_working_hours(owner, touch["properties"]["hs_timestamp"])
        )
    assert keeping and all(keeping)
    assert working_days_off and not all(working_days_off)


def test_duplicates_are_merged_in_both_systems(small):
    contacts = crm(small, "contacts")
    losers = [c for c in contacts.values() if c["mergedInto"] is not None]
    assert losers
    for loser in losers:
        assert loser["properties"]["rejection_reason"] == "duplicate"
        assert loser["id"] in contacts[loser["mergedInto"]]["properties"]["hs_merged_object_ids"].split(";")
    leads = {lead["id"]: lead for lead in small.rows("marketing_leads")}
    merged_leads = [lead for lead in leads.values() if lead["mergedInto"] is not None]
    assert merged_leads and all(lead["deletedAt"] for lead in merged_leads)
    merges = {a["leadId"]: a for a in small.rows("marketing_activities") if a["activityTypeId"] == 32}
    for lead in merged_leads:
        merge_ids = next(a["value"] for a in merges[lead["mergedInto"]]["attributes"] if a["name"] == "Merge IDs")
        assert lead["id"] in merge_ids
    people = {p["personId"]: p for p in small.rows("truth_people")}
    for handoff in small.rows("truth_handoffs"):
        if handoff["rejectionReason"] == "duplicate" and contacts[handoff["crmContactId"]]["mergedInto"]:
            person = people[handoff["personId"]]
            assert handoff["crmContactId"] in person["crmContactIds"]
            assert handoff["crmContactId"] != person["crmContactId"]


def test_deleted_people_are_archived_and_deleted_everywhere(small):
    deleted = [p for p in small.rows("truth_people") if p["deleted"]]
    assert deleted
    contacts = crm(small, "contacts")
    leads = {lead["id"]: lead for lead in small.rows("marketing_leads")}
    deletions = {a["leadId"] for a in small.rows("marketing_activities") if a["activityTypeId"] == 37}
    for person in deleted:
        assert leads[person["marketingLeadId"]]["deletedAt"] and person["marketingLeadId"] in deletions
        for contact_id in person["crmContactIds"]:
            contact = contacts[contact_id]
            assert contact["mergedInto"] or (contact["archived"] and contact["archivedAt"])


def test_a_small_share_of_people_carry_a_malformed_record(small):
    people = rows(small, "truth_people")
    malformed = [p for p in people if p["malformed"]]
    known = sum(p["marketingLeadId"] is not None for p in people)
    assert 0.003 * known <= len(malformed) <= 0.015 * known
    contacts = crm(small, "contacts")
    leads = {lead["id"]: lead for lead in small.rows("marketing_leads")}
    for person in malformed:
        contact = contacts.get(person["crmContactIds"][0]) if person["crmContactIds"] else None
        lead = leads[person["marketingLeadId"]]
        if person["defect"] == "invalid_email":
            assert not VALID_EMAIL.match(lead["email"])
        elif person["defect"] == "unknown_enum_value":
            assert (
                contact["properties"]["lifecyclestage"] not in HUBSPOT_LIFECYCLE_STAGES
                if contact
                else lead["leadStatus"] not in {"Nurture", "MQL", "Recycled"}
            )
        else:
            assert lead["createdAt"] is None
    assert {p["defect"] for p in malformed} == {"invalid_email", "missing_timestamp", "unknown_enum_value"}


def test_without_malformed_records_the_company_is_otherwise_the_same(clean_tiny_dataset, tiny):
    clean = Dataset(clean_tiny_dataset)
    assert not any(p["malformed"] for p in clean.rows("truth_people"))
    for contact in crm(clean, "contacts").values():
        properties = contact["properties"]
        assert properties["lifecyclestage"] in HUBSPOT_LIFECYCLE_STAGES
        assert VALID_EMAIL.match(properties["email"]) and properties["createdate"]
    assert files(clean)["truth_handoffs.ndjson"] == files(tiny)["truth_handoffs.ndjson"]
    assert [p["stage"] for p in clean.rows("truth_people")] == [p["stage"] for p in tiny.rows("truth_people")]


def test_summary_gives_the_key_figures_as_numbers(tiny):
    figures = summarize(tiny)
    assert {
        "people",
        "known leads",
        "MQL people",
        "handoffs",
        "first touch p50 (business min)",
        "first touch p90 (business min)",
        "touched within policy %",
        "acceptance rate %",
        "MQL→SQL %",
        "win rate %",
        "revenue (won)",
        "records: web_events",
        "records: marketing_activities",
    } <= set(figures)
    assert all(isinstance(value, int | float) for value in figures.values())
    assert figures["people"] == 200 and figures["records: truth_handoffs"] == figures["handoffs"] > 0
