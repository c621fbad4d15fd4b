"""Ingestion assets: each dlt resource becomes one asset keyed ``[raw schema, table]``, the same key
dbt gives the matching source, so the asset graph is one piece from API to mart."""


from collections.abc import Iterator

import dagster as dg
import dlt
from dagster_dlt import DagsterDltResource, DagsterDltTranslator, dlt_assets
from dagster_dlt.translator import DltResourceTranslatorData

from pipeline.ingest.crm import crm_source
from pipeline.ingest.marketing import marketing_source
from pipeline.ingest.web import web_source
from pipeline.resources import SourceConnections
from pipeline.settings import WAREHOUSE_POOL, DataHome, postgres_credentials, warehouse_target


class HandoffDltTranslator(DagsterDltTranslator):
    def get_asset_spec(self, data: DltResourceTranslatorData) -> dg.AssetSpec:
        spec = super().get_asset_spec(data)
        dataset = data.pipeline.dataset_name
        return spec.replace_attributes(
            key=dg.AssetKey([dataset, data.resource.name]),
            deps=[],
            group_name="ingest",
            kinds={"dlt", warehouse_target()},
            description=(f"{data.resource.source_name} {data.resource.name}, loaded by dlt into "
                         f"{dataset}.{data.resource.name} and merged on its primary key"),
        )


def warehouse_destination(home: DataHome):
    if warehouse_target() == "postgres":
        return dlt.destinations.postgres(credentials=postgres_credentials())
    return dlt.destinations.duckdb(str(home.warehouse))


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


def announcing_drift(context: dg.AssetExecutionContext, pipeline: dlt.Pipeline,
                     results: Iterator[dg.MaterializeResult]) -> Iterator[dg.MaterializeResult]:
    """Each table's materialization names the columns this run added to an existing table (a new
    property in the source), so schema drift is announced by the load, not found by a model later."""
    before = table_columns(pipeline)
    for result in results:
        table = result.asset_key.path[-1]
        added = sorted(table_columns(pipeline).get(table, set()) - before[table]) if table in before else []
        if added:
            context.log.warning(f"new columns in {'.'.join(result.asset_key.path)}: {', '.join(added)}")
        yield dg.MaterializeResult(asset_key=result.asset_key,
                                   metadata={**(result.metadata or {}), "new_columns": added})


def raw_assets(name: str, dataset: str, source_shape, home: DataHome, load_source):
    """The assets of one dlt source, loaded into ``dataset``. ``load_source(connections)`` builds the
    source to load when a run starts (the shape passed here only names its resources); every load
    announces the columns it added."""
    pipeline = raw_pipeline(f"handoff_{name}", dataset, home)

    @dlt_assets(dlt_source=source_shape, dlt_pipeline=pipeline, name=f"{name}_ingest",
                dagster_dlt_translator=HandoffDltTranslator(), pool=WAREHOUSE_POOL)
    def ingest(context: dg.AssetExecutionContext, dlt: DagsterDltResource, connections: SourceConnections):
        source = load_source(connections)
        yield from announcing_drift(context, pipeline, dlt.run(context=context, dlt_source=source))

    return ingest


def build_ingest_defs(home: DataHome) -> dg.Definitions:
    # The shapes stand in for the connections, which are read only when a run starts.
    crm = raw_assets("crm", "raw_crm", crm_source(base_url="", access_token=""), home,
                     lambda connections: crm_source(**vars(connections.load().crm)))
    marketing = raw_assets(
        "marketing", "raw_marketing", marketing_source(base_url="", client_id="", client_secret=""), home,
        lambda connections: marketing_source(**vars(connections.load().require_marketing())))
    web = raw_assets("web", "raw_web", web_source(folders=[]), home,
                     lambda _: web_source(folders=[str(folder) for folder in home.web_event_folders()]))
    return dg.Definitions(assets=[crm, marketing, web], resources={"dlt": DagsterDltResource()})
