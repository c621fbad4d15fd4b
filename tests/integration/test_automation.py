"""Schedules that skip while their job is in flight, and the operators' notice when a run fails."""

import uuid
from datetime import UTC, datetime

import dagster as dg
from dagster._core.events import AssetMaterializationPlannedData

from pipeline.alerts.assets import operator_run_failures
from pipeline.automation.jobs import skip_while_in_flight, sla_clock_job


def test_a_schedule_skips_while_a_run_of_its_job_is_in_flight(monkeypatch):
    monkeypatch.setenv("HANDOFF_CRM_BASE_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("HANDOFF_CRM_ACCESS_TOKEN", "token")
    schedule = skip_while_in_flight("sla_clock_schedule", sla_clock_job, "*/5 * * * *", "UTC", "the clock")
    # The context is closed after use: open, it keeps an instance of its own as the session's
    # current definitions-state storage, which later definitions loads would find dead.
    with dg.instance_for_test() as instance, dg.build_schedule_context(instance=instance) as context:
        assert len(schedule.evaluate_tick(context).run_requests) == 1
        run = dg.DagsterRun(job_name="sla_clock", run_id=str(uuid.uuid4()), status=dg.DagsterRunStatus.STARTED)
        instance.add_run(run)
        ticked = schedule.evaluate_tick(context)
        assert ticked.run_requests == [] and run.run_id in ticked.skip_message
        instance.report_run_canceled(run)
        assert len(schedule.evaluate_tick(context).run_requests) == 1


@dg.asset
def contacts() -> None:
    pass


@dg.asset_check(asset=contacts, blocking=True)
def contacts_are_unique() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        passed=False,
        severity=dg.AssetCheckSeverity.ERROR,
        description="expect_column_values_to_be_unique(id) [critical]: 2 of 9 unexpected, e.g. id=7",
    )


@dg.asset(deps=[contacts])
def crm_feedback() -> None:
    pass


def test_operators_hear_of_a_run_a_blocking_check_stopped(webhook_receiver, monkeypatch):
    monkeypatch.setenv("HANDOFF_ALERT_WEBHOOK_URL", f"{webhook_receiver.url}/ops")
    monkeypatch.setenv("HANDOFF_DAGSTER_URL", "http://dagster.example")
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize([contacts, crm_feedback, contacts_are_unique], instance=instance, raise_on_error=False)
    assert not result.success
    [failure] = [e for e in result.all_events if e.event_type == dg.DagsterEventType.RUN_FAILURE]
    context = dg.build_run_status_sensor_context(
        sensor_name="operator_run_failures",
        dagster_event=failure,
        dagster_instance=instance,
        dagster_run=result.dagster_run,
    ).for_run_failure()
    operator_run_failures(context)
    [post] = webhook_receiver.posts
    notice = post["json"]
    assert notice["kind"] == "run_failure" and notice["key"] == f"run:{result.run_id}"
    assert notice["title"].startswith("Blocking quality check failed")
    assert notice["fields"]["Failed checks"] == "contacts:contacts_are_unique"
    # Why, where the operators look: the expectation, the count and the failing records' keys.
    assert notice["fields"]["Why contacts:contacts_are_unique"].endswith("2 of 9 unexpected, e.g. id=7")
    assert notice["link"] == f"http://dagster.example/runs/{result.run_id}"


def test_the_analytics_follow_a_changed_handoff_once_per_cadence_tick_and_never_beside_its_build(monkeypatch):
    monkeypatch.setenv("HANDOFF_ANALYTICS_MINUTES", "10")
    from pipeline.automation.analytics import FOLLOWERS
    from pipeline.definitions import defs

    graph = defs.resolve_asset_graph()
    followers = FOLLOWERS.resolve(graph)
    automated = {key for key in graph.get_all_asset_keys() if graph.get(key).automation_condition}
    assert automated == followers, "what no write-back or alert reads is tagged analytics, and nothing else"
    fct_handoffs = dg.AssetKey(["marts", "fct_handoffs"])
    reads_handoffs = (dg.AssetSelection.assets(fct_handoffs).downstream() & FOLLOWERS).resolve(graph)
    assert {dg.AssetKey(["marts", "mart_sla_performance"]), dg.AssetKey(["serving", "marts"])} <= reads_handoffs
    cursor = None

    def requested_at(hour: int, minute: int) -> set[dg.AssetKey]:
        nonlocal cursor
        moment = datetime(2026, 12, 8, hour, minute, tzinfo=UTC)
        result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor, evaluation_time=moment)
        cursor = result.cursor
        return {key for key in graph.get_all_asset_keys() if result.get_num_requested(key)}

    with dg.instance_for_test() as instance:
        for key in graph.get_all_asset_keys():
            if graph.get(key).is_materializable:
                instance.report_runless_asset_event(dg.AssetMaterialization(key))
        assert requested_at(10, 1) == set()
        instance.report_runless_asset_event(dg.AssetMaterialization(fct_handoffs))
        assert requested_at(10, 6) == set(), "before the cadence's next tick"
        run = dg.DagsterRun(job_name="crm_changes", run_id=str(uuid.uuid4()), status=dg.DagsterRunStatus.STARTED)
        instance.add_run(run)
        planned = dg.DagsterEvent(
            dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED.value,
            job_name=run.job_name,
            event_specific_data=AssetMaterializationPlannedData(fct_handoffs),
        )
        instance.report_dagster_event(planned, run.run_id)
        assert requested_at(10, 11) == set(), "a run is building fct_handoffs"
        instance.report_run_canceled(run)
        assert requested_at(10, 12) == reads_handoffs
        assert requested_at(10, 13) == set(), "one rebuild per change and tick"
