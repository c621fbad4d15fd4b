"""The whole asset graph against the sandbox over HTTP, through a real Dagster instance, once on
each warehouse target (DuckDB with its SQLite operational store; PostgreSQL with a PostgreSQL one)."""

import json
import os
import re
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlparse

import dagster as dg
import pytest
import sqlalchemy as sa
import uvicorn

from pipeline.alerts.schedule import NoticeSchedule
from pipeline.code_location import build_definitions
from pipeline.report import CHARTS, read_charts, served_warehouse
from pipeline.services import free_port
from pipeline.settings import DBT_PROJECT_DIR, DataHome, load_settings
from pipeline.state import open_state_store
from pipeline.transform.contract import load_contract
from pipeline.warehouse import Warehouse
from sandbox.live import LiveCompany, LiveSettings
from sandbox.server import SandboxServer, build_sandbox
from sandbox.webhooks import WebhookSettings


@pytest.fixture(scope="module")
def home(target_home):
    return target_home


@pytest.fixture(scope="module")
def sandbox(home, malformed_tiny_dataset, tmp_path_factory):
    """The tiny company over HTTP, pinned, with malformed records of every kind (the gate flags them
    and goes on); what changes in live mode is sent as webhooks to ``intake_port``, where a test that
    wants them starts the intake service."""
    intake_port = free_port()
    webhooks = WebhookSettings(
        crm_url=f"http://127.0.0.1:{intake_port}/webhooks/crm",
        marketing_url=f"http://127.0.0.1:{intake_port}/webhooks/marketing",
    )
    with SandboxServer(
        build_sandbox(tmp_path_factory.mktemp("sandbox"), dataset_dir=malformed_tiny_dataset, webhooks=webhooks)
    ) as server:
        server.intake_port = intake_port
        server.publish(home.connection_file)
        yield server
    home.connection_file.unlink()


@pytest.fixture(scope="module")
def synced(home, sandbox):
    """The module's first full sync: tests that read what any sync leaves behind share it."""
    result = run_full_sync()
    assert result.success
    return result


def definitions() -> dg.Definitions:
    """The code location as the module's target configures it."""
    return build_definitions(load_settings())


def run_full_sync():
    return (
        definitions()
        .resolve_job_def("full_sync")
        .execute_in_process(instance=dg.DagsterInstance.get(), raise_on_error=False)
    )


def warehouse_rows(sql: str, **parameters) -> list[tuple]:
    with Warehouse.of(load_settings()).read() as reader:
        return [tuple(row.values()) for row in reader.rows(sql, **parameters)]


def change_warehouse(sql: str, **parameters) -> None:
    """Change a model behind the pipeline's back, as a user with write rights could."""
    engine = sa.create_engine(Warehouse.of(load_settings()).url())
    with engine.begin() as connection:
        connection.execute(sa.text(sql), parameters)
    engine.dispose()


def state_rows(sql: str) -> list[tuple]:
    with open_state_store(load_settings()).begin() as connection:
        return [tuple(row) for row in connection.execute(sa.text(sql))]


def naive_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def listed_contacts(sandbox) -> list[dict]:
    return [
        c
        for c in sandbox.sandbox.dataset.rows("crm_objects")
        if c["objectType"] == "contacts" and not c["archived"] and c.get("mergedInto") is None
    ]


def true_stages(sandbox) -> dict[str, str]:
    """The generator's ground truth: the funnel stage each live contact's person is in now."""
    return {
        person["crmContactId"]: person["stage"]
        for person in sandbox.sandbox.dataset.rows("truth_people")
        if person["crmContactId"] is not None
    }


def materialization_metadata(result, *key: str) -> dict[str, dg.MetadataValue]:
    [event] = [e for e in result.get_asset_materialization_events() if e.asset_key == dg.AssetKey(list(key))]
    return dict(event.materialization.metadata)


def writeback_metadata(result, target: str = "crm_contacts") -> dict:
    return {name: value.value for name, value in materialization_metadata(result, "writeback", target).items()}


def test_definitions_load_every_asset_check_job_and_schedule():
    from pipeline.definitions import defs

    graph = defs.resolve_asset_graph()
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    assert {
        "raw_crm/contacts",
        "staging/stg_crm__contacts",
        "marts/dim_people",
        "feedback/feedback_crm_contacts",
        "writeback/crm_contacts",
    } <= keys
    checks = {check.name for check in graph.asset_check_keys}
    assert "gx_raw_crm__contacts" in checks and "unique_dim_people_person_id" in checks
    assert {
        "gx_raw_crm__contacts__live_rows",
        "gx_source_freshness",
        "gx_marts__fct_handoffs",
        "gx_feedback__feedback_crm_contacts",
        "gx_feedback__feedback_marketing_leads",
    } <= checks
    assert defs.resolve_job_def("full_sync") is not None
    assert defs.resolve_schedule_def("nightly_full_sync").cron_schedule == "0 2 * * *"
    repository = defs.get_repository_def()
    repository.load_all_definitions()  # resolves every job, schedule and sensor, raising if one is broken
    assert {job.name for job in repository.get_all_jobs()} >= {"full_sync"}
    owners = {
        key: graph.get(dg.AssetKey(key.split("/"))).owners
        for key in ("staging/stg_crm__contacts", "marts/fct_handoffs", "writeback/crm_contacts", "alerting/sla_notices")
    }
    assert owners == {
        "staging/stg_crm__contacts": ["team:data-engineering"],
        "marts/fct_handoffs": ["team:revenue-analytics"],
        "writeback/crm_contacts": ["team:revenue-operations"],
        "alerting/sla_notices": ["team:revenue-operations"],
    }
    assert {"sla_clock_schedule", "daily_sla_digest_schedule"} <= {s.name for s in repository.schedule_defs}
    assert "operator_run_failures" in {s.name for s in repository.sensor_defs}
    # The raw table and its dbt source are one asset: the graph is one piece from API to CRM.
    assert dg.AssetKey(["raw_crm", "contacts"]) in graph.get(dg.AssetKey(["staging", "stg_crm__contacts"])).parent_keys


def test_full_sync_builds_the_mart_and_writes_back_then_a_rerun_sends_nothing(home, sandbox, synced):
    result = synced
    assert all(evaluation.passed for evaluation in result.get_asset_check_evaluations())
    # The dbt build's own target folder went once it succeeded.
    assert not list((DBT_PROJECT_DIR / "target").glob(f"dbt_models-{result.run_id[:7]}-*"))

    contacts = listed_contacts(sandbox)
    assert len(contacts) > 10
    assert warehouse_rows("select count(crm_contact_id) from marts.dim_people") == [(len(contacts),)]

    stages = true_stages(sandbox)
    for contact in contacts:
        assert contact_properties(sandbox, contact["id"])["handoff_funnel_stage"] == stages[contact["id"]]
    assert writeback_metadata(result)["records_sent"] == len(contacts)

    # Both directions are visible in the systems themselves.
    handed_over = warehouse_rows("""select crm_contact_id, handoff_sla_state, handoff_mql_reason
                                    from feedback.feedback_crm_contacts
                                    where handoff_sla_state is not null""")
    outcomes = dict(
        warehouse_rows('select marketing_lead_id, "handoffSalesOutcome" from feedback.feedback_marketing_leads')
    )
    assert handed_over and outcomes
    for contact_id, sla_state, mql_reason in handed_over:
        properties = contact_properties(sandbox, contact_id)
        assert (properties["handoff_sla_state"], properties["handoff_mql_reason"]) == (sla_state, mql_reason)
    for lead_id, outcome in outcomes.items():
        assert sandbox.sandbox.marketing.records.lead(int(lead_id)).get("handoffSalesOutcome") == outcome
    assert writeback_metadata(result, "marketing_leads")["records_accepted"] == len(outcomes)

    fed_back = "select * from feedback.feedback_crm_contacts order by crm_contact_id"
    before = warehouse_rows(fed_back)
    with a_bi_client_reading_every_mart() as (passes, errors):
        rerun = run_full_sync()
    assert rerun.success
    # What BI tools read stayed readable, whole, while the run rebuilt and republished the marts.
    assert errors == [] and len(passes) >= 2
    assert {"dim_people", "fct_handoffs", "mart_sla_performance", "mart_revenue_plan"} <= set(passes[-1])
    assert all(done["dim_people"] >= len(contacts) and done["fct_handoffs"] > 0 for done in passes)
    # Nothing changed in the systems; an SLA clock may have crossed a moment between the two runs (a
    # slow machine, a business day's end), and that record, only that one, goes again.
    moved_by_the_clock = set(warehouse_rows(fed_back)) - set(before)
    assert writeback_metadata(rerun)["records_sent"] == len(moved_by_the_clock)
    assert writeback_metadata(rerun, "marketing_leads")["records_sent"] == 0
    assert warehouse_rows("select count(*) from raw_crm.contacts") == [(len(contacts),)]
    # Under 100 contacts and 300 leads: one call each, and none on the rerun.
    assert state_rows("select system, count(*) from writeback_batches group by 1 order by 1") == [
        ("crm", 1),
        ("marketing", 1),
    ]


def bi_client_url() -> str:
    """The SQLAlchemy URL a BI tool connects with, as the README gives it: the served copy of the
    marts, read-only, on DuckDB; the warehouse itself on PostgreSQL."""
    settings = load_settings()
    if settings.dbt_target == "duckdb":
        return f"duckdb:///{DataHome.of(settings).served_marts}?access_mode=read_only"
    return Warehouse.of(settings).url().render_as_string(hide_password=False)


@contextmanager
def a_bi_client_reading_every_mart():
    """A BI tool through SQLAlchemy: it lists the marts, then reads each of them over and over (as
    dashboards refresh) until the block ends; the passes it completed (rows per mart) and the errors
    it met."""
    passes: list[dict[str, int]] = []
    errors: list[Exception] = []
    stop = threading.Event()
    engine = sa.create_engine(bi_client_url(), poolclass=sa.NullPool)
    with engine.connect() as connection:
        inspector = sa.inspect(connection)
        marts = inspector.get_table_names(schema="marts") + inspector.get_view_names(schema="marts")

    def read() -> None:
        while (not stop.is_set() or not passes) and len(errors) < 10:
            try:
                with engine.connect() as connection:
                    passes.append(
                        {m: connection.execute(sa.text(f'select count(*) from marts."{m}"')).scalar() for m in marts}
                    )
            except sa.exc.SQLAlchemyError as error:
                errors.append(error)
            time.sleep(0.1)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        yield passes, errors
    finally:
        stop.set()
        reader.join(timeout=120)
        engine.dispose()


def malformed_people(sandbox) -> list[dict]:
    return [person for person in sandbox.sandbox.dataset.rows("truth_people") if person["malformed"]]


def well_formed_contacts(sandbox) -> list[str]:
    """Live contacts of people the generator left well formed: a test that changes them leaves the
    company's malformed records as they are."""
    malformed = {contact for person in malformed_people(sandbox) for contact in person["crmContactIds"]}
    return [c["id"] for c in listed_contacts(sandbox) if c["id"] not in malformed]


def test_a_wave_of_unknown_stages_stops_the_write_back_until_the_contacts_are_fixed(home, sandbox, synced):
    # Five contacts move to a lifecycle stage Handoff does not know: a wave, not a typo.
    contacts = well_formed_contacts(sandbox)
    wave, untouched = contacts[:5], contacts[5]
    change_contacts(sandbox, wave, lifecyclestage="astronaut")
    writes_before = funnel_stage_writes(sandbox, untouched)
    ledger_before = _ledger_rows(home)

    result = run_full_sync()

    [gx_check] = [e for e in result.get_asset_check_evaluations() if e.check_name == "gx_raw_crm__contacts"]
    assert not gx_check.passed and gx_check.severity == dg.AssetCheckSeverity.ERROR
    failed = gx_check.metadata["failed_expectations"].value
    assert [(f["expectation"], f["column"]) for f in failed] == [
        ("expect_column_values_to_be_in_set", "lifecyclestage")
    ]
    # Named by key, never by the bad value (the company's own malformed contacts may be named too).
    named = {key["id"] for key in failed[0]["failing_keys"]}
    assert named & set(wave) and "sample" not in failed[0]
    assert f"id={wave[0]}" in gx_check.description  # the failing records, named by key
    assert Path(urlparse(gx_check.metadata["data_docs"].value).path).is_relative_to(home.data_docs)
    materialized = {e.asset_key for e in result.get_asset_materialization_events()}
    assert dg.AssetKey(["raw_crm", "contacts"]) in materialized  # the load itself is kept
    assert dg.AssetKey(["writeback", "crm_contacts"]) not in materialized
    assert dg.AssetKey(["writeback", "marketing_leads"]) not in materialized
    assert dg.AssetKey(["alerting", "sla_notices"]) not in materialized
    assert _ledger_rows(home) == ledger_before
    assert funnel_stage_writes(sandbox, untouched) == writes_before

    # Fixed at the source, the contacts come back with the next load and the stopped batch is done.
    change_contacts(sandbox, wave, lifecyclestage="lead")
    fixed = run_full_sync()
    assert fixed.success
    [gx_check] = [e for e in fixed.get_asset_check_evaluations() if e.check_name == "gx_raw_crm__contacts"]
    assert [batch["status"] for batch in gx_check.metadata["stopped_batches"].value] == ["reloaded"]


def test_one_malformed_email_among_three_changed_contacts_is_flagged_and_the_write_back_runs(home, sandbox, synced):
    contacts = well_formed_contacts(sandbox)[-3:]
    typo = contacts[0]
    email = contact_properties(sandbox, typo)["email"]
    malformed = email.replace("@", "@@")
    change_contacts(sandbox, contacts)
    change_contacts(sandbox, [typo], email=malformed)

    result = run_full_sync()

    assert result.success
    assert writeback_metadata(result)["records_refused"] == 0
    [gx_check] = [e for e in result.get_asset_check_evaluations() if e.check_name == "gx_raw_crm__contacts"]
    # The batch holds the three and whatever else the load's look-back window re-read: one bad e-mail is no wave.
    assert gx_check.passed and gx_check.metadata["rows_validated"].value >= 3
    flags = gx_check.metadata["flagged_records"].value
    flagged = {(flag["expectation"], key["id"]) for flag in flags for key in flag["sample_keys"]}
    assert ("expect_column_values_to_match_regex", typo) in flagged
    assert warehouse_rows(
        "select rule, disposition, reason from quality.quality_record_flags "
        "where source_system = 'crm' and object_type = 'contacts' and record_id = :typo",
        typo=typo,
    ) == [("malformed_email", "flagged", "not a well-formed e-mail address: it joins no identities")]
    # The contact is still in the funnel; its address joins nothing and is shown nowhere.
    [(shown,)] = warehouse_rows("select email from marts.dim_people where crm_contact_id = :typo", typo=typo)
    assert shown != malformed
    identifiers = "select count(*) from intermediate.int_identity__identifiers where identifier = :bad"
    assert warehouse_rows(identifiers, bad=malformed) == [(0,)]

    change_contacts(sandbox, [typo], email=email)
    assert run_full_sync().success


def test_every_malformed_record_is_flagged_with_its_reason_and_no_bad_value_goes_anywhere(home, sandbox, synced):
    flags = {
        (system, object_type, record_id): rule
        for system, object_type, record_id, rule in warehouse_rows(
            "select source_system, object_type, record_id, rule from quality.quality_record_flags"
        )
    }
    bad_values = set()
    people = malformed_people(sandbox)
    assert {person["defect"] for person in people} == {"invalid_email", "missing_timestamp", "unknown_enum_value"}
    for person in people:
        lead = ("marketing", "leads", str(person["marketingLeadId"]))
        contact = ("crm", "contacts", person["crmContactIds"][0]) if person["crmContactIds"] else None
        if person["defect"] == "invalid_email":
            assert flags[lead] == "malformed_email", person
            assert contact is None or flags[contact] == "malformed_email", person
            bad_values.add(person["email"])
        elif person["defect"] == "missing_timestamp":
            assert flags[lead] == "missing_timestamp", person
        elif contact is not None:
            assert flags[contact] == "unknown_value", person
            bad_values.add("prospect")
        else:
            assert flags[lead] == "unknown_value", person
            bad_values.add("Prospect")
    # Nothing the write-back sends, and no identifier that joins people, carries a bad value.
    sent = warehouse_rows("select * from feedback.feedback_crm_contacts") + warehouse_rows(
        "select * from feedback.feedback_marketing_leads"
    )
    assert not bad_values & {str(value) for row in sent for value in row}
    assert not bad_values & {
        identifier for (identifier,) in warehouse_rows("select identifier from intermediate.int_identity__identifiers")
    }


def test_a_sixty_percent_drop_in_contacts_stops_the_write_back_until_they_are_back(home, sandbox, synced):
    contacts = [c["id"] for c in listed_contacts(sandbox)]
    archived = contacts[: round(len(contacts) * 0.6)]
    set_archived(sandbox, archived, True)
    ledger_before = _ledger_rows(home)

    result = run_full_sync()

    [drop] = [e for e in result.get_asset_check_evaluations() if e.check_name == "gx_raw_crm__contacts__live_rows"]
    assert not drop.passed and drop.severity == dg.AssetCheckSeverity.ERROR
    assert drop.metadata["live_rows"].value == len(contacts) - len(archived)
    assert drop.metadata["previous_live_rows"].value == len(contacts)
    materialized = {e.asset_key for e in result.get_asset_materialization_events()}
    # The other systems' loads and their checks are kept; nothing downstream of the contacts runs.
    assert {dg.AssetKey(["raw_crm", "contacts"]), dg.AssetKey(["raw_marketing", "leads"])} <= materialized
    assert not materialized & {
        dg.AssetKey(["marts", "dim_people"]),
        dg.AssetKey(["writeback", "crm_contacts"]),
        dg.AssetKey(["writeback", "marketing_leads"]),
        dg.AssetKey(["alerting", "sla_notices"]),
    }
    assert _ledger_rows(home) == ledger_before

    set_archived(sandbox, archived, False)
    restored = run_full_sync()
    assert restored.success
    assert all(e.passed for e in restored.get_asset_check_evaluations() if e.check_name.startswith("gx_"))


def test_handoff_feedback_dry_run_shows_the_diff_and_sends_nothing_then_the_write_back_sends_it(home, sandbox, synced):
    [(contact_id,)] = warehouse_rows("select min(crm_contact_id) from feedback.feedback_crm_contacts")
    change_warehouse(
        "update feedback.feedback_crm_contacts set handoff_sla_state = 'breached' where crm_contact_id = :contact",
        contact=contact_id,
    )
    ledger_before = _ledger_rows(home)

    dry = handoff("feedback", "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert re.search(rf"{contact_id}\s.*handoff_sla_state\s.*\sbreached", dry.stdout)
    assert "1 records, 1 values would be sent" in dry.stdout
    assert "0 records, 0 values would be sent" in dry.stdout  # nothing for marketing automation
    assert _ledger_rows(home) == ledger_before
    assert contact_properties(sandbox, contact_id).get("handoff_sla_state") != "breached"

    # The same dry run as run config, for a run started from the UI.
    as_config = (
        definitions()
        .resolve_job_def("writeback")
        .execute_in_process(
            instance=dg.DagsterInstance.get(),
            run_config={"ops": {"writeback__crm_contacts": {"config": {"dry_run": True}}}},
        )
    )
    metadata = writeback_metadata(as_config)
    assert (metadata["dry_run"], metadata["changes_planned"], metadata["records_sent"]) == (True, 1, 0)
    assert "breached" in metadata["diff_preview"]
    assert _ledger_rows(home) == ledger_before

    sent = handoff("feedback")
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert "Written back to CRM contacts: 1 records in 1 batches" in sent.stdout
    assert contact_properties(sandbox, contact_id)["handoff_sla_state"] == "breached"


def test_handoff_query_reads_the_warehouse_for_people_and_scripts_and_writes_nothing(home, sandbox, synced):
    people = len(listed_contacts(sandbox))
    as_json = handoff(
        "query",
        "select count(crm_contact_id) as people, max(mql_at) as latest from marts.dim_people "
        "cross join (select max(mql_at) as mql_at from marts.fct_handoffs) as handoffs",
        "--format",
        "json",
    )
    assert as_json.returncode == 0, as_json.stdout + as_json.stderr
    [row] = json.loads(as_json.stdout)
    assert row["people"] == people  # a number, not text
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", row["latest"])
    as_csv = handoff(
        "query", "select crm_contact_id from marts.dim_people where crm_contact_id is not null", "--format", "csv"
    )
    assert as_csv.stdout.splitlines()[0] == "crm_contact_id" and len(as_csv.stdout.splitlines()) == people + 1

    as_written = handoff("query", "select '100%' as share, ':word' as label", "--format", "json")
    assert json.loads(as_written.stdout) == [{"share": "100%", "label": ":word"}]  # no bind parameters

    refused = handoff("query", "delete from marts.dim_people")
    assert refused.returncode == 2 and "Refused: `handoff query` only reads: DELETE refused" in refused.stdout
    # The guard aside, the connection itself cannot write.
    with Warehouse.of(load_settings()).read() as reader, pytest.raises(sa.exc.DBAPIError, match="read-only|read only"):
        reader.rows("delete from marts.dim_people")
    assert warehouse_rows("select count(crm_contact_id) from marts.dim_people") == [(people,)]


def test_handoff_report_draws_every_chart_from_the_marts_in_one_file_that_needs_no_network(home, sandbox, synced):
    written = handoff("report")
    assert written.returncode == 0, written.stdout + written.stderr
    page = (DataHome.of(load_settings()).reports / "funnel.html").read_text()
    # plotly.js is written into the page, once; no script is fetched from anywhere.
    assert not re.search(r"<script[^>]*\bsrc=", page) and page.count("plotly.js v") == 1
    assert all(f'id="chart-{position}"' in page for position in range(len(CHARTS)))
    for chart in read_charts(served_warehouse(load_settings())):
        points = sum(len(trace.x if trace.x is not None else trace.y) for trace in chart.figure.data)
        assert points > 0, f"{chart.title} draws nothing"
        assert chart.title in written.stdout


def handoff(*args: str) -> subprocess.CompletedProcess:
    """The `handoff` command on this module's data home, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COLUMNS": "200"},
    )


def contact_properties(sandbox, contact_id: str) -> dict:
    row = sandbox.sandbox.store.query_one(
        "select properties from crm_objects where object_type = 'contacts' and id = ?", (int(contact_id),)
    )
    return json.loads(row["properties"])


def funnel_stage_writes(sandbox, contact_id: str) -> int:
    return sandbox.sandbox.store.query_one(
        """select count(*) as writes from crm_property_history
           where object_type = 'contacts' and id = ? and property = 'handoff_funnel_stage'""",
        (int(contact_id),),
    )["writes"]


def change_contacts(sandbox, contact_ids: list[str], **properties: str) -> None:
    """Set contacts' properties and mark them changed now, as a CRM user editing them would."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    with sandbox.sandbox.store.transaction() as db:
        for contact_id in contact_ids:
            for name, value in properties.items():
                db.execute(
                    """update crm_objects set properties = json_set(properties, '$.' || ?, ?)
                       where object_type = 'contacts' and id = ?""",
                    (name, value, int(contact_id)),
                )
            db.execute(
                "update crm_objects set updated_at = ? where object_type = 'contacts' and id = ?",
                (now, int(contact_id)),
            )


def set_archived(sandbox, contact_ids: list[str], archived: bool) -> None:
    """Archive contacts, or bring them back as changed now, as the CRM does."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    with sandbox.sandbox.store.transaction() as db:
        db.executemany(
            """update crm_objects set archived = ?, archived_at = ?, updated_at = ?
                          where object_type = 'contacts' and id = ?""",
            [(int(archived), now if archived else None, now, int(contact_id)) for contact_id in contact_ids],
        )


def _ledger_rows(home) -> int:
    [(rows,)] = state_rows("select count(*) from writeback_record_outcomes")
    return rows


def test_credentials_never_reach_logs_run_storage_or_the_warehouse(home, sandbox, synced):
    """After full syncs, the CRM token appears nowhere in the data home but the connection file."""
    token = sandbox.connections()["crm"]["access_token"].encode()
    leaks = [
        path
        for path in home.root.rglob("*")
        if path.is_file() and path != home.connection_file and token in path.read_bytes()
    ]
    assert leaks == []


def test_the_data_home_holds_a_duckdb_file_only_when_duckdb_is_the_warehouse(home, synced):
    """On PostgreSQL no process of a sync opens (and so creates) a DuckDB file; on DuckDB there are
    the warehouse and the copy of the marts for BI tools."""
    duckdb_files = sorted(str(path.relative_to(home.root)) for path in home.root.rglob("*.duckdb"))
    expected = {"duckdb": ["serving/funnel.duckdb", "warehouse.duckdb"], "postgres": []}
    assert duckdb_files == expected[load_settings().dbt_target]


# The generator names engagement object types; the mart names the activity.
ENGAGEMENT_TYPES = {"calls": "call", "emails": "email", "meetings": "meeting", "tasks": "task"}


def truth_by_handoff(sandbox) -> dict[tuple[str, str], dict]:
    """The generator's ground truth for every handoff the CRM still shows: contacts merged into
    another are gone from HubSpot's API with their history, so their handoffs cannot be seen."""
    merged_away = {
        c["id"]
        for c in sandbox.sandbox.dataset.rows("crm_objects")
        if c["objectType"] == "contacts" and c.get("mergedInto") is not None
    }
    return {
        (h["crmContactId"], h["mqlAt"]): h
        for h in sandbox.sandbox.dataset.rows("truth_handoffs")
        if h["crmContactId"] not in merged_away
    }


def stamp(moment: datetime | None) -> str | None:
    if moment is not None:
        moment = naive_utc(moment)
    return None if moment is None else moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def test_every_handoff_matches_the_generators_ground_truth(home, sandbox, synced):
    """Handoff by handoff, the mart's SLA figures equal what the simulated company really did."""
    truth = truth_by_handoff(sandbox)
    columns = [
        "crm_contact_id",
        "mql_at",
        "owner_id",
        "policy",
        "first_touch_allowance_minutes",
        "first_touch_due_at",
        "first_touch_at",
        "first_touch_type",
        "first_touch_id",
        "business_minutes_to_first_touch",
        "decision",
        "decided_at",
        "rejection_reason",
        "outcome",
        "deal_id",
        "won_amount",
    ]
    rows = [
        dict(zip(columns, row, strict=True))
        for row in warehouse_rows(f"select {', '.join(columns)} from marts.fct_handoffs")
    ]
    assert len(truth) >= 10
    mart = {(row["crm_contact_id"], stamp(row["mql_at"])): row for row in rows}
    assert mart.keys() == truth.keys()
    for key, expected in truth.items():
        row = mart[key]
        assert row["owner_id"] == expected["ownerId"], key
        assert row["policy"] == expected["policy"], key
        assert row["first_touch_allowance_minutes"] == expected["policyMinutes"], key
        if expected["firstTouchDueAt"] is not None:  # the generator leaves dues past its horizon open
            assert stamp(row["first_touch_due_at"]) == expected["firstTouchDueAt"], key
        assert stamp(row["first_touch_at"]) == expected["firstTouchAt"], key
        assert row["first_touch_type"] == ENGAGEMENT_TYPES.get(expected["firstTouchType"]), key
        assert row["first_touch_id"] == expected["firstTouchId"], key
        minutes = row["business_minutes_to_first_touch"]
        assert (None if minutes is None else float(minutes)) == expected["firstTouchDelayMinutes"], key
        assert row["decision"] == expected["decision"], key
        assert stamp(row["decided_at"]) == expected["decidedAt"], key
        assert row["rejection_reason"] == expected["rejectionReason"], key
        assert row["outcome"] == expected["outcome"], key
        assert row["deal_id"] == expected["dealId"], key
        won = row["won_amount"]
        assert (None if won is None else float(won)) == expected["wonAmount"], key


def dbt_on_the_warehouse(target_path: Path, *args: str) -> subprocess.CompletedProcess:
    dbt = Path(sys.executable).parent / "dbt"
    completed = subprocess.run(
        [
            str(dbt),
            *args,
            "--project-dir",
            str(DBT_PROJECT_DIR),
            "--profiles-dir",
            str(DBT_PROJECT_DIR),
            "--target-path",
            str(target_path),
        ],
        capture_output=True,
        text=True,
    )
    assert completed.returncode == 0, completed.stdout[-3000:]
    return completed


def test_dbt_unit_tests_pass_on_the_built_warehouse(home, sandbox, synced, tmp_path):
    """The SQL's unit tests, which the pipeline's own builds leave out (see pipeline/transform/assets.py)."""
    dbt_on_the_warehouse(tmp_path, "test", "--select", "test_type:unit")
    results = json.loads((tmp_path / "run_results.json").read_text())["results"]
    assert len(results) >= 25 and {result["status"] for result in results} == {"pass"}


def test_dbt_docs_render_the_marts_and_the_funnel_contract(home, sandbox, synced, tmp_path):
    """`dbt docs generate` works on the built warehouse, every mart column is described, and the
    contract's docs block is there for the docs site."""
    dbt_on_the_warehouse(tmp_path, "docs", "generate")
    catalog = json.loads((tmp_path / "catalog.json").read_text())
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    marts = [
        node for node in manifest["nodes"].values() if node["resource_type"] == "model" and node["schema"] == "marts"
    ]
    assert {"fct_handoffs", "dim_people", "fct_attribution", "mart_funnel_conversion"} <= {m["name"] for m in marts}
    for mart in marts:
        assert mart["unique_id"] in catalog["nodes"], mart["name"]
        undocumented = [name for name, column in mart["columns"].items() if not column["description"]]
        assert undocumented == [], mart["name"]
    [contract_doc] = [doc for doc in manifest["docs"].values() if doc["name"] == "funnel_contract"]
    assert "demo_request" in contract_doc["block_contents"]


def run_sla_clock(as_of: datetime | None = None):
    """The SLA clock's job, as its schedule starts it, or replayed as of a moment."""
    run_config = {"ops": {"dbt_models": {"config": {"as_of": as_of.strftime("%Y-%m-%d %H:%M:%S")}}}} if as_of else {}
    result = (
        definitions()
        .resolve_job_def("sla_clock")
        .execute_in_process(instance=dg.DagsterInstance.get(), run_config=run_config, raise_on_error=False)
    )
    assert result.success
    return result


def test_the_marts_materializations_carry_the_headline_numbers_dagster_plots(home, sandbox, synced):
    plan = materialization_metadata(synced, "marts", "mart_revenue_plan")
    assert {"current_quarter/mqls", "current_quarter/mql_target", "current_quarter/won_revenue"} <= set(plan)

    metadata = materialization_metadata(run_sla_clock(), "marts", "fct_handoffs")
    # Dagster plots a metadata value run over run when it is a number.
    numbers = ("handoffs", "sla_met_rate", "sla_breached", "first_touch_business_minutes_p50", "acceptance_rate")
    assert all(isinstance(metadata[name], dg.FloatMetadataValue | dg.IntMetadataValue) for name in numbers)
    headlines = {name: value.value for name, value in metadata.items()}
    [(handoffs, met, stopped, p50, p90, accepted, decided)] = warehouse_rows(
        """select count(*) as handoffs,
                  sum(case when sla_state = 'met' then 1 else 0 end) as met,
                  sum(case when sla_state in ('met', 'breached') then 1 else 0 end) as stopped,
                  percentile_cont(0.5) within group (order by business_minutes_to_first_touch) as p50,
                  percentile_cont(0.9) within group (order by business_minutes_to_first_touch) as p90,
                  sum(case when decision = 'accepted' then 1 else 0 end) as accepted,
                  count(decision) as decided
           from marts.fct_handoffs"""
    )
    assert headlines["handoffs"] == handoffs > 0
    assert headlines["sla_met_rate"] == pytest.approx(met / stopped, abs=1e-4)
    assert headlines["first_touch_business_minutes_p50"] == pytest.approx(float(p50), abs=0.01)
    assert headlines["first_touch_business_minutes_p90"] == pytest.approx(float(p90), abs=0.01)
    assert headlines["acceptance_rate"] == pytest.approx(accepted / decided, abs=1e-4)
    breached = warehouse_rows(
        "select policy, sum(case when sla_state = 'breached' then 1 else 0 end) from marts.fct_handoffs group by 1"
    )
    assert {f"sla_breached_by_policy/{policy}": count for policy, count in breached} == {
        name: value for name, value in headlines.items() if name.startswith("sla_breached_by_policy/")
    }
    rejections = warehouse_rows(
        "select rejection_reason, count(*) from marts.fct_handoffs where rejection_reason is not null group by 1"
    )
    assert rejections and {f"rejections_by_reason/{reason}": count for reason, count in rejections} == {
        name: value for name, value in headlines.items() if name.startswith("rejections_by_reason/")
    }


ESCALATE_AFTER_MINUTES = load_contract(DBT_PROJECT_DIR / "funnel_contract.yml").alerts.escalate_after_minutes


def notices_for(receiver, handoff_id: str) -> list[str]:
    return [
        post["json"]["kind"]
        for post in receiver.posts
        if post["path"] == "/hook" and post["json"]["key"].startswith(f"{handoff_id}:")
    ]


@pytest.fixture
def intake(home, sandbox):
    """The intake service on the port the sandbox sends its webhooks to, journaling into the data home."""
    from pipeline.intake.app import WebhookSecrets, create_intake_app
    from pipeline.intake.journal import IntakeJournal

    journal = IntakeJournal(home.intake_journal)
    app = create_intake_app(journal, WebhookSecrets.load(home.connection_file))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=sandbox.intake_port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    yield journal
    server.should_exit = True
    thread.join(timeout=10)
    journal.close()


def test_an_mql_flows_from_webhook_to_the_crm_and_its_sla_alerts_arrive_once_each(
    home, sandbox, synced, intake, webhook_receiver, smtp_receiver, monkeypatch
):
    """Marketing hands a lead to sales in the live sandbox. Its webhooks reach intake, the sensor
    starts an incremental run of the systems they came from, the handoff appears in fct_handoffs and
    its SLA state on the CRM record. Nobody touches the lead: the clock, replayed a minute before and
    after the due time and past the escalation time, sends at-risk, breached and escalation notices
    once each to the JSON webhook, Slack and the owner's mailbox, catching up a breach notice the
    webhooks were down for."""
    from datetime import timedelta

    from pipeline.automation.sensors import webhooks

    monkeypatch.setenv("HANDOFF_ALERT_WEBHOOK_URL", f"{webhook_receiver.url}/hook")
    monkeypatch.setenv("HANDOFF_ALERT_SLACK_WEBHOOK_URL", f"{webhook_receiver.url}/slack")
    monkeypatch.setenv("HANDOFF_SMTP_HOST", smtp_receiver.hostname)
    monkeypatch.setenv("HANDOFF_SMTP_PORT", str(smtp_receiver.port))
    instance = dg.DagsterInstance.get()

    def evaluate_sensor(cursor: str | None):
        # Closed after use: an open context keeps an instance of its own as the session's current
        # definitions-state storage, which later definitions loads would find dead.
        with dg.build_sensor_context(instance=instance, cursor=cursor) as context:
            return webhooks(context), context.cursor

    nothing, cursor = evaluate_sensor(None)
    assert isinstance(nothing, dg.SkipReason)  # nothing journaled yet
    company = LiveCompany(sandbox.sandbox, LiveSettings(), "http://127.0.0.1:9/unused", "unused")

    handed_over = time.monotonic()
    contact_id = str(company.hand_over_a_lead())
    request = None
    while not isinstance(request, dg.RunRequest):
        assert time.monotonic() - handed_over < 60, "the webhook never reached intake"
        time.sleep(0.2)
        request, _ = evaluate_sensor(cursor)
    assert request.job_name in ("crm_changes", "crm_and_marketing_changes")
    run = (
        definitions()
        .resolve_job_def(request.job_name)
        .execute_in_process(instance=instance, tags=request.tags, raise_on_error=False)
    )
    assert run.success
    latency_s = time.monotonic() - handed_over
    [(handoff_id, mql_at, due_at, state, owner_email)] = warehouse_rows(
        """
        select handoffs.handoff_id, handoffs.mql_at, handoffs.first_touch_due_at, handoffs.sla_state, owners.email
        from marts.fct_handoffs as handoffs left join marts.dim_owners as owners using (owner_id)
        where handoffs.crm_contact_id = :contact order by handoffs.mql_at desc limit 1""",
        contact=contact_id,
    )
    mql_at, due_at = naive_utc(mql_at), naive_utc(due_at)
    assert datetime.now(UTC).replace(tzinfo=None) - mql_at < timedelta(minutes=10)
    assert state in ("open", "at_risk")
    crm_record = contact_properties(sandbox, contact_id)
    assert (crm_record["handoff_funnel_stage"], crm_record["handoff_sla_state"]) == ("mql", state)
    print(
        f"webhook to feedback in the CRM: {latency_s:.1f} s (sensor evaluated at once; the daemon "
        f"adds up to its interval)"
    )

    # What falls due after the run is scheduled for the sla_notices_due sensor, at its moment.
    schedule = NoticeSchedule(open_state_store(load_settings()))
    scheduled = {
        n.notice.kind: n.notify_at
        for n in schedule.due(due_at + timedelta(days=30))
        if n.notice.key.startswith(handoff_id)
    }
    assert scheduled["breached"] == due_at
    assert scheduled["escalated"] == due_at + timedelta(minutes=ESCALATE_AFTER_MINUTES)
    assert state == "at_risk" or mql_at < scheduled["at_risk"] < due_at

    run_sla_clock(due_at - timedelta(minutes=1))
    assert notices_for(webhook_receiver, handoff_id) == ["at_risk"]
    assert "at_risk" not in {n.notice.kind for n in schedule.due(due_at) if n.notice.key.startswith(handoff_id)}
    assert contact_properties(sandbox, contact_id)["handoff_sla_state"] == "at_risk"
    slack_titles = [post["json"]["text"] for post in webhook_receiver.posts if post["path"] == "/slack"]
    assert any(title.startswith("SLA at risk") for title in slack_titles)

    webhook_receiver.fail_next = 1_000  # the webhooks are down when the breach comes
    run_sla_clock(due_at + timedelta(minutes=1))
    assert notices_for(webhook_receiver, handoff_id) == ["at_risk"]
    webhook_receiver.fail_next = 0
    run_sla_clock(due_at + timedelta(minutes=2))  # back up: the breach is caught up, at risk not sent again
    assert notices_for(webhook_receiver, handoff_id) == ["at_risk", "breached"]

    run_sla_clock(due_at + timedelta(hours=5))
    assert notices_for(webhook_receiver, handoff_id) == ["at_risk", "breached", "escalated"]
    mails = [m for m in smtp_receiver.handler.messages if m["X-Handoff-Notice-Key"].startswith(f"{handoff_id}:")]
    assert [m["X-Handoff-Notice-Key"].split(":")[1] for m in mails] == ["at_risk", "breached", "escalated"]
    assert {m["To"] for m in mails} == {owner_email}
