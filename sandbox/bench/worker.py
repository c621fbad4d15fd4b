"""One measured task in a process of its own, so that its peak memory is its own.

``python -m sandbox.bench.worker TASK SYSTEM RESULT_FILE`` runs the task against the data home and
connections in its environment, timing only the work (the code is loaded first, as in a running
code location), and writes the time and what the task did to RESULT_FILE as JSON.
:func:`run_measured` is the parent's side: it starts the process and takes the peak memory from
the kernel once it ends.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

from pipeline.settings import PROJECT_DIR, DataHome, apply_environment_defaults, load_connections, load_settings

# ru_maxrss is in kibibytes on Linux and in bytes on macOS.
MAXRSS_BYTES = 1 if sys.platform == "darwin" else 1024
EXIT_POLL_S = 0.2


class MeasuredTaskFailed(RuntimeError):
    """A measured process ended in an error: the figure it was for cannot be given."""


@dataclass(frozen=True)
class Measured:
    seconds: float
    peak_rss_mb: float  # of the largest process in the task's tree (dbt runs in a process of its own)
    outcome: dict


def run_measured(task: str, system: str, environment: dict[str, str], output: IO) -> Measured:
    with tempfile.TemporaryDirectory() as scratch:
        result_file = Path(scratch) / "result.json"
        output.flush()
        process = subprocess.Popen(
            [sys.executable, "-m", "sandbox.bench.worker", task, system, str(result_file)],
            cwd=PROJECT_DIR,
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        status, usage = _wait_for_exit(process)
        exit_code = os.waitstatus_to_exitcode(status)
        if exit_code:
            raise MeasuredTaskFailed(
                f"{task} of {system} failed with exit status {exit_code}; its output is in {output.name}"
            )
        result = json.loads(result_file.read_text())
    return Measured(result["seconds"], usage.ru_maxrss * MAXRSS_BYTES / 2**20, result["outcome"])


def _wait_for_exit(process: subprocess.Popen) -> tuple[int, resource.struct_rusage]:
    """The exit status and resource usage of this child (and its children) alone, where wait() would
    give neither. Polled, so that Ctrl-C reaches this process, which then ends the child too."""
    try:
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                process.returncode = os.waitstatus_to_exitcode(status)
                return status, usage
            time.sleep(EXIT_POLL_S)
    except BaseException:
        process.kill()
        process.wait()
        raise


LOAD_STEPS = ("extract", "normalize", "load")  # dlt's, as its trace names them


def load(system: str) -> tuple[float, dict]:
    """One load of the system into the warehouse: a full load the first time, incremental after."""
    from pipeline.ingest.assets import INGESTED_SYSTEMS, system_pipeline

    home = DataHome.from_env().prepare()
    pipeline = system_pipeline(system, home)
    started = time.monotonic()
    pipeline.run(INGESTED_SYSTEMS[system].connected(load_connections, home))
    seconds = time.monotonic() - started
    trace = pipeline.last_trace
    counts = trace.last_normalize_info.row_counts if trace.last_normalize_info else {}
    return seconds, {
        "rows": sum(rows for table, rows in counts.items() if not table.startswith("_dlt_")),
        "step_seconds": {
            step.step: (step.finished_at - step.started_at).total_seconds()
            for step in trace.steps
            if step.step in LOAD_STEPS
        },
    }


def download(system: str) -> tuple[float, dict]:
    from sandbox.bench.download import DOWNLOADS

    home = DataHome.from_env().prepare()
    started = time.monotonic()
    downloaded = DOWNLOADS[system](home)
    return time.monotonic() - started, asdict(downloaded)


def sync(_: str) -> tuple[float, dict]:
    """One run of the whole asset graph through the Dagster instance, as ``handoff sync`` runs it."""
    from pipeline.definitions import defs  # loads dbt's manifest too, before the clock starts
    from pipeline.sync import run_full_sync
    from pipeline.warehouse import Warehouse

    DataHome.from_env().prepare()
    started = time.monotonic()
    summary = run_full_sync(defs, Warehouse.of(load_settings()))
    seconds = time.monotonic() - started
    if not summary.success or summary.checks_failed:
        raise RuntimeError(f"the sync did not succeed: {summary.failure or summary.checks_failed}")
    return seconds, {
        "rows_loaded": sum(summary.rows_loaded.values()),
        "check_seconds": summary.check_step_seconds,
        "records_written_back": sum(outcome.get("records_sent", 0) for outcome in summary.written_back.values()),
    }


WRITEBACK_PASSES = 7  # the first, untimed, spends the burst a fresh rate-limit window allows


def writeback(system: str) -> tuple[float, dict]:
    """Write-back of the feedback rows the benchmark left in the data home, in passes that each
    change one field of every record; the passes after the first are timed, so the figure is the
    steady rate a long write-back keeps, not the burst a fresh rate-limit window allows."""
    from pipeline.feedback.assets import WRITEBACKS, WritebackConfig
    from pipeline.feedback.ledger import Ledger
    from pipeline.feedback.writeback import write_back
    from pipeline.state import open_state_store
    from sandbox.bench.writeback import FEEDBACK_FILE, WRITEBACK_OF_SYSTEM, passes_of_feedback

    home = DataHome.from_env().prepare()
    writeback = WRITEBACKS[WRITEBACK_OF_SYSTEM[system]]
    target = writeback.connect(load_connections(), WritebackConfig())
    passes = passes_of_feedback(
        json.loads((home.root / FEEDBACK_FILE.format(system=system)).read_text()), system, WRITEBACK_PASSES
    )
    seconds, records, batches = 0.0, 0, 0
    ledger = Ledger(open_state_store(load_settings()), target.system, target.object_type)
    for number, feedback in enumerate(passes):
        started = time.monotonic()
        summary, _ = write_back(target, ledger, feedback)
        if summary.records_refused:
            raise RuntimeError(f"{summary.records_refused} records were refused in pass {number + 1}")
        if number:
            seconds += time.monotonic() - started
            records += summary.records_sent
            batches += summary.batches
    return seconds, {"records": records, "batches": batches}


def notice_moments(_: str) -> tuple[float, dict]:
    """When each waiting handoff's SLA notices fell due, by notice key, in naive UTC: the moments of
    the last evaluation of the clocks, read once the deployment has stopped writing the warehouse."""
    from pipeline.warehouse import Warehouse
    from sandbox.bench.latency import NOTICE_MOMENTS

    started = time.monotonic()
    with Warehouse.of(load_settings()).read() as reader:
        rows = reader.rows("select * from intermediate.int_alerts__waiting_handoffs")
    moments = {
        f"{row['handoff_id']}:{kind}": row[column].isoformat()
        for row in rows
        for kind, column in NOTICE_MOMENTS.items()
    }
    return time.monotonic() - started, {"moments": moments}


TASKS: dict[str, Callable[[str], tuple[float, dict]]] = {
    "load": load,
    "download": download,
    "sync": sync,
    "writeback": writeback,
    "notice_moments": notice_moments,
}

if __name__ == "__main__":
    apply_environment_defaults()  # measured as the commands run
    task, system, result_path = sys.argv[1:]
    seconds, outcome = TASKS[task](system)
    Path(result_path).write_text(json.dumps({"seconds": seconds, "outcome": outcome}))
