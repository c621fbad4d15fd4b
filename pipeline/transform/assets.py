"""dbt models, seeds and tests as Dagster assets and asset checks.

Models are keyed ``[schema, model]`` (``marts/dim_people``) and sources ``[source, table]``
(``raw_crm/contacts``), the keys the ingestion assets use, so dbt's lineage joins dlt's.
"""

import json
import shutil
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, DbtProject, dbt_assets

from pipeline.automation.analytics import ANALYTICS_TAG, follows_changes
from pipeline.settings import DBT_PROJECT_DIR, WAREHOUSE_POOL, Settings
from pipeline.transform.contract import write_contract_seeds
from pipeline.transform.headlines import headline_asset, with_headlines
from pipeline.warehouse import Warehouse


class HandoffDbtTranslator(DagsterDbtTranslator):
    def __init__(self, analytics_condition: dg.AutomationCondition):
        super().__init__()
        self._analytics_condition = analytics_condition

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return dg.AssetKey([dbt_resource_props["source_name"], dbt_resource_props["name"]])
        return dg.AssetKey([dbt_resource_props["schema"], dbt_resource_props["name"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        # The folder under models/ (staging, marts, feedback) is the layer; seeds are reference data.
        if dbt_resource_props["resource_type"] == "seed":
            return "reference"
        return dbt_resource_props["fqn"][1]

    def get_automation_condition(self, dbt_resource_props: Mapping[str, Any]) -> dg.AutomationCondition | None:
        # What the CRM and the alerts do not read follows the webhooks' runs instead of riding in them.
        if ANALYTICS_TAG in dbt_resource_props.get("tags", []):
            return self._analytics_condition
        return None


def dbt_project(settings: Settings) -> DbtProject:
    project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR, target=settings.dbt_target)
    write_contract_seeds(DBT_PROJECT_DIR)
    # The manifest is generated, not committed: parse when it is missing (fresh clone) or older
    # than the project's files (a model was edited), and on every load under `dagster dev`.
    if not manifest_is_current(project) or project.preparer.using_dagster_dev():
        dbt_cli(project).cli(["parse", "--quiet"], target_path=project.target_path).wait()
    return project


def manifest_is_current(project: DbtProject) -> bool:
    if not project.manifest_path.exists():
        return False
    built = project.manifest_path.stat().st_mtime
    sources = [
        DBT_PROJECT_DIR / "dbt_project.yml",
        *(
            path
            for folder in ("models", "macros", "seeds", "tests")
            for path in (DBT_PROJECT_DIR / folder).rglob("*")
            if path.is_file()
        ),
    ]
    return all(path.stat().st_mtime <= built for path in sources)


def dbt_cli(project: DbtProject) -> DbtCliResource:
    # dbt is installed beside this interpreter, which need not be on PATH (a venv not activated).
    executable = shutil.which("dbt") or str(Path(sys.executable).parent / "dbt")
    return DbtCliResource(project_dir=project, dbt_executable=executable)


class DbtBuildConfig(dg.Config):
    as_of: str | None = None
    """Evaluate SLA clocks as of this UTC moment (``YYYY-MM-DD HH:MM:SS``) instead of now: a replay."""


def as_of_timestamp(value: str) -> str:
    """``value`` as the UTC timestamp dbt's ``as_of`` variable takes. The models put it into SQL,
    so only a moment that parses goes on, written by this function."""
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise dg.Failure(f"as_of must be a moment such as '2026-03-04 16:00:00' (UTC), not {value!r}") from None
    if moment.tzinfo:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def build_transform_defs(settings: Settings) -> dg.Definitions:
    project = dbt_project(settings)

    @dbt_assets(
        manifest=project.manifest_path,
        project=project,
        dagster_dbt_translator=HandoffDbtTranslator(follows_changes(settings)),
        pool=WAREHOUSE_POOL,
    )
    def dbt_models(context: dg.AssetExecutionContext, config: DbtBuildConfig, dbt: DbtCliResource):
        # The contract may have changed since the code location loaded.
        write_contract_seeds(DBT_PROJECT_DIR)
        # dbt's unit tests check the SQL, not the data, so they belong to the test suite (which
        # runs them on the built warehouse), not to every run: on a small company they are half
        # of a build's time, and a webhook's run waits for them on its way to the CRM.
        args = ["build", "--exclude-resource-type", "unit_test"]
        if config.as_of:
            args += ["--vars", json.dumps({"as_of": as_of_timestamp(config.as_of)})]
        invocation = dbt.cli(args, context=context)
        # The marts' headline numbers are read once dbt is done: DuckDB lets no other process open
        # its file while dbt holds it. From the first event of a mart with headlines on, events
        # wait, as Dagster takes a multi-asset's outputs in dependency order only.
        held: list = []
        try:
            for event in invocation.stream():
                if held or headline_asset(event):
                    held.append(event)
                else:
                    yield event
        except Exception:
            yield from held  # a failed build still reports what it built
            raise
        yield from with_headlines(held, Warehouse.of(settings), context.log)
        # Each invocation writes its own target folder in the project (about 16 MB for the medium
        # company): kept when the build fails, for its dbt.log, removed once it succeeded, or a
        # deployment running a build for every webhook would fill the disk.
        shutil.rmtree(invocation.target_path, ignore_errors=True)

    return dg.Definitions(
        assets=[dbt_models],
        resources={"dbt": dbt_cli(project)},
    )
