"""Handoff's pipeline: the Dagster code location (ingest, transform, quality, feedback, automation)."""

from pipeline.settings import apply_environment_defaults

apply_environment_defaults()
