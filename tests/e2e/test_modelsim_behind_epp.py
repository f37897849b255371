"""epp and Envoy in front of modelsim servers: epp's data layer reads what modelsim reports
(queue, running, KV usage, LoRA adapters, cache geometry; vLLM and SGLang metric names chosen
by the engine-type label), and requests flow through Envoy to the simulated servers."""

import http.client
import json
import threading

import pytest

import harness
from harness import Modelsim, completion_body, make_stack, request


@pytest.fixture(scope="module")
def stack(request, tmp_path_factory):
    harness.require_epp()
    st = make_stack(request, tmp_path_factory, "modelsim-stack", tls=False,
                    epp_args=["--refresh-metrics-interval", "20ms"],
                    modelsim_args=["--served-model-name", "llama", "--max-num-seqs", "1",
                                   "--enable-lora", "--max-loras", "3",
                                   "--lora-modules", "sql-lora=/a/sql", "--time-scale", "5"])
    return st


def debug_endpoints(port):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        c.request("GET", "/debug/endpoints")
        return {e["name"]: e for e in json.loads(c.getresponse().read())}
    finally:
        c.close()


def test_epp_reads_cache_geometry_and_lora_slots(stack):
    def ready():
        eps = debug_endpoints(stack.epp.metrics_port)
        return len(eps) == 3 and all(e["metrics"]["cache_num_gpu_blocks"] == 26000
                                     for e in eps.values())
    harness.wait_until(ready, "epp to read every modelsim's cache_config_info",
                       procs=[stack.epp.proc])
    for e in debug_endpoints(stack.epp.metrics_port).values():
        m = e["metrics"]
        assert m["cache_block_size"] == 16
        assert m["max_active_models"] == 3
        assert m["last_error"] == ""


def test_epp_sees_a_queue_build_up(stack):
    """Three long requests to a server with max_num_seqs 1: one running, two waiting."""
    target = stack.backends[1]
    threads = [threading.Thread(target=target.post, args=(
        "/v1/completions", {"model": "sql-lora", "prompt": "q%d" % i, "max_tokens": 150,
                            "ignore_eos": True})) for i in range(3)]
    for t in threads:
        t.start()
    try:
        def seen():
            m = debug_endpoints(stack.epp.metrics_port)["b1"]["metrics"]
            return (m["waiting_queue_size"] == 2 and m["running_requests_size"] == 1 and
                    m["active_models"] == ["sql-lora"] and m["waiting_models"] == ["sql-lora"]
                    and m["kv_cache_usage_percent"] > 0)
        harness.wait_until(seen, "epp to see b1 with 1 running and 2 waiting sql-lora requests",
                           procs=[stack.epp.proc, target.proc])
    finally:
        for t in threads:
            t.join()


def test_requests_flow_through_envoy_to_modelsim(stack):
    env = stack.serving_envoy("full_duplex")
    st, _, data = request(env.port, "POST", "/v1/completions",
                          completion_body(model="llama", prompt="hello there", max_tokens=3))
    assert st == 200, data[:300]
    body = json.loads(data)
    assert body["object"] == "text_completion" and body["usage"]["completion_tokens"] == 3
    st, _, data = request(env.port, "POST", "/v1/chat/completions", json.dumps({
        "model": "llama", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2,
        "stream": True}).encode())
    assert st == 200
    assert data.decode().endswith("data: [DONE]\n\n")


def test_sglang_endpoint_read_by_engine_type_label(tmp_path_factory, request):
    harness.require_epp()
    workdir = str(tmp_path_factory.mktemp("sglang"))
    sims = [Modelsim(0, "127.0.0.1", workdir, ["--engine", "sglang", "--block-size", "32"],
                     labels={"inference.networking.k8s.io/engine-type": "sglang"}),
            Modelsim(1, "127.0.0.2", workdir, ["--block-size", "64"])]
    epp = harness.Epp(workdir, sims, tls=False,
                      extra_args=["--refresh-metrics-interval", "20ms"])
    request.addfinalizer(lambda: [p.stop() for p in [epp.proc] + [s.proc for s in sims]])

    def read():
        eps = debug_endpoints(epp.metrics_port)
        return (eps.get("b0", {}).get("metrics", {}).get("cache_block_size") == 32 and
                eps.get("b1", {}).get("metrics", {}).get("cache_block_size") == 64)
    harness.wait_until(read, "epp to read the SGLang page_size and the vLLM block_size",
                       procs=[epp.proc])
    assert debug_endpoints(epp.metrics_port)["b0"]["metrics"]["last_error"] == ""
