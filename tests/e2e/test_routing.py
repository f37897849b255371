"""Routing through a real Envoy + epp, for each (body mode x epp transport).

One Stack (3 backends + epp) per transport (plaintext / TLS), shared by every test of the module;
Envoys are started lazily per configuration (body mode, subset hint, ...) and reused.
"""

import hashlib
import http.client
import json
import time

import pytest

import harness
from harness import DEST_HEADER, chat_body, completion_body, make_stack, request

MiB = 1 << 20


@pytest.fixture(scope="module", params=[False, True], ids=["plaintext", "tls"])
def stack(request, tmp_path_factory):
    tls = request.param
    return make_stack(request, tmp_path_factory, "routing-%s" % ("tls" if tls else "plain"), tls)


@pytest.fixture(params=harness.BODY_MODES)
def body_mode(request):
    return request.param


def check_served(stack, status, headers, data, sent=None):
    """Asserts a 200 served by the backend that epp named; returns the parsed backend answer."""
    assert status == 200, "status %d, body %r" % (status, data[:500])
    d = json.loads(data)
    dest = d["destination_header"]
    assert dest, "backend got no %s header: %r" % (DEST_HEADER, d)
    assert "," not in dest, "ORIGINAL_DST needs exactly one ip:port, epp sent %r" % dest
    served = "%s:%d" % (d["served_by_host"], d["served_by_port"])
    assert dest == served, "epp named %s but %s served" % (dest, served)
    assert headers.get("x-served-by-port") == str(d["served_by_port"])
    assert stack.backend_by_port(d["served_by_port"]) is not None, d
    if sent is not None:
        assert d["body_len"] == len(sent), "backend got %d bytes, sent %d" % (d["body_len"], len(sent))
        assert d["body_sha256"] == hashlib.sha256(sent).hexdigest(), "body changed on the way"
    return d


def test_random_routing_30_requests(stack, body_mode):
    env = stack.serving_envoy(body_mode)
    conn = http.client.HTTPConnection("127.0.0.1", env.port, timeout=60)
    served = []
    try:
        for i in range(30):
            body = completion_body(prompt="request %d says hello" % i)
            st, hdrs, data = request(env.port, "POST", "/v1/completions", body, conn=conn)
            d = check_served(stack, st, hdrs, data, sent=body)
            assert d["model"] == "mock-model"
            served.append(d["served_by_port"])
    finally:
        conn.close()
    assert len(set(served)) > 1, "random-picker over 3 backends used only %s in 30 requests" % set(served)


@pytest.mark.parametrize("size", [1 * MiB, 10 * MiB], ids=["1MiB", "10MiB"])
def test_large_prompt_is_forwarded_byte_identical(stack, body_mode, size):
    env = stack.serving_envoy(body_mode)
    # A prompt of printable, non-repeating-looking text (so any reordering/truncation shows).
    unit = "".join("w%05d " % i for i in range(10000))
    prompt = (unit * (size // len(unit) + 1))[:size]
    body = chat_body(prompt)
    t0 = time.monotonic()
    st, hdrs, data = request(env.port, "POST", "/v1/chat/completions", body, timeout=120)
    check_served(stack, st, hdrs, data, sent=body)
    assert time.monotonic() - t0 < 60


def test_sse_streaming_is_incremental(stack, body_mode):
    # BUFFERED uses response_body_mode NONE, so the response also streams there.
    env = stack.serving_envoy(body_mode)
    chunks, interval_ms = 5, 100
    body = completion_body(prompt="stream please", stream=True)
    conn = http.client.HTTPConnection("127.0.0.1", env.port, timeout=60)
    try:
        t0 = time.monotonic()
        conn.request("POST", "/v1/completions", body=body,
                     headers={"content-type": "application/json", "x-backend-chunks": str(chunks),
                              "x-backend-interval-ms": str(interval_ms)})
        r = conn.getresponse()
        assert r.status == 200, (r.status, r.read()[:500])
        assert r.getheader("content-type", "").startswith("text/event-stream")
        events = []  # (seconds since request, payload)
        while True:
            line = r.readline()
            if not line:
                break
            line = line.strip()
            if line.startswith(b"data: "):
                events.append((time.monotonic() - t0, line[len(b"data: "):]))
    finally:
        conn.close()
    assert events, "no SSE events"
    assert events[-1][1] == b"[DONE]", "stream did not end with data: [DONE]: %r" % events[-1:]
    payloads = [json.loads(p) for _, p in events[:-1]]
    assert [p["index"] for p in payloads] == list(range(chunks))
    ports = {p["served_by_port"] for p in payloads}
    assert len(ports) == 1
    dest = payloads[0]["destination_header"]
    assert dest == "%s:%d" % (payloads[0]["served_by_host"], payloads[0]["served_by_port"])
    first, done = events[0][0], events[-1][0]
    # The backend spreads the events over ~chunks*interval ms; buffering anywhere on the path
    # would deliver them together.
    spread = done - first
    assert spread >= 0.5 * chunks * interval_ms / 1000.0, (
        "events not incremental: first at %.3fs, [DONE] at %.3fs (%s)"
        % (first, done, ["%.3f" % t for t, _ in events]))
    distinct = {round(t, 2) for t, _ in events}
    assert len(distinct) >= 2


def test_get_models(stack, body_mode):
    env = stack.serving_envoy(body_mode)
    st, hdrs, data = request(env.port, "GET", "/v1/models")
    assert st == 200, (st, data[:500])
    d = json.loads(data)
    assert d["object"] == "list" and isinstance(d["data"], list) and d["data"]
    assert d["destination_header"] == "%s:%d" % (d["served_by_host"], d["served_by_port"])


@pytest.mark.parametrize("body,path", [
    (b'{"model": "mock-model", "prompt": "unterminated', "/v1/completions"),
    (b"this is not json", "/v1/chat/completions"),
    (b'{"prompt": "no model here"}', "/v1/completions"),
    (b'{"messages": [{"role": "user", "content": "hi"}]}', "/v1/chat/completions"),
], ids=["truncated-json", "not-json", "completions-no-model", "chat-no-model"])
def test_bad_request_body_is_400(stack, body_mode, body, path):
    env = stack.serving_envoy(body_mode)
    st, hdrs, data = request(env.port, "POST", path, body)
    assert st == 400, (st, data[:500])
    assert data.startswith(b"inference error:"), data[:500]
    assert "x-served-by-port" not in hdrs, "a backend answered a request epp should have refused"


def test_client_destination_header_is_overwritten(stack, body_mode):
    """A client-supplied x-gateway-destination-endpoint must be replaced by epp's pick."""
    env = stack.serving_envoy(body_mode)
    bogus = "127.0.0.1:1"
    for i in range(5):
        body = completion_body(prompt="spoof %d" % i)
        st, hdrs, data = request(env.port, "POST", "/v1/completions", body, headers={DEST_HEADER: bogus})
        d = check_served(stack, st, hdrs, data, sent=body)
        assert d["destination_header"] != bogus


def test_routing_by_dynamic_metadata(stack, body_mode):
    """ORIGINAL_DST reads envoy.lb/x-gateway-destination-endpoint from dynamic metadata only:
    epp must send the metadata, and with the same value as the header."""
    env = stack.envoy(body_mode, route_by="metadata")
    served = set()
    for i in range(6):
        body = completion_body(prompt="md %d" % i)
        st, hdrs, data = request(env.port, "POST", "/v1/completions", body)
        served.add(check_served(stack, st, hdrs, data, sent=body)["served_by_port"])
    assert served


# ---- subset hint (envoy.lb.subset_hint injected by set_metadata) -----------------------------

def test_subset_hint_one_backend(stack, body_mode):
    b1 = stack.backends[1]
    env = stack.envoy(body_mode, subset_hint=[b1.addr])
    for i in range(10):
        body = completion_body(prompt="subset %d" % i)
        st, hdrs, data = request(env.port, "POST", "/v1/completions", body)
        d = check_served(stack, st, hdrs, data, sent=body)
        assert d["served_by_port"] == b1.port, "hint %s but served by %s" % (b1.addr, d["served_by_port"])


def test_subset_hint_two_backends(stack, body_mode):
    b0, b2 = stack.backends[0], stack.backends[2]
    env = stack.envoy(body_mode, subset_hint=[b0.addr, b2.addr])
    served = set()
    for i in range(20):
        body = completion_body(prompt="subset2 %d" % i)
        st, hdrs, data = request(env.port, "POST", "/v1/completions", body)
        served.add(check_served(stack, st, hdrs, data, sent=body)["served_by_port"])
    assert served <= {b0.port, b2.port}, served
    assert served == {b0.port, b2.port}, "random over 2 hinted backends used only %s" % served


@pytest.mark.parametrize("hint", [["127.0.0.9:1"], []], ids=["no-match", "empty"])
def test_subset_hint_without_match_is_503(stack, body_mode, hint):
    env = stack.envoy(body_mode, subset_hint=hint)
    st, hdrs, data = request(env.port, "POST", "/v1/completions", completion_body())
    assert st == 503, (st, data[:500])
    assert "x-served-by-port" not in hdrs


# ---- gRPC health (plaintext health port, also when the ext_proc port uses TLS) --------------

@pytest.mark.parametrize("service", ["", "liveness", "readiness",
                                     "envoy.service.ext_proc.v3.ExternalProcessor"])
def test_grpc_health_serving(stack, service):
    assert harness.grpc_health_check(stack.epp.health_port, service) == "SERVING"


def test_model_name_rewrite_header(stack, body_mode):
    """x-gateway-model-name-rewrite: epp replaces the body's model (only that token); in
    BUFFERED the new body goes back as a body mutation with a matching content-length."""
    env = stack.serving_envoy(body_mode)
    prompt = "rewrite me " * 1000
    body = completion_body(model="mock-model", prompt=prompt)
    want = completion_body(model="rewritten-model", prompt=prompt)
    st, hdrs, data = request(env.port, "POST", "/v1/completions", body,
                             headers={"x-gateway-model-name-rewrite": "rewritten-model"})
    d = check_served(stack, st, hdrs, data, sent=want)
    # The backend echoes the model it got; epp rewrites it back to the client's name in the
    # response when it processes response bodies (full duplex).
    assert d["model"] == ("mock-model" if body_mode == "full_duplex" else "rewritten-model")


# ---- last: no protocol errors seen by any Envoy of this stack -------------------------------

def test_no_ext_proc_protocol_errors(stack, body_mode):
    bad = {}
    for env in list(stack._envoys.values()):
        if env.body_mode != body_mode or not env.proc.alive():
            continue
        for k, v in env.stats("ext_proc").items():
            if any(k.endswith(s) for s in (".spurious_msgs_received", ".message_timeouts",
                                             ".rejected_header_mutations", ".streams_failed")) and v:
                bad["%s %s" % (env.name, k)] = v
    assert not bad, "Envoy ext_proc error counters: %s" % bad
