"""IPv6 model servers: epp names them as "[addr]:port" (bracketed, in the header and in the
envoy.lb metadata) and the real Envoy's ORIGINAL_DST cluster connects there."""

import json
import socket

import pytest

from harness import completion_body, make_stack, request


def _ipv6_loopback_works():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


pytestmark = pytest.mark.skipif(not _ipv6_loopback_works(), reason="no IPv6 loopback here")


@pytest.fixture(scope="module")
def stack(request, tmp_path_factory):
    return make_stack(request, tmp_path_factory, "ipv6", tls=False, n_backends=2,
                      backend_hosts=["::1"])


@pytest.mark.parametrize("route_by", ["header", "metadata"])
def test_ipv6_endpoints_are_bracketed_and_served(stack, route_by):
    env = stack.envoy("full_duplex", route_by=route_by)
    stack.wait_serving(env)
    seen = set()
    for i in range(10):
        st, _, data = request(env.port, "POST", "/v1/completions",
                              completion_body(prompt="v6 %d" % i))
        assert st == 200, (st, data[:300])
        d = json.loads(data)
        assert d["served_by_host"] == "::1"
        assert d["destination_header"] == "[::1]:%d" % d["served_by_port"], d
        seen.add(d["served_by_port"])
    assert seen <= {b.port for b in stack.backends}
