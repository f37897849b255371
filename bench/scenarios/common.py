"""Shared pieces of the scenario benchmarks: model servers, the routers under test, loadgen,
the servers' own counters, process CPU, and the report and plot helpers.

Processes are started with tests/e2e/harness.py's Proc (own process group, log file, SIGTERM
then SIGKILL on stop); nothing here changes the harness.

Routers (one row each; `make_router(name)`):
  envoy-round-robin     Envoy, STATIC cluster over the servers, lb_policy ROUND_ROBIN, no ext_proc
  envoy-least-request   the same with LEAST_REQUEST (Envoy's default choice_count 2)
  epp-default           Envoy + epp (ext_proc, FULL_DUPLEX_STREAMED) with
                        examples/configs/gie-default.yaml (the reference's default profile)
  epp-best              Envoy + epp with examples/configs/prefix-inflight.yaml
  epp-default-noresp    epp-default with --process-responses=false (not a default row)
  epp-best-lean         epp-best, Envoy sending epp nothing of the response but its end
                        (harness.LEAN_MODE; not a default row)
  sglang-router         PyPI sglang-router (python -m sglang_router.launch_router), cache_aware
  smg                   PyPI smg (python -m smg launch), cache_aware
  vllm-router-cache-aware, vllm-router-power-of-two
                        PyPI vllm-router (python -m vllm_router.launch_router)
Every router listens on 127.0.0.1 and is told the servers' addresses directly (epp through its
file-discovery endpoints file). No per-request logging anywhere (Envoy without access log at
level warning, epp at its default -v 2, the peers at --log-level warn/warning).
"""
import argparse
import datetime
import importlib.metadata
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH = os.path.dirname(HERE)
ROOT = os.path.dirname(BENCH)
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
sys.path.insert(0, BENCH)
import harness  # noqa: E402
import benchlib  # noqa: E402

VENV_PY = os.path.join(ROOT, ".venv", "bin", "python")
REQUIREMENTS = os.path.join(BENCH, "requirements.txt")
MODEL = "meta-llama/Llama-3.1-8B-Instruct"


# ---------------------------------------------------------------------------------------------
# environment
# ---------------------------------------------------------------------------------------------

def ensure_venv():
    """Re-executes the calling script under .venv's Python when started with another one."""
    if not os.path.exists(VENV_PY):
        sys.exit("no .venv: run `make setup` (scripts/setup.sh) first")
    if os.path.realpath(sys.prefix) != os.path.realpath(os.path.join(ROOT, ".venv")):
        os.execv(VENV_PY, [VENV_PY] + sys.argv)


def _pins():
    pins = []
    for line in open(REQUIREMENTS):
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins.append((name.strip(), version.strip()))
    return pins


def ensure_requirements():
    """Installs bench/requirements.txt into .venv when a pinned package is missing or at
    another version (pip, from PyPI)."""
    missing = []
    for name, version in _pins():
        try:
            have = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            have = None
        if have is None or (version and have != version):
            missing.append("%s==%s (have %s)" % (name, version, have))
    if missing:
        print("installing into .venv: %s" % ", ".join(missing), flush=True)
        subprocess.run([VENV_PY, "-m", "pip", "install", "-q", "-r", REQUIREMENTS], check=True)
        importlib.invalidate_caches()


def package_versions():
    out = {}
    for name, _ in _pins():
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "missing"
    return out


def loadgen_bin():
    """$LOADGEN_BIN, else build/bin/loadgen, else build/loadgen-dev/bin/loadgen."""
    if os.environ.get("LOADGEN_BIN"):
        return os.environ["LOADGEN_BIN"]
    for rel in (("build", "bin", "loadgen"), ("build", "loadgen-dev", "bin", "loadgen")):
        path = os.path.join(ROOT, *rel)
        if os.access(path, os.X_OK):
            return path
    sys.exit("loadgen not found in build/bin or build/loadgen-dev/bin (set LOADGEN_BIN)")


def check_binaries():
    for what, path in (("epp", harness.epp_bin()), ("modelsim", harness.modelsim_bin()),
                       ("envoy", harness.envoy_bin()), ("loadgen", loadgen_bin())):
        if not os.access(path, os.X_OK):
            sys.exit("%s binary %s not found (build it first, or set %s_BIN)"
                     % (what, path, what.upper()))


def envoy_version():
    out = subprocess.run([harness.envoy_bin(), "--version"], capture_output=True, text=True).stdout
    m = re.search(r"version: \S+?/(\d+\.\d+\.\d+)/", out)
    return m.group(1) if m else out.strip()


def report_header(title, command):
    return benchlib.header(title, command)


def scripts_dirty():
    """A note when bench/scenarios or bench/requirements.txt differ from HEAD (untracked
    included), since benchlib's commit line counts tracked files only; "" when clean."""
    out = subprocess.run(["git", "status", "--porcelain", "--", "bench/scenarios",
                          "bench/requirements.txt"], cwd=ROOT, capture_output=True,
                         text=True).stdout
    if not out.strip():
        return ""
    return "uncommitted or changed at this commit (%s)" % ", ".join(
        sorted({l[3:].strip() for l in out.splitlines()}))


def run_meta(title, cmd, started, elapsed):
    """What a scenario report's header says about its run (kept in the result JSON, so
    --report-only can rewrite the report without running anything)."""
    header = report_header(title, cmd)
    dirty = scripts_dirty()
    if dirty:
        header.append("- scenario scripts: %s" % dirty)
    return {"header": header, "started": started, "elapsed": elapsed,
            "loadgen": os.path.relpath(loadgen_bin(), ROOT), "envoy": envoy_version(),
            "versions": ", ".join("%s %s" % kv for kv in package_versions().items())}


def load_saved(args):
    """For --report-only: (the saved result JSON, its run's args with --out kept, its meta with
    a note when the scenario scripts changed since)."""
    with open(args.report_only) as f:
        saved = json.load(f)
    run_args = argparse.Namespace(**saved["args"])
    run_args.out = args.out
    meta = saved.get("meta") or meta_from_report(args.out)
    dirty = scripts_dirty()
    if dirty and not any(l.startswith("- scenario scripts:") for l in meta["header"]):
        meta["header"].append("- scenario scripts: %s" % dirty)
    return saved, run_args, meta


def meta_from_report(md_path):
    """The header lines (title … machine), start time and runtime of an existing report, for
    rewriting a report whose JSON predates the stored header."""
    header, started, elapsed = [], "?", 0.0
    with open(md_path) as f:
        for i, line in enumerate(f.read().splitlines()):
            if line.startswith("- started: "):
                m = re.match(r"- started: (.*); total runtime ([\d.]+) min", line)
                if m:
                    started, elapsed = m.group(1), float(m.group(2)) * 60
                break
            header.append(line)
    meta = {"header": header, "started": started, "elapsed": elapsed}
    with open(md_path) as f:
        m = re.search(r"^- loadgen: `([^`]*)`; envoy (\S+); (.*)$", f.read(), re.M)
    if m:
        meta.update(loadgen=m.group(1), envoy=m.group(2), versions=m.group(3))
    else:
        meta.update(loadgen=os.path.relpath(loadgen_bin(), ROOT), envoy=envoy_version(),
                    versions=", ".join("%s %s" % kv for kv in package_versions().items()))
    return meta


def log(msg):
    print("[%s] %s" % (datetime.datetime.now().strftime("%H:%M:%S"), msg), flush=True)


# ---------------------------------------------------------------------------------------------
# processes and CPU
# ---------------------------------------------------------------------------------------------

def descendants(pid):
    """pid and every live descendant process of it."""
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def cpu_of(pids):
    """utime+stime seconds of these processes (and their descendants), from /proc."""
    total = 0.0
    for pid in pids:
        for p in descendants(pid):
            try:
                total += benchlib.cpu_seconds(p)
            except (OSError, IndexError, ValueError):
                pass
    return total


def http_post(port, path, obj, timeout=10, host="127.0.0.1"):
    return harness.request(port, "POST", path, body=json.dumps(obj).encode(), timeout=timeout,
                           host=host)


def wait_routing(router, timeout=60):
    """Waits until a 1-token completion through the router answers 200 (its workers are
    registered and healthy). The prompt is shorter than one KV block, so no server caches it."""
    def ok():
        st, _, _ = http_post(router.port, "/v1/completions",
                             {"model": MODEL, "prompt": "hi", "max_tokens": 1}, timeout=5)
        return st == 200
    harness.wait_until(ok, "a completion through %s" % router.name, timeout=timeout,
                       interval=0.25, procs=router.procs)


# ---------------------------------------------------------------------------------------------
# model servers
# ---------------------------------------------------------------------------------------------

class Cluster:
    """N modelsim servers on 127.0.0.1, each with `args`; start() again for a cold cluster."""

    def __init__(self, n, args, workdir):
        self.n, self.args, self.workdir = n, list(args), workdir
        self.servers = []
        self.generation = 0

    def start(self):
        self.stop()
        self.generation += 1
        d = os.path.join(self.workdir, "servers-%03d" % self.generation)
        os.makedirs(d, exist_ok=True)
        try:
            for i in range(self.n):
                self.servers.append(harness.Modelsim(i, "127.0.0.1", d, self.args,
                                                     name="modelsim%d" % i))
        except BaseException:
            self.stop()
            raise
        return self.servers

    def stop(self):
        for s in self.servers:
            s.proc.stop()
        self.servers = []

    def command(self):
        return "%s --host 127.0.0.1 --port PORT %s" % (
            os.path.relpath(harness.modelsim_bin(), ROOT), " ".join(self.args))


def parse_prom(text):
    """[(name, {label: value}, float)] of a Prometheus text page."""
    out = []
    for line in text.splitlines():
        if not line or line[0] == "#":
            continue
        m = re.match(r'^([^\s{]+)(?:\{(.*)\})?\s+(\S+)', line)
        if not m:
            continue
        labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        try:
            out.append((m.group(1), labels, float(m.group(3))))
        except ValueError:
            pass
    return out


def scrape(server, timeout=5):
    st, _, body = harness.request(server.port, "GET", "/metrics", timeout=timeout,
                                  host=server.host)
    if st != 200:
        raise RuntimeError("%s /metrics: %d" % (server.name, st))
    return parse_prom(body.decode())


COUNTERS = ("vllm:prefix_cache_queries_total", "vllm:prefix_cache_hits_total",
            "vllm:num_preemptions_total", "vllm:prompt_tokens_total",
            "vllm:generation_tokens_total", "vllm:request_success_total",
            "vllm:request_queue_time_seconds_sum", "vllm:request_queue_time_seconds_count",
            "vllm:time_to_first_token_seconds_sum", "vllm:time_to_first_token_seconds_count")


def counters(samples):
    """Sums of the COUNTERS over label sets, plus the LoRA adapters seen running/waiting."""
    out = dict.fromkeys(COUNTERS, 0.0)
    for name, labels, value in samples:
        if name in out:
            if name == "vllm:request_success_total" and labels.get("finished_reason") == "abort":
                out["aborted"] = out.get("aborted", 0.0) + value
                continue
            out[name] += value
    out["lora_adapters_seen"] = sorted(adapters_of(samples))
    return out


def adapters_of(samples):
    """The LoRA adapters a server lists running or waiting in `vllm:lora_requests_info`."""
    adapters = set()
    for name, labels, _ in samples:
        if name == "vllm:lora_requests_info":
            for key in ("running_lora_adapters", "waiting_lora_adapters"):
                adapters.update(a for a in labels.get(key, "").split(",") if a)
    return adapters


class ServerWatch:
    """Counter snapshots at start and end, and the gauges (waiting, running, KV use) of every
    server sampled every `interval` seconds in between."""

    def __init__(self, servers, interval=0.5):
        self.servers = servers
        self.interval = interval
        self.samples = []  # (t, [waiting], [running], [kv])
        self.adapters = [set() for _ in servers]  # LoRA adapters seen running or waiting
        self._stop = threading.Event()
        self.start_counters = [counters(scrape(s)) for s in servers]
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        t0 = time.monotonic()
        while not self._stop.wait(self.interval):
            row = ([], [], [])
            try:
                for i, s in enumerate(self.servers):
                    samples = scrape(s, timeout=2)
                    g = {n: v for n, _, v in samples
                         if n in ("vllm:num_requests_waiting", "vllm:num_requests_running",
                                  "vllm:kv_cache_usage_perc")}
                    self.adapters[i].update(adapters_of(samples))
                    row[0].append(g.get("vllm:num_requests_waiting", 0.0))
                    row[1].append(g.get("vllm:num_requests_running", 0.0))
                    row[2].append(g.get("vllm:kv_cache_usage_perc", 0.0))
            except Exception:  # noqa: BLE001 - a missed sample is not fatal
                continue
            self.samples.append((time.monotonic() - t0,) + row)

    def finish(self):
        self._stop.set()
        self._thread.join(timeout=10)
        end = [counters(scrape(s)) for s in self.servers]
        per_server = []
        for a, b in zip(self.start_counters, end):
            d = {k: b[k] - a[k] for k in COUNTERS}
            d["lora_adapters_seen"] = b["lora_adapters_seen"]
            per_server.append(d)
        total = {k: sum(d[k] for d in per_server) for k in COUNTERS}
        q = total["vllm:prefix_cache_queries_total"]
        waiting = [sum(s[1]) for s in self.samples]
        waiting_max_server = [max(s[1]) for s in self.samples if s[1]]
        running = [sum(s[2]) for s in self.samples]
        kv = [sum(s[3]) / len(s[3]) for s in self.samples if s[3]]
        return {
            "per_server": per_server,
            "total": total,
            "hit_rate": (total["vllm:prefix_cache_hits_total"] / q) if q else 0.0,
            "requests_per_server": [int(round(d["vllm:request_success_total"]))
                                    for d in per_server],
            "preemptions": int(total["vllm:num_preemptions_total"]),
            "queue_time_mean_s": (total["vllm:request_queue_time_seconds_sum"]
                                  / total["vllm:request_queue_time_seconds_count"]
                                  if total["vllm:request_queue_time_seconds_count"] else 0.0),
            "waiting_mean": sum(waiting) / len(waiting) if waiting else 0.0,
            "waiting_max": max(waiting) if waiting else 0.0,
            "waiting_max_one_server": max(waiting_max_server) if waiting_max_server else 0.0,
            "running_mean": sum(running) / len(running) if running else 0.0,
            "kv_usage_mean": sum(kv) / len(kv) if kv else 0.0,
            "lora_adapters_seen": sorted({a for d in per_server for a in d["lora_adapters_seen"]}
                                         | {a for x in self.adapters for a in x}),
            "adapters_per_server": [sorted(x | set(d["lora_adapters_seen"]))
                                    for x, d in zip(self.adapters, per_server)],
            "gauge_samples": len(self.samples),
        }


# ---------------------------------------------------------------------------------------------
# Envoy
# ---------------------------------------------------------------------------------------------

_LIMITS = {"max_connections": 100000, "max_pending_requests": 100000, "max_requests": 100000,
           "max_retries": 1024}


def render_static_bootstrap(endpoints, lb_policy, admin_port, listener_port):
    """An Envoy bootstrap (a dict; JSON is YAML) for a plain gateway: one HTTP listener on
    127.0.0.1:listener_port, one route `/` to a STATIC cluster over `endpoints` ((host, port)
    pairs) with `lb_policy` (ROUND_ROBIN, LEAST_REQUEST, RANDOM), no ext_proc, no access log,
    no health checks, retries or outlier detection, no route timeout (answers stream for as long
    as they take; the client has its own timeout), circuit breakers out of the way."""
    if lb_policy not in ("ROUND_ROBIN", "LEAST_REQUEST", "RANDOM"):
        raise ValueError("lb_policy %r" % lb_policy)
    cluster = {
        "name": "model_servers",
        "type": "STATIC",
        "lb_policy": lb_policy,
        "connect_timeout": "5s",
        "circuit_breakers": {"thresholds": [dict(_LIMITS)]},
        "load_assignment": {
            "cluster_name": "model_servers",
            "endpoints": [{"lb_endpoints": [
                {"endpoint": {"address": {"socket_address": {"address": h, "port_value": int(p)}}}}
                for h, p in endpoints]}],
        },
    }
    hcm = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager"
                 ".v3.HttpConnectionManager",
        "stat_prefix": "gateway",
        "codec_type": "AUTO",
        "stream_idle_timeout": "300s",
        "route_config": {
            "name": "routes",
            "virtual_hosts": [{"name": "all", "domains": ["*"], "routes": [{
                "match": {"prefix": "/"},
                "route": {"cluster": "model_servers", "timeout": "0s"}}]}],
        },
        "http_filters": [{
            "name": "envoy.filters.http.router",
            "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router"
                                      ".v3.Router",
                             "suppress_envoy_headers": True},
        }],
    }
    listener = {
        "name": "gateway",
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": listener_port}},
        "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager",
                                        "typed_config": hcm}]}],
    }
    return {
        "admin": {"address": {"socket_address": {"address": "127.0.0.1",
                                                 "port_value": admin_port}}},
        "static_resources": {"listeners": [listener], "clusters": [cluster]},
    }


def start_envoy(workdir, name, bootstrap, concurrency, validate=True):
    """Writes and (by default) validates `bootstrap`, starts Envoy with `concurrency` workers;
    returns its Proc once the admin port says LIVE."""
    path = harness.write_bootstrap(os.path.join(workdir, "%s.yaml" % name), bootstrap)
    if validate:
        harness.validate_bootstrap(path)
    admin = bootstrap["admin"]["address"]["socket_address"]["port_value"]
    proc = harness.Proc(name, [harness.envoy_bin(), "-c", path, "--base-id",
                               str(harness.next_base_id()), "--disable-hot-restart",
                               "--concurrency", str(concurrency), "--log-level", "warning",
                               "--drain-time-s", "1", "--parent-shutdown-time-s", "2"],
                        os.path.join(workdir, "%s.log" % name))

    def live():
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/ready" % admin, timeout=1) as r:
                return r.status == 200 and r.read().strip() == b"LIVE"
        except OSError:
            return False
    harness.wait_until(live, "%s admin /ready" % name, procs=[proc], interval=0.1)
    return proc


# ---------------------------------------------------------------------------------------------
# routers
# ---------------------------------------------------------------------------------------------

class Router:
    name = "router"
    kind = ""

    def __init__(self):
        self.procs = []
        self.port = None
        self.cmdline = ""

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def cpu_pids(self):
        return [p.pid for p in self.procs]

    def cpu_parts(self):
        """{part name: pid} for a CPU breakdown (Envoy and epp separately)."""
        return {p.name: p.pid for p in self.procs}

    stop_grace = 5.0

    def stop(self):
        for p in reversed(self.procs):
            p.stop(grace=self.stop_grace)
        self.procs = []

    def alive(self):
        return all(p.alive() for p in self.procs)

    def tails(self):
        return "\n".join(p.tail(40) for p in self.procs)


class EnvoyStatic(Router):
    kind = "Envoy, static cluster"

    def __init__(self, name, lb_policy, concurrency):
        super().__init__()
        self.name, self.lb_policy, self.concurrency = name, lb_policy, concurrency

    def start(self, workdir, servers):
        self.port = harness.free_port()
        boot = render_static_bootstrap([(s.host, s.port) for s in servers], self.lb_policy,
                                       harness.free_port(), self.port)
        self.procs = [start_envoy(workdir, "envoy-" + self.name, boot, self.concurrency)]
        self.cmdline = ("envoy --concurrency %d, STATIC cluster lb_policy %s (bench/scenarios/"
                        "common.py render_static_bootstrap)" % (self.concurrency, self.lb_policy))


class EnvoyEpp(Router):
    kind = "Envoy + epp"

    def cpu_parts(self):
        return {p.name: p.pid for p in reversed(self.procs)}  # Envoy first, then epp

    def __init__(self, name, profile, concurrency, epp_args=(), body_mode="full_duplex"):
        super().__init__()
        self.name, self.profile, self.concurrency = name, profile, concurrency
        self.epp_args = list(epp_args)
        self.body_mode = body_mode

    def start(self, workdir, servers):
        import yaml
        d = os.path.join(workdir, self.name)
        os.makedirs(d, exist_ok=True)
        endpoints = os.path.join(d, "endpoints.yaml")
        harness.write_endpoints_file(endpoints, servers)
        with open(os.path.join(ROOT, self.profile)) as f:
            cfg = yaml.safe_load(f)
        found = False
        for plugin in cfg.get("plugins", []):
            if plugin.get("type") == "file-discovery":
                plugin.setdefault("parameters", {})["path"] = endpoints
                found = True
        if not found:
            raise RuntimeError("%s has no file-discovery plugin" % self.profile)
        config = os.path.join(d, "epp-config.yaml")
        with open(config, "w") as f:
            yaml.safe_dump(cfg, f, sort_keys=False)
        grpc, health, metrics = harness.free_port(), harness.free_port(), harness.free_port()
        argv = [harness.epp_bin(), "--grpc-port", str(grpc), "--grpc-health-port", str(health),
                "--metrics-port", str(metrics), "--secure-serving=false",
                "--config-file", config] + self.epp_args
        epp = harness.Proc("epp", argv, os.path.join(d, "epp.log"))
        self.procs = [epp]
        harness.wait_until(lambda: harness.tcp_connectable("127.0.0.1", grpc),
                           "epp gRPC port", procs=[epp])
        self.port = harness.free_port()
        boot = harness.render_envoy_bootstrap(self.body_mode, False, grpc,
                                              admin_port=harness.free_port(),
                                              listener_port=self.port)
        hcm = boot["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
        hcm["typed_config"].pop("access_log", None)  # no per-request logging in a benchmark
        self.procs.append(start_envoy(d, "envoy", boot, self.concurrency))
        self.cmdline = ("envoy --concurrency %d (harness.render_envoy_bootstrap %s, "
                        "access log off) + build/bin/epp --secure-serving=false --config-file "
                        "<%s, file-discovery path set to the servers>%s" % (
                            self.concurrency, self.body_mode, self.profile,
                            (" " + " ".join(self.epp_args)) if self.epp_args else ""))


class PeerRouter(Router):
    kind = "standalone router (PyPI)"
    stop_grace = 1.0  # SGLang's routers wait up to 180 s for in-flight requests on SIGTERM

    def __init__(self, name, module_argv, policy, log_level, extra=()):
        super().__init__()
        self.name, self.module_argv, self.policy = name, list(module_argv), policy
        self.log_level, self.extra = log_level, list(extra)

    def start(self, workdir, servers):
        self.port = harness.free_port()
        argv = ([VENV_PY] + self.module_argv
                + ["--host", "127.0.0.1", "--port", str(self.port),
                   "--worker-urls"] + ["http://%s:%d" % (s.host, s.port) for s in servers]
                + ["--policy", self.policy, "--prometheus-host", "127.0.0.1",
                   "--prometheus-port", str(harness.free_port()), "--log-level", self.log_level]
                + self.extra)
        self.procs = [harness.Proc(self.name, argv, os.path.join(workdir, self.name + ".log"))]
        harness.wait_until(lambda: harness.tcp_connectable("127.0.0.1", self.port),
                           "%s port" % self.name, procs=self.procs, timeout=60)
        shown = [a for a in argv[1:]]
        self.cmdline = "python " + " ".join(shown)

    def log_excerpt(self, pattern=r"WARN|ERROR|error", limit=8):
        """Distinct warning/error lines of the router's log (ANSI colours removed)."""
        if not self.procs:
            return []
        try:
            text = self.procs[0].log_text()
        except OSError:
            return []
        seen, out = set(), []
        for line in text.splitlines():
            line = re.sub(r"\x1b\[[0-9;]*m", "", line)
            if re.search(pattern, line) and "POSTURE" not in line:
                key = re.sub(r"^\S+ \S+\s+", "", line)[:160]
                if key not in seen:
                    seen.add(key)
                    out.append(line[:400])
            if len(out) >= limit:
                break
        return out


ROUTER_NAMES = ("envoy-round-robin", "envoy-least-request", "epp-default", "epp-best",
                "sglang-router", "smg", "vllm-router-cache-aware", "vllm-router-power-of-two")
# Also known to make_router, not in the default rows of scenarios 1-3: epp-default-noresp (the
# reference default profile with --process-responses=false: Envoy sends the answer straight to
# the client and epp never learns when a request ends) and epp-best-lean (epp-best behind an
# Envoy that sends epp nothing of the response and keeps the stream open until the response
# ends: harness.LEAN_MODE).


def make_router(name, envoy_concurrency=2):
    if name == "envoy-round-robin":
        return EnvoyStatic(name, "ROUND_ROBIN", envoy_concurrency)
    if name == "envoy-least-request":
        return EnvoyStatic(name, "LEAST_REQUEST", envoy_concurrency)
    if name == "epp-default":
        return EnvoyEpp(name, "examples/configs/gie-default.yaml", envoy_concurrency)
    if name == "epp-best":
        return EnvoyEpp(name, "examples/configs/prefix-inflight.yaml", envoy_concurrency)
    if name == "epp-best-lean":
        return EnvoyEpp(name, "examples/configs/prefix-inflight.yaml", envoy_concurrency,
                        body_mode=harness.LEAN_MODE)
    if name == "epp-default-noresp":
        return EnvoyEpp(name, "examples/configs/gie-default.yaml", envoy_concurrency,
                        ["--process-responses=false"])
    if name == "sglang-router":
        return PeerRouter(name, ["-m", "sglang_router.launch_router"], "cache_aware", "warn")
    if name == "smg":
        return PeerRouter(name, ["-m", "smg", "launch"], "cache_aware", "warn")
    if name == "vllm-router-cache-aware":
        return PeerRouter(name, ["-m", "vllm_router.launch_router"], "cache_aware", "warning")
    if name == "vllm-router-power-of-two":
        return PeerRouter(name, ["-m", "vllm_router.launch_router"], "power_of_two", "warning")
    raise ValueError("unknown router %r (one of %s)" % (name, ", ".join(ROUTER_NAMES)))


PEERS = ("sglang-router", "smg", "vllm-router-cache-aware", "vllm-router-power-of-two")


# ---------------------------------------------------------------------------------------------
# loadgen
# ---------------------------------------------------------------------------------------------

def run_loadgen(target, args, out_json, log_path, timeout):
    """Runs loadgen against `target` with `args`; returns its JSON result (None if it wrote
    none). Its text summary and progress go to log_path."""
    argv = [loadgen_bin(), "--target", target, "--output", out_json, "--progress", "0"] + args
    with open(log_path, "ab") as logf:
        logf.write(("$ %s\n" % " ".join(argv)).encode())
        logf.flush()
        try:
            subprocess.run(argv, stdout=logf, stderr=subprocess.STDOUT, timeout=timeout)
        except subprocess.TimeoutExpired:
            logf.write(b"\n[scenario] loadgen timed out\n")
    if not os.path.exists(out_json):
        return None
    with open(out_json) as f:
        return json.load(f)


# ---------------------------------------------------------------------------------------------
# report helpers
# ---------------------------------------------------------------------------------------------

def md_table(headers, rows):
    lines = ["| " + " | ".join(headers) + " |", "|" + " --- |" * len(headers)]
    for r in rows:
        lines.append("| " + " | ".join(str(c) for c in r) + " |")
    return lines


def errors_text(summary):
    if not summary or not summary.get("failed"):
        return "0"
    kinds = ", ".join("%s %d" % kv for kv in sorted(summary.get("errors_by_kind", {}).items()))
    status = ", ".join("%s: %d" % kv for kv in sorted(summary.get("errors_by_status", {}).items()))
    return "%d (%s; status %s)" % (summary["failed"], kinds, status)


_STYLE = {}
_FIXED = ("direct",) + ROUTER_NAMES + ("epp-default-noresp", "epp-best-lean")


def _style(label):
    """A fixed colour/marker/line per router name, the same in every plot and every file."""
    if label not in _STYLE:
        colours = ["#7f7f7f", "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
                   "#e377c2", "#17becf", "#bcbd22", "#000000"]
        i = _FIXED.index(label) if label in _FIXED else len(_FIXED) + len(_STYLE)
        _STYLE[label] = {"color": colours[i % len(colours)], "marker": "os^vD<>phx*"[i % 11],
                         "linestyle": "--" if label.startswith(("envoy-", "direct")) else "-",
                         "linewidth": 2.4 if label.startswith("epp") else 1.4}
    return _STYLE[label]


def plot_panels(path, title, xlabel, panels, xlog=False, xticks=None):
    """panels: [(ylabel, {label: [(x, y), ...]}, logy)]; one PNG (matplotlib, Agg), the panels
    side by side in rows of two, one legend."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    ncols = 2 if len(panels) > 1 else 1
    nrows = (len(panels) + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(6.2 * ncols, 3.9 * nrows), dpi=100,
                             squeeze=False)
    handles = {}
    for ax, (ylabel, series, logy) in zip(axes.flat, panels):
        for label, pts in series.items():
            pts = [(x, y) for x, y in pts if y is not None]
            if not pts:
                continue
            xs, ys = zip(*pts)
            (h,) = ax.plot(xs, ys, label=label, markersize=5, **_style(label))
            handles[label] = h
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        if logy:
            ax.set_yscale("log")
        if xlog:
            ax.set_xscale("log")
        if xticks:
            from matplotlib.ticker import NullLocator
            ax.set_xticks([t for t, _ in xticks])
            ax.set_xticklabels([l for _, l in xticks])
            ax.xaxis.set_minor_locator(NullLocator())
        ax.grid(True, which="both", alpha=0.3)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.suptitle(title, fontsize=11)
    fig.legend(list(handles.values()), list(handles.keys()), loc="lower center",
               ncol=min(len(handles), 4), fontsize=9)
    legend_rows = (len(handles) + 3) // 4
    fig_h = 3.9 * nrows
    fig.tight_layout(rect=(0, (0.3 + 0.27 * legend_rows) / fig_h, 1, 1 - 0.35 / fig_h))
    fig.savefig(path)
    plt.close(fig)
