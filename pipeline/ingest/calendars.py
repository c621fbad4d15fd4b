"""dlt source for the reference data SLA clocks run on: owners' business calendars and public holidays.

HubSpot's owners API knows no time zones or working hours, so a company keeps them in a CSV its ops
team maintains (``owner_id,email,time_zone,country,start_hour,end_hour``; local whole hours, the
end exclusive). The file is a snapshot: each load replaces ``owner_calendars``. A row that cannot be
a calendar (no owner id, an unknown time zone or country, hours out of range, an owner listed twice)
goes to ``quarantine`` with the reason, and its owner works the contract's default calendar like an
owner the file does not list.

``public_holidays`` holds, from the ``holidays`` package, the public holidays of every country in the
calendars and of the contract's default country, for the years SLA clocks reach: from two years
before today to one year after (the dbt calendar starts two years before its as-of year).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import dlt
import holidays
import pyarrow as pa

CALENDAR_SCHEMA = pa.schema(
    [
        pa.field("owner_id", pa.string(), nullable=False),
        ("email", pa.string()),
        ("time_zone", pa.string()),
        ("country", pa.string()),
        ("start_hour", pa.int64()),
        ("end_hour", pa.int64()),
    ]
)
CALENDAR_COLUMNS = tuple(CALENDAR_SCHEMA.names)
HOLIDAY_YEARS_BEFORE, HOLIDAY_YEARS_AFTER = 2, 1
EXTRA_VALUES = "extra_values"  # where the CSV reader puts values beyond the header's columns

# A refused row is kept once however often the same file is read again.
QUARANTINE_HINTS = dlt.mark.make_hints(
    table_name="quarantine", write_disposition="merge", primary_key=["file", "line_number", "record"]
)


class CalendarFileError(ValueError):
    """The owner calendars file is missing or is not a calendars CSV at all."""


class InvalidCalendar(ValueError):
    """One row that cannot be an owner's calendar; the message is the quarantine reason."""


def _hour(row: dict, column: str, lowest: int, highest: int) -> int:
    text = (row.get(column) or "").strip()
    try:
        hour = int(text)
    except ValueError:
        raise InvalidCalendar(f"{column} {text!r} is not a whole hour") from None
    if not lowest <= hour <= highest:
        raise InvalidCalendar(f"{column} {hour} is outside {lowest}–{highest}")
    return hour


def parse_calendar_row(row: dict) -> dict:
    """A CSV row as a typed calendar, or ``InvalidCalendar`` saying what is wrong with it."""
    if row.get(EXTRA_VALUES):
        raise InvalidCalendar(f"more values than the {len(CALENDAR_COLUMNS)} columns")
    owner_id = (row.get("owner_id") or "").strip()
    if not owner_id:
        raise InvalidCalendar("no owner_id")
    time_zone = (row.get("time_zone") or "").strip()
    try:
        ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidCalendar(f"unknown time zone {time_zone!r}") from None
    country = (row.get("country") or "").strip().upper()
    if len(country) != 2 or country not in holidays.list_supported_countries():
        raise InvalidCalendar(f"country {country!r} is not an ISO 3166 alpha-2 code with a public holiday calendar")
    start_hour, end_hour = _hour(row, "start_hour", 0, 23), _hour(row, "end_hour", 1, 24)
    if start_hour >= end_hour:
        raise InvalidCalendar(f"start_hour {start_hour} is not before end_hour {end_hour}")
    email = (row.get("email") or "").strip().lower() or None
    return {
        "owner_id": owner_id,
        "email": email,
        "time_zone": time_zone,
        "country": country,
        "start_hour": start_hour,
        "end_hour": end_hour,
    }


def read_owner_calendars(path: Path) -> tuple[list[dict], list[dict]]:
    """The file's calendars and its quarantined rows (each with its line number and reason)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as error:
        raise CalendarFileError(
            f"cannot read the owner calendars file {path} (calendars.owner_calendars_file in the connection "
            f"file, or HANDOFF_OWNER_CALENDARS): {error.strerror}"
        ) from error
    reader = csv.DictReader(io.StringIO(text, newline=""), restkey=EXTRA_VALUES)
    missing = [column for column in CALENDAR_COLUMNS if column not in (reader.fieldnames or [])]
    if missing:
        raise CalendarFileError(
            f"the owner calendars file {path} has no column(s) {', '.join(missing)}; "
            f"its header must be {','.join(CALENDAR_COLUMNS)}"
        )
    calendars: list[dict] = []
    quarantined: list[dict] = []
    first_lines: dict[str, int] = {}
    for row in reader:
        try:
            calendar = parse_calendar_row(row)
            if calendar["owner_id"] in first_lines:
                raise InvalidCalendar(
                    f"owner {calendar['owner_id']} is listed already, on line {first_lines[calendar['owner_id']]}"
                )
        except InvalidCalendar as error:
            quarantined.append(
                {
                    "file": str(path),
                    "line_number": reader.line_num,
                    "record": json.dumps(row, sort_keys=True, default=str),
                    "reason": str(error),
                    "quarantined_at": datetime.now(UTC),
                }
            )
            continue
        first_lines[calendar["owner_id"]] = reader.line_num
        calendars.append(calendar)
    return calendars, quarantined


def holiday_years(today: date) -> range:
    return range(today.year - HOLIDAY_YEARS_BEFORE, today.year + HOLIDAY_YEARS_AFTER + 1)


def public_holiday_rows(countries: Iterable[str], years: range) -> list[dict]:
    """One row per country and date (several holidays on one date share it, names joined)."""
    return [
        {"country": country, "holiday_date": day, "holiday_name": name}
        for country in sorted(set(countries))
        for day, name in sorted(holidays.country_holidays(country, years=years).items())
    ]


@dlt.source(name="reference", max_table_nesting=0)
def reference_source(
    default_country: str = dlt.config.value, owner_calendars_file: str | None = None, today: date | None = None
):
    """Without a calendars file every owner works the contract's default calendar."""
    calendars, quarantined = read_owner_calendars(Path(owner_calendars_file)) if owner_calendars_file else ([], [])
    years = holiday_years(today or datetime.now(UTC).date())

    @dlt.resource(name="owner_calendars", primary_key="owner_id", write_disposition="replace")
    def owner_calendars():
        """Each owner's time zone, country and local working hours, as the company keeps them."""
        yield pa.Table.from_pylist(calendars, schema=CALENDAR_SCHEMA)
        if quarantined:
            yield dlt.mark.with_hints(quarantined, QUARANTINE_HINTS, create_table_variant=True)

    @dlt.resource(name="public_holidays", primary_key=["country", "holiday_date"], write_disposition="replace")
    def public_holidays():
        """Public holidays of the calendars' countries and the default country."""
        yield public_holiday_rows([default_country, *(calendar["country"] for calendar in calendars)], years)

    return owner_calendars, public_holidays
