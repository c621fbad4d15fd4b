"""Run the whole asset graph once through the Dagster instance and summarize what it did."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import cast

import dagster as dg
from dagster._utils.error import SerializableErrorInfo

from pipeline.recovery import fail_dead_runs, this_process_tags, wait_for_pool
from pipeline.settings import WAREHOUSE_POOL
from pipeline.warehouse import SUMMARISED_SCHEMAS, Warehouse

WRITEBACK_KEYS = {
    dg.AssetKey(["writeback", "crm_contacts"]): "CRM contacts",
    dg.AssetKey(["writeback", "marketing_leads"]): "marketing leads",
}
DEAD_RUN_LOOK_S = 5
QUIET_CONSOLE = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


@dataclass
class SyncSummary:
    run_id: str
    success: bool
    rows_loaded: dict[str, int] = field(default_factory=dict)
    table_rows: dict[str, int] = field(default_factory=dict)
    warehouse: str = ""
    checks_passed: int = 0
    checks_failed: list[str] = field(default_factory=list)
    checks_warned: list[str] = field(default_factory=list)
    check_descriptions: dict[str, str] = field(default_factory=dict)  # of the checks that failed or warned
    records_flagged: int = 0  # records a check flagged below a wave: set aside, nothing stopped
    written_back: dict[str, dict] = field(default_factory=dict)
    failure: str | None = None
    check_step_seconds: float = 0.0  # in the steps that only evaluate checks (the GX suites)


def count_assets(defs: dg.Definitions) -> int:
    return len(defs.get_repository_def().asset_graph.get_all_asset_keys())


def run_full_sync(
    defs: dg.Definitions,
    warehouse: Warehouse,
    on_progress: Callable[[int], None] | None = None,
    on_waiting: Callable[[Sequence[dg.DagsterRun]], None] = lambda _: None,
) -> SyncSummary:
    """Materialize every asset once (recorded in the instance, so the UI shows the run)."""
    return run_job(defs, warehouse, "full_sync", {}, on_progress, on_waiting)


def run_job(
    defs: dg.Definitions,
    warehouse: Warehouse,
    job: str,
    run_config: dict,
    on_progress: Callable[[int], None] | None = None,
    on_waiting: Callable[[Sequence[dg.DagsterRun]], None] = lambda _: None,
) -> SyncSummary:
    """Run one of the code location's jobs in this process, recorded in the instance, once no other
    run writes the warehouse (runs whose process died are failed first; ``on_waiting`` hears which
    live runs it waits for)."""
    instance = dg.DagsterInstance.get()
    wait_for_pool(instance, WAREHOUSE_POOL, on_waiting)
    run_id = str(uuid.uuid4())
    done = threading.Event()
    # A run that dies while this one waits for its slot inside the run would hold it forever.
    watchers = [threading.Thread(target=_fail_dead_runs_until, args=(instance, done), daemon=True)]
    if on_progress:
        watchers.append(
            threading.Thread(target=_watch_materializations, args=(instance, run_id, on_progress, done), daemon=True)
        )
    for watcher in watchers:
        watcher.start()
    try:
        result = defs.resolve_job_def(job).execute_in_process(
            instance=instance,
            run_id=run_id,
            run_config={**QUIET_CONSOLE, **run_config},
            raise_on_error=False,
            tags=this_process_tags(),
        )
    finally:
        done.set()
        for watcher in watchers:
            watcher.join()
    return summarize(result, warehouse)


def _fail_dead_runs_until(instance: dg.DagsterInstance, done: threading.Event) -> None:
    while not done.wait(DEAD_RUN_LOOK_S):
        fail_dead_runs(instance)


def _watch_materializations(
    instance: dg.DagsterInstance, run_id: str, on_progress: Callable[[int], None], done: threading.Event
) -> None:
    while not done.wait(0.5):
        on_progress(len(instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)))


def summarize(result: dg.ExecuteInProcessResult, warehouse: Warehouse) -> SyncSummary:
    summary = SyncSummary(run_id=result.run_id, success=result.success, warehouse=warehouse.describe())
    for event in result.get_asset_materialization_events():
        key, metadata = event.asset_key, event.materialization.metadata
        if key is None:
            continue
        if key in WRITEBACK_KEYS:
            summary.written_back[WRITEBACK_KEYS[key]] = {name: value.value for name, value in metadata.items()}
        elif key.path[0].startswith("raw_") and "rows_loaded" in metadata:
            summary.rows_loaded[".".join(key.path)] = int(cast(int, metadata["rows_loaded"].value))
    for evaluation in result.get_asset_check_evaluations():
        name = f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name}"
        flagged = evaluation.metadata.get("records_flagged")
        summary.records_flagged += int(cast(int, flagged.value)) if flagged is not None else 0
        if evaluation.passed:
            summary.checks_passed += 1
            continue
        if evaluation.severity == dg.AssetCheckSeverity.WARN:
            summary.checks_warned.append(name)
        else:
            summary.checks_failed.append(name)
        summary.check_descriptions[name] = evaluation.description or ""
    summary.check_step_seconds = _check_step_seconds(result)
    failures = [event for event in result.all_events if event.event_type == dg.DagsterEventType.STEP_FAILURE]
    if failures:
        summary.failure = "; ".join(
            f"{event.step_key}: {_message(event.step_failure_data.error)}" for event in failures
        )
    summary.table_rows = warehouse_row_counts(warehouse)
    return summary


def _message(error: SerializableErrorInfo | None) -> str:
    return error.message.strip() if error else "failed"


def _check_step_seconds(result: dg.ExecuteInProcessResult) -> float:
    """Time spent in steps that evaluate checks and materialize nothing: the quality gate's own cost
    (dbt's tests run inside dbt's build step and are not counted)."""
    checking = {
        event.step_key for event in result.all_events if event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION
    }
    materializing = {event.step_key for event in result.get_asset_materialization_events()}
    return sum(
        event.step_success_data.duration_ms / 1000
        for event in result.all_events
        if event.event_type == dg.DagsterEventType.STEP_SUCCESS and event.step_key in checking - materializing
    )


def warehouse_row_counts(warehouse: Warehouse) -> dict[str, int]:
    """Rows per table in the raw and mart schemas."""
    if not warehouse.exists:
        return {}
    with warehouse.read() as reader:
        return {
            f"{schema}.{table}": reader.scalar(f"select count(*) from {reader.table(schema, table)}")
            for schema, table in reader.tables(SUMMARISED_SCHEMAS)
        }
