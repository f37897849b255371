"""Self-checks of the harness that need no epp: every Envoy bootstrap variant passes
`envoy --mode validate`, the mock backend parses chunked bodies, Envoy with no epp
listening behaves as the failure-mode tests expect, and the round-robin gateway that `make demo`
compares epp with takes turns over its backends."""

import hashlib
import http.client
import itertools
import json
import os

import pytest

import harness
from harness import DEST_HEADER, completion_body, make_stack, request


@pytest.fixture(scope="module")
def bootstrap_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("bootstraps"))


@pytest.mark.parametrize("body_mode,tls,allow,hint,route_by", [
    (bm, tls, allow, hint, rb)
    for bm, tls, allow, hint, rb in itertools.product(
        harness.BODY_MODES, [False, True], [False, True], [None, [], ["127.0.0.2:1", "127.0.0.3:2"]],
        ["header", "metadata"])
])
def test_bootstrap_validates(bootstrap_dir, body_mode, tls, allow, hint, route_by):
    b = harness.render_envoy_bootstrap(body_mode, tls, 9002, allow, hint, 9901, 10000, route_by)
    name = "%s-%s-%s-%s-%s.yaml" % (body_mode, "tls" if tls else "plain", "open" if allow else "closed",
                                     "nohint" if hint is None else "hint%d" % len(hint), route_by)
    harness.validate_bootstrap(harness.write_bootstrap(os.path.join(bootstrap_dir, name), b))


@pytest.fixture(scope="module")
def no_epp_stack(request, tmp_path_factory):
    st = make_stack(request, tmp_path_factory, "no-epp", tls=False, start_epp=False)

    class DeadEpp:  # a port nobody listens on
        grpc_port = harness.free_port()
    st.epp = DeadEpp()
    return st


def test_backend_reads_chunked_and_content_length(no_epp_stack):
    b = no_epp_stack.backends[0]
    body = json.dumps({"model": "m", "prompt": "z" * 300000}).encode()
    want = hashlib.sha256(body).hexdigest()
    c = http.client.HTTPConnection(b.host, b.port, timeout=10)
    try:
        c.request("POST", "/v1/completions", body=body, headers={DEST_HEADER: b.addr})
        r = c.getresponse()
        d = json.loads(r.read())
        assert r.status == 200 and d["body_sha256"] == want and d["destination_header"] == b.addr
        c.request("POST", "/v1/completions", body=(body[i:i + 7777] for i in range(0, len(body), 7777)),
                  encode_chunked=True, headers={"Transfer-Encoding": "chunked"})
        r = c.getresponse()
        d = json.loads(r.read())
        assert r.status == 200 and d["body_sha256"] == want and d["transfer_encoding"] == "chunked"
        assert d["model"] == "m" and d["served_by_port"] == b.port
    finally:
        c.close()


def test_envoy_without_epp(no_epp_stack):
    st = no_epp_stack
    b = st.backends[1]
    # BUFFERED + failure_mode_allow: forwarded to the client-named backend.
    env = st.envoy("buffered", failure_mode_allow=True)
    code, hdrs, data = request(env.port, "POST", "/v1/completions", completion_body(), headers={DEST_HEADER: b.addr})
    assert code == 200 and json.loads(data)["served_by_port"] == b.port
    # Fail-closed: 500 from ext_proc.
    for bm in harness.BODY_MODES:
        env = st.envoy(bm, failure_mode_allow=False)
        code, hdrs, data = request(env.port, "POST", "/v1/completions", completion_body(),
                                   headers={DEST_HEADER: b.addr})
        assert code == 500, (bm, code, data)


@pytest.mark.parametrize("endpoints", [["127.0.0.1:8001"],
                                       ["127.0.0.1:8001", "127.0.0.2:8002", "[::1]:8003"]])
def test_round_robin_bootstrap_validates(bootstrap_dir, endpoints):
    b = harness.render_round_robin_bootstrap(endpoints, 9901, 10000)
    path = os.path.join(bootstrap_dir, "round-robin-%d.yaml" % len(endpoints))
    harness.validate_bootstrap(harness.write_bootstrap(path, b))
    cluster, = b["static_resources"]["clusters"]
    assert cluster["lb_policy"] == "ROUND_ROBIN" and cluster["type"] == "STATIC"
    assert "ext_proc" not in json.dumps(b)


def test_round_robin_envoy_takes_turns(request, tmp_path_factory):
    """The demo's round-robin side: four backends, each request to the next one in turn."""
    st = make_stack(request, tmp_path_factory, "round-robin", tls=False, start_epp=False,
                    n_backends=4, backend_hosts=["127.0.0.1", "127.0.0.2", "127.0.0.3",
                                                 "127.0.0.4"])
    env = st.round_robin_envoy()
    st.wait_serving(env)
    served = []
    for _ in range(8):
        code, _, data = harness.request(env.port, "POST", "/v1/completions", completion_body())
        assert code == 200, data
        served.append(json.loads(data)["served_by_port"])
    ports = sorted(b.port for b in st.backends)
    # Every backend twice, and a full turn before any repeats.
    assert sorted(served) == sorted(ports * 2), served
    assert sorted(served[:4]) == ports and served[4:] == served[:4], served
