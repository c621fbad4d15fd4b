"""The benchmark's figures: what each means, its target, its value in every run, and the report they
make, as JSON in the data home and as a table on the terminal."""

from __future__ import annotations

import json
import os
import platform
import statistics
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from rich.table import Table

from pipeline.alerts.assets import SLA_NOTICES_DUE_INTERVAL_S
from pipeline.settings import load_settings
from sandbox.bench.latency import HANDOVER_GAP_S

SYSTEMS = {"crm": "CRM", "marketing": "marketing automation", "web": "website events"}
# Changed shares of the company's records, by the key their figures carry.
CHANGE_SHARES = {"0.1pct": 0.001, "1pct": 0.01}
MEASURED, NOT_MEASURED_YET, NOT_RUN, FAILED = "measured", "not measured yet", "not run", "failed"
PEAK_MEMORY_TARGET_MB = 1536


@dataclass
class Figure:
    label: str
    unit: str  # s, MB, rows, rows/s, requests, records, records/s, events, ×, %
    section: str
    at_most: float | None = None  # the target, when the product has one
    at_least: float | None = None
    values: list[float] = field(default_factory=list)  # one per run
    status: str = MEASURED
    reason: str | None = None

    @property
    def value(self) -> float | None:
        return statistics.median(self.values) if self.values else None

    @property
    def meets_target(self) -> bool | None:
        if self.value is None or (self.at_most is None and self.at_least is None):
            return None
        return (self.at_most is None or self.value <= self.at_most) and (
            self.at_least is None or self.value >= self.at_least
        )

    def target_text(self) -> str:
        if self.at_most is not None:
            return f"≤ {format_value(self.at_most, self.unit)}"
        return f"≥ {format_value(self.at_least, self.unit)}" if self.at_least is not None else ""

    def as_json(self) -> dict:
        return {
            **asdict(self),
            "value": self.value,
            "target": self.target_text() or None,
            "meets_target": self.meets_target,
        }


def format_value(value: float, unit: str) -> str:
    if unit in ("rows", "requests", "records", "events"):
        return f"{value:,.0f} {unit}"
    if unit in ("rows/s", "records/s"):
        return f"{value:,.0f} {unit}"
    if unit == "×":
        return f"{value:.2f}×"
    if unit == "%":
        return f"{value:.1f} %"
    if unit == "MB":
        return f"{value:,.0f} MB"
    return f"{value:,.1f} {unit}" if value >= 10 else f"{value:.2f} {unit}"


def percent(share: float) -> str:
    return f"{share * 100:g} %"


def figure_catalog() -> dict[str, Figure]:
    """Every figure the benchmark reports, in the order it shows them."""
    figures: dict[str, Figure] = {}
    for system, name in SYSTEMS.items():
        section = f"Full load: {name}"
        figures.update(
            {
                f"{system}.full_load.seconds": Figure("wall time", "s", section),
                f"{system}.full_load.peak_rss_mb": Figure(
                    "peak memory (RSS)", "MB", section, at_most=PEAK_MEMORY_TARGET_MB
                ),
                f"{system}.full_load.rows": Figure("rows loaded", "rows", section),
                f"{system}.full_load.rows_per_second": Figure("rows per second", "rows/s", section),
                f"{system}.full_load.extract_seconds": Figure(
                    "of the wall time: dlt's extract (reading, typing)", "s", section
                ),
                f"{system}.full_load.normalize_seconds": Figure(
                    "of the wall time: dlt's normalize (Parquet files)", "s", section
                ),
                f"{system}.full_load.load_seconds": Figure(
                    "of the wall time: dlt's load (DuckDB's merges)", "s", section
                ),
                f"{system}.download_only.seconds": Figure(
                    "download-only wall time" if system != "web" else "read-only wall time (events arrive as files)",
                    "s",
                    section,
                ),
                f"{system}.download_only.ratio": Figure("load ÷ download-only", "×", section, at_most=1.5),
            }
        )
        if system != "web":
            figures.update(
                {
                    f"{system}.full_load.requests": Figure("requests, load", "requests", section),
                    f"{system}.download_only.requests": Figure("requests, download-only", "requests", section),
                    f"{system}.full_load.vendor_limit_seconds": Figure(
                        "time those requests take at the vendor's published rate limit", "s", section
                    ),
                }
            )
    for key, share in CHANGE_SHARES.items():
        section = f"Incremental load after {percent(share)} of records changed"
        figures[f"changes.{key}.records"] = Figure("records changed", "records", section)
        for system, name in SYSTEMS.items():
            figures[f"{system}.incremental.{key}.seconds"] = Figure(f"{name}: wall time", "s", section)
            figures[f"{system}.incremental.{key}.share"] = Figure(f"{name}: share of its full load", "%", section)
        figures[f"all.incremental.{key}.share"] = Figure(
            "all systems: share of their full loads", "%", section, at_most=10 if key == "1pct" else None
        )
    section = "End to end: ingest, dbt build, checks, write-back"
    figures.update(
        {
            "sync.full.seconds": Figure("full sync wall time", "s", section),
            "sync.full.peak_rss_mb": Figure("full sync peak memory (RSS of the largest process)", "MB", section),
            "sync.full.checks_share": Figure(
                "full sync: share of its time in the quality gate's check steps", "%", section
            ),
            "sync.unchanged.share": Figure(
                "next sync, only the write-back changed: share of the full sync", "%", section
            ),
        }
    )
    for key, share in CHANGE_SHARES.items():
        figures[f"sync.incremental.{key}.seconds"] = Figure(
            f"sync after {percent(share)} changed: wall time", "s", section
        )
        figures[f"sync.incremental.{key}.share"] = Figure(
            f"sync after {percent(share)} changed: share of the full sync",
            "%",
            section,
            at_most=10 if key == "1pct" else None,
        )
        figures[f"sync.incremental.{key}.checks_share"] = Figure(
            f"sync after {percent(share)} changed: share of its time in the quality gate's check steps", "%", section
        )
    section = "Growth: time ratio per 10× data"
    for system, name in SYSTEMS.items():
        figures[f"growth.{system}.full_load"] = Figure(f"{name} full load", "×", section, at_most=10)
    figures["growth.sync.full"] = Figure("full sync", "×", section, at_most=10)
    section = "Write-back at the vendors' published rate limits (passes after the first)"
    for system in ("crm", "marketing"):
        name = SYSTEMS[system]
        figures.update(
            {
                f"writeback.{system}.records": Figure(f"{name}: records written", "records", section),
                f"writeback.{system}.records_per_second": Figure(f"{name}: records per second", "records/s", section),
                f"writeback.{system}.ceiling_records_per_second": Figure(
                    f"{name}: the rate limit's ceiling (full batches at the budget's pace)", "records/s", section
                ),
                f"writeback.{system}.share_of_ceiling": Figure(
                    f"{name}: share of the ceiling", "%", section, at_least=90
                ),
            }
        )
    section = (
        f"Latency: a lead handed to sales every {HANDOVER_GAP_S:g} s while the daemon (sensors every "
        f"{load_settings().sensor_interval_seconds} s) and intake run"
    )
    figures.update(
        {
            "latency.webhook_to_feedback.events": Figure("handovers timed", "events", section),
            "latency.webhook_to_feedback.p50_seconds": Figure("webhook → feedback latency p50", "s", section),
            "latency.webhook_to_feedback.p95_seconds": Figure(
                "webhook → feedback latency p95", "s", section, at_most=60
            ),
            "latency.webhook_to_feedback.max_seconds": Figure("webhook → feedback latency, slowest", "s", section),
            "latency.webhook_to_alert.p50_seconds": Figure("webhook → alert latency p50", "s", section),
            "latency.webhook_to_alert.p95_seconds": Figure("webhook → alert latency p95", "s", section),
        }
    )
    section = (
        "Latency: the SLA notices those leads owe, untouched (at risk, breached, escalated), from the moment "
        "each falls due to its arrival in an inbox; the run a handover starts sends what is due then "
        f"and schedules the rest, which a sensor sends when due (it looks every {SLA_NOTICES_DUE_INTERVAL_S} s, "
        "holding back while CRM changes wait to be loaded)"
    )
    figures.update(
        {
            "latency.sla_notice_lateness.events": Figure("SLA notices timed", "events", section),
            "latency.sla_notice_lateness.p50_seconds": Figure(
                "SLA notice lateness after its due moment p50", "s", section
            ),
            "latency.sla_notice_lateness.p95_seconds": Figure(
                "SLA notice lateness after its due moment p95", "s", section, at_most=60
            ),
            "latency.sla_notice_lateness.max_seconds": Figure("SLA notice lateness, latest", "s", section),
        }
    )
    return figures


def machine() -> dict:
    """The machine, and how busy it was when the benchmark started: other work skews the figures."""
    return {
        "cpus": os.cpu_count(),
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "load_average_at_start": round(os.getloadavg()[0], 2),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


@dataclass
class BenchReport:
    scale: str
    seed: int
    runs: int
    limits: dict
    company: dict
    target: str = "duckdb"  # the warehouse the runs used
    machine: dict = field(default_factory=machine)
    started_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    figures: dict[str, Figure] = field(default_factory=figure_catalog)
    failures: list[str] = field(default_factory=list)  # what failed in which run, and why

    def add(self, key: str, value: float) -> None:
        self.figures[key].values.append(value)

    def leave_out(self, key: str, status: str, reason: str) -> None:
        self.figures[key].status, self.figures[key].reason = status, reason

    def record_failure(self, run: int, prefixes: tuple[str, ...], reason: str) -> None:
        """A measurement of run ``run`` failed: the figures under ``prefixes`` that no run has
        measured are marked as failed, and the failure is listed with the report."""
        self.failures.append(f"run {run}: {reason}")
        for key, figure in self.figures.items():
            if key.startswith(prefixes) and not figure.values:
                self.leave_out(key, FAILED, reason)

    @property
    def failed(self) -> list[str]:
        return [key for key, figure in self.figures.items() if figure.status == FAILED]

    def as_json(self) -> dict:
        return {
            "scale": self.scale,
            "seed": self.seed,
            "runs": self.runs,
            "target": self.target,
            "started_at": self.started_at,
            "machine": self.machine,
            "limits": self.limits,
            "company": self.company,
            "figures": {key: figure.as_json() for key, figure in self.figures.items()},
            "failures": self.failures,
        }

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.as_json(), indent=2, ensure_ascii=False) + "\n")

    def table(self) -> Table:
        limits = self.limits
        table = Table(
            title=f"handoff bench: the {self.scale} company (seed {self.seed}) on {self.target}, "
            f"median of {self.runs} run{'s' if self.runs > 1 else ''}",
            caption=f"{self.machine['cpus']} CPUs, {self.machine['memory_gb']} GB memory, load average "
            f"{self.machine['load_average_at_start']} at the start. Rate limits: "
            f"the vendors' × {limits['factor']:g} (CRM "
            f"{limits['sandbox']['crm_requests_per_10s']:,} requests/10 s, marketing automation "
            f"{limits['sandbox']['marketing_requests_per_20s']:,} calls/20 s), in the sandbox "
            f"and in the clients' pacing alike.",
            show_edge=False,
        )
        table.add_column("figure")
        table.add_column("value", justify="right")
        table.add_column("target", justify="right")
        if self.runs > 1:
            table.add_column("each run", justify="right")
        section = None
        for figure in self.figures.values():
            if figure.section != section:
                section = figure.section
                table.add_section()
                table.add_row(f"[bold]{section}[/bold]")
            if figure.status != MEASURED:
                table.add_row(
                    f"  {figure.label}\n  [dim]{figure.reason}[/dim]",
                    f"[yellow]{figure.status}[/yellow]",
                    figure.target_text(),
                )
                continue
            colour = {True: "green", False: "red", None: "default"}[figure.meets_target]
            each_run = [", ".join(format_value(value, figure.unit) for value in figure.values)] if self.runs > 1 else []
            missing = (
                f" [yellow]({len(figure.values)} of {self.runs} runs)[/yellow]"
                if len(figure.values) < self.runs
                else ""
            )
            table.add_row(
                f"  {figure.label}{missing}",
                f"[{colour}]{format_value(figure.value, figure.unit)}[/{colour}]",
                figure.target_text(),
                *each_run,
            )
        return table
