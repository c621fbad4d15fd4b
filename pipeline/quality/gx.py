"""Validate a pandas batch against a suite kept as JSON, with GX Core and no GX project on disk.

Only the Data Docs page of each validation is written, under the data home, so a failing check
links to a page a person can read.

An expectation whose ``meta`` gives ``wave_min_count`` is a rule each record is held to, judged
per record: the records that break it are *flagged* (counted and named by key; the dbt staging
models keep their bad values out of the funnel), and the expectation fails only for a wave of them,
more than its ``mostly`` allows **and** at least ``wave_min_count`` records, so one typo in a batch
of three stops nothing while a feed gone wrong still does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.settings import apply_environment_defaults

FAILING_SAMPLE_SIZE = 10
DOCS_SITE = "handoff"


class SuiteError(ValueError):
    """A suite file that cannot be used as written."""


@dataclass(frozen=True)
class FailedExpectation:
    expectation: str
    column: str | None
    severity: str
    unexpected_count: int | None
    unexpected_percent: float | None
    sample: list[Any]
    failing_rows: list[dict[str, Any]]
    observed_value: Any = None

    failing_keys: list[dict[str, Any]] = field(default_factory=list)  # keys alone: what may be shown anywhere


@dataclass(frozen=True)
class Validation:
    suite: str
    rows: int
    evaluated: int
    failures: list[FailedExpectation]
    docs_url: str | None = None
    flagged: list[FailedExpectation] = field(default_factory=list)  # broken by records, not by a wave

    @property
    def records_flagged(self) -> int:
        return sum(flag.unexpected_count or 0 for flag in self.flagged)

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def critical(self) -> bool:
        """Whether an expectation whose failure is an incident failed, not only a warning."""
        return any(failure.severity == "critical" for failure in self.failures)


def read_suite(path: Path) -> dict:
    try:
        suite = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise SuiteError(f"cannot read expectation suite {path}: {error}") from error
    if not suite.get("name") or not suite.get("expectations"):
        raise SuiteError(f"expectation suite {path} needs a name and at least one expectation")
    return suite


# The expectation kwargs that name the columns an expectation reads.
COLUMN_KWARGS = ("column", "column_A", "column_B", "column_list", "column_set")


def suite_columns(suite_definition: dict) -> set[str]:
    """Every column the suite's expectations read, their row conditions' included."""
    columns: set[str] = set()
    for expectation in suite_definition["expectations"]:
        kwargs = expectation.get("kwargs", {})
        for kwarg in COLUMN_KWARGS:
            named = kwargs.get(kwarg)
            columns |= {named} if isinstance(named, str) else set(named or ())
        columns |= _condition_columns(kwargs.get("row_condition"))
    return columns


def _condition_columns(condition: object) -> set[str]:
    """The columns a row condition compares (``{"column": {"name": ...}}``, nested in and/or)."""
    if isinstance(condition, list):
        return set().union(*map(_condition_columns, condition))
    if not isinstance(condition, dict):
        return set()
    column = condition.get("column")
    named = {column["name"]} if isinstance(column, dict) and isinstance(column.get("name"), str) else set()
    return named.union(*(_condition_columns(value) for key, value in condition.items() if key != "column"))


def build_suite(suite_definition: dict):
    """The GX suite for a definition read from JSON, refusing one GX cannot read whole."""
    apply_environment_defaults()
    import great_expectations as gx  # imported late: it is slow to import and only checks need it

    suite = gx.ExpectationSuite(**suite_definition)
    if len(suite.expectations) != len(suite_definition["expectations"]):
        # GX only logs an invalid expectation and drops it; a guard that silently shrinks is no guard.
        raise SuiteError(f"suite {suite.name} has expectations GX cannot read; check their type and kwargs")
    return suite


def _context(docs_dir: Path | None):
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    sites = (
        {}
        if docs_dir is None
        else {
            DOCS_SITE: {
                "class_name": "SiteBuilder",
                "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)},
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            }
        }
    )
    return gx.get_context(
        mode="ephemeral",
        project_config=DataContextConfig(
            store_backend_defaults=InMemoryStoreBackendDefaults(),
            data_docs_sites=sites,
            progress_bars=ProgressBarsConfig(globally=False),
        ),
    )


def validate(
    frame: pd.DataFrame,
    suite_definition: dict,
    parameters: dict[str, Any],
    *,
    key_columns: tuple[str, ...] = (),
    docs_dir: Path | None = None,
    run_name: str = "adhoc",
) -> Validation:
    """Validate ``frame``; failing rows are named by ``key_columns``. With ``docs_dir`` the
    validation's Data Docs page is written there (no index: the check links to the page itself, and
    an index rebuilt from every past validation would cost more with each run)."""
    suite = build_suite(suite_definition)
    context = _context(docs_dir)
    batch = (
        context.data_sources.add_pandas("handoff")
        .add_dataframe_asset(name=suite.name)
        .add_batch_definition_whole_dataframe("batch")
        .get_batch(batch_parameters={"dataframe": frame})
    )
    result_format = {"result_format": "SUMMARY", "partial_unexpected_count": FAILING_SAMPLE_SIZE}
    if key_columns:
        result_format["unexpected_index_column_names"] = list(key_columns)
    result = batch.validate(context.suites.add(suite), expectation_parameters=parameters, result_format=result_format)
    failures, flagged = [], []
    for outcome in result.results:
        unexpected = outcome.result.get("unexpected_count") or 0
        wave_min_count = (outcome.expectation_config.meta or {}).get("wave_min_count")
        if wave_min_count is not None and unexpected and (outcome.success or unexpected < wave_min_count):
            flagged.append(_failed(outcome, key_columns))
        elif not outcome.success:
            failures.append(_failed(outcome, key_columns))
    docs_url = _build_docs(context, suite.name, run_name, batch.id, result) if docs_dir is not None else None
    return Validation(
        suite=suite.name,
        rows=len(frame),
        evaluated=len(result.results),
        failures=failures,
        docs_url=docs_url,
        flagged=flagged,
    )


def _failed(outcome, key_columns: tuple[str, ...]) -> FailedExpectation:
    rows = [row for row in outcome.result.get("partial_unexpected_index_list") or [] if isinstance(row, dict)]
    return FailedExpectation(
        expectation=outcome.expectation_config.type,
        column=outcome.expectation_config.kwargs.get("column"),
        severity=str(getattr(outcome.expectation_config.severity, "value", "critical")),
        unexpected_count=outcome.result.get("unexpected_count"),
        unexpected_percent=outcome.result.get("unexpected_percent"),
        sample=[_plain(value) for value in outcome.result.get("partial_unexpected_list", [])],
        failing_rows=[{name: _plain(value) for name, value in row.items()} for row in rows],
        observed_value=_plain(outcome.result.get("observed_value")),
        failing_keys=[{name: _plain(row[name]) for name in key_columns if name in row} for row in rows],
    )


def _build_docs(context, suite_name: str, run_name: str, batch_id: str, result) -> str:
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    identifier = ValidationResultIdentifier(
        expectation_suite_identifier=ExpectationSuiteIdentifier(name=suite_name),
        run_id=RunIdentifier(run_name=run_name),
        batch_identifier=batch_id,
    )
    context.validation_results_store.set(identifier, result)
    context.build_data_docs(site_names=[DOCS_SITE], resource_identifiers=[identifier], build_index=False)
    [site] = context.get_docs_sites_urls(resource_identifier=identifier, site_name=DOCS_SITE)
    return site["site_url"]


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        value = value.item()
    return value if isinstance(value, (str, int, float, bool, type(None))) else str(value)
