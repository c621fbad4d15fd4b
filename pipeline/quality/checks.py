"""Asset checks that run the GX suites in expectations/ on what each run loaded and built.

- Raw tables: each newly loaded batch (the rows of the latest dlt load) once, so the cost follows
  the load, not the history; the operational store remembers which loads were judged.
  Merged entity tables also get their live records counted after each load and compared with the
  last accepted load: a sudden drop is an incident, not a sync.
- Marts that feed the write-back and the alerts: the whole mart; and, on ``fct_handoffs``, how long
  ago each source was last loaded.

Every check is blocking. A failed expectation of severity ``critical`` (GX's default) fails the
check with ERROR and stops what is downstream in the run (dbt models, write-back, alerts); when
only ``warning`` expectations fail the check fails with WARN, which is reported and blocks nothing.
Each validation's GX Data Docs page is written under the data home and linked from the check.
"""

from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd
import sqlalchemy as sa
import yaml

from pipeline.quality.gx import Validation, read_suite, suite_columns, validate
from pipeline.resources import StateResource, WarehouseResource
from pipeline.settings import DBT_PROJECT_DIR, EXPECTATIONS_DIR, DataHome, Settings
from pipeline.state import StateStore
from pipeline.state.schema import quality_live_row_counts, quality_validated_batches
from pipeline.state.store import upsert
from pipeline.transform.contract import load_contract
from pipeline.warehouse import Reader, readers_pool

# Archived CRM records stay in the merged table with ``archived = true``.
NOT_ARCHIVED = "not coalesce(archived, false)"

# The systems whose loads the funnel reads, by raw dataset.
SOURCES = {"crm": "raw_crm", "marketing": "raw_marketing", "web": "raw_web"}


@dataclass(frozen=True)
class RawTable:
    """A raw table a suite guards: ``key`` names a failing row; ``live`` (SQL) says which records
    exist in the source now, for tables that get the live-row check; ``deleted_in`` is a table of
    the same dataset listing deleted keys (``table``, ``column``); ``quarantine`` (SQL) picks this
    table's records from the dataset's quarantine table; ``described_in`` is a table of the same
    dataset (``table``, ``column``) whose values the source describes, handed to the suite as the
    parameter ``described`` (the activity types the marketing instance lists)."""

    schema: str
    table: str
    key: str
    live: str | None = None
    deleted_in: tuple[str, str] | None = None
    quarantine: str | None = None
    described_in: tuple[str, str] | None = None

    @property
    def suite_name(self) -> str:
        return f"{self.schema}__{self.table}"


RAW_TABLES = (
    RawTable("raw_crm", "contacts", "id", live=NOT_ARCHIVED, quarantine="object_type = 'contacts'"),
    RawTable("raw_crm", "companies", "id", live=NOT_ARCHIVED, quarantine="object_type = 'companies'"),
    RawTable("raw_crm", "deals", "id", live=NOT_ARCHIVED, quarantine="object_type = 'deals'"),
    RawTable("raw_marketing", "leads", "id", live="true", deleted_in=("deleted_leads", "lead_id")),
    RawTable("raw_marketing", "activities", "id", described_in=("activity_types", "id")),
    RawTable("raw_web", "events", "message_id", quarantine="true"),
)


@dataclass(frozen=True)
class GuardedModel:
    """A dbt model read by the write-back or the alerts; ``parameters`` come from the funnel contract."""

    schema: str
    model: str
    key: str
    parameters: Callable[[], dict] = dict

    @property
    def suite_name(self) -> str:
        return f"{self.schema}__{self.model}"


def _contract():
    return load_contract(DBT_PROJECT_DIR / "funnel_contract.yml")


GUARDED_MODELS = (
    GuardedModel("marts", "fct_handoffs", "handoff_id"),
    GuardedModel(
        "feedback",
        "feedback_crm_contacts",
        "crm_contact_id",
        lambda: {"funnel_stages": [stage.stage for stage in _contract().stages]},
    ),
    GuardedModel(
        "feedback",
        "feedback_marketing_leads",
        "marketing_lead_id",
        lambda: {"rejection_reasons": [reason.reason for reason in _contract().rejection_reasons]},
    ),
)


# The dbt vars that hold the record rules' vocabularies (dbt_project.yml).
RECORD_RULE_VARS = ("well_formed_email", "crm_lead_statuses", "marketing_lead_statuses")


def record_rules() -> dict:
    """The record rules' vocabularies, the very values the dbt models flag records by: the project's
    vars and the funnel contract's lifecycle stages."""
    variables = yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text())["vars"]
    return {
        **{name: variables[name] for name in RECORD_RULE_VARS},
        "lifecycle_stages": list(_contract().lifecycle_stages),
    }


def _described(reader: Reader, raw: RawTable) -> dict:
    if raw.described_in is None:
        return {}
    table, column = raw.described_in
    if not reader.has_table(raw.schema, table):
        return {"described": []}
    values = reader.rows(f"select distinct {reader.quote(column)} as value from {reader.table(raw.schema, table)}")
    return {"described": [row["value"] for row in values]}


def data_docs_dir() -> Path:
    return DataHome.from_env().data_docs


def _latest_load_id(reader: Reader, schema: str) -> str | None:
    if not reader.has_table(schema, "_dlt_loads"):
        return None
    return reader.scalar(f"select max(load_id) from {reader.table(schema, '_dlt_loads')} where status = 0")


def _nothing_found(reader: Reader, raw: RawTable, suite: str, **metadata) -> dg.AssetCheckResult:
    """The check ran after its table was loaded, so finding no load at all means it looked in the
    wrong place (or dlt wrote nothing): a warning that says so, never a pass on zero rows."""
    where = reader.connection.dialect.name
    return dg.AssetCheckResult(
        passed=False,
        severity=dg.AssetCheckSeverity.WARN,
        description=f"nothing validated: no completed dlt load of {raw.schema} found in the {where} warehouse",
        metadata={"suite": suite, "rows_validated": 0, **metadata},
    )


def check_result(validation: Validation, **metadata) -> dg.AssetCheckResult:
    # Records are named by key alone: the values that broke a rule (an e-mail address, a name) stay
    # in the warehouse and the Data Docs page, out of the run storage every UI user reads.
    failing_keys = [
        {"expectation": failure.expectation, "column": failure.column, **key}
        for failure in validation.failures
        for key in failure.failing_keys
    ]
    failed = [
        {name: value for name, value in asdict(failure).items() if name not in ("sample", "failing_rows")}
        for failure in validation.failures
    ]
    metadata = {
        "suite": validation.suite,
        "rows_validated": validation.rows,
        "expectations_evaluated": validation.evaluated,
        "expectations_failed": len(validation.failures),
        "failed_expectations": dg.MetadataValue.json(failed),
        "failing_records_sample": dg.MetadataValue.json(failing_keys),
        "records_flagged": validation.records_flagged,
        "flagged_records": dg.MetadataValue.json(
            [
                {
                    "expectation": flag.expectation,
                    "column": flag.column,
                    "records": flag.unexpected_count,
                    "sample_keys": flag.failing_keys,
                }
                for flag in validation.flagged
            ]
        ),
        **metadata,
    }
    if validation.docs_url:
        metadata["data_docs"] = dg.MetadataValue.url(validation.docs_url)
    return dg.AssetCheckResult(
        passed=validation.passed,
        severity=dg.AssetCheckSeverity.ERROR if validation.critical else dg.AssetCheckSeverity.WARN,
        description=describe(validation),
        metadata=metadata,
    )


def describe(validation: Validation) -> str:
    """What a person reads first: which expectations failed, on how many records, which ones (by
    key alone), and where the Data Docs page is."""
    flagged = (
        f"; records flagged, too few to stop anything: {validation.records_flagged} (see flagged_records)"
        if validation.flagged
        else ""
    )
    if validation.passed:
        return f"{validation.suite}: all {validation.evaluated} expectations met on {validation.rows} rows{flagged}"
    failed = "; ".join(
        f"{f.expectation}({f.column or ''}) [{f.severity}]"
        + (f": {f.unexpected_count} of {validation.rows} unexpected" if f.unexpected_count is not None else "")
        + (f", e.g. {_keys(f.failing_keys)}" if f.failing_keys else "")
        for f in validation.failures
    )
    consequence = "downstream steps stopped" if validation.critical else "reported, nothing stopped"
    docs = f" (Data Docs: {validation.docs_url})" if validation.docs_url else ""
    return f"{validation.suite} failed, {consequence}: {failed}{flagged}{docs}"


def _keys(rows: list[dict]) -> str:
    return ", ".join(" ".join(f"{name}={value}" for name, value in row.items()) for row in rows[:5])


def evaluate_raw_batch(
    reader: Reader, store: StateStore, raw: RawTable, now: datetime, run_name: str, docs_dir: Path | None = None
) -> dg.AssetCheckResult:
    """Judge the latest load's batch once, and again every batch a critical failure stopped until it
    is decided: re-judged on the rows it still holds (a record fixed at the source comes back in a
    later load, which takes its row), a stopped batch is ``reloaded`` once it passes; or an operator
    accepts it (``handoff quality accept``). A new load never makes an undecided one forgotten."""
    load_id = _latest_load_id(reader, raw.schema)
    if load_id is None:
        return _nothing_found(reader, raw, raw.suite_name)
    if not reader.has_table(raw.schema, raw.table):
        # The source has sent none of these records yet; there is no batch to judge.
        return dg.AssetCheckResult(
            passed=True,
            description=f"no {raw.table} loaded yet",
            metadata={"suite": raw.suite_name, "rows_validated": 0, "load_id": load_id},
        )
    judged = quality_validated_batches.c
    this_table = (judged.schema_name == raw.schema, judged.table_name == raw.table)
    with store.begin() as state:
        latest_judged = state.execute(sa.select(judged.load_id).where(*this_table, judged.load_id == load_id)).first()
        stopped = [
            row.load_id
            for row in state.execute(
                sa.select(judged.load_id)
                .where(*this_table, judged.critical, judged.decision.is_(None))
                .order_by(judged.load_id)
            )
        ]
    suite = read_suite(EXPECTATIONS_DIR / f"{raw.suite_name}.json")
    parameters = {"now": now, **record_rules(), **_described(reader, raw)}

    def judge(batch_load_id: str) -> Validation:
        batch = _read_for_suite(
            reader, raw.schema, raw.table, suite, raw.key, "where _dlt_load_id = :load_id", load_id=batch_load_id
        )
        run = f"{run_name}-{batch_load_id}"
        return validate(batch, suite, parameters, key_columns=(raw.key,), docs_dir=docs_dir, run_name=run)

    latest = None if latest_judged and load_id not in stopped else judge(load_id)
    rejudged = {
        stopped_load_id: latest if stopped_load_id == load_id and latest is not None else judge(stopped_load_id)
        for stopped_load_id in stopped
    }
    with store.begin() as state:
        if latest is not None and not latest_judged:
            upsert(state, quality_validated_batches, _judgement(raw, load_id, latest))
        for stopped_load_id, validation in rejudged.items():
            if not validation.critical:
                state.execute(
                    quality_validated_batches.update()
                    .where(*this_table, judged.load_id == stopped_load_id)
                    .values(decision="reloaded", decided_by="handoff", decided_at=datetime.now(UTC))
                )
        decisions = _decisions(state, raw)
    earlier = {
        stopped_load_id: validation
        for stopped_load_id, validation in rejudged.items()
        if validation.critical and stopped_load_id != load_id
    }
    metadata: dict[str, Any] = {
        "load_id": load_id,
        "quarantined_in_batch": _quarantined(reader, raw, load_id),
        "stopped_batches": dg.MetadataValue.json(decisions),
    }
    if latest is None and not earlier:
        accepted = next((d for d in decisions if d["load_id"] == load_id and d["status"] == "accepted"), None)
        verdict = (
            f"was accepted by {accepted['decided_by']}: {accepted['note']}" if accepted else "passed in an earlier run"
        )
        return dg.AssetCheckResult(
            passed=True,
            description=f"no new batch: load {load_id} {verdict}",
            metadata={"suite": raw.suite_name, "rows_validated": 0, **metadata},
        )
    result = check_result(latest, **metadata) if latest is not None else None
    if result is not None and not earlier:
        return result
    # An earlier stopped batch fails this check whatever the latest one holds.
    unresolved = "; ".join(
        f"load {stopped_load} still stopped: {describe(validation)}" for stopped_load, validation in earlier.items()
    )
    remedy = (
        f"fix the records at the source (the next sync reloads them) or accept the batch: "
        f"handoff quality accept {raw.schema}.{raw.table} <load id> --reason ..."
    )
    return dg.AssetCheckResult(
        passed=False,
        severity=dg.AssetCheckSeverity.ERROR,
        description=f"{unresolved}. To go on, {remedy}"
        + (f". The latest batch: {result.description}" if result is not None else ""),
        metadata={"suite": raw.suite_name, **(result.metadata if result is not None else {}), **metadata},
    )


def _judgement(raw: RawTable, load_id: str, validation: Validation) -> dict:
    return {
        "schema_name": raw.schema,
        "table_name": raw.table,
        "load_id": load_id,
        "critical": validation.critical,
        "validated_at": datetime.now(UTC),
        "verdict": describe(validation) if validation.critical else None,
    }


STOPPED_BATCHES_SHOWN = 10


class NotStopped(LookupError):
    """No undecided stopped batch has that table and load."""


def accept_stopped_batch(store: StateStore, table: str, load_id: str, by: str, note: str) -> None:
    """An operator's decision that a stopped batch may go on as loaded; who, when and why is kept."""
    schema_name, _, table_name = table.partition(".")
    judged = quality_validated_batches.c
    with store.begin() as state:
        accepted = state.execute(
            quality_validated_batches.update()
            .where(
                judged.schema_name == schema_name,
                judged.table_name == table_name,
                judged.load_id == load_id,
                judged.critical,
                judged.decision.is_(None),
            )
            .values(decision="accepted", decided_by=by, decided_at=datetime.now(UTC), decision_note=note)
        ).rowcount
    if not accepted:
        raise NotStopped(f"no stopped batch of {table} from load {load_id} awaits a decision (handoff quality status)")


def stopped_batches(store: StateStore) -> list[dict]:
    """Every batch a critical failure stopped, newest first, with its verdict and decision."""
    judged = quality_validated_batches.c
    with store.begin() as state:
        rows = state.execute(
            sa.select(quality_validated_batches).where(judged.critical).order_by(judged.validated_at.desc())
        )
        return [dict(row._mapping) for row in rows]


def _decisions(state: sa.Connection, raw: RawTable) -> list[dict]:
    """This table's most recent stopped batches and what became of them."""
    judged = quality_validated_batches.c
    rows = state.execute(
        sa.select(judged.load_id, judged.decision, judged.decided_by, judged.decided_at, judged.decision_note)
        .where(judged.schema_name == raw.schema, judged.table_name == raw.table, judged.critical)
        .order_by(judged.load_id.desc())
        .limit(STOPPED_BATCHES_SHOWN)
    )
    return [
        {
            "load_id": row.load_id,
            "status": row.decision or "stopped",
            "decided_by": row.decided_by,
            "decided_at": row.decided_at.isoformat() if row.decided_at else None,
            "note": row.decision_note,
        }
        for row in rows
    ]


def _read_for_suite(
    reader: Reader, schema: str, table: str, suite: dict, key: str, condition: str = "", **parameters
) -> pd.DataFrame:
    """The rows to validate, with only the columns the suite reads and the key that names failing
    rows: a full load's batch of website events is millions of rows, each with its whole call as
    text, which the suite never reads. A column the suite names and the table lacks is left for
    the suite to report."""
    present = reader.columns(schema, table)
    columns = ", ".join(reader.quote(name) for name in sorted((suite_columns(suite) | {key}) & present))
    return reader.frame(f"select {columns} from {reader.table(schema, table)} {condition}", **parameters)


def _quarantined(reader: Reader, raw: RawTable, load_id: str) -> int:
    if raw.quarantine is None or not reader.has_table(raw.schema, "quarantine"):
        return 0
    return reader.scalar(
        f"select count(*) from {reader.table(raw.schema, 'quarantine')} "
        f"where _dlt_load_id = :load_id and {raw.quarantine}",
        load_id=load_id,
    )


def count_live_rows(reader: Reader, raw: RawTable) -> int:
    condition = raw.live or "true"
    if raw.deleted_in and reader.has_table(raw.schema, raw.deleted_in[0]):
        deleted_table, deleted_key = raw.deleted_in
        condition += f" and {raw.key} not in (select {deleted_key} from {reader.table(raw.schema, deleted_table)})"
    return reader.scalar(f"select count(*) from {reader.table(raw.schema, raw.table)} where {condition}")


def evaluate_live_rows(
    reader: Reader, store: StateStore, raw: RawTable, run_name: str, docs_dir: Path | None = None
) -> dg.AssetCheckResult:
    """The live records after this load against those after the last accepted load.

    Raw tables are merged, so a load's own rows cannot show what went away; what "a drop in
    contacts" means is the live records the source holds, measured after each load: archived CRM
    records and deleted marketing leads no longer count. The baseline is the last load whose count
    was accepted, so a drop stays an incident on every later run until the data is back, not only on
    the run that first saw it. A drop that is real is accepted by marking its row in the operational
    store's ``quality_live_row_counts`` accepted.
    """
    load_id = _latest_load_id(reader, raw.schema)
    if load_id is None:
        return _nothing_found(reader, raw, "raw_live_rows", live_rows=0)
    if not reader.has_table(raw.schema, raw.table):
        return dg.AssetCheckResult(passed=True, metadata={"suite": "raw_live_rows", "live_rows": 0})
    live_rows = count_live_rows(reader, raw)
    counts = quality_live_row_counts.c
    this_table = (counts.schema_name == raw.schema, counts.table_name == raw.table)
    with store.begin() as state:
        baseline = state.execute(
            sa.select(counts.live_rows)
            .where(*this_table, counts.accepted, counts.load_id != load_id)
            .order_by(counts.measured_at.desc())
            .limit(1)
        ).all()
    previous = baseline[0][0] if baseline else None
    profile = pd.DataFrame(
        {
            "live_rows": [live_rows],
            "previous_live_rows": [previous],
            "live_rows_ratio": [live_rows / previous if previous else None],
        }
    )
    validation = validate(
        profile,
        read_suite(EXPECTATIONS_DIR / "raw_live_rows.json"),
        {},
        docs_dir=docs_dir,
        run_name=f"{run_name}-{raw.suite_name}",
    )
    with store.begin() as state:
        upsert(
            state,
            quality_live_row_counts,
            {
                "schema_name": raw.schema,
                "table_name": raw.table,
                "load_id": load_id,
                "live_rows": live_rows,
                "accepted": not validation.critical,
                "measured_at": datetime.now(UTC),
            },
        )
    return check_result(
        validation,
        load_id=load_id,
        live_rows=live_rows,
        previous_live_rows=previous if previous is not None else dg.MetadataValue.null(),
    )


def evaluate_freshness(
    reader: Reader, now: datetime, run_name: str, docs_dir: Path | None = None
) -> dg.AssetCheckResult:
    """Hours since each source's newest completed load; a source never loaded has none."""
    hours = {}
    for source, schema in SOURCES.items():
        newest = None
        if reader.has_table(schema, "_dlt_loads"):
            newest = reader.scalar(
                f"select max(inserted_at) from {reader.table(schema, '_dlt_loads')} where status = 0"
            )
        hours[source] = None if newest is None else (now - _as_utc(newest)).total_seconds() / 3600
    profile = pd.DataFrame({"source": list(hours), "hours_since_load": list(hours.values())})
    validation = validate(
        profile,
        read_suite(EXPECTATIONS_DIR / "source_freshness.json"),
        {},
        key_columns=("source",),
        docs_dir=docs_dir,
        run_name=run_name,
    )
    return check_result(
        validation,
        **{
            f"hours_since_{source}_load": (dg.MetadataValue.null() if value is None else round(value, 2))
            for source, value in hours.items()
        },
    )


def _as_utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def evaluate_model(
    reader: Reader, guarded: GuardedModel, now: datetime, run_name: str, docs_dir: Path | None = None
) -> dg.AssetCheckResult:
    suite = read_suite(EXPECTATIONS_DIR / f"{guarded.suite_name}.json")
    frame = _read_for_suite(reader, guarded.schema, guarded.model, suite, guarded.key)
    validation = validate(
        frame,
        suite,
        {"now": now, **guarded.parameters()},
        key_columns=(guarded.key,),
        docs_dir=docs_dir,
        run_name=run_name,
    )
    return check_result(validation)


def raw_batch_check(raw: RawTable, pool: str | None) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=dg.AssetKey([raw.schema, raw.table]),
        name=f"gx_{raw.suite_name}",
        blocking=True,
        pool=pool,
        description=f"The newly loaded batch of {raw.schema}.{raw.table} meets expectations/{raw.suite_name}.json.",
    )
    def check_batch(
        context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource, state: StateResource
    ) -> dg.AssetCheckResult:
        store = state.open()  # first: it may move an older data home's state out of the DuckDB file
        with warehouse.read() as reader:
            return evaluate_raw_batch(reader, store, raw, datetime.now(UTC), context.run.run_id, data_docs_dir())

    return check_batch


def live_rows_check(raw: RawTable, pool: str | None) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=dg.AssetKey([raw.schema, raw.table]),
        name=f"gx_{raw.suite_name}__live_rows",
        blocking=True,
        pool=pool,
        description=f"The live records of {raw.schema}.{raw.table} after this load did not drop "
        "(or jump) out of the bounds in expectations/raw_live_rows.json.",
    )
    def check_live_rows(
        context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource, state: StateResource
    ) -> dg.AssetCheckResult:
        store = state.open()  # first: it may move an older data home's state out of the DuckDB file
        with warehouse.read() as reader:
            return evaluate_live_rows(reader, store, raw, context.run.run_id, data_docs_dir())

    return check_live_rows


def model_check(guarded: GuardedModel, pool: str | None) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=dg.AssetKey([guarded.schema, guarded.model]),
        name=f"gx_{guarded.suite_name}",
        blocking=True,
        pool=pool,
        description=f"{guarded.schema}.{guarded.model} meets expectations/{guarded.suite_name}.json "
        "before anything is written back or alerted on.",
    )
    def check_model(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource) -> dg.AssetCheckResult:
        with warehouse.read() as reader:
            return evaluate_model(reader, guarded, datetime.now(UTC), context.run.run_id, data_docs_dir())

    return check_model


def source_freshness_check(pool: str | None) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=dg.AssetKey(["marts", "fct_handoffs"]),
        name="gx_source_freshness",
        blocking=True,
        pool=pool,
        description="Every source the handoffs are computed from was loaded recently enough "
        "(expectations/source_freshness.json).",
    )
    def check_freshness(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource) -> dg.AssetCheckResult:
        with warehouse.read() as reader:
            return evaluate_freshness(reader, datetime.now(UTC), context.run.run_id, data_docs_dir())

    return check_freshness


def build_quality_defs(settings: Settings) -> dg.Definitions:
    pool = readers_pool(settings)
    return dg.Definitions(
        asset_checks=[
            *(raw_batch_check(raw, pool) for raw in RAW_TABLES),
            *(live_rows_check(raw, pool) for raw in RAW_TABLES if raw.live is not None),
            *(model_check(guarded, pool) for guarded in GUARDED_MODELS),
            source_freshness_check(pool),
        ]
    )
