"""The sandbox's dataset format: a folder of NDJSON files, one per table, plus ``manifest.json``.

It is what ``handoff sandbox generate`` writes and what ``handoff sandbox serve --dataset DIR``
serves, so a test or a user can replay an exact scenario instead of a generated one. Records are
kept in the vendors' own shapes (HubSpot CRM v3 objects, Marketo leads and activities, Segment
events), so the stand-ins serve them as they are. Timestamps are ISO 8601 in UTC
(``2026-03-04T05:06:07.000Z``).

| file | one line per | shape |
|---|---|---|
| ``owners`` | CRM owner (sales user) | HubSpot owner + ``timeZone``, ``country``, ``workingHours`` {``start``, ``end``} (local hours), ``team``, ``managerId`` |
| ``crm_objects`` | CRM record | ``objectType`` (contacts, companies, deals, calls, emails, meetings, tasks), ``id``, ``properties`` (every value a string), ``createdAt``, ``updatedAt``, ``archived``, ``archivedAt``, ``mergedInto`` (id of the survivor of a merge, or null) |
| ``crm_property_history`` | past value of a property | ``objectType``, ``id``, ``property``, ``value``, ``timestamp``, ``sourceType`` |
| ``crm_associations`` | association | ``fromType``, ``fromId``, ``toType``, ``toId``, ``associationType`` (e.g. ``contact_to_company``) |
| ``crm_pipelines`` | deal pipeline | HubSpot pipeline with ``stages`` (``id``, ``label``, ``displayOrder``, ``metadata`` {``probability``, ``isClosed``}) |
| ``marketing_leads`` | marketing-automation lead | Marketo lead fields (``id``, ``email``, ``firstName``, ``lastName``, ``company``, ``leadScore``, ``leadStatus``, ``leadSource``, ``createdAt``, ``updatedAt``, …) + ``deletedAt`` |
| ``marketing_activities`` | lead activity | Marketo activity (``id``, ``marketoGUID``, ``leadId``, ``activityDate``, ``activityTypeId``, ``primaryAttributeValueId``, ``primaryAttributeValue``, ``attributes`` [{``name``, ``value``}]) |
| ``marketing_programs`` | program (campaign) | Marketo program (``id``, ``name``, ``type``, ``channel``, ``status``, ``createdAt``, ``updatedAt``) |
| ``marketing_program_members`` | program membership | ``programId``, ``leadId``, ``progressionStatus``, ``membershipDate``, ``reachedSuccess``, ``updatedAt`` |
| ``web_events`` | website event | Segment spec ``page`` / ``track`` / ``identify`` call with ``messageId``, ``anonymousId``, ``userId``, ``timestamp``, ``context.page``, ``context.campaign`` |
| ``truth_people`` | simulated person | ground truth: ``personId`` and every id the person has (``crmContactIds``, ``marketingLeadId``, ``anonymousIds``), ``email``, final ``stage`` |
| ``truth_handoffs`` | marketing→sales handoff | ground truth: ``handoffId``, ``personId``, ``crmContactId``, ``ownerId``, ``mqlAt``, ``mqlReason``, ``firstTouchDelayMinutes`` drawn, ``firstTouchAt``, ``decision``, ``decidedAt``, ``rejectionReason``, ``outcome`` |

Every file is optional: a missing one is an empty table.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType

FORMAT_VERSION = 1
TABLES = (
    "owners", "crm_objects", "crm_property_history", "crm_associations", "crm_pipelines",
    "marketing_leads", "marketing_activities", "marketing_programs", "marketing_program_members",
    "web_events", "truth_people", "truth_handoffs",
)


def iso(moment: datetime) -> str:
    """The dataset's (and HubSpot's) timestamp format: UTC, milliseconds, ``Z``."""
    moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class DatasetError(ValueError):
    """A dataset folder that cannot be read as written."""


@dataclass(frozen=True)
class Manifest:
    scale: str
    seed: int | None
    now: str
    counts: dict[str, int]
    format_version: int = FORMAT_VERSION

    def as_json(self) -> dict:
        return {"formatVersion": self.format_version, "scale": self.scale, "seed": self.seed,
                "now": self.now, "counts": self.counts}


class DatasetWriter:
    """Streams records into a dataset folder, one buffered file per table, so a large company is
    written without being held in memory."""

    def __init__(self, folder: Path, scale: str, seed: int | None, now: datetime):
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        for table in TABLES:
            (folder / f"{table}.ndjson").unlink(missing_ok=True)
        self._files = {}
        self._counts = {table: 0 for table in TABLES}
        self._manifest = dict(scale=scale, seed=seed, now=iso(now))

    def write(self, table: str, record: dict) -> None:
        if table not in self._counts:
            raise DatasetError(f"unknown dataset table {table!r}")
        out = self._files.get(table)
        if out is None:
            out = self._files[table] = open(self.folder / f"{table}.ndjson", "w", buffering=1 << 20)
        out.write(json.dumps(record, separators=(",", ":"), ensure_ascii=False))
        out.write("\n")
        self._counts[table] += 1

    def write_all(self, table: str, records: Iterable[dict]) -> None:
        for record in records:
            self.write(table, record)

    def close(self) -> Manifest:
        for out in self._files.values():
            out.close()
        manifest = Manifest(counts=self._counts, **self._manifest)
        (self.folder / "manifest.json").write_text(json.dumps(manifest.as_json(), indent=2))
        return manifest

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()


class Dataset:
    """A dataset folder opened for reading."""

    def __init__(self, folder: Path):
        self.folder = folder
        manifest_path = folder / "manifest.json"
        if not manifest_path.exists():
            raise DatasetError(f"{folder} is not a dataset: it has no manifest.json")
        raw = json.loads(manifest_path.read_text())
        if raw.get("formatVersion") != FORMAT_VERSION:
            raise DatasetError(f"{folder} has dataset format {raw.get('formatVersion')}, expected {FORMAT_VERSION}")
        self.manifest = Manifest(scale=raw.get("scale", "custom"), seed=raw.get("seed"), now=raw["now"],
                                 counts=raw.get("counts", {}))

    def rows(self, table: str) -> Iterator[dict]:
        if table not in TABLES:
            raise DatasetError(f"unknown dataset table {table!r}")
        path = self.folder / f"{table}.ndjson"
        if not path.exists():
            return
        with open(path) as lines:
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as error:
                    raise DatasetError(f"{path}:{number}: not JSON: {error}") from error
