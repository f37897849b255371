#!/usr/bin/env python3
"""Scenario 1 (issue 6, real-time rows): prefix-heavy routing quality with real processes.

llm-d's "KV-cache wins" shape scaled to this machine: groups of users share a long system
prompt, each user asks a long question and gets a long answer; Poisson arrivals at a sweep of
rates up to near saturation of 4 modelsim servers whose KV cache is sized so that the shared
prefixes take about 73% of the cluster's capacity. The sweep itself (every router in turn in
front of the same restarted servers, same seed, what is collected, simulated time) is
bench/scenarios/sweep.py.

Writes bench/results/prefix_heavy.md (+ .json and PNG plots). Run:
    .venv/bin/python bench/scenarios/prefix_heavy.py            (about 14 minutes)
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import sweep  # noqa: E402


def kv_blocks(args):
    """Blocks per server so that the shared prefixes are prefix_share of the cluster's KV."""
    prefix_blocks = args.groups * -(-args.system_tokens // args.block_size)
    per_server = int(round(prefix_blocks / args.prefix_share / args.servers))
    return per_server + 1  # vLLM counts the reserved null block in --num-gpu-blocks-override


class PrefixHeavy(sweep.Scenario):
    name = script = "prefix_heavy"
    title = ("Scenario 1: prefix-heavy routing, real processes (4 modelsim servers, each router "
             "in turn)")
    plot_title = "prefix-heavy"
    rates = "8,16,24,32"
    seconds = 18
    sim_args = sweep.SIM_32B

    def add_args(self, ap):
        ap.add_argument("--groups", type=int, default=48)
        ap.add_argument("--prompts-per-group", type=int, default=5)
        ap.add_argument("--system-tokens", type=int, default=1600)
        ap.add_argument("--question-tokens", type=int, default=320)
        ap.add_argument("--output-tokens", type=int, default=160)
        ap.add_argument("--prefix-share", type=float, default=0.73,
                        help="shared prefixes / cluster KV capacity (sets "
                        "--num-gpu-blocks-override)")
        ap.add_argument("--block-size", type=int, default=16)

    def server_args(self, args):
        blocks = kv_blocks(args)
        return ["--num-gpu-blocks-override", str(blocks), "--block-size", str(args.block_size),
                "--max-model-len", str((blocks - 1) * args.block_size)]

    def workload_args(self, args):
        return ["--workload", "shared-prefix", "--groups", str(args.groups),
                "--prompts-per-group", str(args.prompts_per_group),
                "--system-tokens", str(args.system_tokens),
                "--question-tokens", str(args.question_tokens),
                "--output-tokens", str(args.output_tokens)]

    def describe(self, args, results):
        blocks = kv_blocks(args)
        prefix_blocks = args.groups * -(-args.system_tokens // args.block_size)
        adapters = sorted({a for r in results.values() for p in r if "servers" in p
                           for a in p["servers"]["lora_adapters_seen"]})
        return [
            "- KV cache: %d usable blocks of %d tokens per server (%d tokens); the %d shared "
            "prefixes take %d blocks = %.0f%% of the cluster's %d" % (
                blocks - 1, args.block_size, (blocks - 1) * args.block_size, args.groups,
                prefix_blocks, 100.0 * prefix_blocks / ((blocks - 1) * args.servers),
                (blocks - 1) * args.servers),
            "- workload: loadgen shared-prefix, %d groups × %d prompts, system %d tokens, "
            "question %d, output %d (ignore_eos)" % (
                args.groups, args.prompts_per_group, args.system_tokens, args.question_tokens,
                args.output_tokens),
            "- LoRA: no adapters in this workload; adapters seen in the servers' "
            "`vllm:lora_requests_info`: %s" % (", ".join(adapters) or "none"),
        ]

    def ratio_lines(self, pts, peers):
        by = sweep.by_router(pts)
        best, rr, peer = by.get("epp-best"), by.get("envoy-round-robin"), \
            sweep.best_peer(pts, peers)
        out = []
        if best and (peer or rr):
            b = best["summary"]
            out += [""]
            if peer:
                ps = peer["summary"]
                out.append("epp-best vs the best peer (%s): p90 TTFT %.2f× (target ≤ 0.5), "
                           "output tok/s %.2f× (target ≥ 1), hit %.1f%% vs %.1f%%." % (
                               peer["router"],
                               sweep.ratio(b["ttft_ms"]["p90"], ps["ttft_ms"]["p90"]),
                               sweep.ratio(b["output_tokens_per_s"], ps["output_tokens_per_s"]),
                               100 * best["servers"]["hit_rate"],
                               100 * peer["servers"]["hit_rate"]))
            if rr:
                rs = rr["summary"]
                out.append("epp-best vs envoy-round-robin: p90 TTFT %.3f× (target ≤ 0.05 near "
                           "saturation), output tok/s %.2f×." % (
                               sweep.ratio(b["ttft_ms"]["p90"], rs["ttft_ms"]["p90"]),
                               sweep.ratio(b["output_tokens_per_s"], rs["output_tokens_per_s"])))
        return out

    def verdict_lines(self, results, peers):
        rows = []
        for rate in sorted(results):
            pts = results[rate]
            by = sweep.by_router(pts)
            best, rr, peer = by.get("epp-best"), by.get("envoy-round-robin"), \
                sweep.best_peer(pts, peers)
            if not best:
                continue
            b = best["summary"]
            r_ttft = sweep.ratio(b["ttft_ms"]["p90"], peer["summary"]["ttft_ms"]["p90"]) \
                if peer else None
            r_tput = sweep.ratio(b["output_tokens_per_s"],
                                 peer["summary"]["output_tokens_per_s"]) if peer else None
            r_rr = sweep.ratio(b["ttft_ms"]["p90"], rr["summary"]["ttft_ms"]["p90"]) \
                if rr else None
            ok = sweep.complete(best)  # a row with failed requests meets no target
            rows.append(["%g" % rate, peer["router"] if peer else "—",
                         "%.2f×" % r_ttft if r_ttft is not None else "—",
                         sweep.met(r_ttft, lambda v: ok and v is not None and v <= 0.5),
                         "%.3f×" % r_rr if r_rr is not None else "—",
                         sweep.met(r_rr, lambda v: ok and v is not None and v <= 0.05),
                         "%.2f×" % r_tput if r_tput is not None else "—",
                         sweep.met(r_tput, lambda v: ok and v is not None and v >= 0.995)])
        return common.md_table(["rate", "best peer (lowest p90 TTFT)", "p90 TTFT vs best peer",
                                "≤ 0.5×", "p90 TTFT vs round-robin", "≤ 0.05×",
                                "output tok/s vs best peer", "≥ 1× (0.5% tolerance)"], rows)

    def extra_panels(self, series):
        return [("prefix-cache hit rate (%)",
                 series(lambda p: 100 * p["servers"]["hit_rate"]), False)]


if __name__ == "__main__":
    sweep.main(PrefixHeavy())
