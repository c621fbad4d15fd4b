"""The Dagster code location (``workspace.yaml`` loads it): Handoff's definitions as the environment
and the connection file configure them."""

from pipeline.code_location import build_definitions
from pipeline.settings import load_settings

defs = build_definitions(load_settings())
