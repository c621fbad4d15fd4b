"""Runs whose process died are failed and their pool slots freed, so a crash never blocks the next run.

Dagster marks a run failed when its process says so. A process killed with SIGKILL, or on a machine
that lost power, says nothing: its run stays STARTED and keeps the ``warehouse`` pool's only slot, and
every later run waits for it forever. Dagster's run monitoring cannot tell such a run from a slow one
when its default launcher started it (that launcher cannot check a worker's health), so Handoff
checks the process itself: a run executed by a ``handoff`` command in its own process carries that
process in its tags; a run Dagster's launcher started names its process in its "Started process for
run" event. A run whose process is gone, or is now another, younger process, is dead.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import dagster as dg
from dagster._core.storage.dagster_run import FINISHED_STATUSES
from dagster._core.storage.runs.sqlite.sqlite_run_storage import SqliteRunStorage

HOST_TAG = "handoff/host"
PID_TAG = "handoff/pid"
# The runs that have (or had) a process; queued ones have none yet.
UNFINISHED = [dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]


def this_process_tags() -> dict[str, str]:
    """Tags of a run this process executes itself."""
    return {HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid())}


def _process_start_time(pid: int) -> float | None:
    """When process ``pid`` started (Unix time), or None where ``/proc`` does not say."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = next(line for line in Path("/proc/stat").read_text().splitlines() if line.startswith("btime "))
    except (OSError, StopIteration):
        return None
    # The command name in parentheses may hold spaces; the fields after it are fixed.
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] == "Z":  # killed and not yet reaped by its parent: gone all the same
        return float("inf")
    return int(boot.split()[1]) + int(fields[19]) / os.sysconf("SC_CLK_TCK")


def process_alive(pid: int, started_by: float) -> bool:
    """Whether process ``pid`` is running and started no later than ``started_by``: a number the
    kernel handed to a new process after the run's died is not the run's."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: it exists
    started = _process_start_time(pid)
    # /proc's boot time is whole seconds, so a start time read from it can be up to a second early.
    return started is None or started <= started_by + 1


def _run_process(instance: dg.DagsterInstance, record: dg.RunRecord) -> tuple[int, float] | None:
    """The process that executes the run, and a moment it must have been running by; None while the
    run has not said (a run still starting: Dagster's start timeout covers it)."""
    run = record.dagster_run
    if PID_TAG in run.tags:  # a command's own process, running before it created the run
        return int(run.tags[PID_TAG]), record.start_time or record.create_timestamp.timestamp()
    if record.start_time is None:  # the launcher's worker reports its process, then that the run started
        return None
    engine_events = instance.get_records_for_run(
        run.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT, limit=20, ascending=True
    ).records
    for engine_event in engine_events:
        event = engine_event.event_log_entry.dagster_event
        metadata = (getattr(event.event_specific_data, "metadata", None) if event else None) or {}
        if "pid" in metadata:
            return int(metadata["pid"].value), record.start_time
    return None


def _is_on_this_machine(instance: dg.DagsterInstance, run: dg.DagsterRun) -> bool:
    if HOST_TAG in run.tags:
        return run.tags[HOST_TAG] == socket.gethostname()
    # An instance kept in SQLite lives in this machine's data home, and so do its runs' processes.
    return isinstance(instance.run_storage, SqliteRunStorage)


def dead_runs(instance: dg.DagsterInstance) -> list[tuple[dg.DagsterRun, int]]:
    """Unfinished runs on this machine whose process is gone, with the process they had."""
    dead = []
    for record in instance.get_run_records(filters=dg.RunsFilter(statuses=UNFINISHED)):
        run = record.dagster_run
        if not _is_on_this_machine(instance, run):
            continue
        process = _run_process(instance, record)
        if process and not process_alive(*process):
            dead.append((run, process[0]))
    return dead


def fail_dead_runs(instance: dg.DagsterInstance) -> list[str]:
    """Fail every dead run, free its pool slots, and free slots still held by finished runs; says
    what it did, one line each."""
    done = []
    for run, pid in dead_runs(instance):
        message = f"its process {pid} is gone (killed or crashed): marked failed, its pool slots freed"
        instance.report_run_failed(run, f"Run {run.run_id} failed: {message}.")
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        done.append(f"run {run.run_id} ({run.job_name}): {message}")
    holders = {
        slot.run_id
        for pool in instance.event_log_storage.get_concurrency_keys()
        for slot in instance.event_log_storage.get_concurrency_info(pool).claimed_slots
    }
    if holders:
        for finished in instance.get_runs(
            filters=dg.RunsFilter(run_ids=list(holders), statuses=list(FINISHED_STATUSES))
        ):
            instance.event_log_storage.free_concurrency_slots_for_run(finished.run_id)
            done.append(f"run {finished.run_id} ({finished.job_name}) had finished: its pool slots freed")
    return done


def wait_for_pool(
    instance: dg.DagsterInstance, pool: str, on_waiting: Callable[[Sequence[dg.DagsterRun]], None], poll_s: float = 1.0
) -> None:
    """Return once ``pool`` has a free slot, failing dead runs meanwhile; ``on_waiting`` hears which
    live runs hold the pool each time they change. Interrupted like any sleep (Ctrl-C, SIGTERM)."""
    told: set[str] = set()
    while True:
        fail_dead_runs(instance)
        info = instance.event_log_storage.get_concurrency_info(pool)
        if info.limit is None or len(info.claimed_slots) < info.limit:
            return
        holders = {slot.run_id for slot in info.claimed_slots}
        if holders != told:
            on_waiting(instance.get_runs(filters=dg.RunsFilter(run_ids=sorted(holders))))
            told = holders
        time.sleep(poll_s)
