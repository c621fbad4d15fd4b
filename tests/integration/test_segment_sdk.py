"""Segment's own Python SDK, pointed at the sandbox's collector, delivers as it would to Segment."""

import json
from pathlib import Path

import pytest
from segment import analytics

from sandbox.server import SandboxServer, build_sandbox


@pytest.fixture
def web(tiny_dataset, tmp_path):
    with SandboxServer(build_sandbox(tmp_path / "state", dataset_dir=tiny_dataset)) as server:
        yield server.connections()["web"]


@pytest.fixture
def sdk_errors():
    """The SDK's module-level client, reset around each test; yields the errors it reports."""
    errors = []
    analytics.default_client = None
    analytics.on_error = lambda error, _batch: errors.append(error)
    analytics.max_retries = 0
    yield errors
    analytics.shutdown()
    analytics.default_client = None


def _kept(web: dict) -> list[dict]:
    return [
        json.loads(line)
        for path in sorted(Path(web["events_dir"]).glob("*/*.ndjson"))
        for line in path.read_text().splitlines()
    ]


@pytest.mark.parametrize("gzip", [False, True])
def test_track_identify_and_page_calls_arrive(web, sdk_errors, gzip):
    analytics.write_key = web["write_key"]
    analytics.host = web["tracking_url"]
    analytics.gzip = gzip

    analytics.identify("user-7", {"email": "ada@example.com", "plan": "pro"})
    analytics.track("user-7", "Demo Requested", {"source": "pricing page"})
    analytics.page(
        anonymous_id="anon-3",
        name="Pricing",
        properties={"path": "/pricing"},
        context={"campaign": {"name": "spring", "source": "linkedin"}},
    )
    analytics.flush()

    assert sdk_errors == []
    kept = _kept(web)
    assert [event["type"] for event in kept] == ["identify", "track", "page"]
    identify, track, page = kept
    assert identify["userId"] == "user-7" and identify["traits"]["email"] == "ada@example.com"
    assert track["event"] == "Demo Requested" and track["properties"] == {"source": "pricing page"}
    assert page["anonymousId"] == "anon-3" and page["context"]["campaign"]["source"] == "linkedin"
    assert all(event["context"]["library"]["name"] == "analytics-python" for event in kept)
    assert len({event["messageId"] for event in kept}) == 3


def test_a_wrong_write_key_is_reported_to_the_sdk(web, sdk_errors):
    analytics.write_key = "not-the-key"
    analytics.host = web["tracking_url"]
    analytics.gzip = False

    analytics.track("user-7", "Demo Requested")
    analytics.flush()

    assert [(error.status, error.code) for error in sdk_errors] == [(401, "unauthorized")]
    assert _kept(web) == []
