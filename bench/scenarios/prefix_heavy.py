#!/usr/bin/env python3
"""Scenario 1 (issue 6, real-time rows): prefix-heavy routing quality with real processes.

llm-d's "KV-cache wins" shape scaled to this machine: groups of users share a long system
prompt, each user asks a long question and gets a long answer; Poisson arrivals at a sweep of
rates up to near saturation of 4 modelsim servers whose KV cache is sized so that the shared
prefixes take about 73% of the cluster's capacity. For every rate, each router in turn is put
in front of the same 4 servers, restarted before every row (cold caches, fresh counters), and
driven by loadgen with the same seed and workload. Collected per row: loadgen's client view
(TTFT, ITL, E2E, output tokens/s, errors), the servers' own counters (prefix-cache hit rate,
preemptions, requests per server, queue time, waiting queue sampled every 0.5 s, LoRA adapters
seen), and the router's CPU (utime+stime of its processes).

Times: modelsim runs with --time-scale T (simulated seconds per real second); rates are given
in simulated requests/s (loadgen sends T times as many per real second) and every latency and
throughput in the report is converted to simulated time (real × T, tokens/s ÷ T), the time the
modelled GPUs see. A router's own overhead is scaled by T too.

Writes bench/results/prefix_heavy.md (+ .json and PNG plots). Run:
    .venv/bin/python bench/scenarios/prefix_heavy.py            (about 14 minutes)
"""
import argparse
import json
import os
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
DEFAULT_SIM = ("--sim-step-base-ms 13.6 --sim-prefill-ms-per-token 0.056 "
               "--sim-decode-ms-per-seq 0.02")


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--servers", type=int, default=4)
    ap.add_argument("--groups", type=int, default=48)
    ap.add_argument("--prompts-per-group", type=int, default=5)
    ap.add_argument("--system-tokens", type=int, default=1600)
    ap.add_argument("--question-tokens", type=int, default=320)
    ap.add_argument("--output-tokens", type=int, default=160)
    ap.add_argument("--prefix-share", type=float, default=0.73,
                    help="shared prefixes / cluster KV capacity (sets --num-gpu-blocks-override)")
    ap.add_argument("--block-size", type=int, default=16)
    ap.add_argument("--time-scale", type=float, default=1.0)
    ap.add_argument("--rates", default="8,16,24,32", help="simulated requests/s, comma-separated")
    ap.add_argument("--seconds", type=float, default=18,
                    help="arrivals for this many simulated seconds per point (loadgen --duration)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--routers", default=DEFAULT_ROUTERS)
    ap.add_argument("--sim-args", default=DEFAULT_SIM, help="extra modelsim flags (costs)")
    ap.add_argument("--envoy-concurrency", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=240,
                    help="loadgen's per-request timeout, real seconds")
    ap.add_argument("--out", default=os.path.join(common.ROOT, "bench", "results",
                                                   "prefix_heavy.md"))
    ap.add_argument("--keep", action="store_true", help="keep the work folder (logs)")
    ap.add_argument("--report-only", metavar="JSON",
                    help="rewrite the report and plots from a saved result JSON, run nothing")
    return ap.parse_args()


def kv_blocks(args):
    """Blocks per server so that the shared prefixes are prefix_share of the cluster's KV."""
    prefix_blocks = args.groups * -(-args.system_tokens // args.block_size)
    per_server = int(round(prefix_blocks / args.prefix_share / args.servers))
    return per_server + 1  # vLLM counts the reserved null block in --num-gpu-blocks-override


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


def run_point(args, cluster, name, rate, work, T):
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
        res = common.run_loadgen(router.url, [
            "--workload", "shared-prefix", "--groups", str(args.groups),
            "--prompts-per-group", str(args.prompts_per_group),
            "--system-tokens", str(args.system_tokens),
            "--question-tokens", str(args.question_tokens),
            "--output-tokens", str(args.output_tokens),
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


def best_peer(points, peers):
    """The peer row with the lowest p90 TTFT among those that completed every request."""
    cands = [p for p in points if p["router"] in peers and "summary" in p
             and p["summary"]["failed"] == 0]
    if not cands:
        cands = [p for p in points if p["router"] in peers and "summary" in p]
    return min(cands, key=lambda p: p["summary"]["ttft_ms"]["p90"]) if cands else None


TITLE = "Scenario 1: prefix-heavy routing, real processes (4 modelsim servers, each router in turn)"


def write_report(args, results, T, blocks, meta):
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    prefix_blocks = args.groups * -(-args.system_tokens // args.block_size)
    lines = list(meta["header"])
    lines += [
        "- started: %s; total runtime %.1f min" % (meta["started"], meta["elapsed"] / 60),
        "- loadgen: `%s`; envoy %s; %s" % (meta["loadgen"], meta["envoy"], meta["versions"]),
        "- servers: %d × `%s`" % (args.servers, common.Cluster(
            args.servers, server_args(args, blocks), "").command()),
        "- KV cache: %d usable blocks of %d tokens per server (%d tokens); the %d shared prefixes "
        "take %d blocks = %.0f%% of the cluster's %d" % (
            blocks - 1, args.block_size, (blocks - 1) * args.block_size, args.groups,
            prefix_blocks, 100.0 * prefix_blocks / ((blocks - 1) * args.servers),
            (blocks - 1) * args.servers),
        "- workload: loadgen shared-prefix, %d groups × %d prompts, system %d tokens, question %d, "
        "output %d (ignore_eos), Poisson arrivals for %g simulated seconds per point (loadgen "
        "--duration; the `ok` column counts them), seed %d: the same requests at the same times "
        "for every row of a rate"
        % (args.groups, args.prompts_per_group, args.system_tokens, args.question_tokens,
           args.output_tokens, args.seconds, args.seed),
        "- time: modelsim --time-scale %g; rates are simulated requests/s and every latency and "
        "rate below is in simulated time (loadgen's real-time figures × %g)" % (T, T),
        "- every row: the 4 servers restarted (cold caches, counters from 0), the router started "
        "and probed with one 1-token completion, then the run; router CPU = utime+stime of its "
        "processes (Envoy and epp together for epp rows) over the run",
        "- Envoy rows: %d worker threads, no access log; epp at its defaults (-v 2, "
        "--process-responses=true)" % args.envoy_concurrency,
        "- peers: standalone Rust routers from PyPI at their CLI defaults apart from --policy "
        "(cache_aware threshold 0.3, balance abs 64 / rel 1.5)",
        "- LoRA: no adapters in this workload; adapters seen in the servers' "
        "`vllm:lora_requests_info`: %s" % (", ".join(sorted({a for r in results.values()
                                                              for p in r if "servers" in p
                                                              for a in p["servers"]["lora_adapters_seen"]}))
                                            or "none"),
        "- the machine is shared: other jobs (builds, tests) may have been running; compare rows "
        "of one table, which ran minutes apart",
        "",
        "Columns: TTFT/ITL/E2E from loadgen (succeeded requests); hit = the servers' prefix-cache "
        "hits / queries (tokens); waiting = the sum of the servers' `vllm:num_requests_waiting` "
        "sampled every 0.5 s (mean / max); queue = mean time in the engine queue "
        "(`vllm:request_queue_time_seconds`); router CPU in ms per request (real time).",
    ]
    routers = [r for r in args.routers.split(",") if r]
    peers = [r for r in routers if r in common.PEERS]
    for rate in sorted(results):
        pts = results[rate]
        lines += ["", "## %g requests/s" % rate, ""]
        rows = []
        for p in pts:
            if "summary" not in p:
                rows.append([p["router"], "—", p.get("error", "?").splitlines()[0][:200]] +
                            ["—"] * 12)
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
                " ".join(str(x) for x in sv["requests_per_server"]),
                "%.2f" % (1000 * cpu / max(s["requests"], 1))])
        lines += common.md_table(
            ["router", "ok", "errors", "TTFT p50", "TTFT p90", "TTFT p99", "ITL p90", "E2E p90",
             "output tok/s", "hit", "preempt", "waiting", "queue", "requests per server",
             "router CPU ms/req"], rows)
        lines += ratio_lines(pts, peers)
        for p in pts:
            if "error" in p and "summary" not in p:
                lines += ["", "%s did not run:" % p["router"], "", "```",
                          p["error"][:1500], "```"]
    lines += ["", "## Where we land", ""] + verdict_lines(results, peers)
    lines += router_warnings(results)
    lines += ["", "Plots: `%s`, `%s`." % tuple(os.path.basename(x) for x in plot_paths(args.out))]
    lines += ["", "Commands of each row (ports vary per run):", ""]
    seen = set()
    for rate in sorted(results):
        for p in results[rate]:
            if p.get("cmdline") and p["router"] not in seen:
                seen.add(p["router"])
                lines.append("- %s: `%s`" % (p["router"], p["cmdline"]))
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.splitext(args.out)[0] + ".json", "w") as f:
        json.dump({"args": vars(args), "time_scale": T, "kv_blocks": blocks, "meta": meta,
                   "results": {str(k): v for k, v in results.items()}}, f, indent=1)


def router_warnings(results):
    """Each peer's distinct warning lines over all its rows, once."""
    import re
    out = []
    by_router = {}
    for rate in sorted(results):
        for p in results[rate]:
            for line in p.get("router_log") or []:
                msg = re.sub(r"^\S+ \S+\s+", "", line)
                msg = re.sub(r"\b\d+(\.\d+)?(ms|s)?\b", "N", msg)[:200]
                seen = by_router.setdefault(p["router"], {})
                if msg not in seen:
                    seen[msg] = line
    if by_router:
        out += ["", "## Router warnings", "",
                "Distinct warning lines of each peer's log over all its rows (the start-up "
                "probes of modelsim, see bench/results/peer_endpoints.md):", ""]
        for name, lines in by_router.items():
            out += ["%s:" % name, "", "```"] + [l[:300] for l in lines.values()] + ["```", ""]
    return out


def run_meta(cmd, started, elapsed):
    """What the report header says about this run (kept in the JSON for --report-only)."""
    header = common.report_header(TITLE, cmd)
    dirty = common.scripts_dirty()
    if dirty:
        header.append("- scenario scripts: %s" % dirty)
    return {"header": header, "started": started, "elapsed": elapsed,
            "loadgen": os.path.relpath(common.loadgen_bin(), common.ROOT),
            "envoy": common.envoy_version(),
            "versions": ", ".join("%s %s" % kv for kv in common.package_versions().items())}


def ratio_lines(pts, peers):
    by = {p["router"]: p for p in pts if "summary" in p}
    best = by.get("epp-best")
    rr = by.get("envoy-round-robin")
    peer = best_peer(pts, peers)
    out = []
    if best and (peer or rr):
        b = best["summary"]
        out += [""]
        if peer:
            ps = peer["summary"]
            out.append("epp-best vs the best peer (%s): p90 TTFT %.2f× (target ≤ 0.5), output "
                       "tok/s %.2f× (target ≥ 1), hit %.1f%% vs %.1f%%." % (
                           peer["router"], b["ttft_ms"]["p90"] / max(ps["ttft_ms"]["p90"], 1e-9),
                           b["output_tokens_per_s"] / max(ps["output_tokens_per_s"], 1e-9),
                           100 * best["servers"]["hit_rate"], 100 * peer["servers"]["hit_rate"]))
        if rr:
            rs = rr["summary"]
            out.append("epp-best vs envoy-round-robin: p90 TTFT %.3f× (target ≤ 0.05 near "
                       "saturation), output tok/s %.2f×." % (
                           b["ttft_ms"]["p90"] / max(rs["ttft_ms"]["p90"], 1e-9),
                           b["output_tokens_per_s"] / max(rs["output_tokens_per_s"], 1e-9)))
    return out


def verdict_lines(results, peers):
    rows = []
    for rate in sorted(results):
        pts = results[rate]
        by = {p["router"]: p for p in pts if "summary" in p}
        best, rr, peer = by.get("epp-best"), by.get("envoy-round-robin"), best_peer(pts, peers)
        if not best:
            continue
        b = best["summary"]
        r_ttft = (b["ttft_ms"]["p90"] / peer["summary"]["ttft_ms"]["p90"]) if peer else None
        r_tput = (b["output_tokens_per_s"] / peer["summary"]["output_tokens_per_s"]) if peer \
            else None
        r_rr = (b["ttft_ms"]["p90"] / rr["summary"]["ttft_ms"]["p90"]) if rr else None
        rows.append(["%g" % rate, peer["router"] if peer else "—",
                     "%.2f×" % r_ttft if r_ttft is not None else "—",
                     ("met" if r_ttft is not None and r_ttft <= 0.5 else "not met"),
                     "%.3f×" % r_rr if r_rr is not None else "—",
                     ("met" if r_rr is not None and r_rr <= 0.05 else "not met"),
                     "%.2f×" % r_tput if r_tput is not None else "—",
                     ("met" if r_tput is not None and r_tput >= 0.995 else "not met")])
    return common.md_table(["rate", "best peer (lowest p90 TTFT)", "p90 TTFT vs best peer",
                            "≤ 0.5×", "p90 TTFT vs round-robin", "≤ 0.05×",
                            "output tok/s vs best peer", "≥ 1×"], rows)


def plot_paths(out):
    base = os.path.splitext(out)[0]
    return base + "_latency.png", base + "_throughput.png"


def write_plots(args, results, T):
    lat, tput = plot_paths(args.out)
    routers = [r for r in args.routers.split(",") if r]

    def series(fn):
        out = {}
        for r in routers:
            pts = []
            for rate in sorted(results):
                p = next((p for p in results[rate] if p["router"] == r and "summary" in p), None)
                if p is not None:
                    pts.append((rate, fn(p)))
            out[r] = pts
        return out
    title = "prefix-heavy, %d modelsim servers (simulated time, --time-scale %g)" % (
        args.servers, T)
    common.plot_panels(lat, title, "offered rate (simulated requests/s)", [
        ("TTFT p90 (s)", series(lambda p: p["summary"]["ttft_ms"]["p90"] / 1000), True),
        ("TTFT p50 (s)", series(lambda p: p["summary"]["ttft_ms"]["p50"] / 1000), True),
        ("ITL p90 (ms)", series(lambda p: p["summary"]["itl_ms"]["p90"]), False),
        ("E2E p90 (s)", series(lambda p: p["summary"]["e2e_ms"]["p90"] / 1000), False)])
    common.plot_panels(tput, title, "offered rate (simulated requests/s)", [
        ("output tokens/s", series(lambda p: p["summary"]["output_tokens_per_s"]), False),
        ("prefix-cache hit rate (%)", series(lambda p: 100 * p["servers"]["hit_rate"]), False)])


def server_args(args, blocks):
    return (["--num-gpu-blocks-override", str(blocks), "--block-size", str(args.block_size),
             "--max-model-len", str((blocks - 1) * args.block_size),
             "--time-scale", "%g" % args.time_scale, "--seed", str(args.seed)]
            + args.sim_args.split())


def report_only(args):
    json_path = args.report_only
    with open(json_path) as f:
        saved = json.load(f)
    out = args.out
    args = argparse.Namespace(**saved["args"])
    args.out = out
    results = {float(k): v for k, v in saved["results"].items()}
    meta = saved.get("meta") or common.meta_from_report(args.out)
    dirty = common.scripts_dirty()
    if dirty and not any(l.startswith("- scenario scripts:") for l in meta["header"]):
        meta["header"].append("- scenario scripts: %s" % dirty)
    write_report(args, results, saved["time_scale"], saved["kv_blocks"], meta)
    write_plots(args, results, saved["time_scale"])
    common.log("rewrote %s (and its plots) from %s" % (out, json_path))


def main():
    common.ensure_venv()
    args = parse_args()
    if args.report_only:
        return report_only(args)
    common.ensure_requirements()
    common.check_binaries()
    T = args.time_scale
    blocks = kv_blocks(args)
    rates = [float(r) for r in args.rates.split(",") if r]
    routers = [r for r in args.routers.split(",") if r]
    for r in routers:
        common.make_router(r)  # validates the names before anything starts
    work = tempfile.mkdtemp(prefix="scenario-prefix-heavy-")
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    t_start = time.monotonic()
    common.log("work folder %s; %d rates × %d routers, %g s per point, KV %d blocks/server"
               % (work, len(rates), len(routers), args.seconds, blocks))
    cluster = common.Cluster(args.servers, server_args(args, blocks), work)
    results = {}
    ok = False
    try:
        for rate in rates:
            results[rate] = []
            for name in routers:
                p = run_point(args, cluster, name, rate, work, T)
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
            cmd = " ".join([".venv/bin/python", "bench/scenarios/prefix_heavy.py"] + sys.argv[1:])
            write_report(args, results, T, blocks, run_meta(cmd, started, elapsed))
            try:
                write_plots(args, results, T)
            except Exception as e:  # noqa: BLE001 - the tables matter more than the plots
                common.log("plots failed: %r" % e)
            common.log("wrote %s (%.1f min)" % (args.out, elapsed / 60))
        if ok and not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            common.log("logs kept in %s" % work)


if __name__ == "__main__":
    main()
