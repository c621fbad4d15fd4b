"""Each dlt source against the sandbox over HTTP: a full load equals the source, table by table;
an incremental run loads what changed; bad records are quarantined; faults are survived. The sandbox
serves the shared ``tiny_dataset`` (tests/conftest.py)."""

import contextlib
import dataclasses
import json
from datetime import UTC, datetime

import dlt
import duckdb
import httpx
import pytest

from pipeline.ingest import marketing as marketing_ingest
from pipeline.ingest.crm import FUNNEL_PROPERTIES, OBJECT_TYPES, crm_source
from pipeline.ingest.marketing import marketing_source
from pipeline.ingest.web import web_source
from sandbox.dataset import iso
from sandbox.faults import Faults
from sandbox.server import SandboxServer, build_sandbox
from sandbox.website import export_web_events


def serve(tmp_path, company, faults: Faults | None = None):
    faults = faults or Faults(pressure=100)
    return SandboxServer(build_sandbox(tmp_path / "state", dataset_dir=company, faults=faults))


def pipeline(tmp_path, dataset):
    return dlt.pipeline(
        pipeline_name=f"test_{dataset}",
        destination=dlt.destinations.duckdb(str(tmp_path / "w.duckdb")),
        dataset_name=dataset,
        pipelines_dir=str(tmp_path / "dlt"),
    )


def query(tmp_path, sql):
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as db:
        return db.execute(sql).fetchall()


def rows(company, table):
    return [json.loads(line) for line in (company / f"{table}.ndjson").read_text().splitlines()]


def crm(server):
    connection = server.connections()["crm"]
    return crm_source(base_url=connection["base_url"], access_token=connection["access_token"])


def marketing(server):
    connection = server.connections()["marketing"]
    return marketing_source(
        base_url=connection["base_url"], client_id=connection["client_id"], client_secret=connection["client_secret"]
    )


def test_crm_full_load_equals_the_source_then_increments_apply_exactly_the_changes(tmp_path, tiny_dataset):
    objects = [o for o in rows(tiny_dataset, "crm_objects") if o.get("mergedInto") is None]
    with serve(tmp_path, tiny_dataset) as server:
        load = pipeline(tmp_path, "raw_crm")
        load.run(crm(server))
        for object_type in OBJECT_TYPES:
            expected = sorted(o["id"] for o in objects if o["objectType"] == object_type)
            assert sorted(r[0] for r in query(tmp_path, f"select id from raw_crm.{object_type}")) == expected, (
                object_type
            )
        assert query(tmp_path, "select count(*) from raw_crm.owners") == [(len(rows(tiny_dataset, "owners")),)]
        history = query(tmp_path, "select count(*) from raw_crm.property_history where property = 'lifecyclestage'")
        assert history[0][0] >= len([o for o in objects if o["objectType"] == "contacts"])

        contact = next(o for o in objects if o["objectType"] == "contacts" and not o["archived"])
        token = server.connections()["crm"]["access_token"]
        httpx.post(
            server.connections()["crm"]["base_url"] + "/crm/v3/objects/contacts/batch/update",
            headers={"Authorization": f"Bearer {token}"},
            json={"inputs": [{"id": contact["id"], "properties": {"jobtitle": "Chief Handoff Officer"}}]},
        )
        load.run(crm(server))
        loaded = load.last_trace.last_normalize_info.row_counts
        # Only the changed contact (and, per type, the newest record the cursor re-reads) comes back.
        assert loaded["contacts"] <= 2
        assert query(tmp_path, f"select jobtitle from raw_crm.contacts where id = '{contact['id']}'") == [
            ("Chief Handoff Officer",)
        ]
        assert query(tmp_path, "select count(*) from raw_crm.contacts")[0][0] == len(
            [o for o in objects if o["objectType"] == "contacts"]
        )


def test_crm_load_survives_rate_limits_and_server_errors(tmp_path, tiny_dataset):
    with serve(tmp_path, tiny_dataset, Faults(pressure=0.2, error_rate=0.1, seed=5)) as server:
        pipeline(tmp_path, "raw_crm").run(crm(server))
    expected = [
        o for o in rows(tiny_dataset, "crm_objects") if o["objectType"] == "contacts" and o.get("mergedInto") is None
    ]
    assert query(tmp_path, "select count(*) from raw_crm.contacts") == [(len(expected),)]


def test_every_crm_property_is_loaded_unless_a_setting_narrows_them(tmp_path, tiny_dataset):
    with serve(tmp_path, tiny_dataset, Faults(pressure=100)) as server:
        connection = server.connections()["crm"]
        defined = {
            p["name"]
            for p in httpx.get(
                f"{connection['base_url']}/crm/v3/properties/contacts",
                headers={"Authorization": f"Bearer {connection['access_token']}"},
            ).json()["results"]
        }

        def columns(only_properties: str) -> set[str]:
            name = f"raw_crm_{len(only_properties)}"
            source = crm_source(
                base_url=connection["base_url"],
                access_token=connection["access_token"],
                object_types=("contacts",),
                only_properties=only_properties,
            )
            pipeline(tmp_path, name).run(source.with_resources("contacts"))
            found = query(
                tmp_path,
                f"select column_name from information_schema.columns where table_schema = '{name}'"
                " and table_name = 'contacts'",
            )
            return {row[0] for row in found}

        assert defined - {"hs_object_id"} <= columns("")
        narrowed = columns("hs_analytics_num_visits")
    assert "hs_analytics_num_visits" in narrowed and set(FUNNEL_PROPERTIES["contacts"]) <= narrowed
    assert "hs_email_domain" not in narrowed and len(narrowed) < len(defined) / 4


def test_marketing_full_load_equals_the_source_and_survives_token_expiry(tmp_path, tiny_dataset):
    activities = rows(tiny_dataset, "marketing_activities")
    with serve(tmp_path, tiny_dataset, Faults(pressure=100, token_ttl_s=1)) as server:
        load = pipeline(tmp_path, "raw_marketing")
        load.run(marketing(server))
        assert query(tmp_path, "select count(*) from raw_marketing.activities") == [(len(activities),)]
        lead_ids = {a["leadId"] for a in activities}
        live_leads = {
            lead["id"]
            for lead in rows(tiny_dataset, "marketing_leads")
            if not lead.get("deletedAt") and not lead.get("mergedInto")
        }
        assert {r[0] for r in query(tmp_path, "select id from raw_marketing.leads")} == lead_ids & live_leads
        assert query(tmp_path, "select count(*) from raw_marketing.programs") == [
            (len(rows(tiny_dataset, "marketing_programs")),)
        ]

        load.run(marketing(server))
        assert load.last_trace.last_normalize_info.row_counts.get("activities", 0) == 0
        # Memberships are read in full once, then only those updated since.
        assert load.last_trace.last_normalize_info.row_counts.get("program_members", 0) == 0
        with server.sandbox.store.transaction() as db:
            program_id, lead_id, body = db.execute(
                "select program_id, lead_id, body from marketing_program_members order by program_id, lead_id limit 1"
            ).fetchone()
            member = {**json.loads(body), "progressionStatus": "Attended", "updatedAt": iso(datetime.now(UTC))}
            db.execute(
                "update marketing_program_members set updated_at = ?, body = ? where program_id = ? and lead_id = ?",
                (member["updatedAt"], json.dumps(member), program_id, lead_id),
            )
        load.run(marketing(server))
        assert load.last_trace.last_normalize_info.row_counts.get("program_members", 0) == 1
        assert query(
            tmp_path,
            f"select status_name from raw_marketing.program_members where program_id = {program_id} "
            f"and lead_id = {lead_id}",
        ) == [("Attended",)]
        members = len(rows(tiny_dataset, "marketing_program_members"))
        assert query(tmp_path, "select count(*) from raw_marketing.program_members") == [(members,)]


def test_activity_types_are_discovered_and_a_type_added_to_the_load_starts_from_the_beginning(tmp_path, tiny_dataset):
    activities = rows(tiny_dataset, "marketing_activities")
    visits = [a for a in activities if a["activityTypeId"] == 1]
    with serve(tmp_path, tiny_dataset, Faults(pressure=100)) as server:
        connection = server.connections()["marketing"]
        load = pipeline(tmp_path, "raw_marketing")

        def source(**narrowed):
            return marketing_source(
                base_url=connection["base_url"],
                client_id=connection["client_id"],
                client_secret=connection["client_secret"],
                **narrowed,
            ).with_resources("activity_types", "activities")

        load.run(source(only_activity_types="Visit Webpage"))
        assert query(tmp_path, "select count(*) from raw_marketing.activities") == [(len(visits),)]
        load.run(source(only_activity_types=""))  # every type the instance describes
        loaded = query(tmp_path, "select count(*), count(distinct id) from raw_marketing.activities")
        assert loaded == [(len(activities), len(activities))]
        described = query(tmp_path, "select count(*) from raw_marketing.activity_types")[0][0]
        assert described > 10  # more than one call's worth, so the types are read in groups
        with pytest.raises(Exception, match="does not describe: Unicorn Sighting"):
            load.run(source(only_activity_types="1,Unicorn Sighting"))


def test_web_events_exported_by_the_website_load_once(tmp_path, tiny_dataset):
    with serve(tmp_path, tiny_dataset) as server:
        export_web_events(server.sandbox.store, tmp_path / "events")
    load = pipeline(tmp_path, "raw_web")
    load.run(web_source(folders=[str(tmp_path / "events")]))
    assert query(tmp_path, "select count(*) from raw_web.events") == [(len(rows(tiny_dataset, "web_events")),)]
    load.run(web_source(folders=[str(tmp_path / "events")]))
    assert query(tmp_path, "select count(*) from raw_web.events") == [(len(rows(tiny_dataset, "web_events")),)]


def test_a_spent_daily_quota_ends_the_run_cleanly_and_the_next_run_resumes_without_gaps(tmp_path, tiny_dataset):
    expected = len(rows(tiny_dataset, "marketing_activities"))
    with serve(tmp_path, tiny_dataset) as server:
        stand_in = server.sandbox.marketing
        stand_in.limits = dataclasses.replace(stand_in.limits, marketing_daily_quota=6)
        load = pipeline(tmp_path, "raw_marketing")
        load.run(marketing(server))  # stops at the quota without failing
        partial = query(tmp_path, "select count(*) from raw_marketing.activities")[0][0]
        assert 0 < partial < expected

        stand_in.limits = dataclasses.replace(stand_in.limits, marketing_daily_quota=50_000)
        load.run(marketing(server))
        assert query(tmp_path, "select count(*), count(distinct id) from raw_marketing.activities") == [
            (expected, expected)
        ]


def test_activity_pages_read_ahead_while_leads_are_looked_up_still_send_one_call_at_a_time(
    tmp_path, tiny_dataset, monkeypatch
):
    # A chunk a page: the tiny company's activities would otherwise be read before the first look-up.
    monkeypatch.setattr(marketing_ingest, "ACTIVITY_CHUNK", marketing_ingest.PAGE_SIZE)
    with serve(tmp_path, tiny_dataset) as server:
        limiter = server.sandbox.marketing.limiter
        admit, in_flight, most_in_flight = limiter.admit, [0], [0]

        @contextlib.contextmanager
        def counting_admit(limits):
            with admit(limits):
                in_flight[0] += 1
                most_in_flight[0] = max(most_in_flight[0], in_flight[0])
                try:
                    yield
                finally:
                    in_flight[0] -= 1

        limiter.admit = counting_admit
        pipeline(tmp_path, "raw_marketing").run(marketing(server))
    assert query(tmp_path, "select count(*) from raw_marketing.activities") == [
        (len(rows(tiny_dataset, "marketing_activities")),)
    ]
    assert query(tmp_path, "select count(*) from raw_marketing.leads")[0][0] > 0
    assert most_in_flight == [1]
