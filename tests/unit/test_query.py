"""`handoff query`: only statements that read get through, and rows leave as scripts expect."""

import json
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from pipeline.query import StatementRefused, as_csv, as_json, refuse_unless_reading


@pytest.mark.parametrize(
    "sql",
    [
        "select * from marts.fct_handoffs where policy = 'a;b'",
        "with open_handoffs as (select * from marts.fct_handoffs) select count(*) from open_handoffs",
        "select 1 union all select 2",
    ],
)
@pytest.mark.parametrize("engine", ["duckdb", "postgresql"])
def test_a_query_that_reads_gets_through(sql, engine):
    refuse_unless_reading(sql, engine)


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("delete from marts.dim_people", "DELETE refused"),
        ("drop table marts.dim_people", "DROP refused"),
        ("create table marts.copy as select 1", "CREATE refused"),
        ("set transaction read write", "SET refused"),
        ("with gone as (delete from marts.dim_people returning *) select * from gone", "holds a DELETE"),
        ("select 1; delete from marts.dim_people", "one statement at a time, not 2"),
        ("selec 1 frm x", "not a statement"),
    ],
)
def test_a_statement_that_writes_or_is_not_one_query_is_refused(sql, reason):
    with pytest.raises(StatementRefused, match=reason):
        refuse_unless_reading(sql, "postgresql")


def test_json_rows_are_objects_with_utc_timestamps_and_numbers_as_numbers():
    berlin = timezone(timedelta(hours=1))
    rows = [
        (datetime(2026, 11, 2, 12, 30), datetime(2026, 11, 2, 13, 30, tzinfo=berlin), Decimal("42"), Decimal("9.5")),
        (None, datetime(2026, 11, 2, 12, 30, tzinfo=UTC), Decimal("0.25"), 3),
    ]
    assert json.loads(as_json(["naive", "aware", "whole", "part"], rows)) == [
        {"naive": "2026-11-02T12:30:00Z", "aware": "2026-11-02T12:30:00Z", "whole": 42, "part": 9.5},
        {"naive": None, "aware": "2026-11-02T12:30:00Z", "whole": 0.25, "part": 3},
    ]


def test_csv_has_a_header_and_empty_fields_for_nulls():
    assert as_csv(["day", "owner", "handoffs"], [(date(2026, 11, 2), "ann, the rep", 3), (None, None, 0)]) == (
        'day,owner,handoffs\n2026-11-02,"ann, the rep",3\n,,0\n'
    )
