#!/usr/bin/env python3
"""Added latency of epp on the request path, measured through the real Envoy.

Two paths to the same instant backend (nginx answering 200 from memory), driven by wrk:
  direct : client -> Envoy -> backend            (the client names the backend in the
                                                  x-gateway-destination-endpoint header)
  epp    : client -> Envoy -> epp (ext_proc, FULL_DUPLEX_STREAMED) -> Envoy -> backend
Both Envoys use the same bootstrap apart from the ext_proc filter, so the difference is what
epp costs: the gRPC stream, parsing, picking, echoing the body. For each body size and
concurrency it reports p50/p99 of both paths, their difference, and epp's CPU seconds per 1,000
requests (utime+stime from /proc). Writes bench/results/added_latency.md.
"""
import argparse
import datetime
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
sys.path.insert(0, os.path.join(ROOT, "bench"))
import harness  # noqa: E402
from benchlib import cpu_seconds  # noqa: E402
import benchlib  # noqa: E402


WRK_SCRIPT = """\
local f = io.open("{body}", "rb")
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
{extra}
"""


def chat_body(size):
    head = '{"model":"meta-llama/Llama-3.1-8B-Instruct","max_tokens":16,"messages":[{"role":"user","content":"'
    tail = '"}]}'
    filler = ("the quick brown fox jumps over the lazy dog " * (size // 40 + 1))
    return (head + filler[: size - len(head) - len(tail)] + tail).encode()


def to_ms(text):
    m = re.match(r"([\d.]+)(us|ms|s)", text)
    v, unit = float(m.group(1)), m.group(2)
    return {"us": v / 1000, "ms": v, "s": v * 1000}[unit]


def run_wrk(url, script, conc, seconds):
    out = subprocess.run(["wrk", "-t", "1", "-c", str(conc), "-d", "%ds" % seconds, "--latency",
                          "-s", script, url], check=True, capture_output=True, text=True).stdout
    pct = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", out, re.M))
    reqs = int(re.search(r"(\d+) requests in", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"p50_ms": to_ms(pct["50"]), "p99_ms": to_ms(pct["99"]), "requests": reqs,
            "non2xx": int(errors.group(1)) if errors else 0, "raw": out}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, default=10, help="wrk duration per point")
    ap.add_argument("--sizes", default="2048,225280", help="body sizes in bytes")
    ap.add_argument("--concurrency", default="1,64")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "added_latency.md"))
    ap.add_argument("--epp-arg", action="append", default=[],
                    help="extra epp flag (repeatable), e.g. --epp-arg=--process-responses=false")
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="epp-bench-")
    procs = []
    try:
        port = harness.free_port()
        procs.append(benchlib.start_nginx(
            harness, work, [port],
            """    location / { default_type application/json; return 200 '{"ok":true}'; }"""))

        class B:  # what harness.write_endpoints_file expects of a backend
            index, host = 0, "127.0.0.1"
        B.port = port
        epp = harness.Epp(work, [B], tls=False, extra_args=["-v", "1"] + args.epp_arg)
        procs.append(epp.proc)
        envoys = {}
        envoy_pids = {}
        for path in ("direct", "epp"):
            boot = harness.render_envoy_bootstrap("full_duplex", False, epp.grpc_port,
                                                  admin_port=harness.free_port(),
                                                  listener_port=harness.free_port())
            hcm = boot["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
            filters = hcm["typed_config"]["http_filters"]
            hcm["typed_config"].pop("access_log", None)
            if path == "direct":
                filters[:] = [f for f in filters if f["name"] != "envoy.filters.http.ext_proc"]
            cfg = harness.write_bootstrap(os.path.join(work, "envoy-%s.yaml" % path), boot)
            lport = boot["static_resources"]["listeners"][0]["address"]["socket_address"]["port_value"]
            aport = boot["admin"]["address"]["socket_address"]["port_value"]
            p = harness.Proc("envoy-" + path, [harness.envoy_bin(), "-c", cfg, "--base-id",
                                               str(harness.next_base_id()), "--disable-hot-restart",
                                               "--concurrency", "1", "--log-level", "warning"],
                             os.path.join(work, "envoy-%s.log" % path))
            procs.append(p)
            harness.wait_until(lambda: harness.tcp_connectable("127.0.0.1", lport),
                               "envoy " + path, procs=[p])
            envoys[path] = lport
            envoy_pids[path] = p.pid

        rows = []
        for size in [int(s) for s in args.sizes.split(",")]:
            body_path = os.path.join(work, "body-%d.json" % size)
            with open(body_path, "wb") as f:
                f.write(chat_body(size))
            scripts = {}
            for path in ("direct", "epp"):
                extra = ('wrk.headers["x-gateway-destination-endpoint"] = "127.0.0.1:%d"' % port
                         if path == "direct" else "")
                scripts[path] = os.path.join(work, "wrk-%s-%d.lua" % (path, size))
                with open(scripts[path], "w") as f:
                    f.write(WRK_SCRIPT.format(body=body_path, extra=extra))
            for conc in [int(c) for c in args.concurrency.split(",")]:
                url = "http://127.0.0.1:%d/v1/chat/completions"
                # Warm both paths, then measure direct and epp back to back.
                for path in ("direct", "epp"):
                    run_wrk(url % envoys[path], scripts[path], conc, 2)
                e0 = cpu_seconds(envoy_pids["direct"])
                direct = run_wrk(url % envoys["direct"], scripts["direct"], conc, args.seconds)
                envoy_direct = cpu_seconds(envoy_pids["direct"]) - e0
                cpu0, e0 = cpu_seconds(epp.proc.pid), cpu_seconds(envoy_pids["epp"])
                via = run_wrk(url % envoys["epp"], scripts["epp"], conc, args.seconds)
                cpu = cpu_seconds(epp.proc.pid) - cpu0
                envoy_via = cpu_seconds(envoy_pids["epp"]) - e0
                row = {"size": size, "conc": conc, "direct": direct, "epp": via,
                       "epp_cpu_s_per_1k": 1000 * cpu / max(via["requests"], 1),
                       "envoy_cpu_s_per_1k_direct": 1000 * envoy_direct / max(direct["requests"], 1),
                       "envoy_cpu_s_per_1k_epp": 1000 * envoy_via / max(via["requests"], 1)}
                rows.append(row)
                print("size=%d conc=%d direct p50=%.3f p99=%.3f | epp p50=%.3f p99=%.3f | "
                      "added p50=%.3f p99=%.3f ms | cpu s/1k req: epp %.3f, envoy %.3f -> %.3f"
                      " | non2xx %d/%d" % (
                          size, conc, direct["p50_ms"], direct["p99_ms"], via["p50_ms"],
                          via["p99_ms"], via["p50_ms"] - direct["p50_ms"],
                          via["p99_ms"] - direct["p99_ms"], row["epp_cpu_s_per_1k"],
                          row["envoy_cpu_s_per_1k_direct"], row["envoy_cpu_s_per_1k_epp"],
                          direct["non2xx"], via["non2xx"]), flush=True)
        write_report(args, rows)
    finally:
        for p in reversed(procs):
            p.stop()
        shutil.rmtree(work, ignore_errors=True)


def write_report(args, rows):
    envoy_version = subprocess.run([harness.envoy_bin(), "--version"], capture_output=True,
                                   text=True).stdout.strip().splitlines()[-1]
    lines = benchlib.header(
        "Added latency of epp through the real Envoy",
        " ".join(["python3", "bench/added_latency.py"] + sys.argv[1:])) + [
        "- envoy: %s" % envoy_version,
        "- epp flags added: %s" % (" ".join(args.epp_arg) or "none"),
        "- setup: wrk (1 thread, keep-alive) → Envoy (1 worker) → nginx `return 200`; the epp path "
        "adds the ext_proc filter (FULL_DUPLEX_STREAMED both ways, plaintext gRPC) in front of the same "
        "backend; %d s per point after a 2 s warm-up; everything on the same %d cores." % (
            args.seconds, os.cpu_count()),
        "",
        "| body | concurrency | direct p50 ms | direct p99 ms | epp p50 ms | epp p99 ms | "
        "**added p50 ms** | **added p99 ms** | epp CPU s / 1k req | Envoy CPU s / 1k req direct → "
        "with epp | req/s direct | req/s epp |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        d, e = r["direct"], r["epp"]
        lines.append("| %s | %d | %.3f | %.3f | %.3f | %.3f | **%.3f** | **%.3f** | %.3f | %.3f → %.3f "
                     "| %.0f | %.0f |" % (
            "%d KiB" % (r["size"] // 1024), r["conc"], d["p50_ms"], d["p99_ms"], e["p50_ms"],
            e["p99_ms"], e["p50_ms"] - d["p50_ms"], e["p99_ms"] - d["p99_ms"],
            r["epp_cpu_s_per_1k"], r["envoy_cpu_s_per_1k_direct"], r["envoy_cpu_s_per_1k_epp"],
            d["requests"] / args.seconds, e["requests"] / args.seconds))
    lines += ["", "Targets (issue 2): added p50 ≤ 0.5 ms at 2 KiB and ≤ 5 ms at 220 KiB. The Go "
              "reference adds 158 ms at concurrency 20 and 1.1 s at 150 for 220 KB prompts "
              "(GIE issue #2928).", "",
              "At concurrency 64, wrk, Envoy, nginx and epp share the same two cores: latency there is mostly queueing for CPU. The CPU columns say where it goes: the ext_proc path costs Envoy itself 3-5x the CPU of the direct path (its gRPC client streams the body to epp and back), on top of epp's own share."]
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.splitext(args.out)[0] + ".json", "w") as f:
        json.dump(rows, f, indent=1)
    print("wrote", args.out)


if __name__ == "__main__":
    main()
