"""epp --process-responses=false: each ext_proc stream closes (OK) once the request is routed,
and Envoy sends the response straight to the client. Routing, SSE streaming and large responses
must work exactly as with responses through epp, and Envoy must not send epp any response
message."""

import hashlib
import http.client
import json
import time

import pytest

import harness
from harness import completion_body, make_stack, request

MiB = 1 << 20
STAT = "http.igw.ext_proc.%s"


@pytest.fixture(scope="module")
def stack(request, tmp_path_factory):
    return make_stack(request, tmp_path_factory, "bypass", tls=False,
                      epp_args=["--process-responses=false"])


@pytest.fixture(params=harness.BODY_MODES)
def env(request, stack):
    return stack.serving_envoy(request.param)


def test_routed_and_no_response_messages_reach_epp(stack, env):
    before = env.stats("ext_proc")
    for i in range(10):
        st, _, data = request(env.port, "POST", "/v1/completions",
                              completion_body(prompt="bypass %d" % i))
        assert st == 200, (st, data[:300])
        d = json.loads(data)
        assert d["destination_header"] == "%s:%d" % (d["served_by_host"], d["served_by_port"]), d
    after = env.stats("ext_proc")
    sent = after.get(STAT % "stream_msgs_sent", 0) - before.get(STAT % "stream_msgs_sent", 0)
    # Per request Envoy sends the request headers and the body (one data message, sometimes
    # followed by an empty end-of-stream one): at most 3, nothing of the response. With responses
    # through epp it also sends the response headers and body: at least 5.
    assert 2 * 10 <= sent <= 3 * 10, (sent, after)
    for key in ("streams_failed", "spurious_msgs_received", "failure_mode_allowed"):
        assert after.get(STAT % key, 0) == before.get(STAT % key, 0), (key, after)


def test_sse_streams_incrementally(env):
    chunks, interval_ms = 5, 100
    conn = http.client.HTTPConnection("127.0.0.1", env.port, timeout=60)
    try:
        t0 = time.monotonic()
        conn.request("POST", "/v1/completions",
                     body=completion_body(prompt="stream please", stream=True),
                     headers={"content-type": "application/json",
                              "x-backend-chunks": str(chunks),
                              "x-backend-interval-ms": str(interval_ms)})
        r = conn.getresponse()
        assert r.status == 200
        arrivals = []
        while True:
            line = r.readline()
            if not line:
                break
            if line.startswith(b"data: "):
                arrivals.append((time.monotonic() - t0, line.strip()))
    finally:
        conn.close()
    assert arrivals and arrivals[-1][1] == b"data: [DONE]", arrivals[-1:]
    # The first event arrives well before the last: the response was not held back.
    assert arrivals[-1][0] - arrivals[0][0] >= (chunks - 2) * interval_ms / 1000.0, arrivals


def test_large_response_intact(env):
    size = 3 * MiB
    unit = "".join("b%05d " % i for i in range(10000))
    body = completion_body(prompt=(unit * (size // len(unit) + 1))[:size])
    st, _, data = request(env.port, "POST", "/v1/completions", body,
                          headers={"x-backend-echo": "1"}, timeout=120)
    assert st == 200, (st, data[:300])
    assert hashlib.sha256(data).hexdigest() == hashlib.sha256(body).hexdigest()
