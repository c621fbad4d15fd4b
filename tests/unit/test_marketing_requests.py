"""How the marketing source asks Marketo: program members all at first, then by updatedAt, a week
at most per call; activities of every described type (or the narrowed ones), ten types a call."""

from datetime import UTC, datetime, timedelta

import pytest

from pipeline.ingest.marketing import activity_type_groups, member_filters, wanted_activity_types

NOW = datetime(2026, 12, 6, 12, tzinfo=UTC)


def test_the_first_read_asks_for_every_member():
    assert member_filters(None, NOW) == [{"filterType": "reachedSuccess", "filterValues": "true,false"}]


def test_later_reads_cover_the_time_since_in_windows_of_a_week_at_most():
    windows = member_filters(NOW - timedelta(days=16), NOW)
    assert [w["filterType"] for w in windows] == ["updatedAt"] * 3
    bounds = [(datetime.fromisoformat(w["startAt"]), datetime.fromisoformat(w["endAt"])) for w in windows]
    assert bounds[0][0] == NOW - timedelta(days=16) and bounds[-1][1] == NOW
    assert all(end - start <= timedelta(days=7) for start, end in bounds)
    assert all(bounds[i][1] == bounds[i + 1][0] for i in range(len(bounds) - 1))


def test_a_read_just_made_asks_for_nothing_more():
    assert member_filters(NOW, NOW) == []


def test_activity_types_read_before_keep_their_group_and_new_ones_form_groups_of_ten():
    wanted = [1, 2, 6, 7, *range(100, 115)]
    groups = activity_type_groups(["1,2,6,10"], wanted)
    assert groups[0] == ("1,2,6,10", [1, 2, 6])  # continues from its token, without the type no longer wanted
    assert [asked for _, asked in groups[1:]] == [[7, *range(100, 109)], list(range(109, 115))]
    assert all(key == ",".join(map(str, asked)) for key, asked in groups[1:])


def test_narrowing_activity_types_by_id_or_name_and_refusing_unknown_names():
    described = [
        {"id": 1, "name": "Visit Webpage"},
        {"id": 2, "name": "Fill Out Form"},
        {"id": 6, "name": "Send Email"},
    ]
    assert wanted_activity_types(described, "") == [1, 2, 6]
    assert wanted_activity_types(described, " visit webpage, 6") == [1, 6]
    with pytest.raises(ValueError, match="does not describe: Open Sesame"):
        wanted_activity_types(described, "1,Open Sesame")
