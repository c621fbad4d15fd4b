import pytest

from pipeline.ingest.crm import REQUESTS_PER_10S_VARIABLE, requests_per_10s
from pipeline.ingest.marketing import CALLS_PER_20S_VARIABLE, calls_per_20s


def test_clients_pace_to_the_vendors_limits_unless_configured_otherwise(monkeypatch):
    monkeypatch.delenv(REQUESTS_PER_10S_VARIABLE, raising=False)
    assert requests_per_10s() == 100  # HubSpot's limit for private apps
    monkeypatch.setenv(REQUESTS_PER_10S_VARIABLE, "190")
    monkeypatch.setenv(CALLS_PER_20S_VARIABLE, "1000")
    assert (requests_per_10s(), calls_per_20s()) == (190, 1000)


@pytest.mark.parametrize("configured", ["0", "-5", "fast", "1.5"])
def test_a_budget_that_is_not_a_positive_whole_number_is_refused(monkeypatch, configured):
    monkeypatch.setenv(CALLS_PER_20S_VARIABLE, configured)
    with pytest.raises(ValueError, match=CALLS_PER_20S_VARIABLE):
        calls_per_20s()


def test_a_paced_session_keeps_the_environments_proxy_read_once_when_built(monkeypatch):
    import requests

    from pipeline.ingest.pacing import SlidingWindowLimiter, paced

    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "crm.internal")
    proxied = paced(requests.Session(), SlidingWindowLimiter(10, 1), "https://api.example.com/crm")
    bypassed = paced(requests.Session(), SlidingWindowLimiter(10, 1), "https://crm.internal/crm")
    monkeypatch.setenv("HTTPS_PROXY", "http://changed.example:3128")
    assert proxied.proxies["https"] == "http://proxy.example:3128"
    assert "https" not in bypassed.proxies
    assert not proxied.trust_env
