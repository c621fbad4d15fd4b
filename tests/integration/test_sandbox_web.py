"""The website over real HTTP: the Segment-shaped collector, the emitter and the hourly export."""

import gzip
import json
import random
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from sandbox.cli import sandbox_app
from sandbox.dataset import DatasetWriter, iso, parse_iso
from sandbox.server import SandboxServer, build_sandbox
from sandbox.website import TrackingError, emit_web_events, export_web_events

HISTORY_START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
EVENT_COUNT = 900


def _event(index: int, rng: random.Random) -> dict:
    kind = rng.choice(["page", "track", "identify"])
    event = {
        "type": kind,
        "messageId": f"m-{index:05d}",
        "anonymousId": f"anon-{index % 97}",
        "userId": None,
        "timestamp": iso(HISTORY_START + timedelta(seconds=rng.randrange(4 * 3600))),
        # Padding makes the batches split on bytes, not on the count of calls.
        "context": {"page": {"path": "/pricing", "title": "x" * 800}},
    }
    if kind == "track":
        event["event"] = "Form Submitted"
    return event


@pytest.fixture(scope="module")
def web_dataset(tmp_path_factory):
    folder = tmp_path_factory.mktemp("web-dataset")
    rng = random.Random(5)
    with DatasetWriter(folder, scale="custom", seed=None, now=HISTORY_START + timedelta(hours=4)) as writer:
        writer.write_all("web_events", (_event(index, rng) for index in range(EVENT_COUNT)))
    return folder


def _serve(dataset: Path, state: Path) -> SandboxServer:
    return SandboxServer(build_sandbox(state, dataset_dir=dataset))


@pytest.fixture
def site(web_dataset, tmp_path):
    with _serve(web_dataset, tmp_path / "site") as server:
        yield server


@pytest.fixture
def collector(site):
    web = site.connections()["web"]
    with httpx.Client(base_url=web["tracking_url"], auth=(web["write_key"], "")) as client:
        yield client


def _kept(server: SandboxServer) -> list[dict]:
    events_dir = Path(server.connections()["web"]["events_dir"])
    return [
        json.loads(line) for path in sorted(events_dir.glob("*/*.ndjson")) for line in path.read_text().splitlines()
    ]


def _call(**fields) -> dict:
    return {"messageId": str(uuid.uuid4()), "anonymousId": "anon-1", **fields}


def test_valid_calls_are_kept_in_the_hour_they_were_received(site, collector):
    calls = {
        "track": _call(event="Demo Requested", properties={"plan": "pro"}),
        "page": _call(name="Pricing", context={"page": {"path": "/pricing"}}),
        "identify": _call(userId="u-1", traits={"email": "ada@example.com"}, timestamp="2020-01-01T00:00:00Z"),
    }
    for call_type, call in calls.items():
        response = collector.post(f"/v1/{call_type}", json=call)
        assert response.status_code == 200 and response.json() == {"success": True}

    kept = _kept(site)
    assert [(event["type"], event["messageId"]) for event in kept] == [(t, c["messageId"]) for t, c in calls.items()]
    for event in kept:
        received = parse_iso(event["receivedAt"])
        events_dir = Path(site.connections()["web"]["events_dir"])
        assert (events_dir / received.strftime("%Y-%m-%d") / received.strftime("%H.ndjson")).exists()
    # A client's own timestamp is kept (history may arrive late); a missing one is the receive time.
    assert kept[2]["timestamp"] == "2020-01-01T00:00:00Z"
    assert kept[0]["timestamp"] == kept[0]["receivedAt"]


def test_a_batch_shares_its_context_and_nothing_is_de_duplicated(site, collector):
    batch = [_call(type="page", context={"page": {"path": "/"}}), _call(type="track", event="Signed Up")]
    batch.append(dict(batch[1]))
    response = collector.post("/v1/batch", json={"batch": batch, "context": {"ip": "10.0.0.1", "page": {"path": "/x"}}})

    assert response.status_code == 200
    kept = _kept(site)
    assert [event["messageId"] for event in kept] == [call["messageId"] for call in batch]
    assert kept[0]["context"] == {"ip": "10.0.0.1", "page": {"path": "/"}}
    assert kept[1]["context"] == {"ip": "10.0.0.1", "page": {"path": "/x"}}


def test_a_write_key_in_the_body_authenticates_and_is_never_stored(site):
    web = site.connections()["web"]
    response = httpx.post(f"{web['tracking_url']}/v1/track", json=_call(event="E", writeKey=web["write_key"]))

    assert response.status_code == 200
    assert "writeKey" not in _kept(site)[0]
    assert all(web["write_key"] not in path.read_text() for path in Path(web["events_dir"]).glob("*/*.ndjson"))


def test_gzipped_requests_are_accepted(site, collector):
    body = gzip.compress(json.dumps({"batch": [_call(type="track", event="Zipped")]}).encode())
    response = collector.post(
        "/v1/batch", content=body, headers={"Content-Encoding": "gzip", "Content-Type": "application/json"}
    )
    assert response.status_code == 200
    assert _kept(site)[0]["event"] == "Zipped"


@pytest.mark.parametrize("auth", [None, ("wrong-key", ""), ("", "")])
def test_a_missing_or_wrong_write_key_gets_401(site, auth):
    response = httpx.post(f"{site.connections()['web']['tracking_url']}/v1/track", json=_call(event="E"), auth=auth)
    assert response.status_code == 401
    assert response.json()["code"] == "unauthorized" and "write key" in response.json()["message"]
    assert _kept(site) == []


@pytest.mark.parametrize(
    "path, body, reason",
    [
        ("/v1/track", _call(event="E", properties={"blob": "x" * 33_000}), "32 KB"),
        ("/v1/batch", {"batch": [_call(type="track", event="E", properties={"blob": "x" * 20_000})] * 30}, "500 KB"),
        (
            "/v1/batch",
            {"batch": [_call(type="track", event="E"), _call(type="track", event="E", p="x" * 33_000)]},
            "batch[1]: the call is",
        ),
    ],
)
def test_oversized_payloads_get_400_naming_the_limit(site, collector, path, body, reason):
    response = collector.post(path, json=body)
    assert response.status_code == 400
    assert reason in response.json()["message"]
    assert _kept(site) == []


@pytest.mark.parametrize(
    "path, body, reason",
    [
        ("/v1/track", b"{not json", "not valid JSON"),
        ("/v1/track", [1, 2], "JSON object"),
        ("/v1/track", {"anonymousId": "a", "event": "E"}, "messageId is required"),
        ("/v1/track", {"messageId": "m" * 101, "anonymousId": "a", "event": "E"}, "longer than 100"),
        ("/v1/track", {"messageId": "m", "event": "E"}, "userId or an anonymousId"),
        ("/v1/track", {"messageId": "m", "anonymousId": "a"}, "needs event"),
        ("/v1/track", {"type": "page", "messageId": "m", "anonymousId": "a"}, "sent to /v1/track"),
        ("/v1/page", {"messageId": "m", "anonymousId": "a", "timestamp": "yesterday"}, "not an ISO 8601 time"),
        ("/v1/page", {"messageId": "m", "anonymousId": "a", "timestamp": 1767225600}, "not an ISO 8601 time"),
        ("/v1/identify", {"messageId": "m", "userId": "u", "traits": ["email"]}, "traits must be a JSON object"),
        (
            "/v1/batch",
            {
                "batch": [{"type": "page", "messageId": "m", "anonymousId": "a", "context": "web"}],
                "context": {"ip": "10.0.0.1"},
            },
            "batch[0]: context must be a JSON object",
        ),
        ("/v1/batch", {"batch": {"type": "page"}}, "non-empty array"),
        ("/v1/batch", {"batch": []}, "non-empty array"),
        (
            "/v1/batch",
            {"batch": [{"type": "page", "messageId": "m", "anonymousId": "a"}, {"type": "click"}]},
            "batch[1]: type must be one of",
        ),
    ],
)
def test_malformed_calls_get_400_with_the_reason_and_nothing_is_kept(site, collector, path, body, reason):
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = collector.post(path, content=content, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert reason in response.json()["message"]
    assert _kept(site) == []


def test_the_emitter_delivers_every_event_once_in_time_order(site, web_dataset, tmp_path):
    with _serve(web_dataset, tmp_path / "receiver") as receiver:
        web = receiver.connections()["web"]
        emitted = emit_web_events(site.sandbox.store, web["tracking_url"], web["write_key"])
        received = _kept(receiver)

    assert emitted.events == EVENT_COUNT and emitted.batches >= 2
    assert sorted(event["messageId"] for event in received) == sorted(f"m-{index:05d}" for index in range(EVENT_COUNT))
    timestamps = [event["timestamp"] for event in received]
    assert timestamps == sorted(timestamps)


def test_the_emitter_stops_at_a_refusal(site):
    with pytest.raises(TrackingError, match="answered 401"):
        emit_web_events(site.sandbox.store, site.connections()["web"]["tracking_url"], "not-the-key")
    assert _kept(site) == []


def test_the_export_writes_each_event_into_the_file_of_its_hour(site, tmp_path):
    out = tmp_path / "export"
    first = export_web_events(site.sandbox.store, out)
    contents = {path: path.read_bytes() for path in out.glob("*/*.ndjson")}
    second = export_web_events(site.sandbox.store, out)

    assert first == second and first.events == EVENT_COUNT and first.files == 4 == len(contents)
    assert {path: path.read_bytes() for path in out.glob("*/*.ndjson")} == contents
    for path, content in contents.items():
        for line in content.decode().splitlines():
            event = json.loads(line)
            assert path.relative_to(out).as_posix() == parse_iso(event["timestamp"]).strftime("%Y-%m-%d/%H.ndjson")
            assert event["receivedAt"] == event["timestamp"]
    assert not list(out.glob("*/*.partial"))


def test_the_cli_exports_and_emits_a_dataset(site, web_dataset, tmp_path):
    runner = CliRunner()
    exported = runner.invoke(sandbox_app, ["export-web", "--out", str(tmp_path / "out"), "--dataset", str(web_dataset)])
    assert exported.exit_code == 0, exported.output
    assert sum(1 for path in (tmp_path / "out").glob("*/*.ndjson") for _ in path.open()) == EVENT_COUNT

    web = site.connections()["web"]
    emitted = runner.invoke(
        sandbox_app,
        [
            "emit-web",
            "--tracking-url",
            web["tracking_url"],
            "--write-key",
            web["write_key"],
            "--dataset",
            str(web_dataset),
        ],
    )
    assert emitted.exit_code == 0, emitted.output
    assert len(_kept(site)) == EVENT_COUNT

    refused = runner.invoke(
        sandbox_app,
        ["emit-web", "--tracking-url", web["tracking_url"], "--write-key", "nope", "--dataset", str(web_dataset)],
    )
    assert refused.exit_code == 1
