#!/usr/bin/env python3
"""Router CPU per streamed token, with real processes (part of scenario 4 of issue 6).

Every router in front of the same modelsim servers streaming completions (ShareGPT-like
lengths, capped), at a fixed Poisson rate: the router's CPU (utime+stime of its processes) per
output token and per request, next to Envoy alone. Envoy + epp rows: the reference's
configuration (responses through epp in FULL_DUPLEX_STREAMED: two gRPC messages per streamed
chunk) and the lean one (harness.LEAN_MODE: Envoy sends epp nothing of the response, and epp
learns the end of the response from the stream's end). The sweep itself is bench/scenarios/sweep.py.

Writes bench/results/streaming_cost.md (+ .json and PNG plots). Run:
    .venv/bin/python bench/scenarios/streaming_cost.py          (about 8 minutes)
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import sweep  # noqa: E402

ROUTERS = ("envoy-round-robin", "epp-default", "epp-best", "epp-best-lean", "sglang-router",
           "smg", "vllm-router-cache-aware", "vllm-router-power-of-two")
BASELINE = "envoy-round-robin"


def cpu_per_token_us(p):
    tokens = p["summary"].get("output_tokens") or 0
    return 1e6 * sum(p["cpu_s"].values()) / tokens if tokens else None


class StreamingCost(sweep.Scenario):
    name = script = "streaming_cost"
    title = "Router CPU per streamed token, real processes (4 modelsim servers, each router in turn)"
    plot_title = "streaming cost (ShareGPT-like lengths)"
    rates = "8,16"
    seconds = 20
    routers = ",".join(ROUTERS)

    def add_args(self, ap):
        ap.add_argument("--max-output-tokens", type=int, default=512)
        ap.add_argument("--max-input-tokens", type=int, default=2048)

    def workload_args(self, args):
        return ["--workload", "sharegpt", "--max-output-tokens", str(args.max_output_tokens),
                "--max-input-tokens", str(args.max_input_tokens)]

    def describe(self, args, results):
        return [
            "- workload: loadgen sharegpt (log-normal lengths: prompt median 300 tokens capped at "
            "%d, output median 200 capped at %d, ignore_eos), streamed; every output token is "
            "one SSE event, which a router relays as it comes" % (
                args.max_input_tokens, args.max_output_tokens),
            "- rows: %s; epp-best-lean = epp-best behind an Envoy whose ext_proc filter sends "
            "nothing of the response (`response_header_mode: SKIP`, `response_body_mode: NONE`) "
            "but keeps the stream open until the response ends (`response_trailer_mode: SEND`; "
            "tests/e2e/harness.py LEAN_MODE), so epp's in-flight accounting still sees each "
            "request's end (tests/e2e/test_lean_responses.py)" % ", ".join(ROUTERS),
            "- the table that matters is \"Where we land\": CPU per output token and per request "
            "of each router's processes, and the ratio to Envoy alone (%s)" % BASELINE,
        ]

    def verdict_lines(self, results, peers):
        rows = []
        for rate in sorted(results):
            by = sweep.by_router(results[rate])
            base = by.get(BASELINE)
            base_us = cpu_per_token_us(base) if base else None
            for name, p in by.items():
                us = cpu_per_token_us(p)
                if us is None:
                    rows.append(["%g" % rate, name, "0 tokens", "—", "—", "—", "—"])
                    continue
                s = p["summary"]
                rows.append(["%g" % rate, name, "%d" % s["output_tokens"],
                             ", ".join("%s %.2f s" % kv for kv in p["cpu_s"].items()),
                             "**%.1f**" % us,
                             "%.2f" % (1000 * sum(p["cpu_s"].values()) / max(s["requests"], 1)),
                             "%.2f×" % (us / base_us) if base_us else "—"])
        return common.md_table(["rate", "router", "output tokens", "CPU by process",
                                "µs per output token", "ms per request",
                                "× %s" % BASELINE], rows)

    def extra_panels(self, series):
        return [("router CPU per output token (µs)", series(cpu_per_token_us), False)]


if __name__ == "__main__":
    sweep.main(StreamingCost())
