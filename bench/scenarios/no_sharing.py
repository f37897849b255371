#!/usr/bin/env python3
"""Scenario 3 (issue 6, real-time rows): no sharing, ShareGPT-like lengths, with real processes.

Nothing to gain from caches or adapters: log-normal prompt and output lengths (loadgen's
`sharegpt` workload, the data set's shape without the data set), every prompt its own. The
servers' KV cache is small enough that the batch, not the step time, limits each server, so the
sweep reaches saturation at a token rate this machine can stream through a router; a router
then wins only by balancing load. The target is no regression: epp within 5% of Envoy's
least-request. The sweep itself is bench/scenarios/sweep.py.

Writes bench/results/no_sharing.md (+ .json and PNG plots). Run:
    .venv/bin/python bench/scenarios/no_sharing.py              (about 22 minutes)
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import sweep  # noqa: E402

BASELINE = "envoy-least-request"


class NoSharing(sweep.Scenario):
    name = script = "no_sharing"
    title = ("Scenario 3: no sharing (ShareGPT-like lengths), real processes (4 modelsim "
             "servers, each router in turn)")
    plot_title = "no sharing (ShareGPT-like lengths)"
    rates = "4,7,10"
    seconds = 25
    sim_args = sweep.SIM_32B

    def add_args(self, ap):
        ap.add_argument("--kv-blocks", type=int, default=400,
                        help="--num-gpu-blocks-override per server")
        ap.add_argument("--block-size", type=int, default=16)

    def server_args(self, args):
        return ["--num-gpu-blocks-override", str(args.kv_blocks),
                "--block-size", str(args.block_size),
                "--max-model-len", str((args.kv_blocks - 1) * args.block_size)]

    def workload_args(self, args):
        return ["--workload", "sharegpt"]

    def describe(self, args, results):
        return [
            "- KV cache: %d usable blocks of %d tokens per server (%d tokens)" % (
                args.kv_blocks - 1, args.block_size, (args.kv_blocks - 1) * args.block_size),
            "- workload: loadgen sharegpt at its defaults: log-normal prompt length (median "
            "300 tokens, sigma 1.0, clipped to 4–4096) and output length (median 200, sigma "
            "0.8, clipped to 1–2048, ignore_eos); nothing shared",
            "- hit: nothing is shared between requests; the hits are requests preempted for "
            "lack of KV blocks finding their own blocks still cached when they are scheduled "
            "again (vLLM frees a preempted request's blocks but keeps them in the prefix cache "
            "until they are reused), so a few preemptions of long sequences move it a lot",
            "- target (issue 6): no regression, epp within 5%% of %s (p90 TTFT and E2E p90 at "
            "most 1.05×, output tok/s at least 0.95×)" % BASELINE,
        ]

    def ratio_lines(self, pts, peers):
        by = sweep.by_router(pts)
        base = by.get(BASELINE)
        if not base:
            return []
        out = [""]
        for name in ("epp-default", "epp-best"):
            if name in by:
                out.append("%s vs %s: %s." % (name, BASELINE, ", ".join(
                    "%s %.3f×" % kv for kv in self.ratios(by[name], base))))
        return out

    @staticmethod
    def ratios(p, base):
        s, b = p["summary"], base["summary"]
        return [("p90 TTFT", sweep.ratio(s["ttft_ms"]["p90"], b["ttft_ms"]["p90"])),
                ("E2E p90", sweep.ratio(s["e2e_ms"]["p90"], b["e2e_ms"]["p90"])),
                ("output tok/s", sweep.ratio(s["output_tokens_per_s"],
                                             b["output_tokens_per_s"]))]

    def verdict_lines(self, results, peers):
        rows = []
        for rate in sorted(results):
            by = sweep.by_router(results[rate])
            base = by.get(BASELINE)
            for name in ("epp-default", "epp-best"):
                if not base or name not in by:
                    continue
                r = dict(self.ratios(by[name], base))
                ok = (sweep.complete(by[name]) and r["p90 TTFT"] <= 1.05
                      and r["E2E p90"] <= 1.05 and r["output tok/s"] >= 0.95)
                rows.append(["%g" % rate, name, "%.3f×" % r["p90 TTFT"], "%.3f×" % r["E2E p90"],
                             "%.3f×" % r["output tok/s"], "met" if ok else "not met"])
        return common.md_table(["rate", "row", "p90 TTFT vs %s" % BASELINE, "E2E p90",
                                "output tok/s", "within 5%"], rows)

    def extra_panels(self, series):
        return [("preemptions", series(lambda p: p["servers"]["preemptions"]), False)]


if __name__ == "__main__":
    sweep.main(NoSharing())
