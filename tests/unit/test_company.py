from datetime import datetime, timezone

import pytest

from sandbox.company import SALES_STAGES, generate_company

NOW = datetime(2026, 11, 2, 12, tzinfo=timezone.utc)


def fingerprint(company):
    return [(p.id, p.email, p.lifecycle_stage, p.owner_id, p.created_at) for p in company.people]


def test_same_seed_gives_same_company():
    assert fingerprint(generate_company("tiny", seed=3, now=NOW)) == fingerprint(generate_company("tiny", seed=3, now=NOW))


def test_other_seed_gives_other_company():
    assert fingerprint(generate_company("tiny", seed=3, now=NOW)) != fingerprint(generate_company("tiny", seed=4, now=NOW))


def test_people_move_down_the_funnel_within_the_simulated_span():
    company = generate_company("tiny", seed=7, now=NOW)
    assert len(company.people) == 200
    counts = company.stage_counts()
    # A waterfall: fewer people at each later stage, and sales-stage people always have an owner.
    assert counts["lead"] > counts["marketingqualifiedlead"] > counts["customer"] > 0
    for person in company.people:
        assert person.created_at <= person.updated_at <= NOW
        assert [stage for stage, _ in person.lifecycle_history][-1] == person.lifecycle_stage
        assert (person.owner_id is not None) == (person.lifecycle_stage in SALES_STAGES)


def test_unknown_scale_is_refused():
    with pytest.raises(ValueError, match="unknown scale"):
        generate_company("huge")
