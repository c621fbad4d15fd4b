"""Write-back assets: each reads one feedback model and pushes it into its system."""


from dataclasses import asdict

import dagster as dg

from pipeline.feedback.crm import write_contacts
from pipeline.feedback.ledger import Ledger
from pipeline.ingest.crm import crm_client
from pipeline.resources import SourceConnections, Warehouse
from pipeline.settings import WAREHOUSE_POOL


@dg.asset(
    key=["writeback", "crm_contacts"],
    deps=[dg.AssetKey(["feedback", "feedback_crm_contacts"])],
    group_name="feedback",
    kinds={"hubspot", "python"},
    pool=WAREHOUSE_POOL,
    description="Sends changed values of feedback.feedback_crm_contacts to CRM contacts "
                "(batch update, 100 per call) and records every batch in the writeback ledger.",
)
def crm_contacts_writeback(context: dg.AssetExecutionContext, warehouse: Warehouse,
                           connections: SourceConnections) -> dg.MaterializeResult:
    crm = connections.load().crm
    with warehouse.connect() as db:
        cursor = db.execute("select * from feedback.feedback_crm_contacts order by crm_contact_id")
        columns = [column[0] for column in cursor.description]
        desired = [dict(zip(columns, row)) for row in cursor.fetchall()]
        summary = write_contacts(crm_client(crm.base_url, crm.access_token),
                                 Ledger(db, system="crm", object_type="contacts"), desired)
    if summary.rejected:
        context.log.warning(f"{summary.rejected} CRM property values were rejected; see writeback.record_outcomes")
    return dg.MaterializeResult(metadata={**asdict(summary), "feedback_rows": len(desired)})


def build_feedback_defs() -> dg.Definitions:
    return dg.Definitions(assets=[crm_contacts_writeback])
