"""Asset checks that validate each newly loaded raw batch with its GX suite.

A failing check is blocking: the dbt models, feedback and alerts downstream of the batch do not
run, so bad data never reaches the CRM.
"""


from dataclasses import asdict
from datetime import datetime, timezone

import dagster as dg

from pipeline.quality.gx import read_suite, validate
from pipeline.resources import Warehouse
from pipeline.settings import EXPECTATIONS_DIR, WAREHOUSE_POOL

# Rows written by the latest completed dlt load of a raw table: its newly loaded batch.
LATEST_BATCH_SQL = """
select * from {schema}.{table}
where _dlt_load_id = (select max(load_id) from {schema}._dlt_loads where status = 0)
"""


def raw_batch_check(schema: str, table: str) -> dg.AssetChecksDefinition:
    suite_path = EXPECTATIONS_DIR / f"{schema}__{table}.json"
    suite_definition = read_suite(suite_path)

    @dg.asset_check(
        asset=dg.AssetKey([schema, table]),
        name=f"gx_{suite_definition['name']}",
        description=f"The newly loaded batch of {schema}.{table} meets expectations/{suite_path.name}.",
        blocking=True,
        pool=WAREHOUSE_POOL,
    )
    def check_latest_batch(warehouse: Warehouse) -> dg.AssetCheckResult:
        with warehouse.connect(read_only=True) as db:
            [(loaded,)] = db.execute("select count(*) from information_schema.tables where table_schema = ? "
                                     "and table_name = ?", [schema, table]).fetchall()
            if not loaded:
                # A source that has sent nothing yet has no batch to judge; freshness is another check.
                return dg.AssetCheckResult(passed=True, metadata={"suite": suite_definition["name"],
                                                                  "batch_rows": 0})
            batch = db.sql(LATEST_BATCH_SQL.format(schema=schema, table=table)).df()
        result = validate(batch, suite_definition, {"now": datetime.now(timezone.utc)})
        return dg.AssetCheckResult(
            passed=result.passed,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={
                "suite": result.suite,
                "batch_rows": result.rows,
                "expectations_evaluated": result.evaluated,
                "expectations_failed": len(result.failures),
                "failed_expectations": dg.MetadataValue.json([asdict(f) for f in result.failures]),
            },
        )

    return check_latest_batch


def build_quality_defs() -> dg.Definitions:
    return dg.Definitions(asset_checks=[raw_batch_check("raw_crm", "contacts"),
                                        raw_batch_check("raw_marketing", "activities"),
                                        raw_batch_check("raw_web", "events")])
