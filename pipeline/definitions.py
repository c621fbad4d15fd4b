"""The Dagster code location: one module per integration, merged here."""

import dagster as dg

from pipeline.alerts.assets import build_alert_defs
from pipeline.automation.jobs import build_automation_defs
from pipeline.automation.sensors import build_sensor_defs
from pipeline.feedback.assets import build_feedback_defs
from pipeline.ingest.assets import build_ingest_defs
from pipeline.quality.checks import build_quality_defs
from pipeline.resources import default_resources
from pipeline.serving import with_published_marts
from pipeline.settings import DataHome
from pipeline.transform.assets import build_transform_defs

home = DataHome.from_env().prepare()

defs = dg.Definitions.merge(
    build_ingest_defs(home),
    with_published_marts(home, build_transform_defs()),
    build_quality_defs(),
    build_feedback_defs(),
    build_alert_defs(),
    build_automation_defs(),
    build_sensor_defs(),
    # DuckDB takes one writer at a time, so steps run one after another in the run's process.
    dg.Definitions(resources=default_resources(home), executor=dg.in_process_executor),
)
