#!/usr/bin/env python3
"""Scenario 4 (issue 6, real-time rows): what each router adds to a request, and its CPU.

4 instant modelsim servers (every engine cost 0, no front-end overhead, prefix caching off, one
prefill step for any prompt) answer a 1-token streamed completion at once. loadgen sends
completions whose request bodies are 200 B, 2 KiB, 16 KiB, 220 KiB and 1 MiB (every request its
own prompt: loadgen's long-prompt workload), closed loop at concurrency 1 and 64, first straight
to one server ("direct"), then through each router in front of the same 4 servers. Reported per
point: loadgen's E2E latency (mean, p50, p99), the latency added over direct, requests/s, and the
router's CPU per request (utime+stime of its processes from /proc, delta over the run / requests;
Envoy and epp separately for the epp row). The vLLM Router's overhead harness has the same shape
(4 instant workers, 200 B … 1 MiB bodies, concurrency 1 and 64, mean − direct).

Writes bench/results/router_overhead.md (+ .json and a PNG). Run:
    .venv/bin/python bench/scenarios/router_overhead.py            (about 7 minutes)
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

# Bytes of loadgen's completions body around the prompt ({"model": ..., "prompt": "...",
# "max_tokens": 1, "ignore_eos": true, "stream": true, "stream_options": {...}}).
BODY_WRAPPER = 143
DEFAULT_ROUTERS = ("envoy-round-robin,epp-best,epp-best-lean,epp-default-noresp,sglang-router,"
                   "smg,vllm-router-cache-aware,vllm-router-power-of-two")
INSTANT = ["--sim-step-base-ms", "0", "--sim-prefill-ms-per-token", "0",
           "--sim-decode-ms-per-seq", "0", "--sim-frontend-overhead-ms", "0",
           "--no-enable-prefix-caching", "--max-num-batched-tokens", "1048576",
           "--max-model-len", "1048576", "--num-gpu-blocks-override", "1200000"]


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--servers", type=int, default=4)
    ap.add_argument("--sizes", default="200,2048,16384,225280,1048576",
                    help="request body sizes in bytes")
    ap.add_argument("--concurrency", default="1,64")
    ap.add_argument("--seconds", type=float, default=4, help="measured seconds per point")
    ap.add_argument("--warmup", type=float, default=1, help="warm-up seconds per point")
    ap.add_argument("--routers", default=DEFAULT_ROUTERS)
    ap.add_argument("--envoy-concurrency", type=int, default=2)
    ap.add_argument("--out", default=os.path.join(common.ROOT, "bench", "results",
                                                   "router_overhead.md"))
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--report-only", metavar="JSON",
                    help="rewrite the report and plot from a saved result JSON, run nothing")
    return ap.parse_args()


def size_label(n):
    if n >= 1 << 20 and n % (1 << 20) == 0:
        return "%d MiB" % (n >> 20)
    if n >= 1024 and n % 1024 == 0:
        return "%d KiB" % (n >> 10)
    return "%d B" % n


def measure(args, target, size, conc, pids_by_part, d, tag):
    """A warm-up run, then the measured run with the CPU of `pids_by_part` over it."""
    base = ["--workload", "long-prompt", "--prompt-bytes", str(max(size - BODY_WRAPPER, 1)),
            "--output-tokens", "1", "--concurrency", str(conc), "--timeout", "60s"]
    common.run_loadgen(target, base + ["--duration", "%gs" % args.warmup, "--seed", "2"],
                       os.path.join(d, "warm-%s.json" % tag), os.path.join(d, "loadgen.log"),
                       timeout=args.warmup + 90)
    cpu0 = {k: common.cpu_of([pid]) for k, pid in pids_by_part.items()}
    res = common.run_loadgen(target, base + ["--duration", "%gs" % args.seconds, "--seed", "1"],
                             os.path.join(d, "run-%s.json" % tag), os.path.join(d, "loadgen.log"),
                             timeout=args.seconds + 90)
    cpu = {k: common.cpu_of([pid]) - cpu0[k] for k, pid in pids_by_part.items()}
    if res is None:
        return {"error": "loadgen wrote no result"}
    return {"summary": res["summary"], "cpu_s": cpu}


TITLE = "Scenario 4: router overhead over a direct connection (instant modelsim servers)"


def run_meta(started, elapsed):
    cmd = " ".join([".venv/bin/python", "bench/scenarios/router_overhead.py"] + sys.argv[1:])
    return common.run_meta(TITLE, cmd, started, elapsed)


def report_only(args):
    json_path, out = args.report_only, args.out
    saved, args, meta = common.load_saved(args)
    results = {row: {tuple(int(x) for x in k.split("/")): v for k, v in pts.items()}
               for row, pts in saved["results"].items()}
    sizes = [int(x) for x in args.sizes.split(",") if x]
    concs = [int(x) for x in args.concurrency.split(",") if x]
    write_report(args, results, saved.get("notes", {}), sizes, concs, meta)
    common.log("rewrote %s (and its plot) from %s" % (out, json_path))


def main():
    common.ensure_venv()
    args = parse_args()
    if args.report_only:
        return report_only(args)
    common.ensure_requirements()
    common.check_binaries()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    concs = [int(c) for c in args.concurrency.split(",") if c]
    routers = [r for r in args.routers.split(",") if r]
    for r in routers:
        common.make_router(r)
    work = tempfile.mkdtemp(prefix="scenario-overhead-")
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    t_start = time.monotonic()
    common.log("work folder %s; %d sizes × %d concurrencies × %d rows" % (
        work, len(sizes), len(concs), len(routers) + 1))
    cluster = common.Cluster(args.servers, INSTANT, work)
    results = {}  # row -> {(size, conc): point}
    notes = {}
    ok = False
    try:
        servers = cluster.start()
        for row in ["direct"] + routers:
            d = os.path.join(work, row)
            os.makedirs(d, exist_ok=True)
            results[row] = {}
            router = None
            if row == "direct":
                target, parts = "http://127.0.0.1:%d" % servers[0].port, {}
            else:
                router = common.make_router(row, args.envoy_concurrency)
                try:
                    router.start(d, servers)
                    common.wait_routing(router, timeout=60)
                except Exception as e:  # noqa: BLE001
                    notes[row] = "did not start or route: %s" % str(e).strip()[:1500]
                    common.log("%s: %s" % (row, notes[row].splitlines()[0]))
                    router.stop()
                    continue
                target, parts = router.url, router.cpu_parts()
                notes[row + ":cmd"] = router.cmdline
            try:
                for size in sizes:
                    for conc in concs:
                        tag = "%d-%d" % (size, conc)
                        p = measure(args, target, size, conc, parts, d, tag)
                        results[row][(size, conc)] = p
                        if "summary" in p:
                            s = p["summary"]
                            common.log("%-26s %8s c=%-3d e2e mean %.3f p50 %.3f p99 %.3f ms  "
                                       "%.0f req/s  failed %d  cpu %s" % (
                                           row, size_label(size), conc, s["e2e_ms"]["mean"],
                                           s["e2e_ms"]["p50"], s["e2e_ms"]["p99"],
                                           s["requests_per_s"], s["failed"],
                                           " ".join("%s %.2fs" % kv for kv in p["cpu_s"].items())))
                        if router is not None and not router.alive():
                            notes[row] = "exited during the run:\n" + router.tails()
                            raise RuntimeError(row + " exited")
            except RuntimeError:
                pass
            finally:
                if isinstance(router, common.PeerRouter):
                    notes[row + ":log"] = router.log_excerpt()
                if router is not None:
                    router.stop()
        ok = True
    finally:
        cluster.stop()
        if results:
            elapsed = time.monotonic() - t_start
            write_report(args, results, notes, sizes, concs, run_meta(started, elapsed))
            common.log("wrote %s (%.1f min)" % (args.out, elapsed / 60))
        if ok and not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            common.log("logs kept in %s" % work)


def write_report(args, results, notes, sizes, concs, meta):
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    lines = [l for l in meta["header"] if not l.startswith("- scenario scripts:")]
    lines += [
        "- started: %s; total runtime %.1f min" % (meta["started"], meta["elapsed"] / 60),
        "- loadgen: `%s`; envoy %s; %s" % (meta["loadgen"], meta["envoy"], meta["versions"]),
        "- servers: %d × `%s` (instant: a 1-token answer as soon as the body is read)" % (
            args.servers, common.Cluster(args.servers, INSTANT, "").command()),
        "- client: loadgen long-prompt workload (every request its own prompt), `max_tokens` 1, "
        "streamed, closed loop; body = prompt + %d bytes of JSON; %g s warm-up then %g s "
        "measured per point" % (BODY_WRAPPER, args.warmup, args.seconds),
        "- direct: loadgen → server 0; every router: loadgen → router → the 4 servers (the same "
        "processes throughout); Envoy rows with %d worker threads and no access log; epp-best = "
        "examples/configs/prefix-inflight.yaml, epp's defaults otherwise; peers at their CLI "
        "defaults apart from --policy" % args.envoy_concurrency,
        "- added = router − direct, for the mean, p50 and p99 of loadgen's E2E (send to the last "
        "byte of the answer); CPU = utime+stime of the router's processes over the measured run "
        "÷ requests (µs per request); everything shares the machine's %d cores, so at "
        "concurrency 64 latency is mostly waiting for CPU" % os.cpu_count(),
        "- direct is one server; the routers spread over 4. Where one server is the bottleneck "
        "(220 KiB and 1 MiB at concurrency 64: it reads and tokenizes every body on one thread) a "
        "router can be faster than direct and `added` goes negative; the routers compare with "
        "each other on the same 4 servers either way (the verdict compares their E2E directly)",
        "- envoy-round-robin is Envoy alone (no picking): the floor for any Envoy-based path; "
        "epp-best-lean is epp-best behind an Envoy that sends epp nothing of the response but "
        "keeps the stream open until it ends (README, \"Lean responses\"); "
        "epp-default-noresp is the reference default profile with --process-responses=false "
        "(Envoy streams the answer straight to the client, epp sees only the request and never "
        "its end)",
        "- the machine is shared: other jobs (builds, tests) may have been running",
    ]
    lines += [l for l in meta["header"] if l.startswith("- scenario scripts:")] + [""]
    rows_by_cell = []
    for size in sizes:
        for conc in concs:
            direct = results.get("direct", {}).get((size, conc))
            ds = direct["summary"] if direct and "summary" in direct else None
            for row in results:
                p = results[row].get((size, conc))
                if not p or "summary" not in p:
                    continue
                s = p["summary"]
                cpu = p["cpu_s"]
                n = max(s["requests"], 1)
                cpu_parts = " + ".join("%.0f" % (1e6 * v / n) for v in cpu.values())
                cpu_total = 1e6 * sum(cpu.values()) / n
                added = (lambda k: s["e2e_ms"][k] - ds["e2e_ms"][k]) if ds else (lambda k: None)
                rows_by_cell.append({
                    "size": size, "conc": conc, "row": row,
                    "mean": s["e2e_ms"]["mean"], "p50": s["e2e_ms"]["p50"],
                    "p99": s["e2e_ms"]["p99"], "rps": s["requests_per_s"],
                    "failed": s["failed"], "errors": common.errors_text(s),
                    "added_mean": None if row == "direct" else added("mean"),
                    "added_p50": None if row == "direct" else added("p50"),
                    "added_p99": None if row == "direct" else added("p99"),
                    "cpu_us": None if row == "direct" else cpu_total,
                    "cpu_parts": cpu_parts if len(cpu) > 1 else ""})
    for conc in concs:
        lines += ["## Concurrency %d" % conc, ""]
        table = []
        for r in rows_by_cell:
            if r["conc"] != conc:
                continue

            def f(v, bold=False):
                if v is None:
                    return "—"
                t = "%.3f" % v
                return "**%s**" % t if bold else t
            table.append([size_label(r["size"]), r["row"], f(r["mean"]), f(r["p50"]),
                          f(r["p99"]), f(r["added_mean"], True), f(r["added_p50"], True),
                          f(r["added_p99"]), "%.0f" % r["rps"], r["errors"],
                          "—" if r["cpu_us"] is None else
                          ("%.0f" % r["cpu_us"]) + (" (%s)" % r["cpu_parts"]
                                                    if r["cpu_parts"] else "")])
        lines += common.md_table(
            ["body", "path", "E2E mean ms", "E2E p50 ms", "E2E p99 ms", "added mean ms",
             "added p50 ms", "added p99 ms", "req/s", "errors",
             "router CPU µs/req (epp row: Envoy + epp)"], table)
        lines += [""]
    lines += stall_note(rows_by_cell)
    lines += ["## Target: epp adds less than every peer at every size", ""]
    lines += verdict(rows_by_cell, sizes, concs)
    plot = os.path.splitext(args.out)[0] + ".png"
    try:
        write_plot(plot, rows_by_cell, sizes, concs)
        lines += ["", "Plot: `%s` (E2E p50 with direct as the floor, and router CPU per request, "
                  "vs body size)."
                  % os.path.basename(plot)]
    except Exception as e:  # noqa: BLE001
        lines += ["", "(plot failed: %r)" % e]
    extra = [(k, v) for k, v in notes.items() if not k.endswith((":cmd", ":log"))]
    logs = [(k[:-4], v) for k, v in notes.items() if k.endswith(":log") and v]
    if extra or logs:
        lines += ["", "## Problems and router warnings", ""]
        for k, v in extra:
            lines += ["%s:" % k, "", "```", v[:2000], "```", ""]
        for k, v in logs:
            lines += ["%s log (warnings, first distinct lines):" % k, "", "```"]
            lines += [l[:300] for l in v] + ["```", ""]
    lines += ["", "Commands of each row (ports vary per run):", ""]
    for k, v in notes.items():
        if k.endswith(":cmd"):
            lines.append("- %s: `%s`" % (k[:-4], v))
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.splitext(args.out)[0] + ".json", "w") as f:
        json.dump({"args": vars(args), "rows": rows_by_cell, "notes": notes, "meta": meta,
                   "results": {row: {"%d/%d" % k: v for k, v in pts.items()}
                               for row, pts in results.items()}}, f, indent=1)


def stall_note(rows):
    """A note when a router's answers to small bodies take about 40 ms more at concurrency 1:
    the signature of Nagle's algorithm meeting a delayed ACK on a kept-alive connection."""
    out = []
    for name in sorted({r["row"] for r in rows}):
        small = [r for r in rows if r["row"] == name and r["conc"] == 1 and r["size"] <= 16384]
        if small and all(38 <= (r["added_p50"] or 0) <= 48 for r in small):
            text = ("Note on %s: every request at concurrency 1 takes about 40 ms more than "
                    "direct whatever its size: the signature of a small write held back by "
                    "Nagle's algorithm until the client's delayed ACK (40 ms on Linux) on a kept-"
                    "alive connection." % name)
            if name == "sglang-router":
                text += (" By hand with curl, the first request on a connection through "
                         "sglang-router 0.3.2 took 2 ms and the next ones on the same connection "
                         "44–48 ms; smg 1.13.0 (its successor) does not do this.")
            out += [text + " These rows measure that stall rather than routing work.", ""]
    return out


def verdict(rows, sizes, concs):
    """Per epp row and cell: is its E2E (p50 and mean) below every peer's, is its CPU per
    request below every peer's, and which peers it beats."""
    out = []
    for epp_row in sorted({r["row"] for r in rows if r["row"].startswith("epp")}):
        table = []
        for conc in concs:
            for size in sizes:
                cell = {r["row"]: r for r in rows if r["size"] == size and r["conc"] == conc}
                epp = cell.get(epp_row)
                peers = {k: v for k, v in cell.items() if k in common.PEERS}
                if not epp or not peers:
                    continue
                best_peer = min(peers.values(), key=lambda r: r["p50"])
                cheapest = min(peers.values(), key=lambda r: r["cpu_us"])
                beats = [k for k, p in peers.items()
                         if epp["p50"] < p["p50"] and epp["mean"] < p["mean"]]
                cpu_beats = [k for k, p in peers.items() if epp["cpu_us"] < p["cpu_us"]]
                table.append([size_label(size), conc, "%.3f" % epp["added_p50"],
                              "%s %.3f" % (best_peer["row"], best_peer["added_p50"]),
                              "yes" if len(beats) == len(peers) else
                              "**no** (below %s)" % (", ".join(beats) or "none"),
                              "%.0f" % epp["cpu_us"],
                              "%s %.0f" % (cheapest["row"], cheapest["cpu_us"]),
                              "yes" if len(cpu_beats) == len(peers) else
                              "**no** (below %s)" % (", ".join(cpu_beats) or "none")])
        out += ["%s:" % epp_row, ""] + common.md_table(
            ["body", "concurrency", "epp added p50 ms", "lowest peer added p50 ms",
             "epp below every peer (E2E p50 and mean)", "epp CPU µs/req",
             "cheapest peer CPU µs/req", "epp CPU below every peer"], table) + [""]
    return out


def write_plot(path, rows, sizes, concs):
    panels = []
    for conc in concs:
        for key, label, logy in (("p50", "E2E p50 (ms), c=%d (direct: no router)" % conc, True),
                                 ("cpu_us", "router CPU (µs/request), c=%d" % conc, True)):
            series = {}
            for r in rows:
                if r["conc"] == conc and r[key] is not None:
                    series.setdefault(r["row"], []).append((r["size"], r[key]))
            panels.append((label, series, logy))
    common.plot_panels(path, "router overhead vs request body size (instant modelsim servers)",
                       "request body (bytes)", panels, xlog=True,
                       xticks=[(s, size_label(s)) for s in sizes])


if __name__ == "__main__":
    main()
