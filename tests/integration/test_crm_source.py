"""The dlt CRM source against the sandbox over HTTP."""

import dlt
import duckdb

from pipeline.ingest.crm import crm_source
from sandbox.dataset import parse_iso


def load(tmp_path, connection):
    pipeline = dlt.pipeline(
        pipeline_name="crm_test",
        destination=dlt.destinations.duckdb(str(tmp_path / "w.duckdb")),
        dataset_name="raw_crm",
        pipelines_dir=str(tmp_path / "dlt"),
    )
    pipeline.run(crm_source(base_url=connection["base_url"], access_token=connection["access_token"]))
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as db:
        return db.execute(
            "select id, email, hs_object_id, createdate, handoff_funnel_stage from raw_crm.contacts"
        ).fetchall()


def listed_contacts(sandbox):
    """The contacts a CRM lists: not archived, not merged into another."""
    return [
        c
        for c in sandbox.dataset.rows("crm_objects")
        if c["objectType"] == "contacts" and not c["archived"] and c.get("mergedInto") is None
    ]


def test_every_contact_loads_once_typed_by_the_crms_property_definitions(tmp_path, crm_sandbox):
    rows = load(tmp_path, crm_sandbox.connections()["crm"])
    contacts = listed_contacts(crm_sandbox.sandbox)
    assert contacts, "the tiny company has contacts"
    assert sorted(row[0] for row in rows) == sorted(c["id"] for c in contacts)
    by_id = {row[0]: row for row in rows}
    first = contacts[0]
    assert by_id[first["id"]][1] == first["properties"]["email"]
    assert by_id[first["id"]][2] == float(first["id"])  # numbers arrive as strings and load as numbers
    assert by_id[first["id"]][3] == parse_iso(first["properties"]["createdate"])
    # A property no contact holds yet still gets its column.
    assert all(row[4] is None for row in rows)


def test_loading_again_merges_instead_of_duplicating(tmp_path, crm_sandbox):
    connection = crm_sandbox.connections()["crm"]
    expected = len(listed_contacts(crm_sandbox.sandbox))
    assert len(load(tmp_path, connection)) == len(load(tmp_path, connection)) == expected
