"""epp scrapes every endpoint's /metrics (the data layer) by default, and not at all with
`dataLayer: {sources: []}`; requests route either way."""

import http.client
import json
import time

import pytest

import harness
from harness import completion_body, make_stack, request


def scrapes(backend):
    """How many times the backend served /metrics."""
    c = http.client.HTTPConnection(backend.host, backend.port, timeout=5)
    try:
        c.request("GET", "/stats")
        return json.loads(c.getresponse().read())["metrics_scrapes"]
    finally:
        c.close()


@pytest.fixture(scope="module")
def scraping(request, tmp_path_factory):
    return make_stack(request, tmp_path_factory, "scrape-on", tls=False,
                      epp_args=["--refresh-metrics-interval", "20ms"])


@pytest.fixture(scope="module")
def not_scraping(request, tmp_path_factory):
    return make_stack(request, tmp_path_factory, "scrape-off", tls=False, scrape_metrics=False)


def test_every_endpoint_is_scraped_repeatedly(scraping):
    for b in scraping.backends:
        harness.wait_until(lambda: scrapes(b) >= 10, "backend %s scraped 10 times" % b.addr,
                           procs=[scraping.epp.proc])
    env = scraping.envoy("full_duplex")
    scraping.wait_serving(env)
    st, _, data = request(env.port, "POST", "/v1/completions", completion_body())
    assert st == 200, data[:200]


def test_empty_sources_turn_scraping_off(not_scraping):
    env = not_scraping.envoy("full_duplex")
    not_scraping.wait_serving(env)
    st, _, _ = request(env.port, "POST", "/v1/completions", completion_body())
    assert st == 200
    time.sleep(0.3)  # several default intervals: a negative check has to wait a little
    assert all(scrapes(b) == 0 for b in not_scraping.backends)


def debug_endpoints(stack):
    c = http.client.HTTPConnection("127.0.0.1", stack.epp.metrics_port, timeout=5)
    try:
        c.request("GET", "/debug/endpoints")
        r = c.getresponse()
        assert r.status == 200
        assert r.getheader("content-type") == "application/json"
        return json.loads(r.read())
    finally:
        c.close()


def test_debug_endpoints_shows_what_epp_scraped(scraping):
    """Each backend reports vllm:num_requests_waiting = its index + 1 on /metrics."""
    want = {"b%d" % b.index: b.index + 1 for b in scraping.backends}

    def seen():
        eps = debug_endpoints(scraping)
        return {e["name"]: e["metrics"]["waiting_queue_size"] for e in eps} == want
    harness.wait_until(seen, "/debug/endpoints to show every backend's waiting gauge",
                       procs=[scraping.epp.proc])
    for e in debug_endpoints(scraping):
        b = scraping.backends[int(e["name"][1:])]
        assert (e["address"], e["port"], e["namespace"]) == (b.host, b.port, "default")
        assert e["metrics"]["last_error"] == ""
        assert e["metrics"]["age_ms"] is not None and e["metrics"]["age_ms"] < 5000
        assert e["metrics"]["kv_cache_usage_percent"] == 0


def test_debug_endpoints_without_scraping(not_scraping):
    eps = debug_endpoints(not_scraping)
    assert len(eps) == len(not_scraping.backends)
    assert all(e["metrics"]["age_ms"] is None for e in eps)
