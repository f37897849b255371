"""A Poisson rate sweep with real processes, shared by the routing-quality scenarios (1–3).

For every rate, each router in turn is put in front of the same N modelsim servers, restarted
before every row (cold caches, counters from 0), and driven by loadgen with the same seed and
workload, so every row of a rate gets the same requests at the same times. Collected per row:
loadgen's client view (TTFT, ITL, E2E, output tokens/s, errors), the servers' own counters
(prefix-cache hit rate, preemptions, requests per server, queue time, waiting queue sampled every
0.5 s, LoRA adapters seen per server), and the router's CPU (utime+stime of its processes).

Times: modelsim runs with --time-scale T (simulated seconds per real second); rates are given in
simulated requests/s (loadgen sends T times as many per real second) and every latency and
throughput in the report is converted to simulated time (real × T, tokens/s ÷ T).

A scenario is a `Scenario` subclass: its workload (loadgen flags), its servers' flags, the lines
that describe it, and the ratios and verdicts its targets ask for. `main(scenario)` runs it.
"""
import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

DEFAULT_ROUTERS = ",".join(common.ROUTER_NAMES)
# Roughly a 32B-class model on two H100s (llm-d's run used Qwen-32B, TP 2): modelsim's 8B/H100
# fit with every step cost doubled. Slower engines put saturation at a token rate this 2-core
# machine can stream through a router.
SIM_32B = ("--sim-step-base-ms 13.6 --sim-prefill-ms-per-token 0.056 "
           "--sim-decode-ms-per-seq 0.02")


class Scenario:
    """What differs between the sweep scenarios. Subclasses set the class attributes and
    override the hooks."""
    name = ""            # results file stem: bench/results/<name>.md
    title = ""
    script = ""          # bench/scenarios/<script>.py, for the command line in the report
    rates = ""           # default --rates
    seconds = 18.0       # default --seconds
    sim_args = ""        # default --sim-args
    routers = DEFAULT_ROUTERS  # default --routers
    plot_title = ""

    def add_args(self, ap):
        """Scenario-specific flags."""

    def server_args(self, args):
        """modelsim flags besides --time-scale, --seed and --sim-args."""
        return []

    def workload_args(self, args):
        """loadgen's workload flags (rate, arrival, duration, seed and timeout are added)."""
        raise NotImplementedError

    def describe(self, args, results):
        """Report lines (markdown list items) describing servers and workload."""
        return []

    def ratio_lines(self, pts, peers):
        """Lines under one rate's table."""
        return []

    def verdict_lines(self, results, peers):
        """The "Where we land" section."""
        return []

    def extra_panels(self, series):
        """More plot panels for the throughput figure: [(ylabel, series, logy)]."""
        return []


def parse_args(sc):
    ap = argparse.ArgumentParser(description=sc.title)
    ap.add_argument("--servers", type=int, default=4)
    sc.add_args(ap)
    ap.add_argument("--time-scale", type=float, default=1.0)
    ap.add_argument("--rates", default=sc.rates, help="simulated requests/s, comma-separated")
    ap.add_argument("--seconds", type=float, default=sc.seconds,
                    help="arrivals for this many simulated seconds per point (loadgen --duration)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--routers", default=sc.routers)
    ap.add_argument("--sim-args", default=sc.sim_args, help="extra modelsim flags (costs)")
    ap.add_argument("--envoy-concurrency", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=240,
                    help="loadgen's per-request timeout, real seconds")
    ap.add_argument("--out", default=os.path.join(common.ROOT, "bench", "results",
                                                   sc.name + ".md"))
    ap.add_argument("--keep", action="store_true", help="keep the work folder (logs)")
    ap.add_argument("--report-only", metavar="JSON",
                    help="rewrite the report and plots from a saved result JSON, run nothing")
    return ap.parse_args()


def all_server_args(sc, args):
    return (sc.server_args(args) + ["--time-scale", "%g" % args.time_scale,
                                    "--seed", str(args.seed)] + args.sim_args.split())


def sim_summary(summary, T):
    """loadgen's summary in simulated time."""
    def dist(d):
        return {k: (v * T if k != "count" else v) for k, v in d.items()}
    s = dict(summary)
    for k in ("ttft_ms", "itl_ms", "tpot_ms", "e2e_ms"):
        s[k] = dist(summary[k])
    s["duration_s"] = summary["duration_s"] * T
    s["requests_per_s"] = summary["requests_per_s"] / T
    s["output_tokens_per_s"] = summary["output_tokens_per_s"] / T
    return s


def run_point(sc, args, cluster, name, rate, work):
    T = args.time_scale
    point = {"router": name, "rate": rate}
    d = os.path.join(work, "r%g-%s" % (rate, name))
    os.makedirs(d, exist_ok=True)
    cluster.workdir = d
    router = common.make_router(name, args.envoy_concurrency)
    try:
        servers = cluster.start()
        try:
            router.start(d, servers)
            common.wait_routing(router, timeout=60)
        except Exception as e:  # noqa: BLE001 - a router that does not start is a result
            point["error"] = "did not start or route: %s" % str(e).strip()[:1500]
            common.log("  %s: %s" % (name, point["error"].splitlines()[0]))
            return point
        point["cmdline"] = router.cmdline
        watch = common.ServerWatch(servers)
        parts = router.cpu_parts()
        cpu0 = {k: common.cpu_of([pid]) for k, pid in parts.items()}
        t0 = time.monotonic()
        res = common.run_loadgen(router.url, sc.workload_args(args) + [
            "--rate", "%g" % (rate * T), "--arrival", "poisson",
            "--duration", "%gs" % (args.seconds / T), "--seed", str(args.seed),
            "--timeout", "%gs" % args.timeout], os.path.join(d, "loadgen.json"),
            os.path.join(d, "loadgen.log"), timeout=args.timeout + args.seconds / T + 60)
        point["wall_s"] = time.monotonic() - t0
        point["cpu_s"] = {k: common.cpu_of([pid]) - cpu0[k] for k, pid in parts.items()}
        point["servers"] = watch.finish()
        point["router_alive"] = router.alive()
        if isinstance(router, common.PeerRouter):
            point["router_log"] = router.log_excerpt()
        if res is None:
            point["error"] = "loadgen wrote no result (see %s)" % os.path.join(d, "loadgen.log")
        else:
            point["summary"] = sim_summary(res["summary"], T)
        return point
    finally:
        router.stop()
        cluster.stop()


def fmt_s(ms):
    if ms is None:
        return "—"
    return "%.3f s" % (ms / 1000.0) if ms >= 1000 else "%.0f ms" % ms


def served(p):
    """A row that ran and answered at least one request (a row that served nothing has
    loadgen's zero latencies, which must not win a comparison)."""
    return "summary" in p and p["summary"]["succeeded"] > 0


def best_peer(points, peers):
    """The peer row with the lowest p90 TTFT, preferring rows that completed every request."""
    cands = [p for p in points if p["router"] in peers and served(p)]
    return min(cands, key=lambda p: (p["summary"]["failed"] > 0,
                                     p["summary"]["ttft_ms"]["p90"])) if cands else None


def by_router(points):
    """Rows that served requests, by router; a row with failures is kept (its ratios are
    marked by complete())."""
    return {p["router"]: p for p in points if served(p)}


def complete(p):
    """True when the row answered every request: only then can it meet a target."""
    return p["summary"]["failed"] == 0


def ratio(a, b):
    return a / b if b else float("inf")


def met(value, ok):
    return "met" if ok(value) else "not met"


def adapters_per_server(p):
    """'a b c d': distinct LoRA adapters each server ran or queued over the run."""
    per = p["servers"].get("adapters_per_server")
    return " ".join(str(len(a)) for a in per) if per else "—"


def table_lines(pts):
    rows = []
    for p in pts:
        if "summary" not in p:
            rows.append([p["router"], "—", p.get("error", "?").splitlines()[0][:200]] +
                        ["—"] * 13)
            continue
        s, sv = p["summary"], p["servers"]
        cpu = sum(p["cpu_s"].values())
        rows.append([
            p["router"], "%d/%d" % (s["succeeded"], s["requests"]), common.errors_text(s),
            fmt_s(s["ttft_ms"]["p50"]), "**%s**" % fmt_s(s["ttft_ms"]["p90"]),
            fmt_s(s["ttft_ms"]["p99"]), "%.1f ms" % s["itl_ms"]["p90"],
            fmt_s(s["e2e_ms"]["p90"]), "%.0f" % s["output_tokens_per_s"],
            "%.1f%%" % (100 * sv["hit_rate"]), sv["preemptions"],
            "%.1f / %.0f" % (sv["waiting_mean"], sv["waiting_max"]),
            fmt_s(1000 * sv["queue_time_mean_s"]),
            " ".join(str(x) for x in sv["requests_per_server"]), adapters_per_server(p),
            "%.2f" % (1000 * cpu / max(s["requests"], 1))])
    return common.md_table(
        ["router", "ok", "errors", "TTFT p50", "TTFT p90", "TTFT p99", "ITL p90", "E2E p90",
         "output tok/s", "hit", "preempt", "waiting", "queue", "requests per server",
         "adapters per server", "router CPU ms/req"], rows)


def write_report(sc, args, results, meta):
    T = args.time_scale
    lines = list(meta["header"])
    lines += [
        "- started: %s; total runtime %.1f min" % (meta["started"], meta["elapsed"] / 60),
        "- loadgen: `%s`; envoy %s; %s" % (meta["loadgen"], meta["envoy"], meta["versions"]),
        "- servers: %d × `%s`" % (args.servers, common.Cluster(
            args.servers, all_server_args(sc, args), "").command()),
    ]
    lines += sc.describe(args, results)
    lines += [
        "- arrivals: Poisson for %g simulated seconds per point (loadgen --duration; the `ok` "
        "column counts them), seed %d: the same requests at the same times for every row of a "
        "rate" % (args.seconds, args.seed),
        "- time: modelsim --time-scale %g; rates are simulated requests/s and every latency and "
        "rate below is in simulated time (loadgen's real-time figures × %g)" % (T, T),
        "- every row: the servers restarted (cold caches, counters from 0), the router started "
        "and probed with one 1-token completion, then the run; router CPU = utime+stime of its "
        "processes (Envoy and epp together for epp rows) over the run",
        "- Envoy rows: %d worker threads, no access log; epp at its defaults (-v 2, "
        "--process-responses=true)" % args.envoy_concurrency,
        "- peers: standalone Rust routers from PyPI at their CLI defaults apart from --policy "
        "(cache_aware threshold 0.3, balance abs 64 / rel 1.5)",
        "- the machine is shared: other jobs (builds, tests) may have been running; compare rows "
        "of one table, which ran minutes apart",
        "",
        "Columns: TTFT/ITL/E2E from loadgen (succeeded requests); hit = the servers' prefix-cache "
        "hits / queries (tokens); waiting = the sum of the servers' `vllm:num_requests_waiting` "
        "sampled every 0.5 s (mean / max); queue = mean time in the engine queue "
        "(`vllm:request_queue_time_seconds`); adapters per server = distinct LoRA adapters each "
        "server listed running or waiting in `vllm:lora_requests_info` over the samples; router "
        "CPU in ms per request (real time).",
    ]
    routers = [r for r in args.routers.split(",") if r]
    peers = [r for r in routers if r in common.PEERS]
    for rate in sorted(results):
        pts = results[rate]
        lines += ["", "## %g requests/s" % rate, ""]
        lines += table_lines(pts)
        lines += sc.ratio_lines(pts, peers)
        for p in pts:
            if "error" in p and "summary" not in p:
                lines += ["", "%s did not run:" % p["router"], "", "```",
                          p["error"][:1500], "```"]
    lines += ["", "## Where we land", ""] + sc.verdict_lines(results, peers)
    lines += router_warnings(results)
    lines += ["", "Plots: `%s`, `%s`." % tuple(os.path.basename(x) for x in plot_paths(args.out))]
    lines += ["", "Commands of each row (ports vary per run):", ""]
    seen = set()
    for rate in sorted(results):
        for p in results[rate]:
            if p.get("cmdline") and p["router"] not in seen:
                seen.add(p["router"])
                lines.append("- %s: `%s`" % (p["router"], p["cmdline"]))
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.splitext(args.out)[0] + ".json", "w") as f:
        json.dump({"args": vars(args), "time_scale": T, "meta": meta,
                   "results": {str(k): v for k, v in results.items()}}, f, indent=1)


def router_warnings(results):
    """Each peer's distinct warning lines over all its rows, once."""
    out = []
    by = {}
    for rate in sorted(results):
        for p in results[rate]:
            for line in p.get("router_log") or []:
                msg = re.sub(r"^\S+ \S+\s+", "", line)
                msg = re.sub(r"\b\d+(\.\d+)?(ms|s)?\b", "N", msg)[:200]
                seen = by.setdefault(p["router"], {})
                if msg not in seen:
                    seen[msg] = line
    if by:
        out += ["", "## Router warnings", "",
                "Distinct warning lines of each peer's log over all its rows (the start-up "
                "probes of modelsim, see bench/results/peer_endpoints.md):", ""]
        for name, lines in by.items():
            out += ["%s:" % name, "", "```"] + [l[:300] for l in lines.values()] + ["```", ""]
    return out


def plot_paths(out):
    base = os.path.splitext(out)[0]
    return base + "_latency.png", base + "_throughput.png"


def write_plots(sc, args, results):
    lat, tput = plot_paths(args.out)
    routers = [r for r in args.routers.split(",") if r]

    def series(fn):
        out = {}
        for r in routers:
            pts = []
            for rate in sorted(results):
                # a row that served nothing has no latencies to plot (loadgen reports 0)
                p = next((p for p in results[rate] if p["router"] == r and "summary" in p
                          and p["summary"]["succeeded"] > 0), None)
                if p is not None:
                    pts.append((rate, fn(p)))
            out[r] = pts
        return out
    title = "%s, %d modelsim servers (simulated time, --time-scale %g)" % (
        sc.plot_title, args.servers, args.time_scale)
    xlabel = "offered rate (simulated requests/s)"
    common.plot_panels(lat, title, xlabel, [
        ("TTFT p90 (s)", series(lambda p: p["summary"]["ttft_ms"]["p90"] / 1000), True),
        ("TTFT p50 (s)", series(lambda p: p["summary"]["ttft_ms"]["p50"] / 1000), True),
        ("ITL p90 (ms)", series(lambda p: p["summary"]["itl_ms"]["p90"]), False),
        ("E2E p90 (s)", series(lambda p: p["summary"]["e2e_ms"]["p90"] / 1000), False)])
    common.plot_panels(tput, title, xlabel, [
        ("output tokens/s", series(lambda p: p["summary"]["output_tokens_per_s"]), False)]
        + sc.extra_panels(series))


def report_only(sc, args):
    json_path = args.report_only
    saved, args, meta = common.load_saved(args)
    results = {float(k): v for k, v in saved["results"].items()}
    write_report(sc, args, results, meta)
    write_plots(sc, args, results)
    common.log("rewrote %s (and its plots) from %s" % (args.out, json_path))


def main(sc):
    common.ensure_venv()
    args = parse_args(sc)
    if args.report_only:
        return report_only(sc, args)
    common.ensure_requirements()
    common.check_binaries()
    rates = [float(r) for r in args.rates.split(",") if r]
    routers = [r for r in args.routers.split(",") if r]
    for r in routers:
        common.make_router(r)  # validates the names before anything starts
    work = tempfile.mkdtemp(prefix="scenario-%s-" % sc.name.replace("_", "-"))
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    t_start = time.monotonic()
    common.log("work folder %s; %d rates × %d routers, %g s per point"
               % (work, len(rates), len(routers), args.seconds))
    cluster = common.Cluster(args.servers, all_server_args(sc, args), work)
    results = {}
    ok = False
    try:
        for rate in rates:
            results[rate] = []
            for name in routers:
                p = run_point(sc, args, cluster, name, rate, work)
                results[rate].append(p)
                if "summary" in p:
                    s = p["summary"]
                    common.log("rate %g %-26s ok %d/%d  TTFT p50 %s p90 %s  ITL p90 %.1f ms  "
                               "%.0f tok/s  hit %.1f%%  waiting max %.0f  (%.0f s)" % (
                                   rate, name, s["succeeded"], s["requests"],
                                   fmt_s(s["ttft_ms"]["p50"]), fmt_s(s["ttft_ms"]["p90"]),
                                   s["itl_ms"]["p90"], s["output_tokens_per_s"],
                                   100 * p["servers"]["hit_rate"], p["servers"]["waiting_max"],
                                   p["wall_s"]))
        ok = True
    finally:
        cluster.stop()
        if results:
            elapsed = time.monotonic() - t_start
            cmd = " ".join([".venv/bin/python", "bench/scenarios/%s.py" % sc.script]
                           + sys.argv[1:])
            write_report(sc, args, results, common.run_meta(sc.title, cmd, started, elapsed))
            try:
                write_plots(sc, args, results)
            except Exception as e:  # noqa: BLE001 - the tables matter more than the plots
                common.log("plots failed: %r" % e)
            common.log("wrote %s (%.1f min)" % (args.out, elapsed / 60))
        if ok and not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            common.log("logs kept in %s" % work)
