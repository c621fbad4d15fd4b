"""The simulator's commands, which join ``handoff`` when the sandbox is installed: ``handoff sandbox …``
(serve, generate, emit-web, export-web), ``handoff demo``, ``handoff live`` and ``handoff bench``."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import threading
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from pipeline.cli import console, print_summary, run_sync_with_progress, stop_on_ctrl_c_and_sigterm
from pipeline.settings import DataHome, load_settings
from sandbox.process import sandbox_state_dir

sandbox_app = typer.Typer(help="The sandbox: a simulated company behind local stand-in systems.", no_args_is_help=True)
# demo and bench sit beside the product's own commands; `register` adds them to `handoff`.
commands = typer.Typer()


def register(app: typer.Typer) -> None:
    """The ``handoff.commands`` entry point: add the simulator's commands to ``handoff``."""
    app.add_typer(sandbox_app, name="sandbox")
    app.registered_commands.extend(commands.registered_commands)


Scale = Annotated[str, typer.Option(help="Company size: tiny, small, medium or large.")]
Seed = Annotated[int, typer.Option(help="The same seed gives the same company.")]
DatasetDir = Annotated[
    Path | None, typer.Option(help="Use this dataset folder (the format `handoff sandbox generate` writes) instead.")
]


@sandbox_app.command("serve")
def sandbox_serve(
    scale: Scale = "small",
    seed: Seed = 7,
    dataset: DatasetDir = None,
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1; 0 picks a free one.")] = 8765,
    connection_file: Annotated[
        Path | None,
        typer.Option(help="Where to write base URLs and credentials as JSON (default: <data home>/connection.json)."),
    ] = None,
    reset: Annotated[bool, typer.Option(help="Forget what was written to the sandbox before.")] = False,
    faults: Annotated[
        str | None,
        typer.Option(help="Faults to inject, e.g. latency=50ms,errors=0.05,pressure=0.2 (see sandbox/faults.py)."),
    ] = None,
    live: Annotated[
        bool, typer.Option(help="Keep the company living in real time: visits, form fills, MQLs, sales touches.")
    ] = False,
    pace: Annotated[float, typer.Option(help="Live mode's pace, in events per minute.")] = 60.0,
    around_the_clock: Annotated[
        bool, typer.Option(help="The owners work every hour of the day, so SLA clocks always turn.")
    ] = False,
    tracking_url: Annotated[
        str | None,
        typer.Option(
            help="Live mode posts website events to this Segment-shaped endpoint (default: the sandbox's own)."
        ),
    ] = None,
    tracking_write_key: Annotated[
        str | None, typer.Option(help="Write key for --tracking-url (default: the sandbox's own).")
    ] = None,
    crm_webhook_url: Annotated[
        str | None, typer.Option(help="POST HubSpot-shaped webhooks about live CRM changes here.")
    ] = None,
    marketing_webhook_url: Annotated[
        str | None, typer.Option(help="POST Marketo-style webhooks about live lead changes here.")
    ] = None,
    webhook_attempts: Annotated[
        int, typer.Option(min=1, help="Delivery attempts per webhook before giving up (HubSpot makes 10).")
    ] = 10,
    stop_with_parent: Annotated[bool, typer.Option(hidden=True)] = False,
) -> None:
    """Run the stand-in systems until interrupted."""
    from sandbox.faults import Faults, FaultSpecError
    from sandbox.live import LiveSettings
    from sandbox.server import SandboxServer, build_sandbox
    from sandbox.webhooks import WebhookSettings

    try:
        fault_spec = Faults.parse(faults)
    except FaultSpecError as error:
        raise typer.BadParameter(str(error), param_hint="--faults") from error
    try:
        live_settings = (
            LiveSettings(
                pace=pace,
                seed=seed,
                tracking_url=tracking_url,
                tracking_write_key=tracking_write_key,
            )
            if live
            else None
        )
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--pace") from error
    home = DataHome.from_env().prepare()
    state_dir = sandbox_state_dir(home, scale, seed, dataset)
    if reset:
        shutil.rmtree(state_dir, ignore_errors=True)
    connection_file = connection_file or home.connection_file
    # A stop request at any moment, even before the server runs, ends in the cleanup below.
    stop_on_ctrl_c_and_sigterm()
    if stop_with_parent:
        _exit_when_parent_exits()
    try:
        with console.status(f"Preparing the {state_dir.name} company…"):
            webhooks = WebhookSettings(
                crm_url=crm_webhook_url, marketing_url=marketing_webhook_url, max_attempts=webhook_attempts
            )
            sandbox = build_sandbox(
                state_dir, scale=scale, seed=seed, dataset_dir=dataset, faults=fault_spec, webhooks=webhooks
            )
            server = SandboxServer(sandbox, port=port, live=live_settings, around_the_clock=around_the_clock)
        server.publish(connection_file)
        console.print(f"Sandbox serving on {server.base_url}; connection details in {connection_file}")
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        connection_file.unlink(missing_ok=True)


@sandbox_app.command("generate")
def sandbox_generate(
    out: Annotated[Path, typer.Option(help="Folder to write the dataset into.")],
    scale: Scale = "small",
    seed: Seed = 7,
    summary: Annotated[bool, typer.Option(help="Print the company's key figures.")] = False,
) -> None:
    """Write a simulated company as a dataset folder (the format `sandbox serve --dataset` reads)."""
    from sandbox.dataset import Dataset
    from sandbox.simulation import SCALES, generate, summarize

    if scale not in SCALES:
        raise typer.BadParameter(f"choose one of {', '.join(SCALES)}", param_hint="--scale")
    started = time.monotonic()
    with console.status(f"Simulating the {scale} company (seed {seed})…"):
        manifest = generate(out, scale=scale, seed=seed)
    console.print(f"Wrote {sum(manifest.counts.values()):,} records to {out} in {time.monotonic() - started:.1f} s")
    if summary:
        table = Table(title=f"The {scale} company, seed {seed}", show_edge=False)
        table.add_column("figure")
        table.add_column("value", justify="right")
        for figure, value in summarize(Dataset(out)).items():
            table.add_row(figure, f"{value:,.2f}" if isinstance(value, float) else f"{value:,}")
        console.print(table)


def _company_store(scale: str, seed: int, dataset: Path | None):
    from sandbox.server import build_sandbox

    state_dir = sandbox_state_dir(DataHome.from_env().prepare(), scale, seed, dataset)
    with console.status(f"Preparing the {state_dir.name} company…"):
        return build_sandbox(state_dir, scale=scale, seed=seed, dataset_dir=dataset).store


@sandbox_app.command("emit-web")
def sandbox_emit_web(
    tracking_url: Annotated[str, typer.Option(help="Segment-shaped tracking endpoint; batches go to <url>/v1/batch.")],
    write_key: Annotated[str, typer.Option(help="The endpoint's write key (sent as the HTTP Basic username).")],
    scale: Scale = "small",
    seed: Seed = 7,
    dataset: DatasetDir = None,
) -> None:
    """Replay the company's website events, oldest first, to a tracking endpoint in Segment batches."""
    from sandbox.website import TrackingError, emit_web_events

    store = _company_store(scale, seed, dataset)
    try:
        with console.status(f"Sending website events to {tracking_url}…"):
            emitted = emit_web_events(store, tracking_url, write_key)
    except TrackingError as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(1) from error
    console.print(f"Sent {emitted.events:,} events in {emitted.batches:,} batches to {tracking_url}")


@sandbox_app.command("export-web")
def sandbox_export_web(
    out: Annotated[Path, typer.Option(help="Folder to write <YYYY-MM-DD>/<HH>.ndjson files into.")],
    scale: Scale = "small",
    seed: Seed = 7,
    dataset: DatasetDir = None,
) -> None:
    """Write the company's website events as hourly NDJSON files, as a Segment storage destination would."""
    from sandbox.website import export_web_events

    store = _company_store(scale, seed, dataset)
    with console.status(f"Writing website events to {out}…"):
        exported = export_web_events(store, out)
    console.print(f"Wrote {exported.events:,} events into {exported.files:,} hourly files under {out}")


def _exit_when_parent_exits() -> None:
    """A sandbox started by ``handoff demo`` must not outlive it, even if the demo is killed."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, daemon=True).start()


@commands.command()
def demo(scale: Scale = "small", seed: Seed = 7, dataset: DatasetDir = None) -> None:
    """Start the sandbox and the intake service, send the website's events through intake, run the
    whole pipeline once, summarize, and stop what was started."""
    from sandbox.process import sandbox_process

    home = DataHome.from_env().prepare()
    connection_file = home.root / "sandbox" / "demo-connection.json"
    # Ctrl-C and a polite kill both end here the same way: stop what was started.
    stop_on_ctrl_c_and_sigterm()
    company = ["--dataset", str(dataset.resolve())] if dataset else ["--scale", scale, "--seed", str(seed)]
    try:
        with contextlib.ExitStack() as running:
            with console.status(f"Starting the sandbox with the {dataset or scale} company…"):
                running.enter_context(sandbox_process(company, connection_file))
            # The website's history reaches the warehouse the way live events do: through the intake
            # service, which lands each event once however often the demo runs.
            from pipeline.services import RunningServices, free_port, intake_service
            from sandbox.website import emit_web_events

            intake = RunningServices(home, [intake_service("127.0.0.1", free_port(), connection_file)])
            running.callback(intake.stop)
            with console.status("Starting the intake service…"):
                intake.start()
            intake_url = intake.services[0].ready_url.removesuffix("/health")
            write_key = json.loads(connection_file.read_text())["web"]["write_key"]
            with console.status(f"Sending the website's events through the intake service at {intake_url}…"):
                emit_web_events(_company_store(scale, seed, dataset), intake_url, write_key)
            summary = run_sync_with_progress(load_settings(connection_file=connection_file), home)
    except KeyboardInterrupt:
        console.print("[yellow]Interrupted; stopping the sandbox and the intake service.[/yellow]")
        raise typer.Exit(130) from None
    print_summary(home, summary)


@commands.command()
def live(
    scale: Scale = "small",
    seed: Seed = 7,
    pace: Annotated[
        float, typer.Option(help="Events a minute at the company (visits, form fills, MQLs, touches).")
    ] = 60.0,
    host: Annotated[str, typer.Option(help="Address the webserver, intake and the inbox listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="The Dagster webserver's port.")] = 3000,
    inbox_port: Annotated[int, typer.Option(help="The notice inbox's port.")] = 8767,
) -> None:
    """Watch the event loop live: the company's webhooks and website calls reach intake, Dagster's
    sensors start runs, SLA clocks turn in minutes and notices reach a local inbox. Ctrl-C stops it all."""
    from rich.live import Live

    from sandbox.live_deployment import LiveDeployment, LiveOptions, wait_forever

    home = DataHome(DataHome.from_env().prepare().root / "live").prepare()
    deployment = LiveDeployment(
        home, LiveOptions(scale, seed, pace, host, port, inbox_port), say=lambda text: console.print(text, markup=False)
    )
    stop_on_ctrl_c_and_sigterm()
    try:
        with deployment.running() as urls:
            console.print(
                f"Handoff is live: Dagster UI {urls.ui}, notice inbox {urls.inbox}, intake {urls.intake}; "
                f"logs in {home.logs}. Ctrl-C stops everything.",
                markup=False,
            )
            with Live(progress_table(deployment.progress()), console=console, auto_refresh=False) as screen:
                wait_forever(deployment, lambda progress: screen.update(progress_table(progress), refresh=True))
    except KeyboardInterrupt:
        console.print("[yellow]Stopping the company, intake, the webserver, the daemon and the inbox…[/yellow]")
    except RuntimeError as error:
        console.print(f"[red]{error}; stopping the rest.[/red]", markup=False)
        raise typer.Exit(1) from None
    console.print("Stopped.")


def progress_table(progress) -> Table:
    table = Table(title="Since the start (handoffs as the served marts show them)", show_header=False)
    notices = progress.notices or {}
    for label, value in (
        ("handed to sales", progress.handed),
        ("touched by sales", progress.touched),
        ("at risk now", progress.at_risk),
        ("breached", progress.breached),
        ("runs started (by sensors)", f"{progress.runs_started} ({progress.runs_by_sensors})"),
        ("runs failed", progress.runs_failed),
        (
            "notices sent",
            ", ".join(f"{count} {kind.replace('_', ' ')}" for kind, count in sorted(notices.items())) or "none yet",
        ),
    ):
        table.add_row(label, str(value))
    return table


@commands.command()
def bench(
    scale: Scale = "small",
    seed: Seed = 7,
    runs: Annotated[int, typer.Option(min=1, help="Runs per figure; each figure is their median.")] = 3,
    rate_limit_factor: Annotated[
        float,
        typer.Option(
            min=0.01,
            help="The vendors' published rate limits times this, in the sandbox and in Handoff's pacing "
            "alike (1 = the published limits).",
        ),
    ] = 100.0,
    compare: Annotated[
        str | None, typer.Option(help="Also report how time grows from this scale's last benchmark report to this one.")
    ] = None,
    only: Annotated[
        str | None,
        typer.Option(help="Run only these parts, comma-separated: ingest, sync, writeback, latency (default: all)."),
    ] = None,
    latency_events: Annotated[int, typer.Option(min=1, help="Leads handed to sales per latency measurement.")] = 50,
    notice_minutes: Annotated[
        int,
        typer.Option(
            min=1,
            max=10,
            help="The latency part's first-touch allowance, in minutes of owners working around the clock: "
            "its untouched handoffs' SLA notices fall due by it.",
        ),
    ] = 5,
    target: Annotated[
        str,
        typer.Option(
            help="The warehouse the runs use: duckdb (a file in each run's data home) or postgres (a database "
            "of each run's own on the server HANDOFF_PG_* names)."
        ),
    ] = "duckdb",
) -> None:
    """Measure Handoff against a simulated company: loads, download-only, incremental runs, full syncs,
    write-back throughput, webhook-to-feedback latency through a running daemon and intake, and how late
    SLA notices arrive after they fall due.
    Prints a table and writes it as JSON to <data home>/reports/bench-<scale>.json."""

    from pipeline.warehouse import WarehouseUnavailable
    from sandbox.bench.company import BenchCompany, BenchLimits, BenchWarehouse
    from sandbox.bench.measurements import PARTS, Bench, run_bench
    from sandbox.bench.report import BenchReport
    from sandbox.simulation import SCALES

    if scale not in SCALES:
        raise typer.BadParameter(f"choose one of {', '.join(SCALES)}", param_hint="--scale")
    if target not in ("duckdb", "postgres"):
        raise typer.BadParameter("choose duckdb or postgres", param_hint="--target")
    parts = frozenset(only.split(",")) if only else PARTS
    if not parts <= PARTS:
        raise typer.BadParameter(f"choose from {', '.join(sorted(PARTS))}", param_hint="--only")
    home = DataHome.from_env().prepare()
    warehouse = BenchWarehouse.of(target, load_settings())
    try:
        warehouse.check()
    except WarehouseUnavailable as error:
        console.print(str(error), style="red", markup=False, soft_wrap=True)
        raise typer.Exit(2) from None
    # Reports per target, side by side: bench-small.json (DuckDB), bench-small-postgres.json.
    suffix = "" if target == "duckdb" else f"-{target}"
    compared_file = home.reports / f"bench-{compare}{suffix}.json"
    compared = json.loads(compared_file.read_text()) if compare and compared_file.exists() else None
    stop_on_ctrl_c_and_sigterm()
    with console.status(f"Preparing the {scale} company (seed {seed})…"):
        company = BenchCompany.in_home(home, scale, seed).prepare()
    limits = BenchLimits(rate_limit_factor)
    report = BenchReport(
        scale=scale,
        seed=seed,
        runs=runs,
        limits=limits.as_json(),
        company={"people": SCALES[scale], "records": company.counts()},
        target=target,
    )
    log = home.reports / f"bench-{scale}{suffix}.log"
    try:
        with open(log, "w") as output, console.status("Benchmarking…") as status:
            run_bench(
                Bench(
                    home,
                    company,
                    limits,
                    report,
                    warehouse,
                    output,
                    lambda doing: status.update(f"Benchmarking the {scale} company: {doing}…"),
                    parts,
                    latency_events,
                    notice_minutes,
                ),
                compared,
                compare,
            )
    except KeyboardInterrupt:
        console.print("[yellow]Interrupted; nothing was reported.[/yellow]")
        raise typer.Exit(130) from None
    report_file = home.reports / f"bench-{scale}{suffix}.json"
    report.save(report_file)
    console.print(report.table())
    console.print(f"Report: {report_file}; output of the measured runs: {log}")
    for failure in report.failures:
        console.print(f"[yellow]{failure}[/yellow]")
    if report.failed:
        console.print(f"[red]{len(report.failed)} figures could not be measured in any run; see {log}[/red]")
        raise typer.Exit(1)
