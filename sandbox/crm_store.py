"""The CRM's records in the sandbox store: reads, searches, writes (kept, with history) and the CRM
faults (churn, schema drift).

Two properties of every record live in columns rather than among its stored properties: the create
and modification dates (``createdate``/``hs_createdate``, ``lastmodifieddate``/``hs_lastmodifieddate``)
are ``created_at`` and ``updated_at``, so the incremental "modified since" search runs on the store's
index, and ``hs_object_id`` is the id. ``hs_merged_object_ids`` comes from the records merged into one.
"""

from __future__ import annotations

import json
import random
import re
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sandbox.crm_catalogue import EXTRA_PROPERTIES, STAGE_PROPERTY, deal_stage_timestamps, stage_timestamp_names
from sandbox.crm_schema import (
    CATALOG,
    DEFAULT_TICKET_PIPELINE,
    LIFECYCLE_STAGES,
    OBJECT_KINDS,
    PRIMARY_TYPE_IDS,
    UNLABELED_TYPE_IDS,
    HubSpotError,
    ObjectKind,
    P,
    PropertyDefinition,
    association_name,
    choices,
)
from sandbox.crm_search import Column, SearchError, SearchRequest, compile_search, parse_time
from sandbox.dataset import iso
from sandbox.store import SandboxStore

if TYPE_CHECKING:  # sandbox.faults answers injected errors with HubSpotError, so it imports the CRM modules
    from sandbox.faults import Faults

DRIFT_AFTER_REQUESTS = 10  # schema drift shows once the sandbox has served this many CRM requests
DRIFT_PROPERTY = P(
    "favorite_color",
    "Favorite color",
    "enumeration",
    "select",
    "contactinformation",
    choices("red", "green", "blue", "yellow", "purple"),
    hubspot_defined=False,
)
MERGE_CHAIN_MAX = 10
RECORD_ID = re.compile(r"[0-9]{1,18}")  # what fits SQLite's 64-bit integers

# The stand-in's own indexes and table, created on first use of a store built before they existed.
SETUP = (
    """create table if not exists crm_custom_properties (
           object_type text not null, name text not null, body text not null, primary key (object_type, name))""",
    "create index if not exists crm_associations_to on crm_associations (to_type, to_id, from_type)",
    """create index if not exists crm_objects_merged on crm_objects (object_type, merged_into)
           where merged_into is not null""",
    """create index if not exists crm_contacts_by_email
           on crm_objects (object_type, lower(json_extract(properties, '$.email'))) where object_type = 'contacts'""",
)
MERGED_IDS_SQL = (
    "select group_concat(m.id, ';') from crm_objects m where m.object_type = o.object_type and m.merged_into = o.id"
)


def as_record_id(text: str) -> int | None:
    """A record id as the store keeps it, or None for text that cannot be one."""
    return int(text) if RECORD_ID.fullmatch(text) else None


@dataclass(frozen=True)
class Association:
    to_id: int
    primary: bool


@dataclass
class CrmObject:
    id: int
    created_at: str
    updated_at: str
    archived: bool
    archived_at: str | None
    properties: dict[str, str | None]

    @classmethod
    def from_row(cls, kind: ObjectKind, row) -> CrmObject:
        properties = json.loads(row["properties"])
        if row["drift_value"] is not None and properties.get(DRIFT_PROPERTY.name) in (None, ""):
            properties[DRIFT_PROPERTY.name] = row["drift_value"]
        if row["merged_ids"]:
            properties["hs_merged_object_ids"] = ";".join(sorted(row["merged_ids"].split(";"), key=int))
        properties.update(
            {"hs_object_id": str(row["id"]), kind.created: row["created_at"], kind.modified: row["updated_at"]}
        )
        return cls(
            id=row["id"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            archived=bool(row["archived"]),
            archived_at=row["archived_at"],
            properties=properties,
        )


CREATION_SOURCE = "CRM_UI"  # how a value set when its record was created is said to have come


def _entered_sql(stage_property: str, stage: str) -> str:
    """When a record first entered ``stage``, for search: as ``with_stage_timestamps`` reads it."""
    value = stage.replace("'", "''")
    history = (
        "from crm_property_history h where h.object_type = o.object_type and h.id = o.id "
        f"and h.property = '{stage_property}'"
    )
    return (
        f"coalesce((select min(h.timestamp) {history} and h.value = '{value}'), "
        f"case when json_extract(o.properties, '$.{stage_property}') = '{value}' "
        f"and not exists (select 1 {history}) then o.created_at end)"
    )


class InvalidValue(ValueError):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


def validation_failure(problems: list[tuple[str, InvalidValue]]) -> HubSpotError:
    details = [
        {"isValid": False, "message": str(p), "error": p.code, "name": name, "localizedErrorMessage": str(p)}
        for name, p in problems
    ]
    return HubSpotError(
        400,
        "VALIDATION_ERROR",
        f"Property values were not valid: {json.dumps(details, separators=(',', ':'))}",
        errors=[{"message": str(p), "code": p.code, "context": {"propertyName": [name]}} for name, p in problems],
    )


def now_iso() -> str:
    return iso(datetime.now(UTC))


@dataclass
class WriteInput:
    """One record a batch write names (by id or by a unique property) and the values it sets."""

    key: str
    properties: dict[str, str | None]
    id_property: str | None = None
    values: dict[str, str | None] = field(default_factory=dict)  # validated and normalised


class CrmStore:
    """The CRM's records in the sandbox store; what is written through the API is kept and reads back."""

    def __init__(self, store: SandboxStore, faults: Faults):
        self.store = store
        self.faults = faults
        self._served = 0
        self._served_lock = threading.Lock()
        with store.transaction() as db:
            for statement in SETUP:
                db.execute(statement)
        self._custom = {kind: {} for kind in OBJECT_KINDS}
        for row in store.query("select object_type, body from crm_custom_properties"):
            definition = PropertyDefinition.from_json(json.loads(row["body"]))
            self._custom[row["object_type"]][definition.name] = definition
        deal_stages = [(s["id"], s.get("label", s["id"])) for p in self.pipelines("deals") for s in p.get("stages", [])]
        extra = {**EXTRA_PROPERTIES, "deals": (*EXTRA_PROPERTIES["deals"], *deal_stage_timestamps(deal_stages))}
        stages = {"contacts": [v for v, _ in LIFECYCLE_STAGES], "deals": [i for i, _ in deal_stages]}
        self._entered_stages = {
            (object_type, name): stage
            for object_type, values in stages.items()
            for stage in values
            for name in stage_timestamp_names(object_type, stage)["entered"]
        }
        self._stage_timestamps = {
            object_type: {
                name
                for stage in values
                for names in stage_timestamp_names(object_type, stage).values()
                for name in names
            }
            for object_type, values in stages.items()
        }
        # What the company fills wins over the rest of the catalogue where both define a name.
        self._defined = {name: {**{p.name: p for p in extra.get(name, ())}, **CATALOG[name]} for name in OBJECT_KINDS}
        self._owner_options = tuple(
            (str(o["id"]), f"{o.get('firstName', '')} {o.get('lastName', '')}".strip())
            for o in (json.loads(row["body"]) for row in store.query("select body from owners order by rowid"))
        )

    # -- faults ---------------------------------------------------------------------------------

    def note_request(self) -> None:
        with self._served_lock:
            self._served += 1

    @property
    def drift_active(self) -> bool:
        return self.faults.schema_drift and self._served >= DRIFT_AFTER_REQUESTS

    def _drift_sql(self) -> str:
        colours = " ".join(f"when {n} then '{value}'" for n, (value, _) in enumerate(DRIFT_PROPERTY.options))
        return f"(case abs(o.id * 7919 + {int(self.faults.seed)}) % 8 {colours} end)"

    def churn(self, kind: ObjectKind, page: list[CrmObject]) -> None:
        """Modify a seeded share of a page just served, as if users kept working while a client pages."""
        if not self.faults.churn or not page:
            return
        draw = random.Random(f"{self.faults.seed}:{kind.name}:{page[0].id}:{len(page)}")
        chosen = [record.id for record in page if draw.random() < self.faults.churn]
        if chosen:
            with self.store.transaction() as db:
                db.execute(
                    f"update crm_objects set updated_at = ? where object_type = ? and id in "
                    f"({', '.join('?' * len(chosen))})",
                    (now_iso(), kind.name, *chosen),
                )

    # -- properties -----------------------------------------------------------------------------

    def definitions(self, kind: ObjectKind) -> dict[str, PropertyDefinition]:
        definitions = {**self._defined[kind.name], **self._custom[kind.name]}
        if kind.name == "contacts" and self.drift_active:
            definitions.setdefault(DRIFT_PROPERTY.name, DRIFT_PROPERTY)
        return definitions

    def options(self, kind: ObjectKind, definition: PropertyDefinition) -> tuple[tuple[str, str], ...]:
        if definition.options_from == "owners":
            return self._owner_options
        if definition.options_from in ("pipelines", "stages"):
            pipelines = self.pipelines(kind.name)
            if definition.options_from == "pipelines":
                return tuple((p["id"], p.get("label", p["id"])) for p in pipelines)
            return tuple((s["id"], s.get("label", s["id"])) for p in pipelines for s in p.get("stages", []))
        return definition.options

    def create_property(self, kind: ObjectKind, definition: PropertyDefinition) -> None:
        if definition.name in self.definitions(kind):
            raise HubSpotError(409, "OBJECT_ALREADY_EXISTS", f"Property named '{definition.name}' already exists.")
        with self.store.transaction() as db:
            db.execute(
                "insert into crm_custom_properties values (?, ?, ?)",
                (kind.name, definition.name, json.dumps(definition.as_json(definition.options))),
            )
        self._custom[kind.name][definition.name] = definition

    def column(self, kind: ObjectKind, name: str) -> Column | None:
        """How search reads a property; mirrors what ``CrmObject.from_row`` presents."""
        definition = self.definitions(kind).get(name)
        if definition is None:
            return None
        in_columns = {
            "hs_object_id": Column("o.id", "number", nullable=False),
            kind.created: Column("o.created_at", "datetime", nullable=False),
            kind.modified: Column("o.updated_at", "datetime", nullable=False),
        }
        if name in in_columns:
            return in_columns[name]
        if (stage := self._entered_stages.get((kind.name, name))) is not None:
            return Column(_entered_sql(STAGE_PROPERTY[kind.name], stage), "datetime")
        stored = f"nullif(json_extract(o.properties, '$.{name}'), '')"  # names are checked when defined
        if name == "hs_merged_object_ids":
            return Column(f"coalesce(({MERGED_IDS_SQL}), {stored})", definition.type)
        if definition is DRIFT_PROPERTY:
            return Column(f"coalesce({stored}, {self._drift_sql()})", definition.type)
        return Column(stored, definition.type)

    def validated(self, kind: ObjectKind, inputs: list[WriteInput]) -> None:
        """Check every value against its property before anything is written (HubSpot fails the whole
        batch), and normalise it as HubSpot stores it."""
        definitions = self.definitions(kind)
        problems = []
        for item in inputs:
            for name, value in item.properties.items():
                try:
                    item.values[name] = self._stored_value(kind, definitions.get(name), name, value)
                except InvalidValue as problem:
                    problems.append((name, problem))
        if problems:
            raise validation_failure(problems)

    def _stored_value(
        self, kind: ObjectKind, definition: PropertyDefinition | None, name: str, value: str | None
    ) -> str | None:
        if definition is None:
            raise InvalidValue("PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist')
        if definition.read_only:
            raise InvalidValue("READ_ONLY_VALUE", f'"{name}" is a read only property; its value cannot be set.')
        if value in (None, ""):
            return value
        if definition.type == "number":
            try:
                float(value)
            except ValueError:
                raise InvalidValue("INVALID_INTEGER", f"{value} was not a valid number") from None
        elif definition.type in ("datetime", "date"):
            try:
                return iso(parse_time(value))
            except ValueError:
                raise InvalidValue("INVALID_DATE", f"{value} was not a valid date") from None
        elif definition.type == "bool":
            if value.lower() not in ("true", "false"):
                raise InvalidValue("INVALID_BOOLEAN", f"{value} was not a valid boolean")
            return value.lower()
        elif definition.type == "enumeration" and (allowed := {v for v, _ in self.options(kind, definition)}):
            chosen = value.split(";") if definition.field_type == "checkbox" else [value]
            if not set(chosen) <= allowed:
                raise InvalidValue("INVALID_OPTION", f"{value} was not one of the allowed options")
        elif kind.name == "contacts" and name == "email":
            if "@" not in value:
                raise InvalidValue("INVALID_EMAIL", f"Email address {value} is invalid")
            return value.strip().lower()
        return value

    # -- reads ----------------------------------------------------------------------------------

    def _select(self, kind: ObjectKind) -> str:
        drift = self._drift_sql() if kind.name == "contacts" and self.drift_active else "null"
        return f"select o.*, ({MERGED_IDS_SQL}) as merged_ids, {drift} as drift_value from crm_objects o"

    def _records(self, kind: ObjectKind, where: str, params: list | tuple) -> list[CrmObject]:
        rows = self.store.query(f"{self._select(kind)} where o.object_type = ? and {where}", (kind.name, *params))
        return [CrmObject.from_row(kind, row) for row in rows]

    def with_stage_timestamps(self, kind: ObjectKind, records: list[CrmObject], names: list[str]) -> None:
        """When each record first entered and last left each stage, from its stage's history:
        HubSpot keeps these as properties, which clients read instead of the history. Read only
        when ``names`` asks for one of them, since it costs a history query."""
        known = self._stage_timestamps.get(kind.name, set())
        if not records or not known.intersection(names):
            return
        stage = STAGE_PROPERTY[kind.name]
        versions: dict[int, list[tuple[str, str]]] = {}
        for row in self.store.query(
            f"""select id, value, timestamp from crm_property_history
                where object_type = ? and property = ? and id in ({", ".join("?" * len(records))})
                order by id, timestamp""",
            (kind.name, stage, *(record.id for record in records)),
        ):
            versions.setdefault(row["id"], []).append((row["value"] or "", row["timestamp"]))
        for record in records:
            # Without history, the record has been in its stage since it was created.
            changes = versions.get(record.id) or [(record.properties.get(stage) or "", record.created_at)]
            entered: dict[str, str] = {}
            exited: dict[str, str] = {}
            for (value, since), (following, until) in zip(changes, [*changes[1:], ("", None)], strict=True):
                if value:
                    entered.setdefault(value, since)
                    if until is not None and following != value:
                        exited[value] = until
            for moments, which in ((entered, "entered"), (exited, "exited")):
                for value, moment in moments.items():
                    for name in stage_timestamp_names(kind.name, value)[which]:
                        if name in known:
                            record.properties[name] = moment

    def get(
        self, kind: ObjectKind, key: str, archived: bool = False, id_property: str | None = None
    ) -> CrmObject | None:
        """One record, as a single read finds it: a merged-away id reads as the record it was merged into."""
        record_id = self.ids_by(kind, id_property, [key]).get(key)
        for _ in range(MERGE_CHAIN_MAX):
            if record_id is None:
                return None
            row = self.store.query_one(
                "select merged_into from crm_objects where object_type = ? and id = ?", (kind.name, record_id)
            )
            if row is None or row["merged_into"] is None:
                break
            record_id = row["merged_into"]
        records = self._records(kind, "o.id = ? and o.archived = ?", (record_id, int(archived)))
        return records[0] if records else None

    def ids_by(self, kind: ObjectKind, id_property: str | None, keys: list[str]) -> dict[str, int]:
        """Record ids for the keys given: ids themselves, or values of a unique property (a contact's
        ``email``, or a custom property with unique values)."""
        if id_property in (None, "hs_object_id"):
            return {key: record_id for key in keys if (record_id := as_record_id(key)) is not None}
        definition = self.definitions(kind).get(id_property)
        by_email = kind.name == "contacts" and id_property == "email"
        if not by_email and not (definition and definition.has_unique_value):
            raise HubSpotError(
                400,
                "VALIDATION_ERROR",
                f"{id_property} is not a unique identifier property "
                f"of {kind.name}; use hs_object_id, or a property with unique values",
            )
        # Spelled as the email index is, so SQLite uses it.
        value = (
            "lower(json_extract(properties, '$.email'))" if by_email else f"json_extract(properties, '$.{id_property}')"
        )
        wanted = {(key.lower() if by_email else key): key for key in keys}
        rows = self.store.query(
            f"select id, {value} as value from crm_objects where object_type = '{kind.name}' and {value} in "
            f"({', '.join('?' * len(wanted))}) and merged_into is null and archived = 0",
            list(wanted),
        )
        return {wanted[row["value"]]: row["id"] for row in rows}

    def page(self, kind: ObjectKind, after: int, limit: int, archived: bool) -> tuple[list[CrmObject], int | None]:
        # Ids only grow, so an id cursor never skips or repeats a record while others change.
        records = self._records(
            kind,
            "o.id >= ? and o.archived = ? and o.merged_into is null order by o.id limit ?",
            (after, int(archived), limit + 1),
        )
        return records[:limit], (records[limit].id if len(records) > limit else None)

    def search(self, kind: ObjectKind, request: SearchRequest) -> tuple[int, list[CrmObject], int]:
        """Total matches, the page asked for, and its offset."""
        searchable = [column for column in (self.column(kind, name) for name in kind.searchable) if column]
        try:
            query = compile_search(request, lambda name: self.column(kind, name), searchable)
        except SearchError as error:
            raise HubSpotError(400, "VALIDATION_ERROR", str(error)) from None
        live = f"o.archived = 0 and o.merged_into is null and ({query.where})"
        total = self.store.query_one(
            f"select count(*) from crm_objects o where o.object_type = ? and {live}", (kind.name, *query.params)
        )[0]
        page = self._records(
            kind, f"{live} order by {query.order_by} limit ? offset ?", (*query.params, query.limit, query.offset)
        )
        return total, page, query.offset

    def by_ids(self, kind: ObjectKind, ids: list[int]) -> dict[int, CrmObject]:
        records = self._records(kind, f"o.id in ({', '.join('?' * len(ids))})", ids) if ids else []
        return {record.id: record for record in records}

    def history(self, kind: ObjectKind, record: CrmObject, names: list[str]) -> dict[str, list[dict]]:
        """Every version of each property, newest first, the current one included, as HubSpot lists
        them. A property never changed since the record was created has one version: its value, as
        of the creation (the modification date's, as of the last change)."""
        rows = self.store.query(
            f"""select property, value, timestamp, source_type from crm_property_history
                where object_type = ? and id = ? and property in ({", ".join("?" * len(names))})
                order by timestamp desc""",
            (kind.name, record.id, *names),
        )
        history: dict[str, list[dict]] = {name: [] for name in names}
        for row in rows:
            # HubSpot reports a cleared value as an empty string, never as null.
            history[row["property"]].append(
                {"value": row["value"] or "", "timestamp": row["timestamp"], "sourceType": row["source_type"]}
            )
        for name, versions in history.items():
            if not versions and (value := record.properties.get(name)) not in (None, ""):
                since = record.updated_at if name == kind.modified else record.created_at
                versions.append({"value": value, "timestamp": since, "sourceType": CREATION_SOURCE})
        return history

    def associations(self, kind: ObjectKind, object_id: int, to_kind: ObjectKind) -> list[Association]:
        """A record's associations with one object type, whichever side they were recorded from."""
        if (kind.name, to_kind.name) not in UNLABELED_TYPE_IDS:
            raise HubSpotError(400, "VALIDATION_ERROR", f"{kind.name} cannot be associated with {to_kind.name}")
        rows = self.store.query(
            """select to_id as other, from_type, to_type, association_type from crm_associations
                   where from_type = ? and from_id = ? and to_type = ?
               union all
               select from_id, from_type, to_type, association_type from crm_associations
                   where to_type = ? and to_id = ? and from_type = ?""",
            (kind.name, object_id, to_kind.name) * 2,
        )
        primary: dict[int, bool] = {}
        for row in rows:
            recorded = (OBJECT_KINDS[row["from_type"]], OBJECT_KINDS[row["to_type"]])
            is_primary = tuple(k.name for k in recorded) in PRIMARY_TYPE_IDS and row[
                "association_type"
            ] == association_name(*recorded, primary=True)
            primary[row["other"]] = primary.get(row["other"], False) or is_primary
        return [Association(other, primary[other]) for other in sorted(primary)]

    def owners(self, after: int, limit: int, email: str | None, archived: bool) -> tuple[list[dict], int | None]:
        where, params = "rowid >= ? and coalesce(json_extract(body, '$.archived'), 0) = ?", [after, int(archived)]
        if email:
            where, params = f"{where} and lower(json_extract(body, '$.email')) = ?", [*params, email.lower()]
        rows = self.store.query(
            f"select rowid, body from owners where {where} order by rowid limit ?", (*params, limit + 1)
        )
        return [json.loads(row["body"]) for row in rows[:limit]], (rows[limit]["rowid"] if len(rows) > limit else None)

    def owner(self, id_property: str, key: str, archived: bool) -> dict | None:
        """One owner by its owner id or its user id."""
        row = self.store.query_one(
            f"select body from owners where cast(json_extract(body, '$.{id_property}') as text) = ? "
            "and coalesce(json_extract(body, '$.archived'), 0) = ?",
            (key, int(archived)),
        )
        return json.loads(row["body"]) if row else None

    def pipelines(self, object_type: str) -> list[dict]:
        pipelines = []
        for row in self.store.query("select body from crm_pipelines where object_type = ?", (object_type,)):
            body = json.loads(row["body"])
            body.pop("objectType", None)
            body.setdefault("archived", False)
            body["stages"] = sorted(body.get("stages", []), key=lambda stage: stage.get("displayOrder", 0))
            pipelines.append(body)
        if not pipelines and object_type == "tickets":
            pipelines.append({**DEFAULT_TICKET_PIPELINE, "archived": False})
        return sorted(pipelines, key=lambda pipeline: pipeline.get("displayOrder", 0))

    # -- writes ---------------------------------------------------------------------------------

    def update(self, kind: ObjectKind, inputs: list[WriteInput]) -> tuple[list[CrmObject], list[str]]:
        """Update existing records; the keys of those not found (archived and merged-away ones too,
        which HubSpot's batch update does not resolve) come back as missing."""
        self.validated(kind, inputs)
        ids = self._resolve(kind, inputs)
        missing = []
        now = now_iso()
        with self.store.transaction() as db:
            for item in inputs:
                row = db.execute(
                    "select created_at, properties from crm_objects where object_type = ? and id = ? "
                    "and archived = 0 and merged_into is null",
                    (kind.name, ids.get(item.key, -1)),
                ).fetchone()
                if row is None:
                    missing.append(item.key)
                    continue
                self._write(db, kind, ids[item.key], row["created_at"], json.loads(row["properties"]), item.values, now)
        return list(self.by_ids(kind, [ids[i.key] for i in inputs if i.key not in missing]).values()), missing

    def upsert(self, kind: ObjectKind, inputs: list[WriteInput]) -> list[tuple[CrmObject, bool]]:
        """Update the records the inputs' unique property values name and create the others."""
        self.validated(kind, inputs)
        ids = self._resolve(kind, inputs)
        now = now_iso()
        created = set()
        with self.store.transaction() as db:
            next_id = db.execute(
                "select coalesce(max(id), 0) + 1 from crm_objects where object_type = ?", (kind.name,)
            ).fetchone()[0]
            for item in inputs:
                identity = {item.id_property: item.key.lower() if item.id_property == "email" else item.key}
                if item.key in ids:
                    row = db.execute(
                        "select created_at, properties from crm_objects where object_type = ? and id = ?",
                        (kind.name, ids[item.key]),
                    ).fetchone()
                    stored = json.loads(row["properties"])
                    self._write(db, kind, ids[item.key], row["created_at"], stored, item.values, now)
                    continue
                ids[item.key] = next_id
                created.add(next_id)
                db.execute(
                    "insert into crm_objects (object_type, id, created_at, updated_at, archived, properties) "
                    "values (?, ?, ?, ?, 0, '{}')",
                    (kind.name, next_id, now, now),
                )
                self._write(db, kind, next_id, now, {}, {**item.values, **identity}, now)
                next_id += 1
        records = self.by_ids(kind, [ids[item.key] for item in inputs])
        return [(records[ids[item.key]], ids[item.key] in created) for item in inputs]

    def _resolve(self, kind: ObjectKind, inputs: list[WriteInput]) -> dict[str, int]:
        keys = [item.key for item in inputs]
        if len(set(keys)) < len(keys):
            duplicates = sorted({key for key in keys if keys.count(key) > 1})
            raise HubSpotError(
                400, "VALIDATION_ERROR", f"Duplicate IDs found in batch input: {duplicates}. IDs must be unique"
            )
        by_property: dict[str | None, list[str]] = {}
        for item in inputs:
            by_property.setdefault(item.id_property, []).append(item.key)
        return {
            key: record_id
            for id_property, group in by_property.items()
            for key, record_id in self.ids_by(kind, id_property, group).items()
        }

    @staticmethod
    def _write(db, kind: ObjectKind, record_id: int, created_at: str, stored: dict, values: dict, now: str) -> None:
        """Set the values that differ from what the record holds, with history; an update that
        changes nothing leaves the record (and its modification date) alone, as HubSpot does."""
        changed = {name: value for name, value in values.items() if stored.get(name) != value}
        if not changed:
            return
        db.execute(
            "update crm_objects set properties = ?, updated_at = ? where object_type = ? and id = ?",
            (json.dumps({**stored, **changed}, ensure_ascii=False), now, kind.name, record_id),
        )
        # A property's first recorded change keeps the value it replaces, as of the creation: the
        # company's data records history only for the properties its journeys change.
        with_history = {
            row[0]
            for row in db.execute(
                f"select distinct property from crm_property_history where object_type = ? and id = ? "
                f"and property in ({', '.join('?' * len(changed))})",
                (kind.name, record_id, *changed),
            )
        }
        replaced = [
            (kind.name, record_id, name, stored[name], created_at, CREATION_SOURCE)
            for name in changed
            if name not in with_history and stored.get(name) not in (None, "")
        ]
        db.executemany(
            "insert into crm_property_history values (?, ?, ?, ?, ?, ?)",
            [*replaced, *((kind.name, record_id, name, value, now, "INTEGRATION") for name, value in changed.items())],
        )
