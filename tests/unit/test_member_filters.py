"""How program members are asked for: all at first, then by updatedAt, a week at most per call."""

from datetime import UTC, datetime, timedelta

from pipeline.ingest.marketing import member_filters

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
