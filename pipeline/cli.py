"""The ``handoff`` command line."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from enum import StrEnum
from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn
from rich.table import Table

from pipeline.settings import (
    DBT_PROJECT_DIR,
    PROJECT_DIR,
    WAREHOUSE_POOL,
    DataHome,
    MissingConnectionError,
    Settings,
    SettingsError,
    apply_environment_defaults,
    load_connections,
    load_settings,
)

app = typer.Typer(
    help="Handoff: one lead-to-revenue funnel from your CRM, marketing automation and website.",
    no_args_is_help=True,
    add_completion=False,
)
intake_app = typer.Typer(
    help="The intake service: webhooks from the CRM and marketing automation, website events.", no_args_is_help=True
)
app.add_typer(intake_app, name="intake")
quality_app = typer.Typer(
    help="The quality gate's stopped batches: what stopped, and the operator's decision to go on.",
    no_args_is_help=True,
)
app.add_typer(quality_app, name="quality")
# Bound to the terminal now: during a run, stdout (dbt's log stream) goes to a log file instead.
console = Console(file=sys.stdout)


def command_settings(connection_file: Path | None = None, needs_systems: bool = False) -> Settings:
    """This command's settings: its options over the environment and the connection file. With
    ``needs_systems``, the systems must be described. A bad setting ends the command with its reason."""
    apply_environment_defaults()
    try:
        settings = load_settings(connection_file=connection_file.resolve() if connection_file else None)
        if needs_systems:
            load_connections(settings.resolved_connection_file)
    except (SettingsError, MissingConnectionError) as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(2) from error
    return settings


def stop_on_ctrl_c_and_sigterm() -> None:
    """Ctrl-C and a polite kill (SIGTERM) both raise KeyboardInterrupt, so a command's cleanup runs.
    Set for Ctrl-C too: Python leaves it ignored in a process started with it ignored (a background
    job of a script, or the child of a process that ignores it), and Ctrl-C would then do nothing."""
    for stop_request in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop_request, signal.default_int_handler)


@app.command()
def sync(
    connection_file: Annotated[
        Path | None, typer.Option(help="JSON file describing the systems (the format `handoff sandbox serve` writes).")
    ] = None,
) -> None:
    """Run the whole pipeline once against the systems described in the connection file."""
    settings = command_settings(connection_file, needs_systems=True)
    home = DataHome.of(settings).prepare()
    stop_on_ctrl_c_and_sigterm()
    try:
        summary = run_sync_with_progress(settings, home)
    except KeyboardInterrupt:
        console.print("[yellow]Interrupted.[/yellow]")
        raise typer.Exit(130) from None
    print_summary(home, summary)


def run_sync_with_progress(settings: Settings, home: DataHome):
    from pipeline.code_location import build_definitions
    from pipeline.sync import count_assets, run_full_sync

    warehouse = reachable_warehouse(settings, with_state=True)
    with console.status("Loading the pipeline definitions…"):
        defs = build_definitions(settings)
        total = count_assets(defs)
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with (
        Progress(*columns, console=console, transient=True) as progress,
        open(home.sync_log, "w") as log,
        contextlib.redirect_stdout(log),
    ):
        task = progress.add_task("Materializing the asset graph", total=total)
        return run_full_sync(
            defs, warehouse, on_progress=lambda done: progress.update(task, completed=done), on_waiting=tell_waiting
        )


def reachable_warehouse(settings: Settings, with_state: bool = False):
    """The configured warehouse (and, ``with_state``, the operational store, migrated), or exit with
    the one line that says what to fix."""
    from pipeline.state import StateStoreUnavailable, open_state_store
    from pipeline.warehouse import Warehouse, WarehouseUnavailable

    warehouse = Warehouse.of(settings)
    try:
        warehouse.check_reachable()
        if with_state:
            open_state_store(settings)
    except (WarehouseUnavailable, StateStoreUnavailable) as error:
        console.print(str(error), style="red", markup=False, soft_wrap=True)
        raise typer.Exit(2) from None
    return warehouse


def wait_for_the_warehouse() -> None:
    """Wait until no run writes the DuckDB warehouse: DuckDB lets no process open a file another
    one writes, and a reader holding it open would fail the next run's load."""
    import dagster as dg

    from pipeline.recovery import wait_for_pool

    with dg.DagsterInstance.get() as instance:
        wait_for_pool(instance, WAREHOUSE_POOL, tell_waiting)


def tell_waiting(runs) -> None:
    holders = ", ".join(f"run {run.run_id} ({run.job_name}, {run.status.value.lower()})" for run in runs)
    console.print(f"[yellow]Waiting for the warehouse, which {holders} is writing; Ctrl-C stops waiting.[/yellow]")


def print_summary(home: DataHome, summary) -> None:
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
    for name, description in summary.check_descriptions.items():
        colour = "red" if name in summary.checks_failed else "yellow"
        console.print(f"  {name}: {description}", style=colour, markup=False, soft_wrap=True)
    if summary.records_flagged:
        console.print(
            f"Records flagged: {summary.records_flagged} broke a rule on their own, kept out of what they would "
            "corrupt (each with its reason in quality.quality_record_flags); nothing stopped for them"
        )
    _print_written_back(summary)
    console.print(f"Warehouse: {summary.warehouse}")
    if home.served_marts.exists():
        console.print(f"Marts for BI tools (readable while runs write): {home.served_marts}")
    console.print(f"Run log (dbt output): {home.sync_log}")
    console.print(
        f"Dagster run {summary.run_id}; open the UI with [bold]make ui[/bold] "
        f"(DAGSTER_HOME={home.dagster_home} dagster dev -w workspace.yaml)"
    )
    if not summary.success or summary.checks_failed:
        console.print(f"[red]The run did not succeed: {summary.failure or 'failed checks'}[/red]")
        raise typer.Exit(1)


def _print_written_back(summary) -> None:
    for target, outcome in summary.written_back.items():
        console.print(
            f"Written back to {target}: {outcome.get('records_sent', 0)} records in "
            f"{outcome.get('batches', 0)} batches ({outcome.get('records_refused', 0)} refused, "
            f"{outcome.get('changes_held_back', 0)} values held back after repeated refusals)"
        )


@app.command()
def feedback(
    dry_run: Annotated[
        bool,
        typer.Option(
            help="Show what would be written, from the warehouse and the ledger: nothing is sent and the "
            "ledger gets no new row."
        ),
    ] = False,
    create_missing_properties: Annotated[
        bool, typer.Option(help="Create the CRM contact properties Handoff writes when the account lacks them.")
    ] = False,
    connection_file: Annotated[
        Path | None, typer.Option(help="JSON file describing the systems (the format `handoff sandbox serve` writes).")
    ] = None,
    rows: Annotated[int, typer.Option(min=0, help="With --dry-run, how many changes to list per system.")] = 50,
) -> None:
    """Write the feedback models' changed values back into the CRM and marketing automation (the
    models come from the last sync)."""
    from pipeline.feedback.assets import WRITEBACKS, plan_dry_run
    from pipeline.state import open_state_store

    settings = command_settings(connection_file, needs_systems=not dry_run)
    DataHome.of(settings).prepare()
    warehouse = reachable_warehouse(settings, with_state=True)
    if not warehouse.exists:
        console.print(f"[red]No warehouse at {warehouse.duckdb_path} yet: run `handoff sync` first.[/red]")
        raise typer.Exit(2)
    if dry_run:
        with warehouse.read() as reader:
            for name in WRITEBACKS:
                plan, diff = plan_dry_run(reader, open_state_store(settings), name)
                table = Table(title=f"Would write to {name.replace('_', ' ')}", show_edge=False)
                for column in ("record", "property", "from", "to"):
                    table.add_column(column)
                for change in diff[:rows]:
                    table.add_row(change["record_id"], change["property"], str(change["from"]), str(change["to"]))
                console.print(table)
                console.print(
                    f"{plan.records} records, {len(plan.changes)} values would be sent"
                    + (f" ({len(diff) - rows} more not listed)" if len(diff) > rows else "")
                    + (f"; {len(plan.held_back)} values held back after repeated refusals" if plan.held_back else "")
                )
        return
    from pipeline.code_location import build_definitions
    from pipeline.sync import run_job

    summary = run_job(
        build_definitions(settings),
        warehouse,
        "writeback",
        {
            "ops": {
                f"writeback__{name}": {"config": {"create_missing_properties": create_missing_properties}}
                for name in WRITEBACKS
            }
        },
        on_waiting=tell_waiting,
    )
    _print_written_back(summary)
    if not summary.success:
        console.print(f"[red]The write-back did not succeed: {summary.failure}[/red]")
        raise typer.Exit(1)


class QueryFormat(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


@app.command()
def query(
    sql: Annotated[str, typer.Argument(help='One statement that reads, e.g. "select * from marts.fct_handoffs".')],
    output: Annotated[
        QueryFormat, typer.Option("--format", help="table for people; csv or json (an array of objects) for scripts.")
    ] = QueryFormat.table,
) -> None:
    """Run a read-only query against the configured warehouse (DuckDB or PostgreSQL) and print its rows."""
    from pipeline.query import StatementRefused, as_csv, as_json, plain, refuse_unless_reading

    settings = command_settings()
    DataHome.of(settings).prepare()  # the instance whose runs hold the DuckDB warehouse
    warehouse = reachable_warehouse(settings)
    if not warehouse.exists:
        console.print(f"[red]No warehouse at {warehouse.duckdb_path} yet: run `handoff sync` first.[/red]")
        raise typer.Exit(2)
    if settings.dbt_target == "duckdb":
        wait_for_the_warehouse()
    try:
        with warehouse.read() as reader:
            refuse_unless_reading(sql, reader.engine_name)
            try:
                columns, rows = reader.as_written(sql)
            except reader.driver_error as error:
                console.print(f"The warehouse refused the query: {str(error).strip()}", style="red", markup=False)
                raise typer.Exit(1) from None
    except StatementRefused as refused:
        console.print(f"Refused: {refused}", style="red", markup=False)
        raise typer.Exit(2) from None
    if output is QueryFormat.json:
        print(as_json(columns, rows))
    elif output is QueryFormat.csv:
        print(as_csv(columns, rows), end="")
    else:
        table = Table(show_edge=False)
        for column in columns:
            table.add_column(column)
        for row in rows:
            table.add_row(*("" if value is None else str(plain(value)) for value in row))
        console.print(table)
        console.print(f"{len(rows)} rows")


@intake_app.command("serve")
def intake_serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8766,
    connection_file: Annotated[
        Path | None,
        typer.Option(
            help="JSON file with the webhook secrets (crm.webhook_client_secret, marketing.webhook_secret) "
            "and the website's write key (web.write_key)."
        ),
    ] = None,
    public_url: Annotated[
        str | None,
        typer.Option(help="The base URL the systems post to, when a proxy in front of the service changes it."),
    ] = None,
) -> None:
    """Receive webhooks and website events, check them, and keep them durably for the sensors until interrupted."""
    import uvicorn

    from pipeline.intake.app import WebhookSecrets, create_intake_app
    from pipeline.intake.journal import IntakeJournal
    from pipeline.intake.landing import WebEventLanding

    settings = command_settings(connection_file)
    home = DataHome.of(settings).prepare()
    secrets = WebhookSecrets.load(settings.resolved_connection_file)
    if not (secrets.crm_client_secret or secrets.marketing_secret or secrets.web_write_key):
        console.print(
            "[yellow]No webhook secret or website write key is configured: everything will be refused.[/yellow]"
        )
    journal = IntakeJournal(home.intake_journal)
    web_landing = WebEventLanding(home.web_landing, home.web_landing_index)
    console.print(
        f"Intake listening on http://{host}:{port}; journal {home.intake_journal}, website events in {home.web_landing}"
    )
    try:
        uvicorn.run(
            create_intake_app(journal, secrets, public_url, web_landing), host=host, port=port, log_level="warning"
        )
    finally:
        web_landing.close()
        journal.close()


@app.command()
def up(
    host: Annotated[str, typer.Option(help="Address the webserver and the intake service listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="The Dagster webserver's port.")] = 3000,
    intake_port: Annotated[int, typer.Option(help="The intake service's port.")] = 8766,
    connection_file: Annotated[
        Path | None,
        typer.Option(help="JSON file describing the systems, with the webhook secrets and the website's write key."),
    ] = None,
) -> None:
    """Run Handoff as a deployment: the Dagster webserver and daemon (schedules, sensors, the run
    queue) and the intake service, until interrupted; Ctrl-C or SIGTERM stops all three."""
    from pipeline.services import RunningServices, deployment_services

    settings = command_settings(connection_file)
    home = DataHome.of(settings).prepare()
    # Create the instance's storage once, here: the webserver and the daemon starting together on a
    # new data home would both create and stamp the SQLite schedule storage, and one of them fails.
    import dagster as dg

    dg.DagsterInstance.get().dispose()
    # The webserver, the daemon and their runs read the same connection file as intake.
    environment = {**os.environ, "HANDOFF_CONNECTION_FILE": str(settings.resolved_connection_file)}
    services = RunningServices(
        home, deployment_services(host, port, intake_port, settings.resolved_connection_file), environment
    )
    stop_on_ctrl_c_and_sigterm()
    try:
        with console.status("Starting the webserver, the daemon and the intake service…"):
            services.start(
                lambda service: console.print(
                    f"{service.name} ready at {service.ready_url.rsplit('/', 1)[0]}"
                    if service.ready_url
                    else f"{service.name} started"
                )
            )
        console.print(
            f"Handoff is up: Dagster UI http://{host}:{port}, intake http://{host}:{intake_port}; "
            f"logs in {home.logs}. Ctrl-C stops everything."
        )
        services.watch()
    except KeyboardInterrupt:
        console.print("[yellow]Stopping the webserver, the daemon and the intake service…[/yellow]")
    except RuntimeError as error:
        console.print(f"[red]{error}; stopping the others.[/red]")
        raise typer.Exit(1) from None
    finally:
        services.stop()
    console.print("Stopped.")


@quality_app.command("status")
def quality_status() -> None:
    """Every raw batch a critical quality failure stopped, and whether it was reloaded or accepted."""
    from pipeline.quality.checks import stopped_batches
    from pipeline.state import open_state_store

    settings = command_settings()
    reachable_warehouse(settings, with_state=True)
    batches = stopped_batches(open_state_store(settings))
    if not batches:
        console.print("No batch was ever stopped.")
        return
    table = Table(show_edge=False)
    for column in ("table", "load", "status", "decided", "verdict / note"):
        table.add_column(column, overflow="fold")
    for batch in batches:
        status = batch["decision"] or "[red]stopped[/red]"
        decided = f"{batch['decided_by']} at {batch['decided_at']:%Y-%m-%d %H:%M}" if batch["decided_at"] else ""
        table.add_row(
            f"{batch['schema_name']}.{batch['table_name']}",
            batch["load_id"],
            status,
            escape(decided),
            escape(batch["decision_note"] or batch["verdict"] or ""),
        )
    console.print(table)


@quality_app.command("accept")
def quality_accept(
    table: Annotated[str, typer.Argument(help="The raw table, as schema.table (e.g. raw_crm.contacts).")],
    load_id: Annotated[str, typer.Argument(help="The stopped load, as `handoff quality status` lists it.")],
    reason: Annotated[str, typer.Option(help="Why the batch may go on as loaded; kept with the decision.")],
    by: Annotated[str | None, typer.Option(help="Who decides (default: the logged-in user).")] = None,
) -> None:
    """Let a stopped batch go on as loaded: the next run's checks pass it and say who accepted it."""
    import getpass

    from pipeline.quality.checks import NotStopped, accept_stopped_batch
    from pipeline.state import open_state_store

    settings = command_settings()
    reachable_warehouse(settings, with_state=True)
    decided_by = by or getpass.getuser()
    try:
        accept_stopped_batch(open_state_store(settings), table, load_id, decided_by, reason)
    except NotStopped as error:
        console.print(str(error), style="red", markup=False)
        raise typer.Exit(1) from None
    console.print(f"Accepted load {load_id} of {table} ({decided_by}: {reason}); the next run goes on with it.")


@app.command()
def report(
    out: Annotated[
        Path | None, typer.Option(help="Where to write the HTML file (default <home>/reports/funnel.html).")
    ] = None,
) -> None:
    """Write the funnel, its hand-offs' SLAs and the plan as charts in one HTML file that needs no network."""
    from pipeline.report import NothingToReport, served_warehouse, write_report

    settings = command_settings()
    home = DataHome.of(settings).prepare()
    reachable_warehouse(settings)
    target = out or home.reports / "funnel.html"
    try:
        titles = write_report(settings, target)
    except NothingToReport as missing:
        console.print(str(missing), style="red", markup=False)
        raise typer.Exit(2) from None
    console.print(f"Report from {served_warehouse(settings).describe()}: {target}")
    for title in titles:
        console.print(f"  {title}", markup=False)


@app.command()
def ui(port: Annotated[int, typer.Option(help="The webserver's port.")] = 3000) -> None:
    """Open the Dagster UI on this project's instance (webserver and daemon)."""
    DataHome.of(command_settings()).prepare()
    dagster = str(Path(sys.executable).parent / "dagster")
    os.execv(dagster, [dagster, "dev", "-w", str(PROJECT_DIR / "workspace.yaml"), "--port", str(port)])


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def dbt(context: typer.Context) -> None:
    """Run dbt on the project's models with the configured target, the funnel contract's seeds
    rendered first: `handoff dbt build`, `handoff dbt build --select marts`, `handoff dbt docs generate`."""
    from pipeline.transform.contract import write_contract_seeds

    settings = command_settings()
    DataHome.of(settings).prepare()  # the profile finds the warehouse through HANDOFF_HOME
    write_contract_seeds(DBT_PROJECT_DIR)
    executable = str(Path(sys.executable).parent / "dbt")
    os.chdir(DBT_PROJECT_DIR)
    os.execv(
        executable, [executable, *context.args, "--profiles-dir", str(DBT_PROJECT_DIR), "--target", settings.dbt_target]
    )


def _add_installed_commands() -> None:
    """Command groups other installed packages add (the sandbox's ``sandbox``, ``demo`` and ``bench``):
    the product knows them only through the ``handoff.commands`` entry point group."""
    for entry_point in entry_points(group="handoff.commands"):
        entry_point.load()(app)


def main() -> None:
    """The ``handoff`` command: the product's commands and those of the installed extensions."""
    _add_installed_commands()
    app()


if __name__ == "__main__":
    main()
