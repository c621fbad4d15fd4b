"""Injected faults over real HTTP: latency on every response, a seeded share of 5xx, /health exempt."""

import time
from pathlib import Path

import httpx
import pytest

from sandbox.faults import Faults
from sandbox.server import SandboxServer, build_sandbox

REQUESTS = 300


@pytest.fixture
def faulty(tiny_dataset, tmp_path):
    """Start a tiny sandbox with the given fault spec; every one started is stopped after the test."""
    servers = []

    def start(spec: str) -> SandboxServer:
        state = tmp_path / f"state-{len(servers)}"
        servers.append(SandboxServer(build_sandbox(state, dataset_dir=tiny_dataset, faults=Faults.parse(spec))).start())
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def _crm(server: SandboxServer) -> httpx.Client:
    crm = server.connections()["crm"]
    return httpx.Client(base_url=crm["base_url"], headers={"Authorization": f"Bearer {crm['access_token']}"})


def _elapsed_s(call) -> float:
    started = time.monotonic()
    call()
    return time.monotonic() - started


def test_latency_is_added_to_every_response_but_health(faulty):
    server = faulty("latency=300ms")
    with _crm(server) as crm:
        assert _elapsed_s(lambda: crm.get("/crm/v3/objects/contacts").raise_for_status()) >= 0.3
        assert _elapsed_s(lambda: crm.get("/no/such/path")) >= 0.3
    # The fastest of a few: a busy machine (the suite runs on every core) can slow any one request.
    assert min(_elapsed_s(lambda: httpx.get(f"{server.base_url}/health").raise_for_status()) for _ in range(5)) < 0.3


def _statuses(server: SandboxServer) -> list[int]:
    """Statuses of calls to the website's collector, which has no rate limit to muddle the count."""
    web = server.connections()["web"]
    with httpx.Client(base_url=web["tracking_url"], auth=(web["write_key"], "")) as collector:
        return [
            collector.post("/v1/track", json={"messageId": f"m-{n}", "anonymousId": "a-1", "event": "E"}).status_code
            for n in range(REQUESTS)
        ]


def _kept(server: SandboxServer) -> int:
    return sum(
        len(path.read_text().splitlines())
        for path in Path(server.connections()["web"]["events_dir"]).glob("*/*.ndjson")
    )


def test_the_expected_share_of_requests_fails_the_same_way_for_the_same_seed(faulty):
    server = faulty("errors=0.25,seed=4")
    statuses = _statuses(server)

    failures = [status for status in statuses if status >= 500]
    assert set(failures) == {502, 503} and set(statuses) - set(failures) == {200}
    assert 0.17 <= len(failures) / REQUESTS <= 0.33
    assert _kept(server) == REQUESTS - len(failures)  # a failed request changes nothing
    assert _statuses(faulty("errors=0.25,seed=4")) == statuses
    assert _statuses(faulty("errors=0.25,seed=5")) != statuses


def test_failures_take_the_vendors_error_shape_and_change_nothing(faulty):
    server = faulty("errors=1")
    with _crm(server) as crm:
        hubspot = crm.get("/crm/v3/objects/contacts")
    assert hubspot.status_code in (502, 503)
    assert {"status", "message", "correlationId", "category"} <= set(hubspot.json())

    web = server.connections()["web"]
    segment = httpx.post(
        f"{web['tracking_url']}/v1/track",
        auth=(web["write_key"], ""),
        json={"messageId": "m-1", "anonymousId": "a-1", "event": "Signed Up"},
    )
    assert segment.status_code in (502, 503) and {"code", "message"} <= set(segment.json())
    assert _kept(server) == 0

    assert all(httpx.get(f"{server.base_url}/health").status_code == 200 for _ in range(20))


def test_health_counts_the_requests_each_stand_in_was_sent_failed_ones_included(faulty):
    server = faulty("errors=0.25,seed=4")
    _statuses(server)
    with _crm(server) as crm:
        crm.get("/crm/v3/objects/contacts")
    served = httpx.get(f"{server.base_url}/health").json()["requests_served"]
    assert served == {"web": REQUESTS, "crm": 1}
