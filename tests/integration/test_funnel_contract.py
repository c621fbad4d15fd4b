"""The funnel contract file: validated with clear errors, and turned into the seeds dbt reads."""

import csv
import shutil

import pytest
import yaml

from pipeline.settings import DBT_PROJECT_DIR
from pipeline.transform.contract import ContractError, load_contract, write_contract_seeds


@pytest.fixture
def project(tmp_path):
    """A copy of the project's contract in an otherwise empty dbt project folder."""
    (tmp_path / "models").mkdir()
    shutil.copy(DBT_PROJECT_DIR / "funnel_contract.yml", tmp_path / "funnel_contract.yml")
    return tmp_path


def edit(project, change) -> None:
    path = project / "funnel_contract.yml"
    contract = yaml.safe_load(path.read_text())
    change(contract)
    path.write_text(yaml.safe_dump(contract, allow_unicode=True))


def seed(project, name) -> list[dict]:
    with open(project / "seeds" / "contract" / f"{name}.csv") as file:
        return list(csv.DictReader(file))


def test_the_shipped_contract_is_valid_and_ends_with_a_catch_all_policy():
    contract = load_contract(DBT_PROJECT_DIR / "funnel_contract.yml")
    last = contract.sla_policies[-1]
    assert last.mql_reason is None and last.segment is None
    assert 0 < contract.at_risk_fraction < 1


def test_a_changed_policy_reaches_the_seeds_and_the_docs(project):
    def slower_demo_requests(contract):
        contract["sla_policies"][0]["first_touch_minutes"] = 90

    write_contract_seeds(project)
    assert seed(project, "contract_sla_policies")[0]["first_touch_minutes"] == "60"
    edit(project, slower_demo_requests)
    write_contract_seeds(project)
    assert seed(project, "contract_sla_policies")[0] == {
        "policy": "demo_request",
        "mql_reason": "hand_raise",
        "segment": "",
        "first_touch_minutes": "90",
        "decision_minutes": "960",
        "precedence": "1",
    }
    assert (
        "| 1 | demo_request | hand_raise | any | 90 | 960 |" in (project / "models" / "funnel_contract.md").read_text()
    )


def test_team_globs_become_like_patterns(project):
    write_contract_seeds(project)
    assert [row["team_pattern"] for row in seed(project, "contract_sales_teams")] == ["SDR %", "AE %"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c.update(at_risk_fraction=1.5), "at_risk_fraction"),
        (lambda c: c["sla_policies"][-1].update(mql_reason="score"), "last sla policy must match every handoff"),
        (lambda c: c["business_calendar"]["default"].update(time_zone="Mars/Olympus"), "unknown time zone"),
        (lambda c: c["lifecycle_stages"].update(lead="prospect"), "stages not in `stages`"),
        (lambda c: c["attribution"]["u_shaped"].update(first=0.7), r"u_shaped first \+ last"),
        (lambda c: c.update(surprise=True), "surprise"),
    ],
)
def test_a_broken_contract_fails_naming_the_key_and_writes_no_seeds(project, change, message):
    edit(project, change)
    with pytest.raises(ContractError, match=message):
        write_contract_seeds(project)
    assert not (project / "seeds").exists()


def test_a_contract_without_weekend_days_writes_an_empty_seed_with_its_declared_columns(project):
    (project / "seeds").mkdir()
    shutil.copy(DBT_PROJECT_DIR / "seeds" / "_seeds.yml", project / "seeds" / "_seeds.yml")
    edit(project, lambda contract: contract["business_calendar"].update(weekend_days=[]))
    write_contract_seeds(project)
    assert (project / "seeds" / "contract" / "contract_weekend_days.csv").read_text() == "iso_weekday,weekday\n"
