"""Handoff's Dagster definitions, one module per integration merged here, as the settings configure them."""

import dagster as dg

from pipeline.alerts.assets import build_alert_defs
from pipeline.automation.analytics import build_analytics_defs
from pipeline.automation.jobs import build_automation_defs
from pipeline.automation.sensors import build_sensor_defs
from pipeline.feedback.assets import build_feedback_defs
from pipeline.ingest.assets import build_ingest_defs
from pipeline.quality.checks import build_quality_defs
from pipeline.resources import default_resources
from pipeline.serving import with_published_marts
from pipeline.settings import DataHome, Settings, apply_environment_defaults
from pipeline.transform.assets import build_transform_defs
from pipeline.warehouse import Warehouse


def build_definitions(settings: Settings) -> dg.Definitions:
    """Handoff's assets, checks, jobs, schedules and sensors as ``settings`` configure them. Builds,
    writes nothing: the data home is prepared by the command that runs something."""
    # Every process that loads the location (webserver, daemon, run workers) keeps its tools quiet.
    apply_environment_defaults()
    # A server warehouse that cannot be used fails the location's load with the fix, before any run.
    Warehouse.of(settings).check_reachable()
    home = DataHome.of(settings)
    return dg.Definitions.merge(
        build_ingest_defs(home),
        with_published_marts(settings, build_transform_defs(settings)),
        build_quality_defs(settings),
        build_feedback_defs(settings),
        build_alert_defs(settings),
        build_automation_defs(settings),
        build_sensor_defs(settings),
        build_analytics_defs(settings),
        # DuckDB takes one writer at a time, so steps run one after another in the run's process.
        dg.Definitions(resources=default_resources(settings), executor=dg.in_process_executor),
    )
