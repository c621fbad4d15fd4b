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

import dagster as dg
import pandas as pd
import sqlalchemy as sa

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
    table's records from the dataset's quarantine table."""

    schema: str
    table: str
    key: str
    live: str | None = None
    deleted_in: tuple[str, str] | None = None
    quarantine: str | None = None

    @property
    def suite_name(self) -> str:
        return f"{self.schema}__{self.table}"


RAW_TABLES = (
    RawTable("raw_crm", "contacts", "id", live=NOT_ARCHIVED, quarantine="object_type = 'contacts'"),
    RawTable("raw_crm", "companies", "id", live=NOT_ARCHIVED, quarantine="object_type = 'companies'"),
    RawTable("raw_crm", "deals", "id", live=NOT_ARCHIVED, quarantine="object_type = 'deals'"),
    RawTable("raw_marketing", "leads", "id", live="true", deleted_in=("deleted_leads", "lead_id")),
    RawTable("raw_marketing", "activities", "id"),
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
    failing_rows = [
        {"expectation": failure.expectation, "column": failure.column, **row}
        for failure in validation.failures
        for row in failure.failing_rows
    ]
    metadata = {
        "suite": validation.suite,
        "rows_validated": validation.rows,
        "expectations_evaluated": validation.evaluated,
        "expectations_failed": len(validation.failures),
        "failed_expectations": dg.MetadataValue.json([asdict(f) for f in validation.failures]),
        "failing_rows_sample": dg.MetadataValue.json(failing_rows),
        **metadata,
    }
    if validation.docs_url:
        metadata["data_docs"] = dg.MetadataValue.url(validation.docs_url)
    return dg.AssetCheckResult(
        passed=validation.passed,
        severity=dg.AssetCheckSeverity.ERROR if validation.critical else dg.AssetCheckSeverity.WARN,
        description=_describe(validation),
        metadata=metadata,
    )


def _describe(validation: Validation) -> str:
    if validation.passed:
        return f"{validation.suite}: all {validation.evaluated} expectations met on {validation.rows} rows"
    failed = "; ".join(
        f"{f.expectation}({f.column or ''}) [{f.severity}]"
        + (f": {f.unexpected_count} unexpected" if f.unexpected_count is not None else "")
        for f in validation.failures
    )
    consequence = "downstream steps stopped" if validation.critical else "reported, nothing stopped"
    return f"{validation.suite} failed, {consequence}: {failed}"


def evaluate_raw_batch(
    reader: Reader, store: StateStore, raw: RawTable, now: datetime, run_name: str, docs_dir: Path | None = None
) -> dg.AssetCheckResult:
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
    batch_key = (judged.schema_name == raw.schema, judged.table_name == raw.table, judged.load_id == load_id)
    with store.begin() as state:
        passed_before = state.execute(sa.select(judged.load_id).where(*batch_key, sa.not_(judged.critical))).first()
    if passed_before:
        # A run that loaded nothing new has no new batch; one that failed critically is judged again,
        # so it keeps stopping the runs after it until a new load replaces it.
        return dg.AssetCheckResult(
            passed=True,
            description=f"no new batch: load {load_id} passed in an earlier run",
            metadata={"suite": raw.suite_name, "rows_validated": 0, "load_id": load_id},
        )
    suite = read_suite(EXPECTATIONS_DIR / f"{raw.suite_name}.json")
    batch = _read_for_suite(
        reader, raw.schema, raw.table, suite, raw.key, "where _dlt_load_id = :load_id", load_id=load_id
    )
    validation = validate(batch, suite, {"now": now}, key_columns=(raw.key,), docs_dir=docs_dir, run_name=run_name)
    with store.begin() as state:
        upsert(
            state,
            quality_validated_batches,
            {
                "schema_name": raw.schema,
                "table_name": raw.table,
                "load_id": load_id,
                "critical": validation.critical,
                "validated_at": datetime.now(UTC),
            },
        )
    # Quarantined records never reach the table, so the suite cannot count them again.
    return check_result(validation, load_id=load_id, quarantined_in_batch=_quarantined(reader, raw, load_id))


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
