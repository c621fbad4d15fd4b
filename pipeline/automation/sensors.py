"""Sensors that turn changes in the systems into incremental runs of what those changes touch.

Webhooks journaled by the intake service start a run of the system they came from, with the dbt
models, checks and write-back downstream of it; each run's key names the newest event it covers,
so an event never starts two runs. Website events arrive as files, which a polling sensor watches.
"""

from __future__ import annotations

import json
import os

import dagster as dg

from pipeline.intake.journal import IntakeJournal
from pipeline.settings import DataHome

# Seconds between two looks at the intake journal and the landing folders. A look is a query of
# the journal and a listing of the folders, cheap next to the run it may start, and a webhook
# waits for the next look: this is the floor of the latency from a change to its feedback.
SENSOR_INTERVAL_S = int(os.environ.get("HANDOFF_SENSOR_INTERVAL_SECONDS", "5"))


def changes_job(system: str, dataset: str) -> dg.UnresolvedAssetJobDefinition:
    # A dlt transformer's table (CRM property history, associations) is loaded by its source's step
    # but is no asset of its own, so what depends on it is found from the dataset's keys, sources included.
    loaded = dg.AssetSelection.key_prefixes([dataset])
    return dg.define_asset_job(
        name=f"{system}_changes",
        selection=dg.AssetSelection.key_prefixes([dataset], include_sources=True).downstream()
        - dg.AssetSelection.key_prefixes([dataset], include_sources=True) | loaded,
        description=f"Load what changed in {dataset}, then rebuild, check and write back what depends on it.",
    )


CHANGE_JOBS = {"crm": changes_job("crm", "raw_crm"), "marketing": changes_job("marketing", "raw_marketing"),
               "web": changes_job("web", "raw_web")}


def webhook_sensor(source: str) -> dg.SensorDefinition:
    @dg.sensor(name=f"{source}_webhooks", job=CHANGE_JOBS[source], minimum_interval_seconds=SENSOR_INTERVAL_S,
               default_status=dg.DefaultSensorStatus.RUNNING,
               description=f"Starts {source}_changes when the intake service has journaled new {source} webhooks.")
    def on_webhooks(context: dg.SensorEvaluationContext):
        journal_path = DataHome.from_env().intake_journal
        if not journal_path.exists():
            return dg.SkipReason("no intake journal yet: is `handoff intake serve` running?")
        journal = IntakeJournal(journal_path)
        try:
            count, newest = journal.since(source, int(context.cursor or 0))
        finally:
            journal.close()
        if not count:
            return dg.SkipReason(f"no new {source} webhooks")
        context.update_cursor(str(newest))
        return dg.RunRequest(run_key=f"{source}-webhooks-{newest}",
                             tags={"handoff/trigger": f"{source}_webhooks", "handoff/events": str(count)})

    return on_webhooks


def landing_files(home: DataHome) -> dict[str, int]:
    """Every website-event file and its size: a file appears or grows when events arrive."""
    return {str(path): path.stat().st_size for folder in home.web_event_folders() if folder.exists()
            for path in folder.rglob("*.ndjson")}


@dg.sensor(name="web_event_files", job=CHANGE_JOBS["web"], minimum_interval_seconds=SENSOR_INTERVAL_S,
           default_status=dg.DefaultSensorStatus.RUNNING,
           description="Starts web_changes when website-event files appear or grow in the landing folders.")
def web_event_files(context: dg.SensorEvaluationContext):
    seen = json.loads(context.cursor) if context.cursor else {}
    files = landing_files(DataHome.from_env())
    changed = sorted(path for path, size in files.items() if seen.get(path) != size)
    if not changed:
        return dg.SkipReason("no new website events")
    context.update_cursor(json.dumps(files))
    total = sum(files.values())
    return dg.RunRequest(run_key=f"web-files-{len(files)}-{total}",
                         tags={"handoff/trigger": "web_event_files", "handoff/files_changed": str(len(changed))})


def build_sensor_defs() -> dg.Definitions:
    return dg.Definitions(jobs=list(CHANGE_JOBS.values()),
                          sensors=[webhook_sensor("crm"), webhook_sensor("marketing"), web_event_files])
