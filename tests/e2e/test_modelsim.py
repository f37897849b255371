"""modelsim, the vLLM simulator, as a process: vLLM's metric names and label sets, SSE framing,
LoRA adapters in /v1/models and vllm:lora_requests_info, vLLM's error shape, queueing at
max_num_seqs, prefix-cache hits, and the SGLang / trtllm-serve metric dialects."""

import http.client
import json
import threading
import time

import pytest

import harness
from harness import Modelsim

VLLM_TTFT_BUCKETS = ["0.001", "0.005", "0.01", "0.02", "0.04", "0.06", "0.08", "0.1", "0.25",
                     "0.5", "0.75", "1.0", "2.5", "5.0", "7.5", "10.0", "20.0", "40.0", "80.0",
                     "160.0", "640.0", "2560.0", "+Inf"]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    if not harness.os.access(harness.modelsim_bin(), harness.os.X_OK):
        msg = "modelsim binary not found at %s" % harness.modelsim_bin()
        if harness.os.environ.get("EPP_E2E_REQUIRE_BINARY") == "1":
            pytest.fail(msg)
        pytest.skip(msg)
    return str(tmp_path_factory.mktemp("modelsim"))


@pytest.fixture(scope="module")
def sim(workdir):
    m = Modelsim(0, "127.0.0.1", workdir,
                 ["--served-model-name", "llama", "--enable-lora", "--max-loras", "2",
                  "--lora-modules", "sql-lora=/adapters/sql", "--time-scale", "20"])
    yield m
    m.proc.stop()


def samples(page, family):
    """(labels string, value) of every sample line of `family` (exact name)."""
    out = []
    for line in page.splitlines():
        if line.startswith(family + "{") or line.startswith(family + " "):
            head, value = line.rsplit(" ", 1)
            out.append((head[len(family):], value))
    return out


def label_names(labels):
    inner = labels.strip("{}")
    return [kv.split("=", 1)[0] for kv in inner.split('",') if kv] if inner else []


def test_vllm_metric_names_types_and_label_sets(sim):
    st, _ = sim.post("/v1/completions", {"model": "llama", "prompt": "x" * 100, "max_tokens": 3,
                                         "ignore_eos": True})
    assert st == 200
    st, page = sim.get("/metrics")
    assert st == 200
    for family, kind in [("vllm:num_requests_running", "gauge"),
                         ("vllm:num_requests_waiting", "gauge"),
                         ("vllm:kv_cache_usage_perc", "gauge"),
                         ("vllm:lora_requests_info", "gauge"),
                         ("vllm:cache_config_info", "gauge"),
                         ("vllm:prefix_cache_queries_total", "counter"),
                         ("vllm:prefix_cache_hits_total", "counter"),
                         ("vllm:prompt_tokens_total", "counter"),
                         ("vllm:generation_tokens_total", "counter"),
                         ("vllm:request_success_total", "counter"),
                         ("vllm:time_to_first_token_seconds", "histogram"),
                         ("vllm:inter_token_latency_seconds", "histogram"),
                         ("vllm:e2e_request_latency_seconds", "histogram"),
                         ("vllm:request_queue_time_seconds", "histogram")]:
        assert "# TYPE %s %s\n" % (family, kind) in page, family
    running = samples(page, "vllm:num_requests_running")
    assert running == [('{engine="0",model_name="llama"}', "0.0")]
    cc = samples(page, "vllm:cache_config_info")
    assert len(cc) == 1 and cc[0][1] == "1.0"
    names = label_names(cc[0][0])
    assert "model_name" not in names and names == sorted(names)
    assert 'block_size="16"' in cc[0][0] and 'num_gpu_blocks="26000"' in cc[0][0]
    lora = samples(page, "vllm:lora_requests_info")
    assert lora and all(label_names(l) == ["max_lora", "running_lora_adapters",
                                           "waiting_lora_adapters"] for l, _ in lora)
    assert all("e+09" in v for _, v in lora)  # a Unix timestamp, printed Go-style
    reasons = {l for l, _ in samples(page, "vllm:request_success_total")}
    assert reasons == {'{engine="0",finished_reason="%s",model_name="llama"}' % r
                       for r in ("stop", "length", "abort")}
    buckets = [l.split('le="')[1].split('"')[0]
               for l, _ in samples(page, "vllm:time_to_first_token_seconds_bucket")]
    assert buckets == VLLM_TTFT_BUCKETS
    assert samples(page, "vllm:time_to_first_token_seconds_count") == [
        ('{engine="0",model_name="llama"}', "1.0")]
    assert samples(page, "vllm:prompt_tokens_created")


def test_sse_stream_framing(sim):
    c = http.client.HTTPConnection("127.0.0.1", sim.port, timeout=30)
    body = json.dumps({"model": "llama", "prompt": "hello", "max_tokens": 4, "ignore_eos": True,
                       "stream": True, "stream_options": {"include_usage": True}})
    c.request("POST", "/v1/completions", body=body, headers={"content-type": "application/json"})
    r = c.getresponse()
    assert r.status == 200
    assert r.getheader("content-type") == "text/event-stream; charset=utf-8"
    assert r.getheader("transfer-encoding") == "chunked"
    raw = r.read().decode()
    c.close()
    events = raw.split("\n\n")
    assert events[-1] == "" and events[-2] == "data: [DONE]"
    payloads = [json.loads(e[len("data: "):]) for e in events[:-2]]
    assert [p["object"] for p in payloads] == ["text_completion"] * 5
    assert [p["choices"][0]["finish_reason"] for p in payloads[:4]] == [None] * 3 + ["length"]
    assert all(p["usage"] is None for p in payloads[:4])
    assert payloads[4]["choices"] == [] and payloads[4]["usage"]["completion_tokens"] == 4
    assert len({p["id"] for p in payloads}) == 1


def test_adapters_in_models_and_lora_info(sim):
    st, body = sim.post("/v1/load_lora_adapter", {"lora_name": "tweet", "lora_path": "/a/t"})
    assert (st, body) == (200, "Success: LoRA adapter 'tweet' added successfully.")
    st, body = sim.get("/v1/models")
    data = {m["id"]: m for m in json.loads(body)["data"]}
    assert data["llama"]["parent"] is None
    assert data["sql-lora"]["parent"] == "llama" and data["sql-lora"]["root"] == "/adapters/sql"
    assert data["tweet"]["parent"] == "llama"
    # A running request for the adapter shows in the newest lora_requests_info series.
    done = []
    t = threading.Thread(target=lambda: done.append(sim.post(
        "/v1/completions", {"model": "tweet", "prompt": "abc", "max_tokens": 400,
                            "ignore_eos": True})))
    t.start()

    def newest_running():
        _, page = sim.get("/metrics")
        series = samples(page, "vllm:lora_requests_info")
        labels, _ = max(series, key=lambda s: float(s[1]))
        return 'running_lora_adapters="tweet"' in labels
    harness.wait_until(newest_running, "tweet in the newest lora_requests_info series",
                       procs=[sim.proc])
    t.join()
    assert done[0][0] == 200


def test_errors_have_vllm_shape(sim):
    st, body = sim.post("/v1/completions", {"model": "nope", "prompt": "x"})
    assert st == 404
    assert json.loads(body) == {"error": {"message": "The model `nope` does not exist.",
                                          "type": "NotFoundError", "param": None, "code": 404}}
    st, body = sim.post("/v1/chat/completions", {"model": "llama"})
    assert st == 400
    err = json.loads(body)["error"]
    assert err["type"] == "BadRequestError" and "messages" in err["message"]
    st, body = sim.post("/v1/unload_lora_adapter", {"lora_name": "ghost"})
    assert st == 404 and "cannot be found" in body


def test_queue_grows_at_max_num_seqs(workdir):
    m = Modelsim(1, "127.0.0.1", workdir, ["--max-num-seqs", "2", "--model", "m"])
    try:
        threads = [threading.Thread(target=m.post, args=(
            "/v1/completions", {"prompt": "p%d" % i, "max_tokens": 300, "ignore_eos": True}))
            for i in range(6)]
        for t in threads:
            t.start()
        harness.wait_until(lambda: m.metric("vllm:num_requests_waiting") == 4.0 and
                           m.metric("vllm:num_requests_running") == 2.0,
                           "2 running and 4 waiting", procs=[m.proc])
        for t in threads:
            t.join()
        assert m.metric("vllm:num_requests_waiting") == 0.0
        assert m.metric("vllm:request_success_total", finished_reason="length") == 6.0
    finally:
        m.proc.stop()


def test_shared_prefix_hits_the_prefix_cache(workdir):
    m = Modelsim(2, "127.0.0.1", workdir, ["--model", "m", "--time-scale", "20"])
    try:
        system = "You are a helpful assistant. " * 40  # 1,160 bytes = 290 tokens
        for q in ("first question", "second question"):
            st, _ = m.post("/v1/completions", {"prompt": system + q, "max_tokens": 2})
            assert st == 200
        # The second request reuses the 18 full blocks (288 tokens) of the shared part.
        assert m.metric("vllm:prefix_cache_hits_total") == 288.0
        assert m.metric("vllm:prefix_cache_queries_total") > 576
    finally:
        m.proc.stop()


@pytest.mark.parametrize("engine,names", [
    ("sglang", ["sglang:num_queue_reqs", "sglang:num_running_reqs", "sglang:token_usage",
                "sglang:cache_config_info"]),
    ("trtllm-serve", ["trtllm_num_requests_waiting", "trtllm_num_requests_running",
                      "trtllm_kv_cache_utilization", "trtllm_kv_cache_tokens_per_block"]),
])
def test_other_engines_metric_dialects(workdir, engine, names):
    m = Modelsim(3, "127.0.0.1", workdir, ["--model", "m", "--engine", engine],
                 name="modelsim-" + engine)
    try:
        _, page = m.get("/metrics")
        for n in names:
            assert "\n" + n + "{" in "\n" + page, n
        assert "vllm:" not in page
    finally:
        m.proc.stop()
