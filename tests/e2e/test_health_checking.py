"""--health-checking also serves grpc.health.v1 on the ext_proc port (what Envoy's active gRPC
health check of the epp cluster calls); without it only the health port answers."""

import urllib.request

import pytest

import harness
from harness import make_stack

EXT_PROC_SERVICE = "envoy.service.ext_proc.v3.ExternalProcessor"


@pytest.fixture(scope="module")
def with_flag(request, tmp_path_factory):
    return make_stack(request, tmp_path_factory, "health-on", tls=False,
                      epp_args=["--health-checking"])


@pytest.fixture(scope="module")
def without_flag(request, tmp_path_factory):
    return make_stack(request, tmp_path_factory, "health-off", tls=False)


def test_ext_proc_port_serves_health_with_flag(with_flag):
    assert harness.grpc_health_check(with_flag.epp.grpc_port, EXT_PROC_SERVICE) == "SERVING"
    assert harness.grpc_health_check(with_flag.epp.health_port, EXT_PROC_SERVICE) == "SERVING"


def test_ext_proc_port_has_no_health_without_flag(without_flag):
    with pytest.raises(harness.HarnessError):
        harness.grpc_health_check(without_flag.epp.grpc_port, EXT_PROC_SERVICE)
    assert harness.grpc_health_check(without_flag.epp.health_port, EXT_PROC_SERVICE) == "SERVING"


def test_envoy_active_health_check_marks_epp_healthy(with_flag, tmp_path):
    """Envoy's own gRPC health checker (as the reference Envoy config sets it up) calls the
    ext_proc port and finds epp healthy; requests then route through it."""
    admin, port = harness.free_port(), harness.free_port()
    boot = harness.render_envoy_bootstrap("full_duplex", False, with_flag.epp.grpc_port,
                                          admin_port=admin, listener_port=port)
    epp_cluster = [c for c in boot["static_resources"]["clusters"] if c["name"] == "epp"][0]
    epp_cluster["health_checks"] = [{
        "timeout": "1s", "interval": "0.2s", "unhealthy_threshold": 2, "healthy_threshold": 1,
        "grpc_health_check": {"service_name": EXT_PROC_SERVICE},
    }]
    cfg = harness.write_bootstrap(str(tmp_path / "envoy-hc.yaml"), boot)
    proc = harness.Proc("envoy-hc", [harness.envoy_bin(), "-c", cfg, "--base-id",
                                     str(harness.next_base_id()), "--disable-hot-restart",
                                     "--concurrency", "1", "--log-level", "info"],
                        str(tmp_path / "envoy-hc.log"))
    try:
        def healthy():
            try:
                lines = _get("http://127.0.0.1:%d/clusters" % admin).splitlines()
            except OSError:
                return False
            flags = [l for l in lines if l.startswith("epp::") and "::health_flags::" in l]
            return bool(flags) and all(l.rsplit("::", 1)[1].strip() == "healthy" for l in flags)
        harness.wait_until(healthy, "Envoy's health check to mark epp healthy", procs=[proc])
        st, _, _ = harness.request(port, "POST", "/v1/completions", harness.completion_body())
        assert st == 200
    finally:
        proc.stop()


def _get(url):
    with urllib.request.urlopen(url, timeout=2) as r:
        return r.read().decode()
