"""What BI tools read while the pipeline writes: a copy of the marts in a DuckDB file of its own.

DuckDB lets no other process open the warehouse while a run writes it, so a BI tool pointed at the
warehouse would fail whenever a sync runs. Instead, once a run has rebuilt the marts (and their
blocking checks passed), this asset copies them into ``<data home>/serving/funnel.duckdb``: written
beside it under a temporary name, made durable, then renamed over the old copy in one step. A
reader sees the previous copy or the new one, never half of one, and a reader with the old file
open keeps reading it undisturbed.
"""

import os
from pathlib import Path

import dagster as dg
import duckdb

from pipeline.automation.analytics import follows_changes
from pipeline.settings import WAREHOUSE_POOL, DataHome, Settings

MARTS_SCHEMA = "marts"


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _fsync(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def publish_marts(warehouse: Path, target: Path, run_id: str) -> dict[str, int]:
    """Copy every table and view of the DuckDB warehouse's marts schema into ``target`` atomically;
    rows per table."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{target.stem}-{run_id}.duckdb")
    staging.unlink(missing_ok=True)
    rows: dict[str, int] = {}
    with duckdb.connect(str(warehouse)) as db:
        tables = [
            name
            for (name,) in db.execute(
                "select table_name from information_schema.tables where table_catalog = current_database() "
                "and table_schema = ? order by table_name",
                [MARTS_SCHEMA],
            ).fetchall()
        ]
        db.execute(f"attach {_literal(str(staging))} as published")
        try:
            db.execute(f"create schema published.{MARTS_SCHEMA}")
            for table in tables:
                db.execute(
                    f"create table published.{MARTS_SCHEMA}.{_quoted(table)} as "
                    f"select * from {MARTS_SCHEMA}.{_quoted(table)}"
                )
                [(rows[table],)] = db.execute(
                    f"select count(*) from published.{MARTS_SCHEMA}.{_quoted(table)}"
                ).fetchall()
        finally:
            db.execute("detach published")
    _fsync(staging)
    os.replace(staging, target)
    _fsync(target.parent)
    return rows


def with_published_marts(settings: Settings, transform: dg.Definitions) -> dg.Definitions:
    """The dbt models plus the published marts, downstream of every mart; without them when the
    warehouse is PostgreSQL, which BI tools read directly (a dbt build swaps each table in one
    transaction there, so readers see the old table or the new one)."""
    if settings.dbt_target != "duckdb":
        return transform
    home = DataHome.of(settings)
    marts = sorted(
        {
            key
            for assets_def in transform.assets or []
            if isinstance(assets_def, dg.AssetsDefinition)
            for key in assets_def.keys
            if key.path[0] == MARTS_SCHEMA
        },
        key=lambda key: key.to_user_string(),
    )

    @dg.asset(
        key=["serving", MARTS_SCHEMA],
        deps=marts,
        pool=WAREHOUSE_POOL,
        group_name="serving",
        owners=["team:data-engineering"],
        kinds={"duckdb"},
        automation_condition=follows_changes(settings),
        description="A read-only copy of the marts for BI tools, replaced atomically after each run "
        f"that rebuilt them: {home.served_marts}.",
    )
    def published_marts(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        target = home.served_marts
        rows = publish_marts(home.warehouse, target, context.run_id)
        return dg.MaterializeResult(
            metadata={
                "path": dg.MetadataValue.path(str(target)),
                "tables": len(rows),
                "rows": dg.MetadataValue.json(rows),
            }
        )

    return dg.Definitions.merge(transform, dg.Definitions(assets=[published_marts]))
