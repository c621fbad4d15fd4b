"""The ``handoff`` command line."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn
from rich.table import Table

from pipeline.sandbox_process import sandbox_state_dir
from pipeline.settings import PROJECT_DIR, DataHome, MissingConnectionError, load_connections

app = typer.Typer(help="Handoff: one lead-to-revenue funnel from your CRM, marketing automation and website.",
                  no_args_is_help=True, add_completion=False)
sandbox_app = typer.Typer(help="The sandbox: a simulated company behind local stand-in systems.",
                          no_args_is_help=True)
app.add_typer(sandbox_app, name="sandbox")
intake_app = typer.Typer(help="The intake service: webhooks from the CRM and marketing automation, website events.",
                         no_args_is_help=True)
app.add_typer(intake_app, name="intake")
# Bound to the terminal now: during a run, stdout (dbt's log stream) goes to a log file instead.
console = Console(file=sys.stdout)


Scale = Annotated[str, typer.Option(help="Company size: tiny, small, medium or large.")]
Seed = Annotated[int, typer.Option(help="The same seed gives the same company.")]
DatasetDir = Annotated[Path | None, typer.Option(
    help="Use this dataset folder (the format `handoff sandbox generate` writes) instead.")]


@sandbox_app.command("serve")
def sandbox_serve(
    scale: Scale = "small",
    seed: Seed = 7,
    dataset: DatasetDir = None,
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1; 0 picks a free one.")] = 8765,
    connection_file: Annotated[Path | None, typer.Option(
        help="Where to write base URLs and credentials as JSON (default: <data home>/connection.json).")] = None,
    reset: Annotated[bool, typer.Option(help="Forget what was written to the sandbox before.")] = False,
    faults: Annotated[str | None, typer.Option(
        help="Faults to inject, e.g. latency=50ms,errors=0.05,pressure=0.2 (see sandbox/faults.py).")] = None,
    live: Annotated[bool, typer.Option(
        help="Keep the company living in real time: visits, form fills, MQLs, sales touches.")] = False,
    pace: Annotated[float, typer.Option(help="Live mode's pace, in events per minute.")] = 60.0,
    tracking_url: Annotated[str | None, typer.Option(
        help="Live mode posts website events to this Segment-shaped endpoint (default: the sandbox's own).")] = None,
    tracking_write_key: Annotated[str | None, typer.Option(
        help="Write key for --tracking-url (default: the sandbox's own).")] = None,
    crm_webhook_url: Annotated[str | None, typer.Option(
        help="POST HubSpot-shaped webhooks about live CRM changes here.")] = None,
    marketing_webhook_url: Annotated[str | None, typer.Option(
        help="POST Marketo-style webhooks about live lead changes here.")] = None,
    webhook_attempts: Annotated[int, typer.Option(
        min=1, help="Delivery attempts per webhook before giving up (HubSpot makes 10).")] = 10,
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
        live_settings = LiveSettings(pace=pace, seed=seed, tracking_url=tracking_url,
                                     tracking_write_key=tracking_write_key) if live else None
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--pace") from error
    home = DataHome.from_env().prepare()
    state_dir = sandbox_state_dir(home, scale, seed, dataset)
    if reset:
        shutil.rmtree(state_dir, ignore_errors=True)
    connection_file = connection_file or home.connection_file
    # A stop request at any moment, even before the server runs, ends in the cleanup below.
    _interrupt_on_ctrl_c_and_stop_requests()
    if stop_with_parent:
        _exit_when_parent_exits()
    try:
        with console.status(f"Preparing the {state_dir.name} company…"):
            webhooks = WebhookSettings(crm_url=crm_webhook_url, marketing_url=marketing_webhook_url,
                                       max_attempts=webhook_attempts)
            sandbox = build_sandbox(state_dir, scale=scale, seed=seed, dataset_dir=dataset, faults=fault_spec,
                                    webhooks=webhooks)
            server = SandboxServer(sandbox, port=port, live=live_settings)
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
    tracking_url: Annotated[str, typer.Option(
        help="Segment-shaped tracking endpoint; batches go to <url>/v1/batch.")],
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


def _use_connections(connection_file: Path | None) -> None:
    """Point this run at ``connection_file`` (when given) and check the systems are described."""
    if connection_file:
        os.environ["HANDOFF_CONNECTION_FILE"] = str(connection_file.resolve())
    try:
        load_connections()
    except MissingConnectionError as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(2) from error


def _interrupt_on_ctrl_c_and_stop_requests() -> None:
    """Ctrl-C and a polite kill (SIGTERM) both raise KeyboardInterrupt, so a command's cleanup runs.
    Set for Ctrl-C too: Python leaves it ignored in a process started with it ignored (a background
    job of a script, or the child of a process that ignores it), and Ctrl-C would then do nothing."""
    for stop_request in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop_request, signal.default_int_handler)


@app.command()
def sync(
    connection_file: Annotated[Path | None, typer.Option(
        help="JSON file describing the systems (the format `handoff sandbox serve` writes).")] = None,
) -> None:
    """Run the whole pipeline once against the systems described in the connection file."""
    _use_connections(connection_file)
    home = DataHome.from_env().prepare()
    _finish(home, _materialize_with_progress(home))


@app.command()
def demo(scale: Scale = "small", seed: Seed = 7, dataset: DatasetDir = None) -> None:
    """Start the sandbox and the intake service, send the website's events through intake, run the
    whole pipeline once, summarize, and stop what was started."""
    from pipeline.sandbox_process import sandbox_process

    home = DataHome.from_env().prepare()
    connection_file = home.root / "sandbox" / "demo-connection.json"
    # Ctrl-C and a polite kill both end here the same way: stop what was started.
    _interrupt_on_ctrl_c_and_stop_requests()
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
            os.environ["HANDOFF_CONNECTION_FILE"] = str(connection_file)
            summary = _materialize_with_progress(home)
    except KeyboardInterrupt:
        console.print("[yellow]Interrupted; stopping the sandbox and the intake service.[/yellow]")
        raise typer.Exit(130) from None
    _finish(home, summary)


def _materialize_with_progress(home: DataHome):
    from pipeline.sync import count_assets, run_full_sync

    with console.status("Loading the pipeline definitions…"):
        total = count_assets()
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=console, transient=True) as progress, \
            open(home.sync_log, "w") as log, contextlib.redirect_stdout(log):
        task = progress.add_task("Materializing the asset graph", total=total)
        return run_full_sync(home, on_progress=lambda done: progress.update(task, completed=done))


def _finish(home: DataHome, summary) -> None:
    table = Table(title="Rows per table", show_edge=False)
    table.add_column("table")
    table.add_column("loaded this run", justify="right")
    table.add_column("rows now", justify="right")
    for name, rows in summary.table_rows.items():
        loaded = summary.rows_loaded.get(name)
        table.add_row(name, "" if loaded is None else str(loaded), str(rows))
    console.print(table)
    checks = f"{summary.checks_passed} passed"
    if summary.checks_warned:
        checks += f", [yellow]{len(summary.checks_warned)} warned: {', '.join(summary.checks_warned)}[/yellow]"
    if summary.checks_failed:
        checks += f", [red]{len(summary.checks_failed)} failed: {', '.join(summary.checks_failed)}[/red]"
    console.print(f"Checks: {checks}")
    _print_written_back(summary)
    console.print(f"Warehouse: {home.warehouse}")
    if home.served_marts.exists():
        console.print(f"Marts for BI tools (readable while runs write): {home.served_marts}")
    console.print(f"Run log (dbt output): {home.sync_log}")
    console.print(f"Dagster run {summary.run_id}; open the UI with [bold]make ui[/bold] "
                  f"(DAGSTER_HOME={home.dagster_home} dagster dev -w workspace.yaml)")
    if not summary.success or summary.checks_failed:
        console.print(f"[red]The run did not succeed: {summary.failure or 'failed checks'}[/red]")
        raise typer.Exit(1)


def _print_written_back(summary) -> None:
    for target, outcome in summary.written_back.items():
        console.print(f"Written back to {target}: {outcome.get('records_sent', 0)} records in "
                      f"{outcome.get('batches', 0)} batches ({outcome.get('records_refused', 0)} refused, "
                      f"{outcome.get('changes_held_back', 0)} values held back after repeated refusals)")


@app.command()
def feedback(
    dry_run: Annotated[bool, typer.Option(
        help="Show what would be written, from the warehouse alone: nothing is sent and the ledger is untouched.")] = False,
    create_missing_properties: Annotated[bool, typer.Option(
        help="Create the CRM contact properties Handoff writes when the account lacks them.")] = False,
    connection_file: Annotated[Path | None, typer.Option(
        help="JSON file describing the systems (the format `handoff sandbox serve` writes).")] = None,
    rows: Annotated[int, typer.Option(min=0, help="With --dry-run, how many changes to list per system.")] = 50,
) -> None:
    """Write the feedback models' changed values back into the CRM and marketing automation (the
    models come from the last sync)."""
    import duckdb

    from pipeline.feedback.assets import WRITEBACKS, plan_dry_run

    home = DataHome.from_env().prepare()
    if not home.warehouse.exists():
        console.print(f"[red]No warehouse at {home.warehouse} yet: run `handoff sync` first.[/red]")
        raise typer.Exit(2)
    if dry_run:
        with duckdb.connect(str(home.warehouse), read_only=True) as db:
            for name in WRITEBACKS:
                plan, diff = plan_dry_run(db, name)
                table = Table(title=f"Would write to {name.replace('_', ' ')}", show_edge=False)
                for column in ("record", "property", "from", "to"):
                    table.add_column(column)
                for change in diff[:rows]:
                    table.add_row(change["record_id"], change["property"], str(change["from"]), str(change["to"]))
                console.print(table)
                console.print(f"{plan.records} records, {len(plan.changes)} values would be sent"
                              + (f" ({len(diff) - rows} more not listed)" if len(diff) > rows else "")
                              + (f"; {len(plan.held_back)} values held back after repeated refusals"
                                 if plan.held_back else ""))
        return
    _use_connections(connection_file)
    from pipeline.sync import run_job

    summary = run_job(home, "writeback", {"ops": {
        f"writeback__{name}": {"config": {"create_missing_properties": create_missing_properties}}
        for name in WRITEBACKS}})
    _print_written_back(summary)
    if not summary.success:
        console.print(f"[red]The write-back did not succeed: {summary.failure}[/red]")
        raise typer.Exit(1)


@app.command()
def bench(
    scale: Scale = "small",
    seed: Seed = 7,
    runs: Annotated[int, typer.Option(min=1, help="Runs per figure; each figure is their median.")] = 3,
    rate_limit_factor: Annotated[float, typer.Option(
        min=0.01, help="The vendors' published rate limits times this, in the sandbox and in Handoff's pacing "
                       "alike (1 = the published limits).")] = 100.0,
    compare: Annotated[str | None, typer.Option(
        help="Also report how time grows from this scale's last benchmark report to this one.")] = None,
    only: Annotated[str | None, typer.Option(
        help="Run only these parts, comma-separated: ingest, sync, writeback, latency (default: all).")] = None,
    latency_events: Annotated[int, typer.Option(
        min=1, help="Leads handed to sales per latency measurement.")] = 50,
) -> None:
    """Measure Handoff against a simulated company: loads, download-only, incremental runs, full syncs,
    write-back throughput, and webhook-to-feedback latency through a running daemon and intake.
    Prints a table and writes it as JSON to <data home>/reports/bench-<scale>.json."""

    from pipeline.bench.company import BenchCompany, BenchLimits
    from pipeline.bench.measurements import PARTS, Bench, run_bench
    from pipeline.bench.report import BenchReport
    from sandbox.simulation import SCALES

    if scale not in SCALES:
        raise typer.BadParameter(f"choose one of {', '.join(SCALES)}", param_hint="--scale")
    parts = frozenset(only.split(",")) if only else PARTS
    if not parts <= PARTS:
        raise typer.BadParameter(f"choose from {', '.join(sorted(PARTS))}", param_hint="--only")
    home = DataHome.from_env().prepare()
    compared_file = home.reports / f"bench-{compare}.json"
    compared = json.loads(compared_file.read_text()) if compare and compared_file.exists() else None
    _interrupt_on_ctrl_c_and_stop_requests()
    with console.status(f"Preparing the {scale} company (seed {seed})…"):
        company = BenchCompany.in_home(home, scale, seed).prepare()
    limits = BenchLimits(rate_limit_factor)
    report = BenchReport(scale=scale, seed=seed, runs=runs, limits=limits.as_json(),
                         company={"people": SCALES[scale], "records": company.counts()})
    log = home.reports / f"bench-{scale}.log"
    try:
        with open(log, "w") as output, console.status("Benchmarking…") as status:
            run_bench(Bench(home, company, limits, report, output,
                            lambda doing: status.update(f"Benchmarking the {scale} company: {doing}…"), parts,
                            latency_events),
                      compared, compare)
    except KeyboardInterrupt:
        console.print("[yellow]Interrupted; nothing was reported.[/yellow]")
        raise typer.Exit(130) from None
    report_file = home.reports / f"bench-{scale}.json"
    report.save(report_file)
    console.print(report.table())
    console.print(f"Report: {report_file}; output of the measured runs: {log}")
    for failure in report.failures:
        console.print(f"[yellow]{failure}[/yellow]")
    if report.failed:
        console.print(f"[red]{len(report.failed)} figures could not be measured in any run; see {log}[/red]")
        raise typer.Exit(1)


@intake_app.command("serve")
def intake_serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8766,
    connection_file: Annotated[Path | None, typer.Option(
        help="JSON file with the webhook secrets (crm.webhook_client_secret, marketing.webhook_secret) "
             "and the website's write key (web.write_key).")] = None,
    public_url: Annotated[str | None, typer.Option(
        help="The base URL the systems post to, when a proxy in front of the service changes it.")] = None,
) -> None:
    """Receive webhooks and website events, check them, and keep them durably for the sensors until interrupted."""
    import uvicorn

    from pipeline.intake.app import WebhookSecrets, create_intake_app
    from pipeline.intake.journal import IntakeJournal
    from pipeline.intake.landing import WebEventLanding
    from pipeline.settings import connection_file_path

    home = DataHome.from_env().prepare()
    secrets = WebhookSecrets.load(connection_file.resolve() if connection_file else connection_file_path())
    if not (secrets.crm_client_secret or secrets.marketing_secret or secrets.web_write_key):
        console.print("[yellow]No webhook secret or website write key is configured: everything will be refused."
                      "[/yellow]")
    journal = IntakeJournal(home.intake_journal)
    web_landing = WebEventLanding(home.web_landing, home.web_landing_index)
    console.print(f"Intake listening on http://{host}:{port}; journal {home.intake_journal}, "
                  f"website events in {home.web_landing}")
    try:
        uvicorn.run(create_intake_app(journal, secrets, public_url, web_landing), host=host, port=port,
                    log_level="warning")
    finally:
        web_landing.close()
        journal.close()


@app.command()
def up(
    host: Annotated[str, typer.Option(help="Address the webserver and the intake service listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="The Dagster webserver's port.")] = 3000,
    intake_port: Annotated[int, typer.Option(help="The intake service's port.")] = 8766,
    connection_file: Annotated[Path | None, typer.Option(
        help="JSON file describing the systems, with the webhook secrets and the website's write key.")] = None,
) -> None:
    """Run Handoff as a deployment: the Dagster webserver and daemon (schedules, sensors, the run
    queue) and the intake service, until interrupted; Ctrl-C or SIGTERM stops all three."""
    from pipeline.services import RunningServices, deployment_services

    if connection_file:
        os.environ["HANDOFF_CONNECTION_FILE"] = str(connection_file.resolve())
    home = DataHome.from_env().prepare()
    # Create the instance's storage once, here: the webserver and the daemon starting together on a
    # new data home would both create and stamp the SQLite schedule storage, and one of them fails.
    import dagster as dg

    dg.DagsterInstance.get().dispose()
    services = RunningServices(home, deployment_services(host, port, intake_port,
                                                         connection_file.resolve() if connection_file else None))
    _interrupt_on_ctrl_c_and_stop_requests()
    try:
        with console.status("Starting the webserver, the daemon and the intake service…"):
            services.start(lambda service: console.print(
                f"{service.name} ready at {service.ready_url.rsplit('/', 1)[0]}" if service.ready_url
                else f"{service.name} started"))
        console.print(f"Handoff is up: Dagster UI http://{host}:{port}, intake http://{host}:{intake_port}; "
                      f"logs in {home.logs}. Ctrl-C stops everything.")
        services.watch()
    except KeyboardInterrupt:
        console.print("[yellow]Stopping the webserver, the daemon and the intake service…[/yellow]")
    except RuntimeError as error:
        console.print(f"[red]{error}; stopping the others.[/red]")
        raise typer.Exit(1) from None
    finally:
        services.stop()
    console.print("Stopped.")


@app.command()
def ui() -> None:
    """Open the Dagster UI on this project's instance (webserver and daemon)."""
    DataHome.from_env().prepare()
    dagster = str(Path(sys.executable).parent / "dagster")
    os.execv(dagster, [dagster, "dev", "-w", str(PROJECT_DIR / "workspace.yaml")])


if __name__ == "__main__":
    app()
