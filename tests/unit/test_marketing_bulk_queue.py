"""The marketing stand-in's Bulk Extract queue on a clock of its own: what only days can show, the
daily export allocation that resets at midnight Central time and jobs forgotten after seven days."""

from datetime import UTC, datetime, timedelta

import pytest

from sandbox.faults import Limits
from sandbox.marketing.bulk import BulkExports, ExportDefinition
from sandbox.marketing.schema import MarketoError

SMALL_EXPORT = ExportDefinition("CSV", ["id"], lambda: [[1], [2], [3], [4]])  # "id\n1\n2\n3\n4\n", 11 bytes
LIMITS = Limits(marketing_daily_export_bytes=10)  # less than one file


class Clock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def completed(exports: BulkExports) -> str:
    export_id = exports.create("leads", SMALL_EXPORT, LIMITS).export_id
    exports.enqueue("leads", export_id, LIMITS)
    assert [exports.poll("leads", export_id).status for _ in range(2)] == ["Processing", "Completed"]
    return export_id


def test_the_daily_allocation_resets_at_midnight_central_time():
    clock = Clock(datetime(2025, 6, 2, 4, 30, tzinfo=UTC))  # 23:30 in Chicago
    exports = BulkExports(clock)
    completed(exports)
    with pytest.raises(MarketoError, match="Export daily quota exceeded"):
        exports.create("leads", SMALL_EXPORT, LIMITS)
    clock.now += timedelta(hours=1)  # 00:30 in Chicago, a new day
    assert exports.create("leads", SMALL_EXPORT, LIMITS).status == "Created"


def test_jobs_and_their_files_are_kept_seven_days():
    clock = Clock(datetime(2025, 6, 2, 12, tzinfo=UTC))
    exports = BulkExports(clock)
    export_id = completed(exports)
    clock.now += timedelta(days=7)
    assert exports.completed_file("leads", export_id) is not None
    clock.now += timedelta(seconds=1)
    assert exports.completed_file("leads", export_id) is None
    assert exports.listing("leads", set(), 0, 300) == ([], False)
    with pytest.raises(MarketoError, match="not found"):
        exports.poll("leads", export_id)
