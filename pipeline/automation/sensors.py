"""Sensors that turn changes in the systems into incremental runs of what those changes touch.

Webhooks journaled by the intake service start one run that loads the systems they came from, with
the dbt models, checks and write-back downstream of them; each run's key names the newest event it
covers, so an event never starts two runs. Website events arrive as files, which a polling sensor
watches.

Runs that talk to the systems start only when they are configured: without a CRM connection a
sensor skips with the reason instead of starting a run that would fail.
"""

from __future__ import annotations

import json

import dagster as dg

from pipeline.automation.analytics import HOT_PATH
from pipeline.automation.jobs import unconfigured_systems, waiting_run
from pipeline.ingest.assets import system_pipeline
from pipeline.ingest.web import loaded_offsets
from pipeline.intake.journal import IntakeJournal
from pipeline.recovery import fail_dead_runs
from pipeline.settings import DataHome, Settings


def changes_job(name: str, datasets: list[str], what: str) -> dg.UnresolvedAssetJobDefinition:
    # A dlt transformer's table (CRM property history, associations) is loaded by its source's step
    # but is no asset of its own, so what depends on it is found from the datasets' keys, sources included.
    prefixes = [[dataset] for dataset in datasets]
    loaded = dg.AssetSelection.key_prefixes(*prefixes)
    with_sources = dg.AssetSelection.key_prefixes(*prefixes, include_sources=True)
    return dg.define_asset_job(
        name=name,
        selection=(with_sources.downstream() - with_sources) & HOT_PATH | loaded,
        description=f"Load what changed in {what}, then rebuild, check, write back and alert on what depends "
        "on it; the analytics follow in a run of their own.",
    )


# The systems that send webhooks: their dataset, and what they are called.
WEBHOOK_SYSTEMS = {"crm": ("raw_crm", "the CRM"), "marketing": ("raw_marketing", "marketing automation")}
# By the systems whose webhooks are new (crm_changes, marketing_changes, crm_and_marketing_changes):
# handing a lead to sales changes both systems at once, and one run that loads both costs half of
# two runs that each rebuild everything downstream.
WEBHOOK_JOBS = {
    frozenset(systems): changes_job(
        "_and_".join(systems) + "_changes",
        [WEBHOOK_SYSTEMS[system][0] for system in systems],
        " and ".join(WEBHOOK_SYSTEMS[system][1] for system in systems),
    )
    for systems in (("crm",), ("marketing",), ("crm", "marketing"))
}
WEB_CHANGES_JOB = changes_job("web_changes", ["raw_web"], "the website's events")


def webhooks(context: dg.SensorEvaluationContext):
    """Starts a run of crm_changes, marketing_changes or crm_and_marketing_changes, after whichever
    systems the intake service has journaled new webhooks from."""
    if unconfigured := unconfigured_systems():
        return unconfigured
    journal_path = DataHome.from_env().intake_journal
    if not journal_path.exists():
        return dg.SkipReason("no intake journal yet: is `handoff intake serve` running?")
    if waiting := waiting_run(context.instance, "webhooks"):
        # The cursor stays: what the waiting run's job leaves out (the other system) is asked for later.
        return dg.SkipReason(f"run {waiting.run_id} has not started yet and will load the new changes")
    seen = int(context.cursor or 0)  # the journal numbers every event, of every system, in order
    journal = IntakeJournal(journal_path)
    try:
        new = {system: journal.since(system, seen) for system in WEBHOOK_SYSTEMS}
    finally:
        journal.close()
    new = {system: (count, newest) for system, (count, newest) in new.items() if count}
    if not new:
        return dg.SkipReason("no new webhooks")
    newest = max(newest for _, newest in new.values())
    context.update_cursor(str(newest))
    return dg.RunRequest(
        run_key=f"webhooks-{newest}",
        job_name=WEBHOOK_JOBS[frozenset(new)].name,
        tags={
            "handoff/trigger": "webhooks",
            **{f"handoff/{system}_events": str(count) for system, (count, _) in new.items()},
        },
    )


def landing_files(home: DataHome) -> dict[str, int]:
    """Every website-event file and its size, by resolved path as the load keeps them: a file
    appears or grows when events arrive."""
    return {
        str(path): path.stat().st_size
        for folder in home.web_event_folders()
        if folder.exists()
        for path in folder.resolve().rglob("*.ndjson")
    }


def already_loaded(home: DataHome) -> dict[str, int]:
    """How far earlier loads (a demo, a sync from the terminal) read each file: where a new sensor
    starts, so its first look does not reload them."""
    if not (home.dlt_pipelines / "handoff_web").exists():  # making the pipeline would create its folder
        return {}
    return loaded_offsets(system_pipeline("web", home))


def web_event_files(context: dg.SensorEvaluationContext):
    """Starts web_changes when website-event files appear or grow in the landing folders."""
    if unconfigured := unconfigured_systems():
        return unconfigured
    if waiting := waiting_run(context.instance, "web_event_files"):
        return dg.SkipReason(f"run {waiting.run_id} has not started yet and will load the new events")
    home = DataHome.from_env()
    seen = json.loads(context.cursor) if context.cursor else already_loaded(home)
    files = landing_files(home)
    changed = sorted(path for path, size in files.items() if seen.get(path) != size)
    context.update_cursor(json.dumps(files))
    if not changed:
        return dg.SkipReason("no new website events")
    total = sum(files.values())
    return dg.RunRequest(
        run_key=f"web-files-{len(files)}-{total}",
        tags={"handoff/trigger": "web_event_files", "handoff/files_changed": str(len(changed))},
    )


def dead_runs(context: dg.SensorEvaluationContext):
    """Fails runs whose process died (killed, crashed) and frees their pool slots, so the next run
    that writes the warehouse does not wait for them forever."""
    recovered = fail_dead_runs(context.instance)
    for line in recovered:
        context.log.warning(line)
    return dg.SkipReason("; ".join(recovered) or "no dead runs")


# Often enough that a dead run's slot is free within a minute.
DEAD_RUN_INTERVAL_S = 30


def build_sensor_defs(settings: Settings) -> dg.Definitions:
    # Seconds between two looks at the intake journal and the landing folders. A look is a query of
    # the journal and a listing of the folders, cheap next to the run it may start, and a webhook
    # waits for the next look: this is the floor of the latency from a change to its feedback.
    interval = settings.sensor_interval_seconds
    sensors = [
        dg.SensorDefinition(
            name="webhooks",
            evaluation_fn=webhooks,
            jobs=list(WEBHOOK_JOBS.values()),
            minimum_interval_seconds=interval,
            default_status=dg.DefaultSensorStatus.RUNNING,
            description=webhooks.__doc__,
        ),
        dg.SensorDefinition(
            name="web_event_files",
            evaluation_fn=web_event_files,
            job=WEB_CHANGES_JOB,
            minimum_interval_seconds=interval,
            default_status=dg.DefaultSensorStatus.RUNNING,
            description=web_event_files.__doc__,
        ),
        dg.SensorDefinition(
            name="dead_runs",
            evaluation_fn=dead_runs,
            minimum_interval_seconds=DEAD_RUN_INTERVAL_S,
            default_status=dg.DefaultSensorStatus.RUNNING,
            description=dead_runs.__doc__,
        ),
    ]
    return dg.Definitions(jobs=[*WEBHOOK_JOBS.values(), WEB_CHANGES_JOB], sensors=sensors)
