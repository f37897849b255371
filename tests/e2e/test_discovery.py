"""file-discovery with watchFile: true — epp follows edits of the endpoints file."""

import json
import time

import pytest

import harness
from harness import completion_body, make_stack, request


@pytest.fixture(scope="module")
def stack(request, tmp_path_factory):
    return make_stack(request, tmp_path_factory, "discovery", tls=False)


def served_ports(env, n):
    out = []
    for i in range(n):
        st, _, data = request(env.port, "POST", "/v1/completions", completion_body(prompt="d%d" % i))
        out.append((st, json.loads(data)["served_by_port"] if st == 200 else None))
    return out


def wait_for_routing(env, want_ports, what, timeout=15.0):
    """Until 12 consecutive requests are all 200 and served only by want_ports."""
    last = []

    def ok():
        last[:] = served_ports(env, 12)
        return all(st == 200 and p in want_ports for st, p in last)
    try:
        harness.wait_until(ok, what, timeout=timeout, interval=0.2)
    except AssertionError:
        raise AssertionError("%s; last results (status, port): %s" % (what, last))


def test_endpoints_file_edits_are_followed(stack):
    env = stack.envoy("full_duplex")
    stack.wait_serving(env)
    all_ports = {b.port for b in stack.backends}
    wait_for_routing(env, all_ports, "routing to the initial 3 backends")

    b2 = stack.backends[2]
    harness.write_endpoints_file(stack.epp.endpoints_path, [b2])
    wait_for_routing(env, {b2.port}, "epp to route only to %s after the file lists only it" % b2.addr)

    harness.write_endpoints_file(stack.epp.endpoints_path, stack.backends)
    deadline = time.monotonic() + 15
    seen = set()
    while time.monotonic() < deadline and len(seen) < 2:
        seen |= {p for st, p in served_ports(env, 10) if st == 200}
    assert len(seen) >= 2 and seen <= all_ports, "after restoring 3 backends, served by %s" % seen


def test_empty_pool_is_refused(stack):
    env = stack.envoy("full_duplex")
    harness.write_endpoints_file(stack.epp.endpoints_path, [])
    results = []

    def refused():
        st, hdrs, data = request(env.port, "POST", "/v1/completions", completion_body())
        results.append((st, data[:200]))
        return st != 200
    harness.wait_until(refused, "epp to stop routing after the endpoints list became empty",
                       timeout=15, interval=0.2)
    st, data = results[-1]
    assert st in (500, 503), results[-1]
    harness.write_endpoints_file(stack.epp.endpoints_path, stack.backends)
