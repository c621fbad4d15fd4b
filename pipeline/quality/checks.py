"""Asset checks that run the GX suites in expectations/ on what each run loaded and built.

- Raw tables: each newly loaded batch (the rows of the latest dlt load) once, so the cost follows
  the load, not the history; ``quality.validated_batches`` remembers which loads were judged.
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
import duckdb
import pandas as pd

from pipeline.quality.gx import Validation, read_suite, suite_columns, validate
from pipeline.resources import Warehouse
from pipeline.settings import DBT_PROJECT_DIR, EXPECTATIONS_DIR, WAREHOUSE_POOL, DataHome
from pipeline.transform.contract import load_contract

LATEST_LOAD_SQL = "select max(load_id) from {schema}._dlt_loads where status = 0"

# Archived CRM records stay in the merged table with ``archived = true``.
NOT_ARCHIVED = "not coalesce(archived, false)"

VALIDATED_BATCHES_DDL = """
create schema if not exists quality;
create table if not exists quality.validated_batches (
    schema_name varchar, table_name varchar, load_id varchar, critical boolean, validated_at timestamptz)
"""

LIVE_ROW_COUNTS_DDL = """
create schema if not exists quality;
create table if not exists quality.live_row_counts (
    schema_name varchar, table_name varchar, load_id varchar, live_rows bigint,
    accepted boolean, measured_at timestamptz)
"""

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


def _exists(db: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    [(found,)] = db.execute(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = ?", [schema, table]
    ).fetchall()
    return bool(found)


def _latest_load_id(db: duckdb.DuckDBPyConnection, schema: str) -> str | None:
    if not _exists(db, schema, "_dlt_loads"):
        return None
    [(load_id,)] = db.execute(LATEST_LOAD_SQL.format(schema=schema)).fetchall()
    return load_id


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
    db: duckdb.DuckDBPyConnection, raw: RawTable, now: datetime, run_name: str, docs_dir: Path | None = None
) -> dg.AssetCheckResult:
    load_id = _latest_load_id(db, raw.schema)
    if load_id is None or not _exists(db, raw.schema, raw.table):
        # A source that has sent nothing yet has no batch to judge; freshness is another check.
        return dg.AssetCheckResult(passed=True, metadata={"suite": raw.suite_name, "rows_validated": 0})
    db.execute(VALIDATED_BATCHES_DDL)
    if db.execute(
        """select 1 from quality.validated_batches where schema_name = ? and table_name = ?
                     and load_id = ? and not critical""",
        [raw.schema, raw.table, load_id],
    ).fetchall():
        # A run that loaded nothing new has no new batch; one that failed critically is judged again,
        # so it keeps stopping the runs after it until a new load replaces it.
        return dg.AssetCheckResult(
            passed=True,
            description=f"no new batch: load {load_id} passed in an earlier run",
            metadata={"suite": raw.suite_name, "rows_validated": 0, "load_id": load_id},
        )
    suite = read_suite(EXPECTATIONS_DIR / f"{raw.suite_name}.json")
    batch = _read_for_suite(db, raw.schema, raw.table, suite, raw.key, ("where _dlt_load_id = ?", [load_id]))
    validation = validate(batch, suite, {"now": now}, key_columns=(raw.key,), docs_dir=docs_dir, run_name=run_name)
    db.execute(
        "delete from quality.validated_batches where schema_name = ? and table_name = ? and load_id = ?",
        [raw.schema, raw.table, load_id],
    )
    db.execute(
        "insert into quality.validated_batches values (?, ?, ?, ?, ?)",
        [raw.schema, raw.table, load_id, validation.critical, datetime.now(UTC)],
    )
    # Quarantined records never reach the table, so the suite cannot count them again.
    return check_result(validation, load_id=load_id, quarantined_in_batch=_quarantined(db, raw, load_id))


def _read_for_suite(
    db: duckdb.DuckDBPyConnection, schema: str, table: str, suite: dict, key: str, where: tuple[str, list] = ("", [])
) -> pd.DataFrame:
    """The rows to validate, with only the columns the suite reads and the key that names failing
    rows: a full load's batch of website events is millions of rows, each with its whole call as
    text, which the suite never reads. A column the suite names and the table lacks is left for
    the suite to report."""
    present = {
        name
        for (name,) in db.execute(
            "select column_name from information_schema.columns where table_schema = ? and table_name = ?",
            [schema, table],
        ).fetchall()
    }
    columns = ", ".join(f'"{name}"' for name in sorted((suite_columns(suite) | {key}) & present))
    condition, parameters = where
    return db.execute(f'select {columns} from {schema}."{table}" {condition}', parameters).df()


def _quarantined(db: duckdb.DuckDBPyConnection, raw: RawTable, load_id: str) -> int:
    if raw.quarantine is None or not _exists(db, raw.schema, "quarantine"):
        return 0
    [(count,)] = db.execute(
        f"select count(*) from {raw.schema}.quarantine where _dlt_load_id = ? and {raw.quarantine}", [load_id]
    ).fetchall()
    return count


def count_live_rows(db: duckdb.DuckDBPyConnection, raw: RawTable) -> int:
    condition = raw.live or "true"
    if raw.deleted_in and _exists(db, raw.schema, raw.deleted_in[0]):
        deleted_table, deleted_key = raw.deleted_in
        condition += f" and {raw.key} not in (select {deleted_key} from {raw.schema}.{deleted_table})"
    [(count,)] = db.execute(f"select count(*) from {raw.schema}.{raw.table} where {condition}").fetchall()
    return count


def evaluate_live_rows(
    db: duckdb.DuckDBPyConnection, raw: RawTable, run_name: str, docs_dir: Path | None = None
) -> dg.AssetCheckResult:
    """The live records after this load against those after the last accepted load.

    Raw tables are merged, so a load's own rows cannot show what went away; what "a drop in
    contacts" means is the live records the source holds, measured after each load: archived CRM
    records and deleted marketing leads no longer count. The baseline is the last load whose count
    was accepted, so a drop stays an incident on every later run until the data is back, not only on
    the run that first saw it. A drop that is real is accepted by marking its row in
    ``quality.live_row_counts`` accepted.
    """
    load_id = _latest_load_id(db, raw.schema)
    if load_id is None or not _exists(db, raw.schema, raw.table):
        return dg.AssetCheckResult(passed=True, metadata={"suite": "raw_live_rows", "live_rows": 0})
    db.execute(LIVE_ROW_COUNTS_DDL)
    live_rows = count_live_rows(db, raw)
    baseline = db.execute(
        """select live_rows from quality.live_row_counts
                             where schema_name = ? and table_name = ? and accepted and load_id <> ?
                             order by measured_at desc limit 1""",
        [raw.schema, raw.table, load_id],
    ).fetchall()
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
    db.execute(
        "delete from quality.live_row_counts where schema_name = ? and table_name = ? and load_id = ?",
        [raw.schema, raw.table, load_id],
    )
    db.execute(
        "insert into quality.live_row_counts values (?, ?, ?, ?, ?, ?)",
        [raw.schema, raw.table, load_id, live_rows, not validation.critical, datetime.now(UTC)],
    )
    return check_result(
        validation,
        load_id=load_id,
        live_rows=live_rows,
        previous_live_rows=previous if previous is not None else dg.MetadataValue.null(),
    )


def evaluate_freshness(
    db: duckdb.DuckDBPyConnection, now: datetime, run_name: str, docs_dir: Path | None = None
) -> dg.AssetCheckResult:
    """Hours since each source's newest completed load; a source never loaded has none."""
    hours = {}
    for source, schema in SOURCES.items():
        newest = None
        if _exists(db, schema, "_dlt_loads"):
            [(newest,)] = db.execute(f"select max(inserted_at) from {schema}._dlt_loads where status = 0").fetchall()
        hours[source] = None if newest is None else (now - newest).total_seconds() / 3600
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


def evaluate_model(
    db: duckdb.DuckDBPyConnection, guarded: GuardedModel, now: datetime, run_name: str, docs_dir: Path | None = None
) -> dg.AssetCheckResult:
    suite = read_suite(EXPECTATIONS_DIR / f"{guarded.suite_name}.json")
    frame = _read_for_suite(db, guarded.schema, guarded.model, suite, guarded.key)
    validation = validate(
        frame,
        suite,
        {"now": now, **guarded.parameters()},
        key_columns=(guarded.key,),
        docs_dir=docs_dir,
        run_name=run_name,
    )
    return check_result(validation)


def raw_batch_check(raw: RawTable) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=dg.AssetKey([raw.schema, raw.table]),
        name=f"gx_{raw.suite_name}",
        blocking=True,
        pool=WAREHOUSE_POOL,
        description=f"The newly loaded batch of {raw.schema}.{raw.table} meets expectations/{raw.suite_name}.json.",
    )
    def check_batch(context: dg.AssetCheckExecutionContext, warehouse: Warehouse) -> dg.AssetCheckResult:
        with warehouse.connect() as db:
            return evaluate_raw_batch(db, raw, datetime.now(UTC), context.run.run_id, data_docs_dir())

    return check_batch


def live_rows_check(raw: RawTable) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=dg.AssetKey([raw.schema, raw.table]),
        name=f"gx_{raw.suite_name}__live_rows",
        blocking=True,
        pool=WAREHOUSE_POOL,
        description=f"The live records of {raw.schema}.{raw.table} after this load did not drop "
        "(or jump) out of the bounds in expectations/raw_live_rows.json.",
    )
    def check_live_rows(context: dg.AssetCheckExecutionContext, warehouse: Warehouse) -> dg.AssetCheckResult:
        with warehouse.connect() as db:
            return evaluate_live_rows(db, raw, context.run.run_id, data_docs_dir())

    return check_live_rows


def model_check(guarded: GuardedModel) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=dg.AssetKey([guarded.schema, guarded.model]),
        name=f"gx_{guarded.suite_name}",
        blocking=True,
        pool=WAREHOUSE_POOL,
        description=f"{guarded.schema}.{guarded.model} meets expectations/{guarded.suite_name}.json "
        "before anything is written back or alerted on.",
    )
    def check_model(context: dg.AssetCheckExecutionContext, warehouse: Warehouse) -> dg.AssetCheckResult:
        with warehouse.connect(read_only=True) as db:
            return evaluate_model(db, guarded, datetime.now(UTC), context.run.run_id, data_docs_dir())

    return check_model


@dg.asset_check(
    asset=dg.AssetKey(["marts", "fct_handoffs"]),
    name="gx_source_freshness",
    blocking=True,
    pool=WAREHOUSE_POOL,
    description="Every source the handoffs are computed from was loaded recently enough "
    "(expectations/source_freshness.json).",
)
def source_freshness_check(context: dg.AssetCheckExecutionContext, warehouse: Warehouse) -> dg.AssetCheckResult:
    with warehouse.connect(read_only=True) as db:
        return evaluate_freshness(db, datetime.now(UTC), context.run.run_id, data_docs_dir())


def build_quality_defs() -> dg.Definitions:
    return dg.Definitions(
        asset_checks=[
            *(raw_batch_check(raw) for raw in RAW_TABLES),
            *(live_rows_check(raw) for raw in RAW_TABLES if raw.live is not None),
            *(model_check(guarded) for guarded in GUARDED_MODELS),
            source_freshness_check,
        ]
    )
