"""Write-back assets: each reads one feedback model and pushes what changed into its system."""

from collections.abc import Callable
from dataclasses import asdict, dataclass

import dagster as dg

from pipeline.feedback.crm import CrmContacts
from pipeline.feedback.ledger import MAX_ATTEMPTS, Ledger, Plan
from pipeline.feedback.marketing import MarketingLeads
from pipeline.feedback.writeback import WritebackTarget, write_back
from pipeline.ingest.crm import crm_client
from pipeline.ingest.marketing import MarketoClient
from pipeline.resources import SourceConnections, StateResource, WarehouseResource
from pipeline.settings import Connections, Settings
from pipeline.state import StateStore
from pipeline.warehouse import Reader, readers_pool

DIFF_PREVIEW_ROWS = 20


class WritebackConfig(dg.Config):
    dry_run: bool = False
    """Plan and show the diff, send nothing and leave the ledger as it is."""
    create_missing_properties: bool = False
    """Create the CRM contact properties Handoff writes when the account lacks them."""


@dataclass(frozen=True)
class Writeback:
    """One write-back: the feedback model it reads, the kind of target it writes (its class says the
    system, the record id column and the allow-list) and how to connect that target for a run."""

    model: str
    target: type[WritebackTarget]
    connect: Callable[[Connections, WritebackConfig], WritebackTarget]


WRITEBACKS = {
    "crm_contacts": Writeback(
        "feedback_crm_contacts",
        CrmContacts,
        lambda connections, config: CrmContacts(
            crm_client(connections.crm.base_url, connections.crm.access_token),
            create_missing_properties=config.create_missing_properties,
        ),
    ),
    "marketing_leads": Writeback(
        "feedback_marketing_leads",
        MarketingLeads,
        lambda connections, _: MarketingLeads(MarketoClient(**vars(connections.require_marketing()))),
    ),
}


def read_feedback(reader: Reader, model: str, id_column: str) -> list[dict]:
    return reader.rows(f"select * from {reader.table('feedback', model)} order by {reader.quote(id_column)}")


def diff_rows(plan: Plan, ledger: Ledger) -> list[dict]:
    """The plan as a diff: each record's property, what the system last accepted and what it gets."""
    accepted = ledger.last_accepted()
    return [
        {
            "record_id": c.record_id,
            "property": c.property,
            "from": accepted.get((c.record_id, c.property)),
            "to": c.value,
        }
        for c in plan.changes
    ]


def plan_dry_run(reader: Reader, store: StateStore, name: str) -> tuple[Plan, list[dict]]:
    """What write-back ``name`` would send, from the warehouse and the ledger alone: no request, no
    ledger change."""
    writeback = WRITEBACKS[name]
    target = writeback.target
    ledger = Ledger(store, target.system, target.object_type)
    plan = ledger.plan(read_feedback(reader, writeback.model, target.id_column), target.id_column, target.writable)
    return plan, diff_rows(plan, ledger)


def _markdown(rows: list[dict]) -> str:
    lines = ["| record | property | from | to |", "|---|---|---|---|"]
    lines += [f"| {r['record_id']} | {r['property']} | {r['from']} | {r['to']} |" for r in rows]
    return "\n".join(lines)


def writeback_asset(name: str, pool: str | None) -> dg.AssetsDefinition:
    writeback = WRITEBACKS[name]
    model = writeback.model

    # The handoffs mart is named although only the feedback model is read: the feedback models are
    # built from it in the same dbt step, so its blocking checks gate the write-back only as a dep.
    @dg.asset(
        key=["writeback", name],
        deps=[dg.AssetKey(["feedback", model]), dg.AssetKey(["marts", "fct_handoffs"])],
        group_name="feedback",
        owners=["team:revenue-operations"],
        kinds={"hubspot" if name.startswith("crm") else "marketo", "python"},
        pool=pool,
        description=f"Sends the changed values of feedback.{model} to the system in vendor-sized batches "
        "and records every batch and record outcome in the write-back ledger.",
    )
    def write(
        context: dg.AssetExecutionContext,
        config: WritebackConfig,
        warehouse: WarehouseResource,
        state: StateResource,
        connections: SourceConnections,
    ) -> dg.MaterializeResult:
        target = writeback.connect(connections.load(), config)
        with warehouse.read() as reader:
            desired = read_feedback(reader, model, target.id_column)
        ledger = Ledger(state.open(), target.system, target.object_type)
        summary, plan = write_back(target, ledger, desired, run_id=context.run.run_id, dry_run=config.dry_run)
        metadata = {**asdict(summary), **ledger.summary(), "feedback_rows": len(desired)}
        if config.dry_run:
            metadata["diff_preview"] = dg.MetadataValue.md(_markdown(diff_rows(plan, ledger)[:DIFF_PREVIEW_ROWS]))
        if summary.records_refused:
            context.log.warning(
                f"{summary.records_refused} {target.object_type} were refused by the {target.system}; "
                "see writeback_record_outcomes in the operational store"
            )
        if plan.held_back:
            context.log.warning(
                f"{len(plan.held_back)} values refused {MAX_ATTEMPTS} times are held back until "
                "they change; see writeback_record_outcomes in the operational store"
            )
        return dg.MaterializeResult(metadata=metadata)

    return write


def build_feedback_defs(settings: Settings) -> dg.Definitions:
    # A write-back reads its model and writes the ledger in the operational store: on PostgreSQL it
    # never waits for a build, only for another run's write-back of the same system, which plans from
    # the same ledger.
    return dg.Definitions(
        assets=[writeback_asset(name, readers_pool(settings, own=f"writeback_{name}")) for name in WRITEBACKS]
    )
