"""Harder cases through Envoy + epp (plaintext epp): concurrency, large responses through the
response path, request trailers, client aborts. One Stack for the module."""

import concurrent.futures
import hashlib
import http.client
import json
import socket
import time

import pytest

import harness
from harness import DEST_HEADER, chat_body, completion_body, make_stack, request

MiB = 1 << 20


@pytest.fixture(scope="module")
def stack(request, tmp_path_factory):
    return make_stack(request, tmp_path_factory, "robustness", tls=False)


@pytest.fixture(params=harness.BODY_MODES)
def body_mode(request):
    return request.param


def assert_served_json(stack, status, data, sent):
    assert status == 200, (status, data[:300])
    d = json.loads(data)
    assert d["destination_header"] == "%s:%d" % (d["served_by_host"], d["served_by_port"]), d
    assert d["body_sha256"] == hashlib.sha256(sent).hexdigest()
    return d


def raw_request(port, raw, timeout=30):
    """Sends raw bytes, returns (status, headers, body) parsed by http.client."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(raw)
        r = http.client.HTTPResponse(s, method="POST")
        r.begin()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()


def test_concurrent_mixed_requests(stack, body_mode):
    env = stack.serving_envoy(body_mode)

    def one(i):
        kind = i % 3
        if kind == 0:
            body = completion_body(prompt="concurrent %d" % i)
            st, _, data = request(env.port, "POST", "/v1/completions", body)
            return assert_served_json(stack, st, data, body)["served_by_port"]
        if kind == 1:
            body = chat_body(("c%d " % i) * 60000)  # ~300 KiB
            st, _, data = request(env.port, "POST", "/v1/chat/completions", body)
            return assert_served_json(stack, st, data, body)["served_by_port"]
        body = completion_body(prompt="stream %d" % i, stream=True)
        st, hdrs, data = request(env.port, "POST", "/v1/completions", body,
                                 headers={"x-backend-chunks": "3", "x-backend-interval-ms": "30"})
        assert st == 200, (st, data[:300])
        events = [ln[6:] for ln in data.split(b"\n") if ln.startswith(b"data: ")]
        assert events[-1] == b"[DONE]" and len(events) == 4, events
        first = json.loads(events[0])
        assert first["destination_header"] == "%s:%d" % (first["served_by_host"], first["served_by_port"])
        return first["served_by_port"]

    with concurrent.futures.ThreadPoolExecutor(max_workers=24) as ex:
        ports = list(ex.map(one, range(72)))
    assert len(set(ports)) == 3, set(ports)


def test_many_concurrent_streams_are_not_serialized(stack, body_mode):
    """80 SSE requests of ~0.5 s each at once: each holds an ext_proc stream for its whole
    life, so epp must serve them concurrently (serialized it would take ~40 s)."""
    env = stack.serving_envoy(body_mode)
    n = 80

    def one(i):
        st, _, data = request(env.port, "POST", "/v1/completions",
                              completion_body(prompt="many %d" % i, stream=True),
                              headers={"x-backend-chunks": "5", "x-backend-interval-ms": "100"})
        return st, data.count(b"data: ")

    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=n) as ex:
        results = list(ex.map(one, range(n)))
    wall = time.monotonic() - t0
    assert all(r == (200, 6) for r in results), [r for r in results if r != (200, 6)][:5]
    assert wall < 10, "80 concurrent 0.5 s streams took %.1fs" % wall


@pytest.mark.parametrize("size", [3 * MiB], ids=["3MiB"])
def test_large_response_body_is_echoed_intact(stack, body_mode, size):
    """FULL_DUPLEX also streams the response body through epp, which must echo every chunk."""
    env = stack.serving_envoy(body_mode)
    unit = "".join("r%05d " % i for i in range(10000))
    body = completion_body(prompt=(unit * (size // len(unit) + 1))[:size])
    st, hdrs, data = request(env.port, "POST", "/v1/completions", body, headers={"x-backend-echo": "1"},
                             timeout=120)
    assert st == 200, (st, data[:300])
    assert hdrs.get("x-destination-header") == "%s:%s" % (
        stack.backend_by_port(int(hdrs["x-served-by-port"])).host, hdrs["x-served-by-port"])
    assert hdrs.get("x-body-sha256") == hashlib.sha256(body).hexdigest(), "request body changed"
    assert len(data) == len(body), "response has %d bytes, backend sent %d" % (len(data), len(body))
    assert hashlib.sha256(data).hexdigest() == hashlib.sha256(body).hexdigest(), "response body changed"


def test_chunked_request_with_trailers(stack, body_mode):
    """HTTP/1 chunked request with a trailer (Envoy: enable_trailers). FULL_DUPLEX: epp gets
    request_trailers and must end the echoed body with end_of_stream false plus a
    TrailersResponse. BUFFERED (trailer mode SKIP): Envoy sends the buffered body with
    end_of_stream false and no trailers message; epp must still answer it."""
    env = stack.serving_envoy(body_mode)
    body = completion_body(prompt="with trailers " * 2000)
    parts = [body[i:i + 4096] for i in range(0, len(body), 4096)]
    raw = (b"POST /v1/completions HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
           b"transfer-encoding: chunked\r\nconnection: close\r\n\r\n")
    for p in parts:
        raw += b"%x\r\n%s\r\n" % (len(p), p)
    raw += b"0\r\nx-test-trailer: yes\r\n\r\n"
    t0 = time.monotonic()
    st, hdrs, data = raw_request(env.port, raw, timeout=30)
    took = time.monotonic() - t0
    assert st == 200, "status %d after %.1fs, body %r" % (st, took, data[:300])
    assert_served_json(stack, st, data, body)


def test_client_aborts_do_not_break_epp(stack, body_mode):
    env = stack.serving_envoy(body_mode)
    # 1. Client sends headers and part of a large body, then disconnects.
    for _ in range(5):
        with socket.create_connection(("127.0.0.1", env.port), timeout=5) as s:
            s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
                      b"content-length: 1000000\r\n\r\n" + b'{"model": "mock-model", "prompt": "' + b"a" * 70000)
            time.sleep(0.05)
    # 2. Client disconnects in the middle of an SSE response.
    for _ in range(3):
        c = http.client.HTTPConnection("127.0.0.1", env.port, timeout=10)
        c.request("POST", "/v1/completions", body=completion_body(stream=True),
                  headers={"content-type": "application/json", "x-backend-chunks": "10",
                           "x-backend-interval-ms": "50"})
        r = c.getresponse()
        assert r.status == 200
        r.readline()
        c.close()
    time.sleep(0.3)
    assert stack.epp.proc.alive(), stack.epp.proc.tail()
    # epp still routes.
    for i in range(10):
        body = completion_body(prompt="after abort %d" % i)
        st, _, data = request(env.port, "POST", "/v1/completions", body)
        assert_served_json(stack, st, data, body)


def read_raw_response(port, raw, timeout=30):
    """Sends raw bytes on a connection: close request and returns everything until EOF."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(raw)
        out = b""
        while True:
            b = s.recv(65536)
            if not b:
                return out
            out += b


def test_response_trailers_pass(stack, body_mode):
    """Backend ends its chunked SSE response with a trailer. FULL_DUPLEX: epp gets
    response_trailers after body chunks that did not end the stream, and must answer them."""
    env = stack.serving_envoy(body_mode)
    body = completion_body(prompt="trailers back", stream=True)
    raw = (b"POST /v1/completions HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
           b"x-backend-trailers: 1\r\nx-backend-chunks: 3\r\nx-backend-interval-ms: 20\r\n"
           b"te: trailers\r\nconnection: close\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body))
    t0 = time.monotonic()
    out = read_raw_response(env.port, raw, timeout=30)
    took = time.monotonic() - t0
    head = out.split(b"\r\n", 1)[0]
    assert head.startswith(b"HTTP/1.1 200"), (head, took, out[:500])
    assert b"data: [DONE]" in out, "response incomplete after %.1fs: %r" % (took, out[-300:])
    assert b"x-backend-trailer: done" in out.lower(), "trailer lost: %r" % out[-200:]


def test_slow_chunked_upload(stack, body_mode):
    """The body arrives in pieces 100 ms apart; epp must wait for the end of the body."""
    env = stack.serving_envoy(body_mode)
    body = completion_body(prompt="slow " * 20000)
    n = 5
    step = len(body) // n + 1
    c = http.client.HTTPConnection("127.0.0.1", env.port, timeout=30)
    try:
        def gen():
            for i in range(0, len(body), step):
                if i:
                    time.sleep(0.1)
                yield body[i:i + step]
        c.request("POST", "/v1/completions", body=gen(), encode_chunked=True,
                  headers={"content-type": "application/json", "transfer-encoding": "chunked"})
        r = c.getresponse()
        assert_served_json(stack, r.status, r.read(), body)
    finally:
        c.close()


# ---- request body limit ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def limited_stack(request, tmp_path_factory):
    return make_stack(request, tmp_path_factory, "body-limit", tls=False,
                      epp_args=["--max-request-body-bytes", str(1 * MiB)])


@pytest.mark.parametrize("size", [MiB + MiB // 2, 3 * MiB], ids=["1.5MiB", "3MiB"])
def test_body_over_max_request_body_bytes_is_413(limited_stack, body_mode, size):
    """epp runs with --max-request-body-bytes 1 MiB: larger bodies get a 413 ImmediateResponse.
    (BUFFERED sends the whole body in one gRPC message, so epp's gRPC receive limit must not
    be what refuses it.)"""
    stack = limited_stack
    env = stack.serving_envoy(body_mode)
    small = chat_body("fits " * 1000)
    st, _, data = request(env.port, "POST", "/v1/chat/completions", small)
    assert_served_json(stack, st, data, small)
    big = chat_body("x" * size)
    st, hdrs, data = request(env.port, "POST", "/v1/chat/completions", big, timeout=60)
    assert st == 413, (st, data[:300])
    assert data.startswith(b"inference error:"), data[:300]
    assert "x-served-by-port" not in hdrs
