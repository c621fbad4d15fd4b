"""The web-events source reading NDJSON files incrementally."""

import json

import dlt
import duckdb

from pipeline.ingest.web import web_source


def event(message_id, **extra):
    return json.dumps(
        {
            "type": "page",
            "messageId": message_id,
            "anonymousId": "anon-1",
            "timestamp": "2026-11-23T10:00:00.000Z",
            **extra,
        }
    )


def run(tmp_path, folder):
    pipeline = dlt.pipeline(
        pipeline_name="web_test",
        destination=dlt.destinations.duckdb(str(tmp_path / "w.duckdb")),
        dataset_name="raw_web",
        pipelines_dir=str(tmp_path / "dlt"),
    )
    return pipeline.run(web_source(folders=[str(folder)]))


def query(tmp_path, sql):
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as db:
        return db.execute(sql).fetchall()


def test_files_are_read_incrementally_deduplicated_and_bad_lines_quarantined(tmp_path):
    hour = tmp_path / "events" / "2026-11-23" / "10.ndjson"
    hour.parent.mkdir(parents=True)
    campaign = {
        "context": {"campaign": {"source": "google", "medium": "cpc", "name": "q4"}, "page": {"path": "/pricing"}}
    }
    hour.write_text(
        "\n".join(
            [
                event("m1", **campaign),
                "not json",
                json.dumps({"type": "page", "anonymousId": "x"}),
                event("m2", type="identify", userId=17, traits={"email": "a@b.co"}),
            ]
        )
        + "\n"
        + event("m3")[:20]
    )  # a line still being written
    run(tmp_path, tmp_path / "events")
    assert query(
        tmp_path, "select message_id, utm_source, page_path, user_id, email from raw_web.events order by 1"
    ) == [("m1", "google", "/pricing", None, None), ("m2", None, None, "17", "a@b.co")]
    first_line = len(event("m1", **campaign)) + 1
    assert query(tmp_path, "select reason, file, line_offset from raw_web.quarantine order by line_offset") == [
        ("not JSON: Expecting value", str(hour.resolve()), first_line),
        ("no messageId", str(hour.resolve()), first_line + len("not json\n")),
    ]

    # The partial line is completed, a retry of m1 and a late event for an earlier hour arrive.
    with open(hour, "a") as out:
        out.write(event("m3")[20:] + "\n" + event("m1", **campaign) + "\n")
    (hour.parent / "09.ndjson").write_text(
        event("m0", timestamp="2026-11-23T09:59:00.000Z") + "\n" + event("m9", type="purchase") + "\n"
    )
    run(tmp_path, tmp_path / "events")
    assert [r[0] for r in query(tmp_path, "select message_id from raw_web.events order by 1")] == [
        "m0",
        "m1",
        "m2",
        "m3",
    ]
    assert query(tmp_path, "select reason, line_offset from raw_web.quarantine where file like '%09.ndjson'") == [
        ("unknown type 'purchase'", len(event("m0", timestamp="2026-11-23T09:59:00.000Z")) + 1)
    ]
    assert query(tmp_path, "select count(*) from raw_web.quarantine") == [(3,)]

    # Nothing new: nothing is loaded.
    assert run(tmp_path, tmp_path / "events").loads_ids == []


def test_a_messageid_read_twice_in_one_run_is_loaded_once_as_first_seen(tmp_path, monkeypatch):
    import pipeline.ingest.web as web

    monkeypatch.setattr(web, "READ_BATCH_BYTES", 1)  # every file its own batch
    hour = tmp_path / "events" / "2026-11-23"
    hour.mkdir(parents=True)
    (hour / "09.ndjson").write_text(
        "\n".join([event("m1", event="first"), event("m2"), event("m1", event="again")]) + "\n"
    )
    (hour / "10.ndjson").write_text(event("m2", event="retried an hour later") + "\n" + event("m3") + "\n")
    run(tmp_path, tmp_path / "events")
    assert query(tmp_path, "select message_id, event from raw_web.events order by 1") == [
        ("m1", "first"),
        ("m2", None),
        ("m3", None),
    ]
