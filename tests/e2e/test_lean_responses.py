"""The lean response configuration (harness.LEAN_MODE): requests as GIE sends them; of the
response nothing (`response_header_mode: SKIP`, `response_body_mode: NONE`) but
`response_trailer_mode: SEND`, with which Envoy keeps the ext_proc stream open until the
response has ended and then half-closes it. So epp learns when each request is over (its
in-flight accounting) without a gRPC message per streamed chunk or a round trip on the
response's way. The same stream lifetime holds in the reference's FULL_DUPLEX_STREAMED
configuration; both are checked here, through epp's /debug/extproc."""

import http.client
import json
import time
import urllib.request

import pytest

import harness
from harness import completion_body, make_stack, request

STAT = "http.igw.ext_proc.%s"
CHUNKS, INTERVAL_MS = 12, 150  # a response that streams for ~1.8 s


@pytest.fixture(scope="module")
def stack(request, tmp_path_factory):
    return make_stack(request, tmp_path_factory, "lean", tls=False)


def active_streams(stack):
    url = "http://127.0.0.1:%d/debug/extproc" % stack.epp.metrics_port
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())["active_streams"]


def wait_active(stack, want, timeout=5.0):
    deadline = time.monotonic() + timeout
    while True:
        got = active_streams(stack)
        if got == want or time.monotonic() > deadline:
            return got
        time.sleep(0.02)


def stream_and_watch(stack, env, trailers=False):
    """Streams one completion through `env`; while its first events arrive, samples epp's
    active streams. Returns (events, samples)."""
    assert wait_active(stack, 0) == 0
    conn = http.client.HTTPConnection("127.0.0.1", env.port, timeout=60)
    events, during = [], []
    headers = {"content-type": "application/json", "x-backend-chunks": str(CHUNKS),
               "x-backend-interval-ms": str(INTERVAL_MS)}
    if trailers:
        headers["x-backend-trailers"] = "1"
    try:
        conn.request("POST", "/v1/completions",
                     body=completion_body(prompt="lean %s" % env.name, stream=True),
                     headers=headers)
        r = conn.getresponse()
        assert r.status == 200
        while True:
            line = r.readline()
            if not line:
                break
            if line.startswith(b"data: "):
                events.append(line.strip())
                if len(events) <= 4:  # the response has more than a second to go
                    during.append(active_streams(stack))
    finally:
        conn.close()
    return events, during


@pytest.mark.parametrize("body_mode,trailers", [(harness.LEAN_MODE, False),
                                                 (harness.LEAN_MODE, True),
                                                 ("full_duplex", False)])
def test_stream_lives_until_the_response_ends(stack, body_mode, trailers):
    env = stack.serving_envoy(body_mode)
    events, during = stream_and_watch(stack, env, trailers)
    assert events and events[-1] == b"data: [DONE]", events[-3:]
    assert len(events) >= CHUNKS, events
    # While the response streams, its ext_proc stream is open (epp counts the request as in
    # flight); an Envoy that closed it at the response headers would show 0 here.
    assert during and all(n == 1 for n in during), during
    # And it ends with the response (not held open by anything else).
    assert wait_active(stack, 0) == 0, stack.tails()


def test_without_trailers_mode_send_the_stream_ends_early(stack):
    """The negative control: with response_trailer_mode SKIP Envoy ends the stream once the
    request is routed, so epp would count the request as over while it still streams."""
    env = stack.serving_envoy(harness.LEAN_MODE_NO_TRAILERS)
    events, during = stream_and_watch(stack, env)
    assert events and events[-1] == b"data: [DONE]", events[-3:]
    assert during and all(n == 0 for n in during), during


def test_lean_sends_nothing_of_the_response_to_epp(stack):
    env = stack.serving_envoy(harness.LEAN_MODE)
    before = env.stats("ext_proc")
    n = 5
    for i in range(n):
        st, _, data = request(env.port, "POST", "/v1/completions",
                              completion_body(prompt="lean stats %d" % i, stream=True),
                              headers={"x-backend-chunks": "20", "x-backend-interval-ms": "5"})
        assert st == 200, (st, data[:300])
        assert data.rstrip().endswith(b"data: [DONE]"), data[-200:]
    after = env.stats("ext_proc")
    sent = after.get(STAT % "stream_msgs_sent", 0) - before.get(STAT % "stream_msgs_sent", 0)
    # Per request: the request headers and the body (one data message, sometimes an empty
    # end-of-stream one after it); nothing of the response, not one of its 20 chunks.
    assert 2 * n <= sent <= 3 * n, (sent, after)
    for key in ("streams_failed", "spurious_msgs_received", "failure_mode_allowed"):
        assert after.get(STAT % key, 0) == before.get(STAT % key, 0), (key, after)
    assert wait_active(stack, 0) == 0


def test_debug_extproc_is_json(stack):
    st, hdrs, data = request(stack.epp.metrics_port, "GET", "/debug/extproc")
    assert st == 200 and hdrs.get("content-type") == "application/json", (st, hdrs)
    assert set(json.loads(data)) == {"active_streams"}, data
