"""Ingest: one dlt source per system, loaded into the warehouse's raw schemas."""
