"""Handoff's pipeline: the Dagster code location (ingest, transform, quality, feedback, automation)."""

from pipeline.settings import disable_telemetry

disable_telemetry()
