#!/usr/bin/env python3
"""CPU that epp spends scraping model-server metrics, for N endpoints every 50 ms.

One nginx (one worker) serves the same realistic ~16 KB vLLM V1 page on N ports, so the model
servers cost nothing that is counted; epp runs with file discovery over those N endpoints and no
traffic. Measures epp's utime+stime over a window and reports cores used and scrapes/s (from
nginx's access counts). Writes bench/results/scrape_cpu.md.
"""
import argparse
import datetime
import os
import platform
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
sys.path.insert(0, os.path.join(ROOT, "bench"))
import harness  # noqa: E402
from benchlib import cpu_seconds  # noqa: E402
import benchlib  # noqa: E402


def vllm_page():
    labels = 'engine="0",model_name="meta-llama/Llama-3.1-8B-Instruct"'
    lines = []
    for name, v in (("vllm:num_requests_running", "8.0"), ("vllm:num_requests_waiting", "2.0"),
                    ("vllm:kv_cache_usage_perc", "0.0412")):
        lines += ["# HELP %s x" % name, "# TYPE %s gauge" % name, "%s{%s} %s" % (name, labels, v)]
    for h in ("time_to_first_token_seconds", "inter_token_latency_seconds",
              "e2e_request_latency_seconds", "request_queue_time_seconds",
              "request_prompt_tokens"):
        name = "vllm:" + h
        lines += ["# HELP %s x" % name, "# TYPE %s histogram" % name]
        le = 0.001
        for i in range(20):
            lines.append('%s_bucket{engine="0",le="%g",model_name="meta-llama/Llama-3.1-8B-Instruct"} %d.0'
                         % (name, le, i * 7))
            le *= 2
        lines += ["%s_count{%s} 140.0" % (name, labels), "%s_sum{%s} 4.21" % (name, labels),
                  "%s_created{%s} 1.7551780121e+09" % (name, labels)]
    lines.append('vllm:cache_config_info{block_size="16",engine="0",num_gpu_blocks="27089"} 1.0')
    return "\n".join(lines) + "\n"


def measure(n, seconds, interval):
    work = tempfile.mkdtemp(prefix="epp-scrape-")
    procs = []
    try:
        ports = [harness.free_port() for _ in range(n)]
        with open(os.path.join(work, "metrics"), "w") as f:
            f.write(vllm_page())
        os.chmod(os.path.join(work, "metrics"), 0o644)  # nginx's worker runs as another user
        procs.append(benchlib.start_nginx(
            harness, work, ports,
            "    location = /metrics { default_type text/plain; root %s; }\n"
            "    location = /nginx_status { stub_status; }" % work))

        class B:
            host = "127.0.0.1"
        backends = []
        for i, p in enumerate(ports):
            b = B()
            b.index, b.port = i, p
            backends.append(b)
        epp = harness.Epp(work, backends, tls=False,
                          extra_args=["-v", "1", "--refresh-metrics-interval", interval])
        procs.append(epp.proc)

        def served():
            import urllib.request
            with urllib.request.urlopen("http://127.0.0.1:%d/nginx_status" % ports[0]) as r:
                return int(r.read().decode().splitlines()[2].split()[2])
        time.sleep(2)  # connections open, steady state
        c0, s0, t0 = cpu_seconds(epp.proc.pid), served(), time.monotonic()
        time.sleep(seconds)
        c1, s1, t1 = cpu_seconds(epp.proc.pid), served(), time.monotonic()
        return {"n": n, "cores": (c1 - c0) / (t1 - t0), "scrapes_per_s": (s1 - s0) / (t1 - t0),
                "expected_per_s": n / (harness_interval_s(interval))}
    finally:
        for p in reversed(procs):
            p.stop()


def harness_interval_s(interval):
    return float(interval[:-2]) / 1000 if interval.endswith("ms") else float(interval[:-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--endpoints", default="100,1000")
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--interval", default="50ms")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "scrape_cpu.md"))
    args = ap.parse_args()
    rows = []
    for n in [int(x) for x in args.endpoints.split(",")]:
        r = measure(n, args.seconds, args.interval)
        rows.append(r)
        print("endpoints=%d epp cores=%.3f scrapes/s=%.0f (expected %.0f)" % (
            n, r["cores"], r["scrapes_per_s"], r["expected_per_s"]), flush=True)
    lines = benchlib.header("epp CPU for scraping model-server metrics",
                            " ".join(["python3", "bench/scrape_cpu.py"] + sys.argv[1:])) + [
             "- setup: one nginx worker serves a %d-byte vLLM V1 page on every endpoint's port; epp "
             "scrapes each endpoint every %s over keep-alive connections; %d s window after 2 s "
             "warm-up; no request traffic." % (len(vllm_page()), args.interval, args.seconds),
             "",
             "| endpoints | epp CPU (cores) | scrapes/s measured | scrapes/s expected |",
             "| --- | --- | --- | --- |"]
    for r in rows:
        lines.append("| %d | %.3f | %.0f | %.0f |" % (r["n"], r["cores"], r["scrapes_per_s"],
                                                     r["expected_per_s"]))
    lines += ["", "Targets (issue 4): 100 endpoints ≤ 0.1 core, 1,000 endpoints ≤ 1 core. The "
              "reference: about 7.5 cores for 100 pods (llm-d-router docs/operations.md)."]
    with open(args.out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("wrote", args.out)


if __name__ == "__main__":
    main()
