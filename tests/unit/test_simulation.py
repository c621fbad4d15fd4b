from datetime import datetime, timezone

import pytest

from sandbox.dataset import Dataset, parse_iso
from sandbox.simulation import SALES_STAGES, generate

NOW = datetime(2026, 11, 2, 12, tzinfo=timezone.utc)


def company(tmp_path, name, seed):
    generate(tmp_path / name, "tiny", seed=seed, now=NOW)
    return Dataset(tmp_path / name)


def files(dataset):
    return {path.name: path.read_bytes() for path in dataset.folder.glob("*.ndjson")}


def test_same_seed_gives_same_company(tmp_path):
    assert files(company(tmp_path, "a", 3)) == files(company(tmp_path, "b", 3))


def test_other_seed_gives_other_company(tmp_path):
    assert files(company(tmp_path, "a", 3)) != files(company(tmp_path, "b", 4))


def test_people_move_down_the_funnel_within_the_simulated_span(tmp_path):
    dataset = company(tmp_path, "a", 7)
    contacts = [r for r in dataset.rows("crm_objects") if r["objectType"] == "contacts"]
    assert len(contacts) == dataset.manifest.counts["truth_people"] == 200
    stages = [c["properties"]["lifecyclestage"] for c in contacts]
    # A waterfall: fewer people at each later stage, and sales-stage people always have an owner.
    assert stages.count("lead") > stages.count("marketingqualifiedlead") > stages.count("customer") > 0
    history = {}
    for change in dataset.rows("crm_property_history"):
        history.setdefault(change["id"], []).append(change)
    for contact in contacts:
        assert parse_iso(contact["createdAt"]) <= parse_iso(contact["updatedAt"]) <= NOW
        assert history[contact["id"]][-1]["value"] == contact["properties"]["lifecyclestage"]
        has_owner = contact["properties"]["hubspot_owner_id"] is not None
        assert has_owner == (contact["properties"]["lifecyclestage"] in SALES_STAGES)


def test_unknown_scale_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown scale"):
        generate(tmp_path, "huge")
