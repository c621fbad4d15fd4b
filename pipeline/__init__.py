"""Handoff's pipeline: the Dagster code location (ingest, transform, quality, feedback, automation)."""
