import json
from datetime import date

import pytest

from pipeline.ingest.calendars import (
    CalendarFileError,
    InvalidCalendar,
    holiday_years,
    parse_calendar_row,
    public_holiday_rows,
    read_owner_calendars,
)
from pipeline.settings import load_connections

HEADER = "owner_id,email,time_zone,country,start_hour,end_hour\n"
VALID = {
    "owner_id": "1001",
    "email": " Ava@Example.com ",
    "time_zone": "Europe/Berlin",
    "country": "de",
    "start_hour": "9",
    "end_hour": "18",
}


def test_a_valid_row_is_typed_and_normalized():
    assert parse_calendar_row(VALID) == {
        "owner_id": "1001",
        "email": "ava@example.com",
        "time_zone": "Europe/Berlin",
        "country": "DE",
        "start_hour": 9,
        "end_hour": 18,
    }


def test_a_working_day_may_end_at_midnight():
    assert parse_calendar_row(VALID | {"start_hour": "0", "end_hour": "24"})["end_hour"] == 24


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"owner_id": " "}, "no owner_id"),
        ({"time_zone": "Mars/Olympus_Mons"}, "unknown time zone 'Mars/Olympus_Mons'"),
        ({"time_zone": ""}, "unknown time zone ''"),
        ({"country": "XX"}, "country 'XX' is not an ISO 3166 alpha-2 code"),
        ({"country": "DEU"}, "country 'DEU' is not an ISO 3166 alpha-2 code"),
        ({"start_hour": "9.5"}, "start_hour '9.5' is not a whole hour"),
        ({"start_hour": "24"}, "start_hour 24 is outside 0–23"),
        ({"end_hour": "0"}, "end_hour 0 is outside 1–24"),
        ({"end_hour": "25"}, "end_hour 25 is outside 1–24"),
        ({"start_hour": "18", "end_hour": "9"}, "start_hour 18 is not before end_hour 9"),
        ({"start_hour": "9", "end_hour": "9"}, "start_hour 9 is not before end_hour 9"),
    ],
)
def test_an_invalid_row_names_what_is_wrong(change, reason):
    with pytest.raises(InvalidCalendar, match=reason):
        parse_calendar_row(VALID | change)


def test_the_file_keeps_good_rows_and_quarantines_bad_ones_with_line_and_reason(tmp_path):
    path = tmp_path / "calendars.csv"
    path.write_text(
        HEADER + "1001,a@example.com,America/New_York,US,9,17\n"
        "1002,b@example.com,Nowhere/City,US,9,17\n"
        "1001,,Europe/Paris,FR,9,17\n"
        "1003,c@example.com,Asia/Singapore,SG,9,18,extra\n"
        "1004,,Asia/Tokyo,JP,10,19\n"
    )
    calendars, quarantined = read_owner_calendars(path)
    assert [c["owner_id"] for c in calendars] == ["1001", "1004"]
    assert calendars[1]["email"] is None
    assert [(q["line_number"], q["reason"]) for q in quarantined] == [
        (3, "unknown time zone 'Nowhere/City'"),
        (4, "owner 1001 is listed already, on line 2"),
        (5, "more values than the 6 columns"),
    ]
    assert json.loads(quarantined[0]["record"])["time_zone"] == "Nowhere/City"
    assert all(q["file"] == str(path) for q in quarantined)


def test_a_file_without_the_calendar_columns_is_refused_whole(tmp_path):
    path = tmp_path / "calendars.csv"
    path.write_text("owner,zone\n1001,Europe/Berlin\n")
    with pytest.raises(CalendarFileError, match="no column"):
        read_owner_calendars(path)


def test_a_missing_file_says_where_it_is_configured(tmp_path):
    with pytest.raises(CalendarFileError, match="HANDOFF_OWNER_CALENDARS"):
        read_owner_calendars(tmp_path / "absent.csv")


def test_holidays_cover_two_years_back_to_one_ahead_for_each_country_once():
    years = holiday_years(date(2026, 11, 23))
    assert list(years) == [2024, 2025, 2026, 2027]
    rows = public_holiday_rows(["US", "DE", "US"], years)
    assert {row["country"] for row in rows} == {"US", "DE"}
    assert {"country": "DE", "holiday_date": date(2026, 4, 3), "holiday_name": "Good Friday"} in rows
    assert len({(row["country"], row["holiday_date"]) for row in rows}) == len(rows)
    assert min(row["holiday_date"] for row in rows).year == 2024
    assert max(row["holiday_date"] for row in rows).year == 2027


def test_the_calendars_file_is_found_beside_the_connection_file_or_from_the_environment(tmp_path, monkeypatch):
    path = tmp_path / "connection.json"
    path.write_text(
        json.dumps(
            {
                "crm": {"base_url": "http://crm.example", "access_token": "t"},
                "calendars": {"owner_calendars_file": "calendars.csv"},
            }
        )
    )
    assert load_connections(path).owner_calendars_file == tmp_path / "calendars.csv"
    monkeypatch.setenv("HANDOFF_OWNER_CALENDARS", str(tmp_path / "elsewhere.csv"))
    assert load_connections(path).owner_calendars_file == tmp_path / "elsewhere.csv"


def test_without_a_calendars_file_none_is_configured(tmp_path, monkeypatch):
    monkeypatch.delenv("HANDOFF_OWNER_CALENDARS", raising=False)
    path = tmp_path / "connection.json"
    path.write_text(json.dumps({"crm": {"base_url": "http://crm.example", "access_token": "t"}}))
    assert load_connections(path).owner_calendars_file is None
