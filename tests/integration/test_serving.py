"""The marts published for BI tools: only the marts, replaced in one step, and a reader that has the
previous copy open keeps reading it while the next one is published."""

import duckdb

from pipeline.serving import publish_marts


def test_publishing_replaces_the_copy_atomically_under_an_open_reader(tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as db:
        db.execute("create schema marts; create schema raw_crm")
        db.execute("create table marts.dim_people as select range as person_id from range(3)")
        db.execute("create view marts.people_count as select count(*) as people from marts.dim_people")
        db.execute("create table raw_crm.contacts as select 'secret@example.com' as email")
    target = tmp_path / "serving" / "funnel.duckdb"

    assert publish_marts(warehouse, target, "run-1") == {"dim_people": 3, "people_count": 1}
    reader = duckdb.connect(str(target), read_only=True)
    with duckdb.connect(str(warehouse)) as db:
        db.execute("insert into marts.dim_people select range from range(3, 10)")
    assert publish_marts(warehouse, target, "run-2")["dim_people"] == 10

    assert reader.execute("select count(*) from marts.dim_people").fetchone()[0] == 3
    reader.close()
    with duckdb.connect(str(target), read_only=True) as published:
        assert published.execute("select people from marts.people_count").fetchone()[0] == 10
        assert {
            schema
            for (schema,) in published.execute("select distinct table_schema from information_schema.tables").fetchall()
        } == {"marts"}
    assert sorted(path.name for path in target.parent.iterdir()) == ["funnel.duckdb"]
