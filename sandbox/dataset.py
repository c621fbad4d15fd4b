"""The sandbox's dataset format: a folder of NDJSON files, one per table, plus ``manifest.json``.

It is what ``handoff sandbox generate`` writes and what ``handoff sandbox serve --dataset DIR``
serves, so a test or a user can replay an exact scenario instead of a generated one. Records are
kept in the vendors' own shapes (HubSpot CRM v3 objects, Marketo leads and activities, Segment
events), so the stand-ins serve them as they are. Timestamps are ISO 8601 in UTC
(``2026-03-04T05:06:07.000Z``).

| file | one line per | shape |
|---|---|---|
| ``owners`` | CRM owner (sales or marketing user) | HubSpot owner + ``timeZone`` (IANA), ``country`` (ISO code), ``workingHours`` {``start``, ``end``} (local hours), ``team`` (``sdr``, ``ae``, ``marketing``), ``territory``, ``managerId``, ``worksDaysOff`` (simulation truth: the rep sometimes works weekends and public holidays; SLA clocks ignore it) |
| ``crm_objects`` | CRM record | ``objectType`` (contacts, companies, deals, calls, emails, meetings, tasks), ``id``, ``properties`` (every value a string or null), ``createdAt``, ``updatedAt``, ``archived``, ``archivedAt``, ``mergedInto`` (id of the survivor of a merge, or null) |
| ``crm_property_history`` | past value of a property | ``objectType``, ``id``, ``property``, ``value``, ``timestamp``, ``sourceType`` (``INTEGRATION``, ``AUTOMATION_PLATFORM``, ``CRM_UI``, ``IMPORT``) |
| ``crm_associations`` | association | ``fromType``, ``fromId``, ``toType``, ``toId``, ``associationType`` (e.g. ``contact_to_company``, ``call_to_contact``, ``deal_to_company``) |
| ``crm_pipelines`` | deal pipeline | HubSpot pipeline with ``stages`` (``id``, ``label``, ``displayOrder``, ``metadata`` {``probability``, ``isClosed``} as strings) |
| ``marketing_leads`` | marketing-automation lead | Marketo lead fields (``id``, ``email``, ``firstName``, ``lastName``, ``title``, ``company``, ``country``, ``leadScore``, ``leadStatus`` (Nurture, MQL, Recycled), ``leadSource``, ``unsubscribed``, ``acquisitionProgramId``, ``createdAt``, ``updatedAt``) + ``deletedAt`` + ``mergedInto`` (id of the surviving lead of a merge, or null) |
| ``marketing_activities`` | lead activity | Marketo activity (``id``, ``marketoGUID``, ``leadId``, ``activityDate``, ``activityTypeId``, ``primaryAttributeValueId``, ``primaryAttributeValue``, ``attributes`` [{``name``, ``value``}]) |
| ``marketing_programs`` | program (campaign) | Marketo program (``id``, ``name``, ``description``, ``type``, ``channel``, ``status``, ``workspace``, ``createdAt``, ``updatedAt``; ``startDate``, ``endDate`` for webinars and tradeshows) |
| ``marketing_program_members`` | program membership | ``programId``, ``leadId``, ``progressionStatus``, ``membershipDate``, ``reachedSuccess``, ``reachedSuccessDate``, ``acquiredBy``, ``updatedAt`` |
| ``web_events`` | website event | Segment spec ``page`` (``name``, ``properties``) / ``track`` (``event``, ``properties``) / ``identify`` (``traits``) call with ``messageId``, ``anonymousId``, ``userId`` (the lead id as a string once identified, else null), ``timestamp``, ``context.page``, ``context.campaign`` (UTM, on campaign landings) |
| ``truth_people`` | simulated person | ground truth: ``personId`` and every id the person has (``crmContactIds``, ``crmContactId`` the surviving, unarchived one or null, ``marketingLeadId`` the surviving one, ``marketingLeadIds``, ``anonymousIds``, ``crmCompanyId``), ``email``, final funnel ``stage`` (visitor, known, mql, sal, rejected, sql, opportunity, closed_won, closed_lost), ``lifecycleStage`` (the contact's true CRM stage, or null), ``ownerId``, ``deleted``, ``malformed``, ``defect`` (invalid_email; missing_timestamp: the lead's ``createdAt``; unknown_enum_value: the contact's ``lifecyclestage`` or else the lead's ``leadStatus``; or null) |
| ``truth_handoffs`` | marketing→sales handoff | ground truth: ``handoffId``, ``personId``, ``crmContactId``, ``marketingLeadId``, ``ownerId``, ``mqlAt``, ``mqlReason`` (score, demo_request), ``policy``, ``policyMinutes``, ``firstTouchDueAt``, ``firstTouchDelayMinutes`` (business minutes in the owner's calendar, null while untouched), ``firstTouchAt``, ``firstTouchType``, ``firstTouchId``, ``decision`` (accepted, rejected, null), ``decidedAt``, ``rejectionReason``, ``outcome`` (sql, opportunity, won, lost, none), ``dealId``, ``wonAmount`` |

Every record is as it stands at the manifest's ``now``; nothing is dated after it. CRM properties by
object type (beyond ``hs_object_id``, equal to the id, on every object):

- contacts: ``email``, ``firstname``, ``lastname``, ``jobtitle``, ``company``, ``country``,
  ``lifecyclestage``, ``hs_lead_status``, ``hubspot_owner_id``, ``rejection_reason`` (the company's
  own: bad_fit, bad_timing, no_budget, duplicate, no_response, competitor), ``hs_analytics_source``,
  ``hs_merged_object_ids`` (ids merged into this contact, ``;``-separated), ``createdate``,
  ``lastmodifieddate``. A contact is created when its person first becomes an MQL.
- companies: ``name``, ``domain``, ``industry``, ``numberofemployees``, ``country``, ``createdate``,
  ``hs_lastmodifieddate``. deals: ``dealname``, ``amount``, ``dealstage``, ``pipeline``,
  ``dealtype``, ``closedate`` (null while open), ``closed_lost_reason``, ``hubspot_owner_id``,
  ``createdate``, ``hs_lastmodifieddate``.
- calls (``hs_call_title``, ``hs_call_direction``, ``hs_call_status``, ``hs_call_duration`` in ms),
  emails (``hs_email_direction`` ``EMAIL`` sent or ``INCOMING_EMAIL`` a reply, ``hs_email_subject``,
  ``hs_email_status``), meetings (``hs_meeting_title``, ``hs_meeting_outcome``,
  ``hs_meeting_start_time``, ``hs_meeting_end_time``), tasks (``hs_task_subject``,
  ``hs_task_status``, ``hs_task_type``, ``hs_task_completion_date``): all with ``hs_timestamp``
  (HubSpot's meaning: when it happened; a task's due date), ``hubspot_owner_id``, ``hs_createdate``,
  ``hs_lastmodifieddate``. A sales touch is an outgoing e-mail, call, meeting or completed task by a
  ``sdr`` or ``ae`` owner; the marketing user's e-mails and incoming replies are not.

Merged-away contacts and leads, and activities of merged or deleted leads, stay in their files
with the ids they had; a stand-in hides or re-points them as its vendor does.

Every file is optional: a missing one is an empty table.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

import orjson

FORMAT_VERSION = 1
TABLES = (
    "owners",
    "crm_objects",
    "crm_property_history",
    "crm_associations",
    "crm_pipelines",
    "marketing_leads",
    "marketing_activities",
    "marketing_programs",
    "marketing_program_members",
    "web_events",
    "truth_people",
    "truth_handoffs",
)


def iso(moment: datetime) -> str:
    """The dataset's (and HubSpot's) timestamp format: UTC, milliseconds, ``Z``."""
    moment = moment.astimezone(UTC)
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
        return {
            "formatVersion": self.format_version,
            "scale": self.scale,
            "seed": self.seed,
            "now": self.now,
            "counts": self.counts,
        }


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
            # Kept open across writes and closed with the writer: one file per table, written record by record.
            out = self._files[table] = open(self.folder / f"{table}.ndjson", "wb", buffering=1 << 20)  # noqa: SIM115
        # orjson: compact UTF-8 like json.dumps(separators=(",", ":"), ensure_ascii=False), ~15x faster.
        out.write(orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE))
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

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
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
        self.manifest = Manifest(
            scale=raw.get("scale", "custom"), seed=raw.get("seed"), now=raw["now"], counts=raw.get("counts", {})
        )

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
