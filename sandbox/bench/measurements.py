"""The benchmark: one function per measurement, and the run that calls them.

Each run serves fresh copies of the company. Against the first, each system is loaded in full into
an empty warehouse, its pages are downloaded again by a tight loop, and then the company lives until
0.1 % and then 1 % of its records changed, each followed by an incremental load of every system.
Against the second, the whole asset graph runs once in full, once more with nothing changed in the
systems but what the write-back wrote, and again after each burst of changes; then Dagster's daemon
and the intake service start on it, leads handed to sales are timed from webhook to feedback, and,
left untouched, their SLA notices from the moment each falls due to its arrival in an inbox (the
latency part runs the project's models under a contract of minutes, syncs included).
Against the third, the write-back runs at the vendors' published rate limits. Every load and sync
runs in a process of its own, for its peak memory.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import IO

import httpx

from pipeline.feedback.assets import WRITEBACKS
from pipeline.settings import DataHome, load_settings
from sandbox.bench.company import BenchCompany, BenchLimits, BenchWarehouse, ServedCompany, served_company
from sandbox.bench.latency import (
    HANDOVER_GAP_S,
    company_sending_webhooks,
    deployment,
    hand_over_leads,
    last_notice_due,
    latencies_s,
    lateness_s,
    notice_contract,
    percentile,
    wait_for_feedback,
    wait_for_notices,
    wait_until_quiet,
)
from sandbox.bench.report import CHANGE_SHARES, MEASURED, NOT_MEASURED_YET, NOT_RUN, SYSTEMS, BenchReport, percent
from sandbox.bench.worker import Measured, MeasuredTaskFailed, run_measured
from sandbox.bench.writeback import FEEDBACK_FILE, WRITEBACK_OF_SYSTEM, live_record_ids
from sandbox.faults import Limits
from sandbox.inbox import Inbox
from sandbox.live_deployment import prepare_project_copy

# The benchmark's parts: loads (full, download-only, incremental), syncs, the write-back, and the
# latency of a running deployment.
PARTS = frozenset({"ingest", "sync", "writeback", "latency"})
FEEDBACK_TIMEOUT_S = 600  # after the last handover, for the feedback of every one to arrive
NOTICE_TIMEOUT_S = 300  # after the last notice fell due, for it to arrive
# The vendors' published limits, for the time a load's requests take at their rate.
VENDOR_BUDGETS = {"crm": (Limits().crm_requests_per_10s, 10), "marketing": (Limits().marketing_requests_per_20s, 20)}


@dataclass
class Bench:
    home: DataHome
    company: BenchCompany
    limits: BenchLimits
    report: BenchReport
    warehouse: BenchWarehouse
    output: IO  # where measured processes and the sandbox write
    status: Callable[[str], None]
    parts: frozenset[str] = PARTS  # which of the benchmark's parts to run
    latency_events: int = 50  # leads handed to sales per latency measurement
    notice_minutes: int = 5  # the first-touch allowance of the latency part's handoffs

    def served(
        self, purpose: str, limits: BenchLimits | None = None, dbt_project: Path | None = None
    ) -> AbstractContextManager[ServedCompany]:
        return served_company(
            self.company,
            self.home.root / "bench" / "runs" / purpose,
            limits or self.limits,
            self.warehouse,
            self.output,
            dbt_project,
        )

    def notice_project(self) -> Path:
        """The dbt project under the contract the latency part's notices fall due by; beside the runs,
        so its build output stays warm from one benchmark to the next."""
        return prepare_project_copy(
            self.home.root / "bench" / "dbt_project",
            notice_contract(self.notice_minutes),
            "`handoff bench`'s latency part",
        )

    def measured(self, served: ServedCompany, task: str, system: str = "all") -> Measured:
        return run_measured(task, system, served.environment(), self.output)

    @contextlib.contextmanager
    def failing_figures(self, run: int, prefixes: tuple[str, ...]) -> Iterator[None]:
        """A measured process that fails is recorded against the figures under ``prefixes``, and the
        benchmark carries on with the next measurements: a long benchmark keeps what it got."""
        try:
            yield
        except MeasuredTaskFailed as failure:
            self.report.record_failure(run, prefixes, str(failure))
        except httpx.HTTPError as failure:
            self.report.record_failure(run, prefixes, f"the sandbox stopped answering: {failure}")


def run_bench(bench: Bench, compared: dict | None, compared_scale: str | None) -> BenchReport:
    for run in range(1, bench.report.runs + 1):
        bench.status(f"run {run} of {bench.report.runs}: serving the company")
        if "ingest" in bench.parts:
            with (
                bench.failing_figures(run, tuple(f"{system}." for system in SYSTEMS) + ("changes.", "all.")),
                bench.served("ingest") as served,
            ):
                full_loads = measure_full_loads(bench, served)
                measure_download_only(bench, served, full_loads)
                measure_incremental_loads(bench, served, full_loads)
        if bench.parts & {"sync", "latency"}:
            # The deployment whose latency is measured starts from the warehouse the syncs left, and
            # so from the contract and the owners' calendars they loaded.
            dbt_project = bench.notice_project() if "latency" in bench.parts else None
            with (
                bench.failing_figures(run, ("sync.", "latency.webhook_to_feedback.", "latency.sla_notice_lateness.")),
                bench.served("sync", dbt_project=dbt_project) as served,
            ):
                if "sync" in bench.parts:
                    measure_sync_cycles(bench, served, measure_full_sync(bench, served))
                else:
                    bench.status("full sync of the company the deployment starts from")
                    bench.measured(served, "sync")
                if "latency" in bench.parts:
                    measure_latency(bench, served)
        if "writeback" in bench.parts:
            # A write-back's ceiling is the vendor's rate limit, so it is measured at the published one.
            with bench.failing_figures(run, ("writeback.",)), bench.served("writeback", BenchLimits(1)) as served:
                measure_writeback_throughput(bench, served)
    measure_growth(bench.report, compared, compared_scale)
    leave_out_webhook_to_alert_latency(bench.report)
    for key, figure in bench.report.figures.items():
        if not figure.values and figure.status == MEASURED:
            bench.report.leave_out(key, NOT_RUN, f"not asked for: --only {','.join(sorted(bench.parts))}")
    return bench.report


def _requests_sent(served: ServedCompany, system: str, action: Callable[[], Measured]) -> tuple[Measured, int]:
    before = served.requests_served().get(system, 0)
    measured = action()
    return measured, served.requests_served().get(system, 0) - before


def measure_full_loads(bench: Bench, served: ServedCompany) -> dict[str, Measured]:
    """Each system loaded into an empty warehouse: wall time, peak memory, rows, rows per second,
    and the requests it took."""
    loads = {}
    for system, name in SYSTEMS.items():
        bench.status(f"full load of the {name}")
        load, requests = _requests_sent(served, system, lambda system=system: bench.measured(served, "load", system))
        report = bench.report
        report.add(f"{system}.full_load.seconds", load.seconds)
        report.add(f"{system}.full_load.peak_rss_mb", load.peak_rss_mb)
        report.add(f"{system}.full_load.rows", load.outcome["rows"])
        report.add(f"{system}.full_load.rows_per_second", load.outcome["rows"] / load.seconds)
        for step, seconds in load.outcome["step_seconds"].items():
            report.add(f"{system}.full_load.{step}_seconds", seconds)
        if system in VENDOR_BUDGETS:
            budget, window_s = VENDOR_BUDGETS[system]
            report.add(f"{system}.full_load.requests", requests)
            report.add(f"{system}.full_load.vendor_limit_seconds", requests / budget * window_s)
        loads[system] = load
    return loads


def measure_download_only(bench: Bench, served: ServedCompany, full_loads: dict[str, Measured]) -> None:
    """The same pages fetched by a tight loop, after the load (so the sandbox's caches favour the
    download, not the load), and the load's time divided by it."""
    for system, name in SYSTEMS.items():
        bench.status(f"download-only of the {name}")
        download, requests = _requests_sent(
            served, system, lambda system=system: bench.measured(served, "download", system)
        )
        bench.report.add(f"{system}.download_only.seconds", download.seconds)
        bench.report.add(f"{system}.download_only.ratio", full_loads[system].seconds / download.seconds)
        if system in VENDOR_BUDGETS:
            bench.report.add(f"{system}.download_only.requests", requests)


def measure_incremental_loads(bench: Bench, served: ServedCompany, full_loads: dict[str, Measured]) -> None:
    """After 0.1 % and then 1 % of the records changed, every system's incremental load, as a share
    of its full load."""
    for key, share in CHANGE_SHARES.items():
        bench.status(f"changing {percent(share)} of the records")
        bench.report.add(f"changes.{key}.records", served.change_records(share))
        seconds = {}
        for system, name in SYSTEMS.items():
            bench.status(f"incremental load of the {name} after {percent(share)} changed")
            seconds[system] = bench.measured(served, "load", system).seconds
            bench.report.add(f"{system}.incremental.{key}.seconds", seconds[system])
            bench.report.add(f"{system}.incremental.{key}.share", 100 * seconds[system] / full_loads[system].seconds)
        bench.report.add(
            f"all.incremental.{key}.share",
            100 * sum(seconds.values()) / sum(load.seconds for load in full_loads.values()),
        )


def measure_full_sync(bench: Bench, served: ServedCompany) -> Measured:
    """The whole asset graph into an empty warehouse: ingest, dbt build, checks and write-back."""
    bench.status("full sync (ingest, dbt build, checks, write-back)")
    sync = bench.measured(served, "sync")
    bench.report.add("sync.full.seconds", sync.seconds)
    bench.report.add("sync.full.peak_rss_mb", sync.peak_rss_mb)
    bench.report.add("sync.full.checks_share", 100 * sync.outcome["check_seconds"] / sync.seconds)
    return sync


def measure_sync_cycles(bench: Bench, served: ServedCompany, full_sync: Measured) -> None:
    """The syncs that follow: first with nothing changed but what the full sync wrote back (which
    the CRM now reports as modified), then after 0.1 % and 1 % of the records changed; each as a
    share of the full sync."""
    bench.status("sync with nothing changed")
    unchanged = bench.measured(served, "sync")
    bench.report.add("sync.unchanged.share", 100 * unchanged.seconds / full_sync.seconds)
    for key, share in CHANGE_SHARES.items():
        bench.status(f"changing {percent(share)} of the records")
        served.change_records(share)
        bench.status(f"sync after {percent(share)} changed")
        cycle = bench.measured(served, "sync")
        bench.report.add(f"sync.incremental.{key}.seconds", cycle.seconds)
        bench.report.add(f"sync.incremental.{key}.share", 100 * cycle.seconds / full_sync.seconds)
        bench.report.add(f"sync.incremental.{key}.checks_share", 100 * cycle.outcome["check_seconds"] / cycle.seconds)


def measure_growth(report: BenchReport, compared: dict | None, compared_scale: str | None) -> None:
    """How time grows with data against another scale's report: the time ratio per 10× the rows,
    (t / t₀) ^ (1 / log₁₀(rows / rows₀)). Under 10× means less than linear."""
    keys = {
        f"growth.{system}.full_load": (f"{system}.full_load.seconds", [f"{system}.full_load.rows"])
        for system in SYSTEMS
    }
    keys["growth.sync.full"] = ("sync.full.seconds", [f"{system}.full_load.rows" for system in SYSTEMS])
    if compared is None:
        reason = (
            f"no report of the {compared_scale} company yet: run `handoff bench --scale {compared_scale}` first"
            if compared_scale
            else "run with --compare SCALE after benchmarking that scale"
        )
        for key in keys:
            report.leave_out(key, NOT_RUN, reason)
        return
    if compared["limits"]["factor"] != report.limits["factor"]:
        for key in keys:
            report.leave_out(key, NOT_RUN, f"the {compared_scale} report ran under other rate limits")
        return
    theirs = compared["figures"]
    for key, (seconds, rows) in keys.items():
        if any(
            value is None
            for value in (
                report.figures[seconds].value,
                theirs[seconds]["value"],
                *(report.figures[r].value for r in rows),
                *(theirs[r]["value"] for r in rows),
            )
        ):
            report.leave_out(key, NOT_RUN, f"not measured in this report or in the {compared_scale} one")
            continue
        data_ratio = sum(report.figures[r].value for r in rows) / sum(theirs[r]["value"] for r in rows)
        if data_ratio <= 1:
            report.leave_out(key, NOT_RUN, f"the {compared_scale} company is not smaller")
            continue
        time_ratio = report.figures[seconds].value / theirs[seconds]["value"]
        report.add(key, time_ratio ** (1 / math.log10(data_ratio)))


def measure_latency(bench: Bench, served: ServedCompany) -> None:
    """Leads handed to sales in the live sandbox while the daemon and intake run on the synced
    company (see :mod:`sandbox.bench.latency`): from each webhook to its feedback on the CRM record;
    then, as nobody touches them, from the moment each of their SLA notices falls due to its arrival."""
    inbox = Inbox().start()
    try:
        with (
            deployment(served, inbox.environment()) as intake_url,
            company_sending_webhooks(served, intake_url) as live,
        ):
            bench.status("starting the daemon and intake; waiting for the sensors' first runs to finish")
            wait_until_quiet(
                served, settle_s=2 * load_settings().sensor_interval_seconds + 5, timeout_s=FEEDBACK_TIMEOUT_S * 3
            )
            bench.status(f"handing {bench.latency_events} leads to sales, one every {HANDOVER_GAP_S:g} s")
            handovers = hand_over_leads(live, bench.latency_events, HANDOVER_GAP_S)
            arrived = wait_for_feedback(
                served,
                handovers,
                FEEDBACK_TIMEOUT_S,
                lambda progress: bench.status(f"waiting for the write-back: {progress}"),
            )
            record_webhook_to_feedback_latency(bench, served, latencies_s(handovers, arrived), len(handovers))
            received = wait_for_notices(
                inbox,
                handovers,
                last_notice_due(handovers, bench.notice_minutes) + timedelta(seconds=NOTICE_TIMEOUT_S),
                lambda progress: bench.status(f"waiting for the SLA notices to fall due: {progress}"),
            )
    finally:
        inbox.stop()
    escalated = sum(delivery.kind == "escalated" for delivery in received.values())
    if escalated < len(handovers):
        raise MeasuredTaskFailed(
            f"{len(handovers) - escalated} of {len(handovers)} untouched handoffs had no escalation notice "
            f"{NOTICE_TIMEOUT_S} s after it fell due; the daemon's sensor ticks are in {served.home.logs}"
        )
    moments = bench.measured(served, "notice_moments").outcome["moments"]
    unknown = sorted(received.keys() - moments.keys())
    if unknown:
        raise MeasuredTaskFailed(f"the warehouse has no moment for the notices {', '.join(unknown)}")
    lateness = lateness_s(received, moments)
    bench.report.add("latency.sla_notice_lateness.events", len(lateness))
    bench.report.add("latency.sla_notice_lateness.p50_seconds", percentile(lateness, 0.50))
    bench.report.add("latency.sla_notice_lateness.p95_seconds", percentile(lateness, 0.95))
    bench.report.add("latency.sla_notice_lateness.max_seconds", max(lateness))


def record_webhook_to_feedback_latency(
    bench: Bench, served: ServedCompany, latencies: list[float], handovers: int
) -> None:
    if len(latencies) < handovers:
        raise MeasuredTaskFailed(
            f"{handovers - len(latencies)} of {handovers} handed-over contacts "
            f"had no feedback {FEEDBACK_TIMEOUT_S} s after the last handover; the daemon's "
            f"runs are in {served.home.logs}"
        )
    bench.report.add("latency.webhook_to_feedback.events", len(latencies))
    bench.report.add("latency.webhook_to_feedback.p50_seconds", percentile(latencies, 0.50))
    bench.report.add("latency.webhook_to_feedback.p95_seconds", percentile(latencies, 0.95))
    bench.report.add("latency.webhook_to_feedback.max_seconds", max(latencies))


def leave_out_webhook_to_alert_latency(report: BenchReport) -> None:
    reason = (
        "an SLA notice follows its clock, not a webhook: it falls due when the clock reaches its at-risk "
        "share, its due time or its escalation, and latency.sla_notice_lateness times it from that moment"
    )
    for key in ("latency.webhook_to_alert.p50_seconds", "latency.webhook_to_alert.p95_seconds"):
        report.leave_out(key, NOT_MEASURED_YET, reason)


def measure_writeback_throughput(bench: Bench, served: ServedCompany) -> None:
    """Every live contact and lead written back in passes (see the worker's ``writeback``): records
    per second against the ceiling the rate limit sets, a full batch per call at the budget's pace."""
    for system, record_ids in live_record_ids(bench.company.dataset).items():
        bench.status(f"write-back to the {SYSTEMS[system]}")
        (served.home.root / FEEDBACK_FILE.format(system=system)).write_text(json.dumps(record_ids))
        written = bench.measured(served, "writeback", system)
        budget, window_s = VENDOR_BUDGETS[system]
        batch_size = WRITEBACKS[WRITEBACK_OF_SYSTEM[system]].target.batch_size
        rate, ceiling = written.outcome["records"] / written.seconds, batch_size * budget / window_s
        bench.report.add(f"writeback.{system}.records", written.outcome["records"])
        bench.report.add(f"writeback.{system}.records_per_second", rate)
        bench.report.add(f"writeback.{system}.ceiling_records_per_second", ceiling)
        bench.report.add(f"writeback.{system}.share_of_ceiling", 100 * rate / ceiling)
