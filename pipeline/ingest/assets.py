"""Ingestion assets: each dlt resource becomes one asset keyed ``[raw schema, table]``, the same key
dbt gives the matching source, so the asset graph is one piece from API to mart."""

import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import dlt
from dagster_dlt import DagsterDltResource, DagsterDltTranslator, dlt_assets
from dagster_dlt.translator import DltResourceTranslatorData
from dlt.destinations.impl.duckdb.configuration import DuckDbCredentials
from dlt.sources import DltSource

from pipeline.ingest.calendars import reference_source
from pipeline.ingest.crm import crm_source
from pipeline.ingest.marketing import marketing_source
from pipeline.ingest.web import web_source
from pipeline.resources import SourceConnections
from pipeline.settings import (
    DBT_PROJECT_DIR,
    WAREHOUSE_POOL,
    Connections,
    DataHome,
    postgres_credentials,
    warehouse_target,
)
from pipeline.transform.contract import load_contract

# DuckDB's share of a load's memory; with the source's own, a load stays under 1.5 GB however much
# it loads (the medium company's 1.9M web events peak at about 1.0 GB). Inserts that need not keep
# the rows' order need no more: half a gigabyte loads them as fast as a whole one.
LOAD_MEMORY_LIMIT = "512MB"


class HandoffDltTranslator(DagsterDltTranslator):
    def get_asset_spec(self, data: DltResourceTranslatorData) -> dg.AssetSpec:
        spec = super().get_asset_spec(data)
        dataset = data.pipeline.dataset_name if data.pipeline else ""
        kept = "replaced by each load" if data.resource.write_disposition == "replace" else "merged on its primary key"
        return spec.replace_attributes(
            key=dg.AssetKey([dataset, data.resource.name]),
            deps=[],
            group_name="ingest",
            kinds={"dlt", warehouse_target()},
            description=(
                f"{data.resource.source_name} {data.resource.name}, loaded by dlt into "
                f"{dataset}.{data.resource.name} and {kept}"
            ),
        )


def warehouse_destination(home: DataHome):
    if warehouse_target() == "postgres":
        return dlt.destinations.postgres(credentials=postgres_credentials())
    # DuckDB loads a Parquet file with one vectorised read; dlt's default for it, INSERT statements,
    # makes DuckDB parse every row's SQL and holds the whole statement in memory. A merge's
    # de-duplication sorts the whole load: past the memory limit DuckDB spills it to disk, where by
    # default it would take most of the machine's memory first. Rows are merged on their keys, so
    # their order in a table means nothing, and keeping it costs DuckDB a quarter of an insert's time.
    return dlt.destinations.duckdb(
        DuckDbCredentials(
            str(home.warehouse), global_config={"memory_limit": LOAD_MEMORY_LIMIT, "preserve_insertion_order": False}
        ),
        preferred_loader_file_format="parquet",
    )


def raw_pipeline(name: str, dataset: str, home: DataHome) -> dlt.Pipeline:
    return dlt.pipeline(
        pipeline_name=name,
        destination=warehouse_destination(home),
        dataset_name=dataset,
        pipelines_dir=str(home.dlt_pipelines),
    )


def table_columns(pipeline: dlt.Pipeline) -> dict[str, set[str]]:
    if not pipeline.default_schema_name:
        return {}
    return {name: set(table.get("columns", {})) for name, table in pipeline.default_schema.tables.items()}


def announcing_drift(
    context: dg.AssetExecutionContext,
    pipeline: dlt.Pipeline,
    results: Iterator[dg.AssetMaterialization | dg.MaterializeResult],
) -> Iterator[dg.MaterializeResult]:
    """Each table's materialization names the columns this run added to an existing table (a new
    property in the source), so schema drift is announced by the load, not found by a model later."""
    before = table_columns(pipeline)
    for result in results:
        assert isinstance(result, dg.MaterializeResult) and result.asset_key, "dlt's assets report materializations"
        table = result.asset_key.path[-1]
        added = sorted(table_columns(pipeline).get(table, set()) - before[table]) if table in before else []
        if added:
            context.log.warning(f"new columns in {'.'.join(result.asset_key.path)}: {', '.join(added)}")
        yield dg.MaterializeResult(
            asset_key=result.asset_key, metadata={**(result.metadata or {}), "new_columns": added}
        )


@dataclass(frozen=True)
class IngestedSystem:
    """One system Handoff ingests: the raw dataset it lands in, the dlt source's shape (which only
    names its resources, for the asset definitions) and how to build the source a run loads, from the
    connections (read only when a run starts) and the data home."""

    dataset: str
    shape: Callable[[], DltSource]
    connected: Callable[[Callable[[], Connections], DataHome], DltSource]


INGESTED_SYSTEMS = {
    "crm": IngestedSystem(
        "raw_crm",
        lambda: crm_source(base_url="", access_token=""),
        lambda connections, _: crm_source(**vars(connections().crm)),
    ),
    "marketing": IngestedSystem(
        "raw_marketing",
        lambda: marketing_source(base_url="", client_id="", client_secret=""),
        lambda connections, _: marketing_source(**vars(connections().require_marketing())),
    ),
    # The website's events are read from folders, not through a connection.
    "web": IngestedSystem(
        "raw_web",
        lambda: web_source(folders=[]),
        lambda _, home: web_source(folders=[str(folder) for folder in home.web_event_folders()]),
    ),
    "reference": IngestedSystem(
        "raw_reference",
        lambda: reference_source(default_country=""),
        lambda connections, _: reference_source(
            default_country=load_contract(DBT_PROJECT_DIR / "funnel_contract.yml").business_calendar.default.country,
            owner_calendars_file=str(connections().owner_calendars_file or "") or None,
        ),
    ),
}


def system_pipeline(name: str, home: DataHome) -> dlt.Pipeline:
    """The dlt pipeline that loads system ``name``: the same one whether Dagster or a script runs it."""
    return raw_pipeline(f"handoff_{name}", INGESTED_SYSTEMS[name].dataset, home)


def raw_assets(name: str, home: DataHome):
    """The assets of one ingested system; every load announces the columns it added."""
    system = INGESTED_SYSTEMS[name]
    # dlt writes a pipeline's state into its folder as soon as the pipeline is made, and defining the
    # assets needs only its name, dataset and destination: the data home is left alone until a run.
    with tempfile.TemporaryDirectory() as scratch:
        shape = raw_pipeline(f"handoff_{name}", system.dataset, DataHome(Path(scratch)))

    @dlt_assets(
        dlt_source=system.shape(),
        dlt_pipeline=shape,
        name=f"{name}_ingest",
        dagster_dlt_translator=HandoffDltTranslator(),
        pool=WAREHOUSE_POOL,
    )
    def ingest(context: dg.AssetExecutionContext, dlt: DagsterDltResource, connections: SourceConnections):
        pipeline = system_pipeline(name, home)
        source = system.connected(connections.load, home)
        yield from announcing_drift(
            context, pipeline, dlt.run(context=context, dlt_source=source, dlt_pipeline=pipeline)
        )

    return ingest


def build_ingest_defs(home: DataHome) -> dg.Definitions:
    return dg.Definitions(
        assets=[raw_assets(name, home) for name in INGESTED_SYSTEMS], resources={"dlt": DagsterDltResource()}
    )
