"""End-to-end harness: mock model servers + epp + a real Envoy, all on 127.0.0.x.

Process model: every child runs in its own session (process group) with stdout+stderr sent to a
log file in the test's tmp dir; teardown sends SIGTERM to the group, then SIGKILL after a grace
period. Every wait is bounded and fails with the tail of the relevant log.

Envoy bootstraps are rendered by `render_envoy_bootstrap` (a dict, written as JSON, which is
valid YAML) and can be checked with `envoy --mode validate` (`validate_bootstrap`).
`render_round_robin_bootstrap` is the gateway without epp (a STATIC ROUND_ROBIN cluster over the
model servers) that `make demo` compares epp with.
"""

import glob
import http.client
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))

DEST_HEADER = "x-gateway-destination-endpoint"
SUBSET_NAMESPACE = "envoy.lb.subset_hint"
SUBSET_KEY = "x-gateway-destination-endpoint-subset"
LB_NAMESPACE = "envoy.lb"

# Backends listen on distinct loopback IPs: the subset hint matches on the IP only (as the
# reference EPP does), so distinct IPs make "hint = one backend" select exactly that backend.
BACKEND_HOSTS = ["127.0.0.1", "127.0.0.2", "127.0.0.3"]

DEFAULT_WAIT_S = 20.0


def epp_bin():
    return os.environ.get("EPP_BIN", os.path.join(ROOT, "build", "bin", "epp"))


def modelsim_bin():
    return os.environ.get("MODELSIM_BIN", os.path.join(ROOT, "build", "bin", "modelsim"))


def envoy_bin():
    if os.environ.get("ENVOY_BIN"):
        return os.environ["ENVOY_BIN"]
    # The venv's `envoy` console script just execv()s the embedded binary; use it directly.
    found = sorted(glob.glob(os.path.join(ROOT, ".venv", "lib", "python3*", "site-packages",
                                          "envoy", "_bin", "envoy")))
    if found:
        return found[0]
    return os.path.join(ROOT, ".venv", "bin", "envoy")


class HarnessError(AssertionError):
    pass


# ---------------------------------------------------------------------------------------------
# ports / waiting
# ---------------------------------------------------------------------------------------------

_handed_out = set()


def free_port(host="127.0.0.1"):
    """A currently free TCP port (bind to 0, read it, close). Never the same one twice."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port
    raise HarnessError("could not find a free port")


def tcp_connectable(host, port, timeout=0.2):
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_until(pred, what, timeout=DEFAULT_WAIT_S, interval=0.05, procs=()):
    """Polls pred() until truthy. Fails early if one of `procs` died, and on timeout; both
    failures carry the tail of those processes' logs."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        for p in procs:
            if not p.alive():
                raise HarnessError("%s: %s exited with code %s while waiting\n%s"
                                   % (what, p.name, p.returncode(), p.tail()))
        try:
            v = pred()
            if v:
                return v
        except Exception as e:  # noqa: BLE001 - report the last error on timeout
            last_exc = e
        if time.monotonic() > deadline:
            tails = "\n".join(p.tail() for p in procs)
            raise HarnessError("timed out after %.0fs waiting for %s (last error: %r)\n%s"
                               % (timeout, what, last_exc, tails))
        time.sleep(interval)


# ---------------------------------------------------------------------------------------------
# processes
# ---------------------------------------------------------------------------------------------

class Proc:
    """A child process in its own process group, logging to a file."""

    def __init__(self, name, argv, log_path, cwd=None, env=None):
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        with open(log_path, "ab") as logf:
            logf.write(("$ %s\n" % " ".join(self.argv)).encode())
            logf.flush()
            self.popen = subprocess.Popen(self.argv, stdout=logf, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL, cwd=cwd, env=env,
                                          start_new_session=True)

    @property
    def pid(self):
        return self.popen.pid

    def alive(self):
        return self.popen.poll() is None

    def returncode(self):
        return self.popen.poll()

    def _signal_group(self, sig):
        try:
            os.killpg(self.popen.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def kill(self):
        """SIGKILL, no grace (simulates a crash)."""
        self._signal_group(signal.SIGKILL)
        try:
            self.popen.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass

    def stop(self, grace=5.0):
        if self.alive():
            self._signal_group(signal.SIGTERM)
            try:
                self.popen.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                with open(self.log_path, "ab") as f:
                    f.write(b"\n[harness] no exit %.0fs after SIGTERM; SIGKILL\n" % grace)
        # Kill leftovers of the group even when the leader already exited.
        self._signal_group(signal.SIGKILL)
        try:
            self.popen.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass

    def tail(self, lines=60, max_bytes=64 << 10):
        try:
            with open(self.log_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                size = f.tell()
                f.seek(max(0, size - max_bytes))
                data = f.read().decode("utf-8", "replace")
        except OSError as e:
            return "[%s: no log: %s]" % (self.name, e)
        # Envoy's start-up banner (extension lists, header map sizes) is noise in a tail.
        kept = [ln if len(ln) <= 600 else ln[:600] + " [...]" for ln in data.splitlines()
                if "][info][main] [source/server/server.cc:" not in ln]
        text = "\n".join(kept[-lines:])
        return "----- %s (pid %d, %s) last %d lines of %s -----\n%s" % (
            self.name, self.pid, "running" if self.alive() else "exit %s" % self.returncode(),
            lines, self.log_path, text)

    def log_text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")


class Backend:
    def __init__(self, index, host, workdir):
        self.index = index
        self.host = host
        self.proc = Proc("backend%d" % index,
                         [sys.executable, "-u", os.path.join(HERE, "backend.py"), "--port", "0",
                          "--host", host, "--waiting", str(index + 1)],
                         os.path.join(workdir, "backend%d.log" % index))
        line = wait_until(lambda: _ready_line(self.proc.log_path), "backend%d READY line" % index,
                          procs=[self.proc])
        h, p = line.rsplit(":", 1)
        self.port = int(p)
        assert h == host, line

    @property
    def addr(self):
        """host:port as epp names it (IPv6 bracketed)."""
        if ":" in self.host:
            return "[%s]:%d" % (self.host, self.port)
        return "%s:%d" % (self.host, self.port)


class Modelsim:
    """A modelsim server (the vLLM simulator) on `host`, started with `args`; ready once its
    /health answers 200. Has the Backend interface (index, host, port, addr, proc) plus
    `labels` for the endpoints file."""

    def __init__(self, index, host, workdir, args=(), labels=None, name=None, port=None):
        if not os.access(modelsim_bin(), os.X_OK):
            raise HarnessError("modelsim binary %s not found (set MODELSIM_BIN)" % modelsim_bin())
        self.index = index
        self.host = host
        self.port = port or free_port(host)
        self.labels = dict(labels or {})
        self.name = name or "modelsim%d" % index
        self.argv = [modelsim_bin(), "--host", host, "--port", str(self.port)] + list(args)
        self.proc = Proc(self.name, self.argv, os.path.join(workdir, "%s.log" % self.name))

        def healthy():
            try:
                st, _, _ = request(self.port, "GET", "/health", timeout=2, host=self.host)
                return st == 200
            except OSError:
                return False
        wait_until(healthy, "%s /health" % self.name, procs=[self.proc])

    @property
    def addr(self):
        if ":" in self.host:
            return "[%s]:%d" % (self.host, self.port)
        return "%s:%d" % (self.host, self.port)

    def get(self, path):
        st, _, body = request(self.port, "GET", path, timeout=10, host=self.host)
        return st, body.decode()

    def post(self, path, obj):
        st, _, body = request(self.port, "POST", path, body=json.dumps(obj).encode(),
                              headers={"content-type": "application/json"}, timeout=60,
                              host=self.host)
        return st, body.decode()

    def metric(self, name, **labels):
        """Value of the sample `name` whose labels include `labels` (None when absent)."""
        _, page = self.get("/metrics")
        for line in page.splitlines():
            if line.startswith("#") or not line.startswith(name):
                continue
            rest = line[len(name):]
            if rest[:1] not in ("{", " "):
                continue
            if all('%s="%s"' % (k, v) in rest for k, v in labels.items()):
                return float(line.rsplit(" ", 1)[1])
        return None


def _ready_line(path):
    with open(path, "r", errors="replace") as f:
        for line in f:
            if line.startswith("READY "):
                return line.split()[1]
    return None


EPP_CONFIG_TEMPLATE = """\
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: file-discovery
  parameters: {{path: {endpoints}, watchFile: true}}
{scheduling_plugins}
dataLayer:
  discovery: {{pluginRef: file-discovery}}
{sources}{profiles}"""

# epp's scheduling in the harness unless a test asks for another: a random pick, so routing
# tests see every backend.
RANDOM_SCHEDULING = ("- type: random-picker", "")
# No scheduling plugins at all: epp's built-in default profile (queue 2, KV cache 2, prefix 3).
DEFAULT_SCHEDULING = ("", "")


def write_endpoints_file(path, backends):
    """Writes the file-discovery endpoints file atomically (rename), as a watcher expects."""
    if not backends:
        lines = ["endpoints: []"]
    else:
        lines = ["endpoints:"]
    for b in backends or ():
        labels = getattr(b, "labels", None)
        extra = ""
        if labels:
            extra = ", labels: {%s}" % ", ".join('"%s": "%s"' % kv for kv in labels.items())
        lines.append('- {name: b%d, namespace: default, address: "%s", port: "%d"%s}'
                     % (b.index, b.host, b.port, extra))
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(tmp, path)


class Epp:
    def __init__(self, workdir, backends, tls, name="epp", extra_args=(), scrape_metrics=True,
                 scheduling=RANDOM_SCHEDULING):
        """`scheduling`: (plugins YAML list items, schedulingProfiles YAML) for the config."""
        if not os.access(epp_bin(), os.X_OK):
            raise HarnessError("epp binary %s not found or not executable (set EPP_BIN)" % epp_bin())
        self.tls = tls
        self.workdir = workdir
        self.endpoints_path = os.path.join(workdir, "endpoints.yaml")
        self.config_path = os.path.join(workdir, "epp-config.yaml")
        write_endpoints_file(self.endpoints_path, backends)
        with open(self.config_path, "w") as f:
            f.write(EPP_CONFIG_TEMPLATE.format(
                endpoints=self.endpoints_path, scheduling_plugins=scheduling[0],
                profiles=scheduling[1],
                sources="" if scrape_metrics else "  sources: []  # no metrics scraping\n"))
        self.grpc_port = free_port()
        self.health_port = free_port()
        self.metrics_port = free_port()
        argv = [epp_bin(),
                "--grpc-port", str(self.grpc_port),
                "--grpc-health-port", str(self.health_port),
                "--metrics-port", str(self.metrics_port),
                "--secure-serving=%s" % ("true" if tls else "false"),
                "--config-file", self.config_path,
                "-v", "3"] + list(extra_args)
        self.name = name
        self.argv = argv
        self.proc = Proc(name, argv, os.path.join(workdir, "%s.log" % name))
        self._wait_up()

    def _wait_up(self):
        wait_until(lambda: tcp_connectable("127.0.0.1", self.grpc_port),
                   "%s gRPC port %d to accept connections" % (self.name, self.grpc_port),
                   procs=[self.proc])

    def restart(self):
        """Starts epp again with the same ports and files (after stop() or kill()).
        Returns the new Proc (logging to <name>-restart<N>.log)."""
        if self.proc.alive():
            self.proc.stop()
        n = getattr(self, "_restarts", 0) + 1
        self._restarts = n
        self.proc = Proc(self.name, self.argv,
                         os.path.join(self.workdir, "%s-restart%d.log" % (self.name, n)))
        self._wait_up()
        return self.proc

    def stop(self):
        self.proc.stop()

    def kill(self):
        self.proc.kill()


# ---------------------------------------------------------------------------------------------
# Envoy
# ---------------------------------------------------------------------------------------------

ACCESS_LOG_FORMAT = (
    "[access] %START_TIME% \"%REQ(:METHOD)% %REQ(:PATH)%\" %RESPONSE_CODE% %RESPONSE_FLAGS% "
    "details=%RESPONSE_CODE_DETAILS% upstream=%UPSTREAM_HOST% dest_header=%REQ(X-GATEWAY-DESTINATION-ENDPOINT)% "
    "dest_md=%DYNAMIC_METADATA(envoy.lb:x-gateway-destination-endpoint)% "
    "in=%BYTES_RECEIVED% out=%BYTES_SENT% dur=%DURATION%ms rid=%REQ(X-REQUEST-ID)%\n"
)

BODY_MODES = ("full_duplex", "buffered")
# Not in BODY_MODES (the tests parametrized over those expect response bodies through epp):
# requests as full_duplex, of the response only its end (see processing_mode).
LEAN_MODE = "full_duplex_lean"
# LEAN_MODE with response_trailer_mode SKIP: Envoy ends the ext_proc stream once the request is
# routed (the negative control of tests/e2e/test_lean_responses.py; do not use it).
LEAN_MODE_NO_TRAILERS = "full_duplex_lean_no_trailers"


def processing_mode(body_mode):
    if body_mode == "full_duplex":
        return {
            "request_header_mode": "SEND",
            "request_body_mode": "FULL_DUPLEX_STREAMED",
            "request_trailer_mode": "SEND",  # mandatory with FULL_DUPLEX_STREAMED
            "response_header_mode": "SEND",
            "response_body_mode": "FULL_DUPLEX_STREAMED",
            "response_trailer_mode": "SEND",
        }
    if body_mode == LEAN_MODE_NO_TRAILERS:
        return dict(processing_mode(LEAN_MODE), response_trailer_mode="SKIP")
    if body_mode == LEAN_MODE:
        # The request as GIE sends it; nothing of the response but the trailers mode SEND,
        # which keeps the ext_proc stream open until the response ends (Envoy half-closes it
        # then, trailers or not): epp sees the request end without a message per chunk and
        # without a round trip on the response's way to the client.
        return {
            "request_header_mode": "SEND",
            "request_body_mode": "FULL_DUPLEX_STREAMED",
            "request_trailer_mode": "SEND",
            "response_header_mode": "SKIP",
            "response_body_mode": "NONE",
            "response_trailer_mode": "SEND",
        }
    if body_mode == "buffered":
        return {
            "request_header_mode": "SEND",
            "request_body_mode": "BUFFERED",
            "request_trailer_mode": "SKIP",
            "response_header_mode": "SEND",
            "response_body_mode": "NONE",
            "response_trailer_mode": "SKIP",
        }
    raise ValueError("body_mode must be one of %s, not %r" % (
        BODY_MODES + (LEAN_MODE, LEAN_MODE_NO_TRAILERS), body_mode))


def _http_connection_manager(http_filters, cluster):
    """The HCM every harness Envoy uses: one route `/` to `cluster` (timeout 300 s), an access
    log line per request on stdout (ACCESS_LOG_FORMAT), then `http_filters` (ending with the
    router)."""
    return {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "igw",
        "codec_type": "AUTO",
        "stream_idle_timeout": "300s",
        # Parse HTTP/1 request trailers (chunked) so ext_proc sees request_trailers.
        "http_protocol_options": {"enable_trailers": True},
        "access_log": [{
            "name": "envoy.access_loggers.stdout",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog",
                "log_format": {"text_format_source": {"inline_string": ACCESS_LOG_FORMAT}},
            },
        }],
        "route_config": {
            "name": "igw_routes",
            "virtual_hosts": [{
                "name": "all",
                "domains": ["*"],
                "routes": [{
                    "match": {"prefix": "/"},
                    "route": {"cluster": cluster, "timeout": "300s"},
                }],
            }],
        },
        "http_filters": http_filters,
    }


def _listener(port, hcm):
    return {
        "name": "inference_gateway",
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
        "filter_chains": [{"filters": [{
            "name": "envoy.filters.network.http_connection_manager",
            "typed_config": hcm,
        }]}],
    }


_ROUTER_FILTER = {
    "name": "envoy.filters.http.router",
    "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router",
        "suppress_envoy_headers": True,
    },
}

_HIGH_LIMITS = {"max_connections": 40000, "max_pending_requests": 40000, "max_requests": 40000,
                "max_retries": 1024}


def render_round_robin_bootstrap(endpoints, admin_port=9901, listener_port=10000):
    """Returns the bootstrap (a dict) of a plain gateway without epp: the same listener, route
    and access log as render_envoy_bootstrap, no ext_proc filter, and one STATIC cluster
    `model_servers` with lb_policy ROUND_ROBIN over `endpoints` ("host:port" strings, IPv6
    bracketed). This is what a Kubernetes Service in front of the model servers gives (kube-proxy
    or a gateway's plain HTTPRoute): requests spread evenly, blind to queues, caches and adapters.
    No health checks, retries or outlier detection, so every request goes to its turn's server."""
    lb_endpoints = []
    for ep in endpoints:
        host, _, port = ep.rpartition(":")
        lb_endpoints.append({"endpoint": {"address": {"socket_address": {
            "address": host.strip("[]"), "port_value": int(port)}}}})
    cluster = {
        "name": "model_servers",
        "type": "STATIC",
        "lb_policy": "ROUND_ROBIN",
        "connect_timeout": "5s",
        "circuit_breakers": {"thresholds": [dict(_HIGH_LIMITS)]},
        "load_assignment": {"cluster_name": "model_servers",
                            "endpoints": [{"lb_endpoints": lb_endpoints}]},
    }
    listener = _listener(listener_port, _http_connection_manager([dict(_ROUTER_FILTER)],
                                                                 "model_servers"))
    return {
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin_port}}},
        "static_resources": {"listeners": [listener], "clusters": [cluster]},
    }


def render_envoy_bootstrap(body_mode, tls, epp_port, failure_mode_allow=False, subset_hint=None,
                           admin_port=9901, listener_port=10000, route_by="header",
                           buffer_limit_bytes=64 << 20):
    """Returns the Envoy bootstrap (a dict).

    body_mode: "full_duplex" | "buffered" | LEAN_MODE.  tls: epp serves gRPC over TLS (self-signed; no
    validation).  subset_hint: None = no hint; a list (possibly empty) = injected with
    envoy.filters.http.set_metadata into envoy.lb.subset_hint before ext_proc.
    route_by: "header" (ORIGINAL_DST reads x-gateway-destination-endpoint) or "metadata"
    (ORIGINAL_DST reads dynamic metadata envoy.lb/x-gateway-destination-endpoint only).
    """
    http_filters = []
    if subset_hint is not None:
        http_filters.append({
            "name": "envoy.filters.http.set_metadata",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.set_metadata.v3.Config",
                "metadata": [{
                    "metadata_namespace": SUBSET_NAMESPACE,
                    "value": {SUBSET_KEY: list(subset_hint)},
                }],
            },
        })
    http_filters.append({
        "name": "envoy.filters.http.ext_proc",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor",
            "grpc_service": {"envoy_grpc": {"cluster_name": "epp"}, "timeout": "10s"},
            "processing_mode": processing_mode(body_mode),
            # Not applied to FULL_DUPLEX_STREAMED; bounds each BUFFERED answer.
            "message_timeout": "10s",
            "failure_mode_allow": bool(failure_mode_allow),
            "allow_mode_override": False,
            "metadata_options": {
                "forwarding_namespaces": {"untyped": [SUBSET_NAMESPACE]},
                "receiving_namespaces": {"untyped": [LB_NAMESPACE]},
            },
        },
    })
    http_filters.append(dict(_ROUTER_FILTER))

    listener = _listener(listener_port, _http_connection_manager(
        http_filters, "original_destination_cluster"))
    if body_mode == "buffered":
        # BUFFERED holds the whole request body in the ext_proc filter; the limit is the
        # connection buffer limit (default 1 MiB, over it -> 413). Raise it for 10 MiB prompts.
        listener["per_connection_buffer_limit_bytes"] = buffer_limit_bytes

    high = dict(_HIGH_LIMITS)

    if route_by == "header":
        odst = {"use_http_header": True, "http_header_name": DEST_HEADER}
    elif route_by == "metadata":
        odst = {"metadata_key": {"key": LB_NAMESPACE, "path": [{"key": DEST_HEADER}]}}
    else:
        raise ValueError("route_by must be header|metadata")

    orig_dst = {
        "name": "original_destination_cluster",
        "type": "ORIGINAL_DST",
        "lb_policy": "CLUSTER_PROVIDED",
        "connect_timeout": "5s",
        "cleanup_interval": "60s",
        "original_dst_lb_config": odst,
        "circuit_breakers": {"thresholds": [high]},
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                # Parse HTTP/1 response trailers from the backends (ext_proc response_trailers).
                "explicit_http_config": {"http_protocol_options": {"enable_trailers": True}},
            },
        },
    }
    if body_mode == "buffered":
        orig_dst["per_connection_buffer_limit_bytes"] = buffer_limit_bytes

    epp_cluster = {
        "name": "epp",
        "type": "STATIC",
        "lb_policy": "ROUND_ROBIN",
        "connect_timeout": "1s",
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": {"http2_protocol_options": {}},
            },
        },
        "circuit_breakers": {"thresholds": [high]},
        "load_assignment": {
            "cluster_name": "epp",
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {
                "socket_address": {"address": "127.0.0.1", "port_value": epp_port}}}}]}],
        },
    }
    if tls:
        epp_cluster["transport_socket"] = {
            "name": "envoy.transport_sockets.tls",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
                # No validation_context: the epp's self-signed certificate is accepted.
                "common_tls_context": {"alpn_protocols": ["h2"]},
            },
        }

    return {
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin_port}}},
        "static_resources": {"listeners": [listener], "clusters": [orig_dst, epp_cluster]},
    }


def write_bootstrap(path, bootstrap):
    with open(path, "w") as f:
        json.dump(bootstrap, f, indent=2)  # JSON is YAML; Envoy loads .yaml files as YAML
    return path


def validate_bootstrap(path, timeout=60):
    """Runs `envoy --mode validate -c path`; raises with Envoy's output on failure."""
    r = subprocess.run([envoy_bin(), "--mode", "validate", "-c", path, "--disable-hot-restart",
                        "--base-id", str(next_base_id()), "-l", "warning"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)
    out = r.stdout.decode("utf-8", "replace")
    if r.returncode != 0:
        raise HarnessError("envoy --mode validate %s failed (rc %d):\n%s" % (path, r.returncode, out))
    return out


_base_ids = itertools.count(1)


def next_base_id():
    # Distinct per Envoy started by this process and across concurrent pytest processes.
    return (os.getpid() % 20000) * 50 + next(_base_ids) % 50


class Envoy:
    def __init__(self, workdir, name, body_mode, tls, epp_port, failure_mode_allow=False,
                 subset_hint=None, route_by="header", validate=True, render=None,
                 component_log_level="ext_proc:debug,upstream:info"):
        """An Envoy (one worker) on a free listener port, ready once admin /ready says LIVE.
        The bootstrap is render_envoy_bootstrap(body_mode, tls, epp_port, ...), or
        render(admin_port, listener_port) when `render` is given (then body_mode, tls and
        epp_port are not used; see round_robin_envoy)."""
        self.name = name
        self.body_mode = body_mode
        self.admin_port = free_port()
        self.port = free_port()
        if render is not None:
            self.bootstrap = render(self.admin_port, self.port)
        else:
            self.bootstrap = render_envoy_bootstrap(body_mode, tls, epp_port, failure_mode_allow,
                                                    subset_hint, self.admin_port, self.port,
                                                    route_by)
        self.config_path = write_bootstrap(os.path.join(workdir, "%s.yaml" % name), self.bootstrap)
        if validate:
            validate_bootstrap(self.config_path)
        argv = [envoy_bin(), "-c", self.config_path, "--base-id", str(next_base_id()),
                "--disable-hot-restart", "--concurrency", "1", "--log-level", "info",
                "--component-log-level", component_log_level,
                "--drain-time-s", "1", "--parent-shutdown-time-s", "2"]
        self.proc = Proc(name, argv, os.path.join(workdir, "%s.log" % name))
        wait_until(self._ready, "%s admin /ready == 200 LIVE (admin port %d)" % (name, self.admin_port),
                   procs=[self.proc], interval=0.1)

    def _ready(self):
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/ready" % self.admin_port, timeout=1) as r:
                return r.status == 200 and r.read().strip() == b"LIVE"
        except (urllib.error.URLError, OSError):
            return False

    def admin_get(self, path):
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (self.admin_port, path), timeout=5) as r:
            return r.read().decode()

    def stats(self, filt="ext_proc"):
        out = {}
        for line in self.admin_get("/stats?filter=%s" % filt).splitlines():
            k, _, v = line.partition(": ")
            try:
                out[k] = int(v)
            except ValueError:
                out[k] = v
        return out

    def stop(self):
        self.proc.stop()


def round_robin_envoy(workdir, backends, name="envoy-round-robin", validate=True, **kwargs):
    """An Envoy with render_round_robin_bootstrap over `backends` (objects with `addr`): the
    plain Kubernetes-Service-like gateway that epp is compared with."""
    addrs = [b.addr for b in backends]
    return Envoy(workdir, name, None, False, None, validate=validate,
                 render=lambda admin, listener: render_round_robin_bootstrap(addrs, admin, listener),
                 **kwargs)


# ---------------------------------------------------------------------------------------------
# Stack: 3 backends + epp + any number of Envoys (created lazily, cached by configuration)
# ---------------------------------------------------------------------------------------------

class Stack:
    def __init__(self, workdir, tls, n_backends=3, start_epp=True, epp_args=(),
                 backend_hosts=BACKEND_HOSTS, scrape_metrics=True, modelsim_args=None,
                 scheduling=RANDOM_SCHEDULING):
        """Backends are backend.py servers, or modelsim servers when `modelsim_args` (a list of
        extra modelsim flags) is given."""
        self.workdir = workdir
        self.tls = tls
        self.backends = []
        self.epp = None
        self._envoys = {}
        self._all = []
        try:
            for i in range(n_backends):
                host = backend_hosts[i % len(backend_hosts)]
                if modelsim_args is not None:
                    b = Modelsim(i, host, workdir, modelsim_args)
                else:
                    b = Backend(i, host, workdir)
                self.backends.append(b)
                self._all.append(b.proc)
            if start_epp:
                self.epp = Epp(workdir, self.backends, tls, extra_args=epp_args,
                               scrape_metrics=scrape_metrics, scheduling=scheduling)
                self._all.append(self.epp.proc)
        except BaseException:
            self.close()
            raise

    @property
    def epp_port(self):
        return self.epp.grpc_port

    def backend_by_port(self, port):
        for b in self.backends:
            if b.port == port:
                return b
        return None

    def envoy(self, body_mode="full_duplex", failure_mode_allow=False, subset_hint=None,
              route_by="header", component_log_level=None):
        """The Envoy with ext_proc to this stack's epp in this configuration (started on first
        use). component_log_level: Envoy's --component-log-level instead of the harness default
        (which logs every ext_proc frame: hundreds of MB under load)."""
        key = (body_mode, bool(failure_mode_allow),
               None if subset_hint is None else tuple(subset_hint), route_by, component_log_level)
        env = self._envoys.get(key)
        if env is None or not env.proc.alive():
            name = "envoy-%s%s%s%s-%d" % (
                body_mode, "-failopen" if failure_mode_allow else "",
                "" if subset_hint is None else "-hint%d" % len(subset_hint),
                "" if route_by == "header" else "-md", len(self._all))
            extra = {"component_log_level": component_log_level} if component_log_level else {}
            env = Envoy(self.workdir, name, body_mode, self.tls, self.epp_port,
                        failure_mode_allow, subset_hint, route_by, **extra)
            self._envoys[key] = env
            self._all.append(env.proc)
        return env

    def round_robin_envoy(self, **kwargs):
        """A round-robin Envoy over this stack's backends (no epp involved; see
        render_round_robin_bootstrap), stopped with the stack."""
        env = round_robin_envoy(self.workdir, self.backends,
                                name="envoy-round-robin-%d" % len(self._all), **kwargs)
        self._all.append(env.proc)
        return env

    def serving_envoy(self, body_mode="full_duplex", **kwargs):
        """stack.envoy(...) that has been seen serving (checked once per Envoy)."""
        env = self.envoy(body_mode, **kwargs)
        if not getattr(env, "serving_checked", False):
            self.wait_serving(env)
            env.serving_checked = True
        return env

    def wait_serving(self, envoy, timeout=DEFAULT_WAIT_S):
        """Waits until a GET /v1/models through `envoy` returns 200 (epp has loaded its
        endpoints). Returns the seconds it took."""
        t0 = time.monotonic()

        def ok():
            st, _, _ = request(envoy.port, "GET", "/v1/models", timeout=5)
            return st == 200
        procs = [envoy.proc] + ([self.epp.proc] if self.epp is not None else [])
        wait_until(ok, "GET /v1/models through %s to return 200" % envoy.name, timeout=timeout,
                   interval=0.2, procs=procs)
        return time.monotonic() - t0

    def procs(self):
        procs = list(self._all)
        if self.epp is not None and getattr(self.epp, "proc", None) not in procs and \
                getattr(self.epp, "proc", None) is not None:
            procs.insert(len(self.backends), self.epp.proc)
        return procs

    def tails(self, lines=60):
        return "\n".join(p.tail(lines) for p in self.procs())

    def close(self):
        # Envoys first (they hold streams to epp), then epp, then backends.
        for p in reversed(self.procs()):
            try:
                p.stop()
            except Exception as e:  # noqa: BLE001
                sys.stderr.write("harness: stopping %s: %r\n" % (p.name, e))


def require_epp():
    """Skips the test when the epp binary is missing (fails with EPP_E2E_REQUIRE_BINARY=1)."""
    import pytest
    if not os.access(epp_bin(), os.X_OK):
        msg = "epp binary not found at %s (build it, or set EPP_BIN)" % epp_bin()
        if os.environ.get("EPP_E2E_REQUIRE_BINARY") == "1":
            pytest.fail(msg)
        pytest.skip(msg)


def make_stack(request, tmp_path_factory, name, tls, start_epp=True, epp_args=(), **kwargs):
    """For module-scoped fixtures: a Stack in a fresh tmp dir, closed at the end of the scope."""
    if start_epp:
        require_epp()
    workdir = str(tmp_path_factory.mktemp(name))
    st = Stack(workdir, tls=tls, start_epp=start_epp, epp_args=epp_args, **kwargs)
    request.addfinalizer(st.close)
    return st


# ---------------------------------------------------------------------------------------------
# minimal h2c gRPC client for grpc.health.v1.Health/Check (stdlib only)
# ---------------------------------------------------------------------------------------------

HEALTH_STATUS = {0: "UNKNOWN", 1: "SERVING", 2: "NOT_SERVING", 3: "SERVICE_UNKNOWN"}


def _hpack_int(value, prefix_bits, first_byte_flags=0):
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first_byte_flags | value])
    out = [first_byte_flags | limit]
    value -= limit
    while value >= 128:
        out.append((value % 128) + 128)
        value //= 128
    out.append(value)
    return bytes(out)


def _hpack_str(s):
    b = s.encode()
    return _hpack_int(len(b), 7) + b  # no Huffman


def _h2_frame(ftype, flags, stream_id, payload=b""):
    return len(payload).to_bytes(3, "big") + bytes([ftype, flags]) + stream_id.to_bytes(4, "big") + payload


def grpc_health_check(port, service="", host="127.0.0.1", timeout=5.0, content_type="application/grpc"):
    """Calls grpc.health.v1.Health/Check over plaintext HTTP/2. Returns the status name
    (SERVING, NOT_SERVING, SERVICE_UNKNOWN, UNKNOWN); raises HarnessError when the call ends
    without a response message (a gRPC error status; its text is HPACK-encoded and not decoded)."""
    path = "/grpc.health.v1.Health/Check"
    block = (b"\x83" + b"\x86"  # :method POST, :scheme http (static table)
             + _hpack_int(4, 4) + _hpack_str(path)  # :path, literal without indexing
             + _hpack_int(1, 4) + _hpack_str("%s:%d" % (host, port))  # :authority
             + b"\x00" + _hpack_str("content-type") + _hpack_str(content_type)
             + b"\x00" + _hpack_str("te") + _hpack_str("trailers"))
    svc = service.encode()
    msg = (b"\x0a" + _hpack_int(len(svc), 7) + svc) if svc else b""  # field 1 (varint len < 128)
    if len(svc) >= 128:
        raise ValueError("service name too long for this client")
    grpc_msg = b"\x00" + len(msg).to_bytes(4, "big") + msg
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.settimeout(timeout)
        s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + _h2_frame(0x4, 0, 0)
                  + _h2_frame(0x1, 0x4, 1, block) + _h2_frame(0x0, 0x1, 1, grpc_msg))
        buf = b""
        data = b""

        def read_exact(n):
            nonlocal buf
            while len(buf) < n:
                chunk = s.recv(65536)
                if not chunk:
                    raise HarnessError("health check: connection closed by %s:%d" % (host, port))
                buf += chunk
            out, buf = buf[:n], buf[n:]
            return out
        while True:
            hdr = read_exact(9)
            length = int.from_bytes(hdr[:3], "big")
            ftype, flags = hdr[3], hdr[4]
            sid = int.from_bytes(hdr[5:9], "big") & 0x7FFFFFFF
            payload = read_exact(length)
            if ftype == 0x4 and not flags & 0x1:  # SETTINGS -> ACK
                s.sendall(_h2_frame(0x4, 0x1, 0))
            elif ftype == 0x6 and not flags & 0x1:  # PING -> ACK
                s.sendall(_h2_frame(0x6, 0x1, 0, payload))
            elif ftype == 0x7:  # GOAWAY
                raise HarnessError("health check: GOAWAY %r" % payload[:64])
            elif ftype == 0x3 and sid == 1:  # RST_STREAM
                raise HarnessError("health check: RST_STREAM code %d" % int.from_bytes(payload, "big"))
            elif ftype == 0x0 and sid == 1:
                if flags & 0x8:  # PADDED
                    payload = payload[1:len(payload) - payload[0]]
                data += payload
                if len(data) >= 5:
                    mlen = int.from_bytes(data[1:5], "big")
                    if len(data) >= 5 + mlen:
                        body = data[5:5 + mlen]
                        status = 0
                        if body[:1] == b"\x08" and len(body) >= 2:
                            status = body[1]
                        return HEALTH_STATUS.get(status, str(status))
                if flags & 0x1:
                    raise HarnessError("health check: stream ended inside a message")
            elif ftype == 0x1 and sid == 1 and flags & 0x1 and not data:
                raise HarnessError("health check of %r: the call ended without a response message "
                                   "(gRPC error status)" % service)


# ---------------------------------------------------------------------------------------------
# client helpers
# ---------------------------------------------------------------------------------------------

def request(port, method, path, body=None, headers=None, timeout=60, conn=None, host="127.0.0.1"):
    """One HTTP/1.1 request to host:port. Returns (status, headers dict lower-case, body)."""
    own = conn is None
    c = conn or http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        hdrs = {"content-type": "application/json"} if body is not None else {}
        hdrs.update(headers or {})
        c.request(method, path, body=body, headers=hdrs)
        r = c.getresponse()
        data = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data
    finally:
        if own:
            c.close()


def completion_body(model="mock-model", prompt="hello", **extra):
    obj = {"model": model, "prompt": prompt, "max_tokens": 4}
    obj.update(extra)
    return json.dumps(obj).encode()


def chat_body(content, model="mock-model", **extra):
    obj = {"model": model, "messages": [{"role": "user", "content": content}]}
    obj.update(extra)
    return json.dumps(obj).encode()
