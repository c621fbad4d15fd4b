"""Schedules that skip while their job is in flight, and the operators' notice when a run fails."""

import uuid

import dagster as dg

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
