from datetime import UTC, date, datetime

import pytest

from pipeline.ingest.crm import InvalidValue, RecordTyper, parse_timestamp

DEFINITIONS = [
    {"name": "email", "type": "string"},
    {"name": "amount", "type": "number"},
    {"name": "closedate", "type": "datetime"},
    {"name": "birthday", "type": "date"},
    {"name": "is_vip", "type": "bool"},
    {"name": "lifecyclestage", "type": "enumeration"},
]


def record(record_id="1", **properties):
    return {
        "id": record_id,
        "createdAt": "2026-01-02T03:04:05.000Z",
        "updatedAt": "2026-01-03T00:00:00.000Z",
        "archived": False,
        "properties": properties,
    }


def test_values_are_typed_by_the_crms_definitions():
    table, quarantined = RecordTyper("deals", DEFINITIONS).type_page(
        [
            record(
                email="a@b.co",
                amount="1250.5",
                closedate="1767225600000",
                birthday="1990-04-01",
                is_vip="true",
                lifecyclestage="lead",
                unknown_property="ignored",
            )
        ]
    )
    assert quarantined == []
    [row] = table.to_pylist()
    assert row["amount"] == 1250.5 and row["is_vip"] is True and row["birthday"] == date(1990, 4, 1)
    assert row["closedate"] == datetime(2026, 1, 1, tzinfo=UTC)
    assert row["updated_at"] == datetime(2026, 1, 3, tzinfo=UTC)
    assert "unknown_property" not in table.column_names


def test_empty_strings_are_nulls_and_every_defined_property_has_a_column():
    table, _ = RecordTyper("deals", DEFINITIONS).type_page([record(amount="")])
    assert table.to_pylist()[0]["amount"] is None
    assert {"email", "amount", "closedate", "birthday", "is_vip", "lifecyclestage"} <= set(table.column_names)


@pytest.mark.parametrize(
    "properties, reason",
    [
        ({"amount": "lots"}, "property amount: 'lots' is not a number"),
        ({"closedate": "next tuesday"}, "property closedate: 'next tuesday' is not a timestamp"),
        ({"is_vip": "maybe"}, "property is_vip: 'maybe' is not true or false"),
    ],
)
def test_a_record_that_does_not_fit_is_quarantined_with_its_reason_and_the_rest_load(properties, reason):
    table, quarantined = RecordTyper("deals", DEFINITIONS).type_page([record("1", **properties), record("2")])
    assert table.column("id").to_pylist() == ["2"]
    [bad] = quarantined
    assert bad["record_id"] == "1" and bad["reason"] == reason and bad["object_type"] == "deals"
    assert '"id": "1"' in bad["record"]


def test_a_record_without_a_modification_time_is_quarantined():
    broken = record()
    del broken["updatedAt"]
    _, [bad] = RecordTyper("contacts", DEFINITIONS).type_page([broken])
    assert bad["reason"] == "record has no updatedAt"


def test_timestamps_in_either_of_hubspots_formats():
    assert parse_timestamp("2026-01-01T00:00:00.000Z") == parse_timestamp("1767225600000")
    with pytest.raises(InvalidValue):
        parse_timestamp("yesterday")


def test_a_page_typed_column_by_column_equals_the_page_typed_record_by_record():
    typer = RecordTyper("deals", DEFINITIONS)
    page = [
        record(
            "1",
            email="a@b.co",
            amount="1250.5",
            closedate="2026-01-01T00:00:00Z",
            birthday="1990-04-01",
            is_vip="TRUE",
            lifecyclestage="lead",
        ),
        record("2", amount="", closedate="2026-01-01T00:00:00.000Z", is_vip="false"),
        {
            **record("3", closedate="2026-02-03T04:05:06.789+02:00"),
            "archived": True,
            "archivedAt": "2026-03-01T00:00:00Z",
        },
    ]
    by_column = typer._typed_columns(page)
    by_record, quarantined = typer._typed_rows(page)
    assert quarantined == [] and by_column.equals(by_record)
    assert by_column.column("closedate").to_pylist()[2] == datetime(2026, 2, 3, 2, 5, 6, 789000, tzinfo=UTC)


@pytest.mark.parametrize(
    "closedates",
    [
        ["1767225600000", "1767225600000"],  # epoch milliseconds only
        ["1767225600000", "2026-01-01T00:00:00.000Z"],  # both formats: Arrow's parser refuses the page
        ["2026-01-01"],  # no zone: Arrow's parser refuses it
    ],
)
def test_timestamps_are_read_whichever_way_the_page_is_typed(closedates):
    table, quarantined = RecordTyper("deals", DEFINITIONS).type_page(
        [record(str(n), closedate=value) for n, value in enumerate(closedates)]
    )
    assert quarantined == []
    assert set(table.column("closedate").to_pylist()) == {datetime(2026, 1, 1, tzinfo=UTC)}
