#!/usr/bin/env python3
"""Scenario 2 (issue 6, real-time rows): multi-LoRA routing with real processes.

GIE's multi-LoRA regression shape: 15 adapters of one base model, requests skewed 60/30/10 over
three tiers of adapters, prompts that share nothing. Every server registers all 15 adapters
and batches at most 4 distinct ones (`--max-loras 4`, vLLM's default CPU cache of as many), so
a request for an adapter the server does not hold waits for a load. A router that keeps each
adapter on few servers saves those loads; one that spreads every adapter everywhere pays them.
The sweep itself is bench/scenarios/sweep.py.

Writes bench/results/multi_lora.md (+ .json and PNG plots). Run:
    .venv/bin/python bench/scenarios/multi_lora.py              (about 10 minutes)
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import sweep  # noqa: E402


class MultiLora(sweep.Scenario):
    name = script = "multi_lora"
    title = ("Scenario 2: multi-LoRA routing, real processes (4 modelsim servers, each router "
             "in turn)")
    plot_title = "multi-LoRA (15 adapters, 60/30/10)"
    rates = "15,30,40"
    seconds = 20

    def add_args(self, ap):
        ap.add_argument("--adapters", type=int, default=15)
        ap.add_argument("--adapter-weights", default="60,30,10")
        ap.add_argument("--max-loras", type=int, default=4)
        ap.add_argument("--prompt-tokens", type=int, default=512)
        ap.add_argument("--output-tokens", type=int, default=128)

    def adapter_names(self, args):
        return ["adapter-%d" % i for i in range(args.adapters)]

    def server_args(self, args):
        return (["--enable-lora", "--max-loras", str(args.max_loras), "--lora-modules"]
                + ["%s=/adapters/%s" % (a, a) for a in self.adapter_names(args)])

    def workload_args(self, args):
        return ["--workload", "multi-lora", "--adapters", str(args.adapters),
                "--adapter-prefix", "adapter-", "--adapter-weights", args.adapter_weights,
                "--prompt-tokens", str(args.prompt_tokens),
                "--output-tokens", str(args.output_tokens)]

    def describe(self, args, results):
        return [
            "- LoRA: every server registers the %d adapters, batches at most %d distinct ones "
            "and keeps as many in its CPU cache (vLLM's default `--max-cpu-loras`); loading an "
            "adapter it does not hold costs modelsim's `--sim-lora-load-ms` (default 200 ms), "
            "bringing a cached one into a slot `--sim-lora-activate-ms` (default 5 ms)" % (
                args.adapters, args.max_loras),
            "- workload: loadgen multi-lora, %d adapters in tiers weighted %s, prompt %d tokens "
            "(nothing shared), output %d (ignore_eos)" % (
                args.adapters, args.adapter_weights, args.prompt_tokens, args.output_tokens),
        ] + self.refusals(results) + [
            "- targets (issue 6): epp-best output tok/s ≥ 1.2 × envoy-round-robin and p90 TTFT "
            "≤ epp-default (the reference default profile, which has no LoRA scorer); epp-best "
            "is examples/configs/prefix-inflight.yaml with `lora-affinity-scorer` weight 4",
        ]

    @staticmethod
    def refusals(results):
        """A line per router that failed every request of every rate, with the status."""
        out = []
        names = []
        for pts in results.values():
            for p in pts:
                if p["router"] not in names:
                    names.append(p["router"])
        for name in names:
            rows = [p for pts in results.values() for p in pts if p["router"] == name]
            if rows and all("summary" in p and p["summary"]["succeeded"] == 0 for p in rows):
                status = sorted({k for p in rows
                                 for k in p["summary"].get("errors_by_status", {})}) or ["none"]
                line = "- %s answered none of the adapter requests (status %s)" % (
                    name, ", ".join(status))
                if any("No worker serves model" in l for p in rows
                       for l in p.get("router_log") or []):
                    line += (": it routes by the model name and knows only the base model of "
                             "each worker, not the adapters the workers list in /v1/models (its "
                             "log: \"No worker serves model ... model_id=adapter-N\")")
                out.append(line)
        return out

    def ratio_lines(self, pts, peers):
        by = sweep.by_router(pts)
        best, rr, dflt = by.get("epp-best"), by.get("envoy-round-robin"), by.get("epp-default")
        peer = sweep.best_peer(pts, peers)
        if not best:
            return []
        b = best["summary"]
        out = [""]
        if rr:
            rs = rr["summary"]
            out.append("epp-best vs envoy-round-robin: output tok/s %.2f× (target ≥ 1.2), p90 "
                       "TTFT %.3f×." % (
                           sweep.ratio(b["output_tokens_per_s"], rs["output_tokens_per_s"]),
                           sweep.ratio(b["ttft_ms"]["p90"], rs["ttft_ms"]["p90"])))
        if dflt:
            ds = dflt["summary"]
            out.append("epp-best vs epp-default: p90 TTFT %.3f× (target ≤ 1), output tok/s "
                       "%.2f×." % (sweep.ratio(b["ttft_ms"]["p90"], ds["ttft_ms"]["p90"]),
                                   sweep.ratio(b["output_tokens_per_s"],
                                               ds["output_tokens_per_s"])))
        if peer:
            ps = peer["summary"]
            out.append("epp-best vs the best peer (%s): p90 TTFT %.3f×, output tok/s %.2f×." % (
                peer["router"], sweep.ratio(b["ttft_ms"]["p90"], ps["ttft_ms"]["p90"]),
                sweep.ratio(b["output_tokens_per_s"], ps["output_tokens_per_s"])))
        return out

    def verdict_lines(self, results, peers):
        rows = []
        for rate in sorted(results):
            pts = results[rate]
            by = sweep.by_router(pts)
            best, rr, dflt = by.get("epp-best"), by.get("envoy-round-robin"), \
                by.get("epp-default")
            peer = sweep.best_peer(pts, peers)
            if not best:
                continue
            b = best["summary"]
            t_rr = sweep.ratio(b["output_tokens_per_s"], rr["summary"]["output_tokens_per_s"]) \
                if rr else None
            f_d = sweep.ratio(b["ttft_ms"]["p90"], dflt["summary"]["ttft_ms"]["p90"]) \
                if dflt else None
            f_p = sweep.ratio(b["ttft_ms"]["p90"], peer["summary"]["ttft_ms"]["p90"]) \
                if peer else None
            ok = sweep.complete(best)  # a row with failed requests meets no target
            rows.append(["%g" % rate,
                         "%.2f×" % t_rr if t_rr is not None else "—",
                         sweep.met(t_rr, lambda v: ok and v is not None and v >= 1.2),
                         "%.3f×" % f_d if f_d is not None else "—",
                         sweep.met(f_d, lambda v: ok and v is not None and v <= 1.0),
                         "%s %.3f×" % (peer["router"], f_p) if peer else "—"])
        return common.md_table(["rate", "output tok/s vs round-robin", "≥ 1.2×",
                                "p90 TTFT vs epp-default", "≤ 1×",
                                "p90 TTFT vs the best peer"], rows)

    def extra_panels(self, series):
        return [("queue time mean (s)",
                 series(lambda p: p["servers"]["queue_time_mean_s"]), False)]


if __name__ == "__main__":
    sweep.main(MultiLora())
