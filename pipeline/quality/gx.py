"""Validate a pandas batch against a suite kept as JSON, with GX Core and nothing persisted."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.settings import apply_environment_defaults

FAILING_SAMPLE_SIZE = 10


class SuiteError(ValueError):
    """A suite file that cannot be used as written."""


@dataclass(frozen=True)
class FailedExpectation:
    expectation: str
    column: str | None
    unexpected_count: int | None
    unexpected_percent: float | None
    sample: list[Any]


@dataclass(frozen=True)
class Validation:
    suite: str
    rows: int
    evaluated: int
    failures: list[FailedExpectation]

    @property
    def passed(self) -> bool:
        return not self.failures


def read_suite(path: Path) -> dict:
    try:
        suite = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise SuiteError(f"cannot read expectation suite {path}: {error}") from error
    if not suite.get("name") or not suite.get("expectations"):
        raise SuiteError(f"expectation suite {path} needs a name and at least one expectation")
    return suite


def build_suite(suite_definition: dict):
    """The GX suite for a definition read from JSON, refusing one GX cannot read whole."""
    apply_environment_defaults()
    import great_expectations as gx  # imported late: it is slow to import and only checks need it

    suite = gx.ExpectationSuite(**suite_definition)
    if len(suite.expectations) != len(suite_definition["expectations"]):
        # GX only logs an invalid expectation and drops it; a guard that silently shrinks is no guard.
        raise SuiteError(f"suite {suite.name} has expectations GX cannot read; check their type and kwargs")
    return suite


def validate(frame: pd.DataFrame, suite_definition: dict, parameters: dict[str, Any]) -> Validation:
    import great_expectations as gx

    suite = build_suite(suite_definition)
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    batch = (context.data_sources.add_pandas("handoff")
             .add_dataframe_asset(name=suite.name)
             .add_batch_definition_whole_dataframe("batch")
             .get_batch(batch_parameters={"dataframe": frame}))
    result = batch.validate(context.suites.add(suite), expectation_parameters=parameters,
                            result_format={"result_format": "SUMMARY",
                                           "partial_unexpected_count": FAILING_SAMPLE_SIZE})
    failures = [
        FailedExpectation(
            expectation=outcome.expectation_config.type,
            column=outcome.expectation_config.kwargs.get("column"),
            unexpected_count=outcome.result.get("unexpected_count"),
            unexpected_percent=outcome.result.get("unexpected_percent"),
            sample=[_plain(value) for value in outcome.result.get("partial_unexpected_list", [])],
        )
        for outcome in result.results if not outcome.success
    ]
    return Validation(suite=suite.name, rows=len(frame), evaluated=len(result.results), failures=failures)


def _plain(value: Any) -> Any:
    return value if isinstance(value, (str, int, float, bool, type(None))) else str(value)
