"""Alert delivery: SLA notices after every run that re-evaluates the clocks and, between runs, when
their moment comes; a daily digest; and operators' notices when a run fails or a blocking quality
check stops it.

SLA notices and digests go through the outbox in the operational store, so each goes out once. Operators'
notices are sent by a sensor in the daemon, which must not take the warehouse's single writer from
a running sync; the sensor's own cursor sends each failed run's notice once.
"""

from datetime import UTC, datetime
from typing import cast

import dagster as dg

from pipeline.alerts.channels import ChannelError, configured_channels
from pipeline.alerts.notices import digest_notice, run_failure_notice, sla_notice
from pipeline.alerts.outbox import Outbox
from pipeline.alerts.schedule import NoticeSchedule
from pipeline.intake.journal import IntakeJournal
from pipeline.resources import SourceConnections, StateResource, WarehouseResource
from pipeline.settings import DataHome, Settings, load_settings
from pipeline.state import StateStore, open_state_store
from pipeline.warehouse import readers_pool

SLA_NOTICES_MODEL = dg.AssetKey(["alerts", "alerts_sla_notices"])
SLA_NOTICE_SCHEDULE_MODEL = dg.AssetKey(["alerts", "alerts_sla_notice_schedule"])
CRM_CONTACTS = dg.AssetKey(["raw_crm", "contacts"])
# Seconds between two looks at the notice schedule: with a tick's sending, well within the minute a
# notice may be late.
SLA_NOTICES_DUE_INTERVAL_S = 10
# The notices are built in the same dbt step as fct_handoffs; depending on it too is what lets the
# handoffs' blocking checks stop the alerts.
FCT_HANDOFFS = dg.AssetKey(["marts", "fct_handoffs"])


def _send_through_outbox(context, store: StateStore, notices) -> dict:
    channels = configured_channels()
    outbox = Outbox(store)
    queued = outbox.queue(notices, [channel.name for channel in channels])
    delivery = outbox.deliver(channels)
    if not channels and notices:
        context.log.warning(
            f"{len(notices)} notices are due but no alert channel is configured "
            "(HANDOFF_ALERT_SLACK_WEBHOOK_URL, HANDOFF_ALERT_WEBHOOK_URL, HANDOFF_SMTP_HOST)"
        )
    for where, error in delivery.errors.items():
        context.log.warning(f"notice {where} not delivered, kept for the next run: {error}")
    return {
        "notices_due": len(notices),
        "channels": ", ".join(c.name for c in channels) or "none",
        "queued": queued,
        "delivered": delivery.delivered,
        "failed": delivery.failed,
        **outbox.summary(),
    }


def sla_notices_asset(pool: str | None) -> dg.AssetsDefinition:
    @dg.asset(
        key=["alerting", "sla_notices"],
        deps=[SLA_NOTICES_MODEL, SLA_NOTICE_SCHEDULE_MODEL, FCT_HANDOFFS],
        group_name="alerts",
        kinds={"python"},
        owners=["team:revenue-operations"],
        pool=pool,
        description="Sends each at-risk, breached and escalated SLA notice of alerts.alerts_sla_notices once "
        "per channel (Slack-compatible webhook, JSON webhook, e-mail) through the outbox in the "
        "operational store; failed deliveries are retried on later runs. Schedules those of "
        "alerts.alerts_sla_notice_schedule, which the sla_notices_due sensor sends when they fall due.",
    )
    def sla_notices(
        context: dg.AssetExecutionContext,
        warehouse: WarehouseResource,
        state: StateResource,
        connections: SourceConnections,
    ) -> dg.MaterializeResult:
        crm_base_url = connections.load().crm.base_url
        with warehouse.read() as reader:
            rows = reader.rows("select * from alerts.alerts_sla_notices")
            later = reader.rows("select * from alerts.alerts_sla_notice_schedule")
        store = state.open()
        metadata = _send_through_outbox(context, store, [sla_notice(row, crm_base_url) for row in rows])
        NoticeSchedule(store).replace(
            [(sla_notice(row, crm_base_url), row["notify_at"]) for row in later], crm_loaded_as_of(context.instance)
        )
        return dg.MaterializeResult(metadata={**metadata, "notices_scheduled": len(later)})

    return sla_notices


def crm_loaded_as_of(instance: dg.DagsterInstance) -> datetime:
    """When the run that last loaded the CRM started (naive UTC): whatever the CRM announced before
    that moment is in the warehouse the clocks were evaluated on."""
    event = instance.get_latest_materialization_event(CRM_CONTACTS)
    if event is None:
        return datetime(1970, 1, 1)
    record = instance.get_run_record_by_id(event.run_id)
    started = record.start_time if record and record.start_time else event.timestamp
    return datetime.fromtimestamp(started, UTC).replace(tzinfo=None)


@dg.sensor(
    name="sla_notices_due",
    minimum_interval_seconds=SLA_NOTICES_DUE_INTERVAL_S,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Sends each SLA notice the last evaluation of the clocks scheduled once its moment has come, "
    "between runs; held back while CRM changes wait to be loaded, as one may be the touch that cancels it.",
)
def sla_notices_due(context: dg.SensorEvaluationContext):
    store = open_state_store(load_settings())
    schedule = NoticeSchedule(store)
    due = schedule.due(datetime.now(UTC).replace(tzinfo=None))
    if not due:
        return dg.SkipReason(f"no scheduled notice is due; the next falls due at {schedule.next_moment()} UTC")
    journal_path = DataHome.from_env().intake_journal
    if journal_path.exists():
        journal = IntakeJournal(journal_path)
        try:
            unloaded = journal.received_after("crm", min(n.loaded_as_of for n in due).replace(tzinfo=UTC))
        finally:
            journal.close()
        if unloaded:
            return dg.SkipReason(
                f"{len(due)} notices are due, held back for the run that loads {unloaded} newer CRM changes "
                "(one may be a touch); it sends those still due"
            )
    metadata = _send_through_outbox(context, store, [scheduled.notice for scheduled in due])
    schedule.remove([scheduled.notice.key for scheduled in due])
    return dg.SkipReason(f"sent the {len(due)} notices that fell due: {metadata}")


def daily_digest_job(pool: str | None) -> dg.JobDefinition:
    @dg.op(pool=pool)
    def send_daily_digest(context: dg.OpExecutionContext, warehouse: WarehouseResource, state: StateResource) -> None:
        """Each owner's and each team's digest of the handoffs waiting for a first touch, once a day."""
        day = datetime.now(UTC).date().isoformat()
        with warehouse.read() as reader:
            rows = reader.rows("select * from alerts.alerts_daily_digest")
        metadata = _send_through_outbox(context, state.open(), [digest_notice(row, day) for row in rows])
        context.log.info(f"daily digest: {metadata}")

    @dg.job(name="daily_sla_digest", description="Sends each owner and each team the day's SLA digest, once a day.")
    def daily_sla_digest():
        send_daily_digest()

    return daily_sla_digest


def daily_digest_schedule(settings: Settings, job: dg.JobDefinition) -> dg.ScheduleDefinition:
    """At ``HANDOFF_DIGEST_CRON`` (default 08:00 on weekdays) in ``HANDOFF_TIMEZONE``."""
    return dg.ScheduleDefinition(
        name="daily_sla_digest_schedule",
        job=job,
        cron_schedule=settings.digest_cron,
        execution_timezone=settings.timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING,
    )


def failed_blocking_checks(instance: dg.DagsterInstance, run_id: str) -> dict[str, str]:
    """Each blocking check that failed in the run, with what it says failed (expectation, count,
    sample keys, Data Docs page)."""
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION).records
    evaluations = [
        cast(dg.AssetCheckEvaluation, record.event_log_entry.get_dagster_event().event_specific_data)
        for record in records
    ]
    return {
        f"{e.asset_key.to_user_string()}:{e.check_name}": e.description or ""
        for e in sorted(evaluations, key=lambda e: (e.asset_key.to_user_string(), e.check_name))
        if not e.passed and e.severity == dg.AssetCheckSeverity.ERROR
    }


def notify_operators(context: dg.RunStatusSensorContext, message: str) -> None:
    run = context.dagster_run
    checks = failed_blocking_checks(context.instance, run.run_id)
    base_url = load_settings().dagster_url.rstrip("/")
    notice = run_failure_notice(run.job_name, run.run_id, message, checks, f"{base_url}/runs/{run.run_id}")
    errors = []
    for channel in configured_channels():
        try:
            channel.send(notice)
        except ChannelError as error:
            errors.append(f"{channel.name}: {error}")
    if errors:
        raise RuntimeError("operators' notice not delivered: " + "; ".join(errors))


@dg.run_failure_sensor(
    name="operator_run_failures",
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Tells operators when a run fails, naming the blocking checks that stopped it.",
)
def operator_run_failures(context: dg.RunFailureSensorContext):
    notify_operators(context, context.failure_event.message or "")


def build_alert_defs(settings: Settings) -> dg.Definitions:
    # Notices read their models and write the outbox in the operational store: on PostgreSQL they
    # never wait for a build, only for another run delivering from the same outbox.
    pool = readers_pool(settings, own="alerts")
    digest = daily_digest_job(pool)
    return dg.Definitions(
        assets=[sla_notices_asset(pool)],
        jobs=[digest],
        schedules=[daily_digest_schedule(settings, digest)],
        sensors=[operator_run_failures, sla_notices_due],
    )
