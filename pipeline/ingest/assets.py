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
from pipeline.settings import WAREHOUSE_POOL, DataHome, MissingConnectionError


class HandoffDltTranslator(DagsterDltTranslator):
    def get_asset_spec(self, data: DltResourceTranslatorData) -> dg.AssetSpec:
        spec = super().get_asset_spec(data)
        dataset = data.pipeline.dataset_name
        return spec.replace_attributes(
            key=dg.AssetKey([dataset, data.resource.name]),
            deps=[],
            group_name="ingest",
            kinds={"dlt", "duckdb"},
            description=(f"{data.resource.source_name} {data.resource.name}, loaded by dlt into "
                         f"{dataset}.{data.resource.name} and merged on its primary key"),
        )


def raw_pipeline(name: str, dataset: str, home: DataHome) -> dlt.Pipeline:
    return dlt.pipeline(
        pipeline_name=name,
        destination=dlt.destinations.duckdb(str(home.warehouse)),
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


def build_ingest_defs(home: DataHome) -> dg.Definitions:
    # The source passed to the decorator only describes the resources' shape; the connection is
    # read at run time, so empty values stand in here.
    crm_pipeline = raw_pipeline("handoff_crm", "raw_crm", home)

    @dlt_assets(
        dlt_source=crm_source(base_url="", access_token=""),
        dlt_pipeline=crm_pipeline,
        name="crm_ingest",
        dagster_dlt_translator=HandoffDltTranslator(),
        pool=WAREHOUSE_POOL,
    )
    def crm_ingest(context: dg.AssetExecutionContext, dlt: DagsterDltResource,
                   connections: SourceConnections):
        crm = connections.load().crm
        yield from announcing_drift(context, crm_pipeline, dlt.run(
            context=context, dlt_source=crm_source(base_url=crm.base_url, access_token=crm.access_token)))

    @dlt_assets(
        dlt_source=marketing_source(base_url="", client_id="", client_secret=""),
        dlt_pipeline=raw_pipeline("handoff_marketing", "raw_marketing", home),
        name="marketing_ingest",
        dagster_dlt_translator=HandoffDltTranslator(),
        pool=WAREHOUSE_POOL,
    )
    def marketing_ingest(context: dg.AssetExecutionContext, dlt: DagsterDltResource,
                         connections: SourceConnections):
        marketing = connections.load().marketing
        if marketing is None:
            raise MissingConnectionError("no marketing-automation connection: add a \"marketing\" section "
                                         "to the connection file or set HANDOFF_MARKETING_BASE_URL, "
                                         "_CLIENT_ID and _CLIENT_SECRET")
        yield from dlt.run(context=context, dlt_source=marketing_source(
            base_url=marketing.base_url, client_id=marketing.client_id, client_secret=marketing.client_secret))

    @dlt_assets(
        dlt_source=web_source(folders=[]),
        dlt_pipeline=raw_pipeline("handoff_web", "raw_web", home),
        name="web_ingest",
        dagster_dlt_translator=HandoffDltTranslator(),
        pool=WAREHOUSE_POOL,
    )
    def web_ingest(context: dg.AssetExecutionContext, dlt: DagsterDltResource):
        yield from dlt.run(context=context,
                           dlt_source=web_source(folders=[str(folder) for folder in home.web_event_folders()]))

    return dg.Definitions(assets=[crm_ingest, marketing_ingest, web_ingest],
                          resources={"dlt": DagsterDltResource()})
