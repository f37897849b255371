"""Routing quality end to end: the real Envoy, epp and modelsim servers. epp's default profile
(queue 2, KV cache 2, prefix 3) keeps shared prefixes together (a much higher prefix-cache hit
rate on the servers than a random pick), sends adapter requests where the adapter is loaded while
it has room, and stops sending new work to a saturated server."""

import json
import threading

import pytest

import harness
from harness import make_stack
from harness import request as http

MODEL = "llama"


def completed(sim):
    return sum(sim.metric("vllm:request_success_total", finished_reason=r) or 0
               for r in ("stop", "length", "abort"))


def hit_rate(sims):
    hits = sum(s.metric("vllm:prefix_cache_hits_total") or 0 for s in sims)
    queries = sum(s.metric("vllm:prefix_cache_queries_total") or 0 for s in sims)
    return hits / queries


def shared_prefix_run(env, groups=8, per_group=4):
    """groups × per_group completions, interleaved; each group shares a 2,400-character system
    prompt (600 tokens) and adds its own question."""
    for u in range(per_group):
        for g in range(groups):
            prompt = ("System prompt of tenant %02d. " % g) * 80 + "User %d asks question %d?" % (
                u, g * 100 + u)
            st, _, data = http(env.port, "POST", "/v1/completions", json.dumps(
                {"model": MODEL, "prompt": prompt, "max_tokens": 2}).encode())
            assert st == 200, data[:200]


def stack_with(request_, tmp_path_factory, name, scheduling, n=4, extra=()):
    harness.require_epp()
    return make_stack(request_, tmp_path_factory, name, tls=False, n_backends=n,
                      epp_args=["--refresh-metrics-interval", "20ms"],
                      modelsim_args=["--served-model-name", MODEL, "--time-scale", "10"]
                      + list(extra),
                      backend_hosts=["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"],
                      scheduling=scheduling)


def test_default_profile_keeps_shared_prefixes_together(request, tmp_path_factory):
    default = stack_with(request, tmp_path_factory, "prefix-default", harness.DEFAULT_SCHEDULING)
    rand = stack_with(request, tmp_path_factory, "prefix-random", harness.RANDOM_SCHEDULING)
    shared_prefix_run(default.serving_envoy())
    shared_prefix_run(rand.serving_envoy())
    d, r = hit_rate(default.backends), hit_rate(rand.backends)
    print("prefix-cache hit rate: default profile %.3f, random %.3f" % (d, r))
    # Ideal: 3 of every 4 requests reuse their group's 600-token prefix (~0.74); random over 4
    # servers loses most of that.
    assert d > 0.6, "default profile prefix-cache hit rate %.2f" % d
    assert d > 1.5 * r, "default %.2f vs random %.2f" % (d, r)


def debug_endpoints(stack):
    st, _, body = http(stack.epp.metrics_port, "GET", "/debug/endpoints")
    assert st == 200
    return {e["port"]: e["metrics"] for e in json.loads(body)}


LORA_SCHEDULING = ("""- type: lora-affinity-scorer
- type: queue-scorer""", "")


def test_adapter_requests_go_where_the_adapter_is_loaded(request, tmp_path_factory):
    st = stack_with(request, tmp_path_factory, "lora", LORA_SCHEDULING, n=3,
                    extra=["--enable-lora", "--max-loras", "1", "--lora-modules",
                           "sql=/a/sql", "tweet=/a/tweet"])
    env = st.serving_envoy()

    def post(model, tokens):
        s, _, data = http(env.port, "POST", "/v1/completions", json.dumps(
            {"model": model, "prompt": "p", "max_tokens": tokens, "ignore_eos": True}).encode())
        assert s == 200, data[:200]

    # A long sql request makes one server hold the sql adapter in its only slot.
    long_sql = threading.Thread(target=post, args=("sql", 3000))
    long_sql.start()
    try:
        def sql_active():
            return [p for p, m in debug_endpoints(st).items() if m["active_models"] == ["sql"]]
        harness.wait_until(lambda: len(sql_active()) == 1, "epp to see sql running on a server",
                           procs=[st.epp.proc])
        sql_port = sql_active()[0]
        sql_sim = next(b for b in st.backends if b.port == sql_port)
        others = [b for b in st.backends if b.port != sql_port]
        before = {b.port: completed(b) for b in st.backends}
        for _ in range(4):
            post("sql", 2)  # 1.0 where sql runs, 0.8 elsewhere: all go to sql_sim
        assert completed(sql_sim) - before[sql_port] == 4
        assert all(completed(b) == before[b.port] for b in others)
        for _ in range(3):
            post("tweet", 2)  # sql_sim has no free slot (0), the others have room (0.8)
        assert completed(sql_sim) - before[sql_port] == 4
        assert sum(completed(b) - before[b.port] for b in others) == 3
    finally:
        long_sql.join()


def test_saturated_server_stops_receiving_work(request, tmp_path_factory):
    st = stack_with(request, tmp_path_factory, "saturated", harness.DEFAULT_SCHEDULING, n=2,
                    extra=["--max-num-seqs", "1"])
    env = st.serving_envoy()
    busy, idle = st.backends
    # Fill `busy` directly: one running, four waiting.
    fillers = [threading.Thread(target=busy.post, args=(
        "/v1/completions", {"model": MODEL, "prompt": "fill %d" % i, "max_tokens": 2000,
                            "ignore_eos": True})) for i in range(5)]
    for t in fillers:
        t.start()
    try:
        harness.wait_until(lambda: debug_endpoints(st)[busy.port]["waiting_queue_size"] == 4,
                           "epp to see 4 waiting on the busy server", procs=[st.epp.proc])
        before_idle = completed(idle)
        for i in range(6):
            s, _, data = http(env.port, "POST", "/v1/completions", json.dumps(
                {"model": MODEL, "prompt": "short %d" % i, "max_tokens": 2}).encode())
            assert s == 200, data[:200]
        assert completed(idle) - before_idle == 6
    finally:
        for t in fillers:
            t.join()
