#!/usr/bin/env python3
"""make demo: three modelsim servers (the vLLM simulator; a base model and LoRA adapters),
epp (TLS, file discovery, metrics scraping every 50 ms, its default profile: queue 2, KV cache
2, prefix 3) and the real Envoy in FULL_DUPLEX_STREAMED mode. Runs a shared-prefix workload
across the base model and its adapters through Envoy, shows what epp saw while it ran (queues,
KV use, adapters) and what each server did (requests, prefix-cache hit rate, time to first
token); then an error, a streamed response and a subset hint; then the same workload on fresh
servers behind epp with a random pick, and the two side by side. Everything runs on loopback
and stops at the end."""
import json
import os
import random
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
import harness  # noqa: E402

ADAPTERS = ["sql-lora", "tweet-lora", "chat-lora"]
MODELSIM_ARGS = ["--served-model-name", "llama-3.1-8b", "--max-num-seqs", "8",
                 "--enable-lora", "--max-loras", "2", "--max-cpu-loras", "3",
                 "--lora-modules"] + ["%s=/adapters/%s" % (a, a) for a in ADAPTERS]


def debug_endpoints(stack):
    with urllib.request.urlopen("http://127.0.0.1:%d/debug/endpoints" % stack.epp.metrics_port,
                                timeout=5) as r:
        return json.loads(r.read())


def show(title):
    print("\n== %s" % title)


def server_stats(sim):
    """Counters read back from one modelsim's /metrics."""
    m = sim.metric
    done = sum(m("vllm:request_success_total", finished_reason=r) or 0
               for r in ("stop", "length", "abort"))
    queries = m("vllm:prefix_cache_queries_total") or 0
    hits = m("vllm:prefix_cache_hits_total") or 0
    ttft_n = m("vllm:time_to_first_token_seconds_count") or 0
    ttft_sum = m("vllm:time_to_first_token_seconds_sum") or 0
    return {"requests": done, "hit_rate": hits / queries if queries else 0.0,
            "ttft_ms": 1000 * ttft_sum / ttft_n if ttft_n else 0.0}


def shared_prefix_workload(port, groups=4, per_group=6, concurrency=6, seed=1):
    """groups × per_group chat requests: each group shares a ~2,000-character system prompt
    (≈500 tokens) and uses one model (the base model or an adapter)."""
    rnd = random.Random(seed)
    models = ["llama-3.1-8b"] + ADAPTERS
    jobs = []
    for g in range(groups):
        system = ("Group %d policy. " % g) + " ".join(
            rnd.choice(["alpha", "beta", "gamma", "delta", "omega"]) for _ in range(330))
        for u in range(per_group):
            jobs.append((models[g % len(models)], system,
                         "Question %d from user %d of group %d?" % (rnd.randrange(10**6), u, g)))
    rnd.shuffle(jobs)
    statuses = []
    lock = threading.Lock()

    def worker():
        while True:
            with lock:
                if not jobs:
                    return
                model, system, question = jobs.pop()
            body = json.dumps({"model": model, "max_tokens": 48, "ignore_eos": True,
                               "messages": [{"role": "system", "content": system},
                                            {"role": "user", "content": question}]}).encode()
            st, _, _ = harness.request(port, "POST", "/v1/chat/completions", body)
            with lock:
                statuses.append(st)
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    return threads, statuses


def totals(stack):
    """Aggregate prefix-cache hit rate and mean TTFT over the stack's servers."""
    m = [(b.metric("vllm:prefix_cache_hits_total") or 0,
          b.metric("vllm:prefix_cache_queries_total") or 0,
          b.metric("vllm:time_to_first_token_seconds_sum") or 0,
          b.metric("vllm:time_to_first_token_seconds_count") or 0) for b in stack.backends]
    hits, queries, tsum, tn = (sum(x[i] for x in m) for i in range(4))
    return {"hit_rate": hits / queries if queries else 0.0,
            "ttft_ms": 1000 * tsum / tn if tn else 0.0,
            "per_server": [int(server_stats(b)["requests"]) for b in stack.backends]}


def main():
    work = tempfile.mkdtemp(prefix="epp-demo-")
    stack = harness.Stack(work, tls=True, modelsim_args=MODELSIM_ARGS,
                          scheduling=harness.DEFAULT_SCHEDULING)
    try:
        envoy = stack.envoy("full_duplex")
        stack.wait_serving(envoy)
        print("modelsim servers: %s (llama-3.1-8b + LoRA %s; max_num_seqs 8, max_loras 2)" % (
            ", ".join(b.addr for b in stack.backends), ", ".join(ADAPTERS)))
        print("epp:    127.0.0.1:%d (TLS, self-signed), endpoints from %s" % (
            stack.epp_port, stack.epp.endpoints_path))
        print("envoy:  http://127.0.0.1:%d  (ext_proc FULL_DUPLEX_STREAMED -> ORIGINAL_DST)"
              % envoy.port)

        show("GET /v1/models through Envoy")
        st, _, body = harness.request(envoy.port, "GET", "/v1/models")
        print(st, [(m["id"], m["parent"]) for m in json.loads(body)["data"]])

        show("shared-prefix workload: 4 system prompts x 6 users, base model and 3 adapters, "
             "6 at a time")
        t0 = time.monotonic()
        threads, statuses = shared_prefix_workload(envoy.port)
        time.sleep(0.6)
        print("what epp sees meanwhile (GET /debug/endpoints on its admin port):")
        print("  %-5s %-16s %-8s %-8s %-6s %-24s %s" % ("name", "address", "waiting", "running",
                                                        "kv", "adapters running", "age"))
        for e in debug_endpoints(stack):
            m = e["metrics"]
            print("  %-5s %-16s %-8d %-8d %-6.3f %-24s %s ms" % (
                e["name"], "%s:%d" % (e["address"], e["port"]), m["waiting_queue_size"],
                m["running_requests_size"], m["kv_cache_usage_percent"],
                ",".join(m["active_models"]) or "-", m["age_ms"]))
        for t in threads:
            t.join()
        print("%d requests in %.1f s, statuses %s" % (len(statuses), time.monotonic() - t0,
                                                      sorted(set(statuses))))
        print("what each server did (its own /metrics):")
        print("  %-16s %-9s %-16s %s" % ("server", "requests", "prefix-cache hit", "mean TTFT"))
        for b in stack.backends:
            s = server_stats(b)
            print("  %-16s %-9d %-16s %.1f ms" % (b.addr, s["requests"],
                                                  "%.0f%%" % (100 * s["hit_rate"]), s["ttft_ms"]))
        default_totals = totals(stack)

        show("invalid JSON -> 400 from epp; unknown model -> 404 from the model server")
        st, _, body = harness.request(envoy.port, "POST", "/v1/completions", b"{not json")
        print(st, body.decode(errors="replace"))
        st, _, body = harness.request(envoy.port, "POST", "/v1/completions",
                                      harness.completion_body(model="no-such-model"))
        print(st, body.decode(errors="replace"))

        show("streamed chat completion (SSE passes through as it is produced)")
        st, _, body = harness.request(envoy.port, "POST", "/v1/chat/completions", json.dumps({
            "model": "tweet-lora", "messages": [{"role": "user", "content": "hi"}],
            "max_tokens": 5, "stream": True, "stream_options": {"include_usage": True}}).encode())
        events = [l for l in body.decode().splitlines() if l.startswith("data: ")]
        print(st, "%d SSE events, last two: %s" % (len(events), " | ".join(events[-2:])))

        target = stack.backends[1]
        show("subset hint [%s] injected by Envoy's set_metadata filter" % target.addr)
        hinted = stack.envoy("full_duplex", subset_hint=[target.addr])
        stack.wait_serving(hinted)
        before = [server_stats(b)["requests"] for b in stack.backends]
        for i in range(5):
            st, _, body = harness.request(hinted.port, "POST", "/v1/completions",
                                          harness.completion_body(model="llama-3.1-8b",
                                                                  max_tokens=2))
            assert st == 200, body
        after = [server_stats(b)["requests"] for b in stack.backends]
        print("5 requests; served per server: %s" % {
            b.addr: int(a - x) for b, a, x in zip(stack.backends, after, before)})
    finally:
        stack.close()

    show("the same workload on fresh servers behind epp with a random pick")
    work2 = tempfile.mkdtemp(prefix="epp-demo-random-")
    rand = harness.Stack(work2, tls=True, modelsim_args=MODELSIM_ARGS,
                         scheduling=harness.RANDOM_SCHEDULING)
    try:
        env = rand.envoy("full_duplex")
        rand.wait_serving(env)
        threads, statuses = shared_prefix_workload(env.port)
        for t in threads:
            t.join()
        random_totals = totals(rand)
    finally:
        rand.close()
    print("  %-22s %-18s %-12s %s" % ("", "prefix-cache hit", "mean TTFT", "requests per server"))
    for name, t in (("epp default profile", default_totals), ("random pick", random_totals)):
        print("  %-22s %-18s %-12s %s" % (name, "%.0f%%" % (100 * t["hit_rate"]),
                                          "%.1f ms" % t["ttft_ms"], t["per_server"]))
    if random_totals["hit_rate"] > 0:
        print("  hit rate %.1fx the random pick's" % (default_totals["hit_rate"] /
                                                      random_totals["hit_rate"]))
    print("\ndemo done (logs were in %s and %s)" % (work, work2))


if __name__ == "__main__":
    main()
