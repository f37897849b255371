#!/usr/bin/env python3
"""make demo: epp against round-robin on the same mixed workload.

Four modelsim servers (the vLLM simulator, Llama-3.1-8B on one H100 in its default cost model)
with LoRA adapters loaded and prefix caching on, each with a KV cache too small to keep every
system prompt of the workload, serve one seeded, open-loop (Poisson) workload of streamed chat
completions twice, on fresh servers each time so both runs start cold:

  A. the real Envoy with epp as its ext_proc (FULL_DUPLEX_STREAMED, TLS, metrics scraped every
     50 ms, the reference's default profile: queue 2, KV cache 2, prefix 3);
  B. the same Envoy binary with a plain ROUND_ROBIN cluster over the four servers (no ext_proc):
     what a Kubernetes Service gives.

The workload mixes shared-prefix groups (long system prompts shared by several users, the base
model), LoRA-adapter requests (each adapter's application has its own instructions) and unique
requests; both runs send the identical requests at the identical times. The client measures
time to first token (the first SSE chunk with content), output tokens/s and errors; each
server's /metrics gives the requests it served, its prefix-cache hit rate, preemptions and queue
time. Everything runs on loopback and is stopped at the end, also on Ctrl-C or a failure.
"""
import argparse
import asyncio
import json
import os
import random
import signal
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
import harness  # noqa: E402

HOSTS = ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"]
MODEL = "llama-3.1-8b"
ADAPTERS = ["sql-lora", "tweet-lora", "chat-lora", "code-lora"]

# The servers: vLLM's engine on an H100 (modelsim's default costs), four adapters loaded in the
# CPU cache with two GPU slots, prefix caching on (the default). KV_BLOCKS x 16 tokens of KV
# cache (28,800) hold five of the twelve 5,000-token system prompts, fewer with the running
# requests beside them: every prefix on every server does not fit, a quarter per server does.
# Measured: with round-robin's cache misses (and the preemptions that come with them) these
# servers answer about 18 requests/s of this workload, so at RATE a queue builds all run long;
# behind epp they kept p90 TTFT at 0.13 s at 34 requests/s, the highest rate tried (README,
# "What make demo shows").
KV_BLOCKS = 1800
MAX_NUM_SEQS = 128
MAX_LORAS = 2

# The workload (token counts: modelsim's tokenizer counts 4 bytes per token).
RATE = 22.0               # requests per second, Poisson
SECONDS = 50.0            # of arrivals
GROUPS = 12               # shared system prompts on the base model
SYSTEM_TOKENS = 5000      # per group
ADAPTER_SHARE = 0.25      # requests for an adapter; each adapter has its own instructions
ADAPTER_TOKENS = 3000
UNIQUE_SHARE = 0.15       # requests that share nothing
UNIQUE_TOKENS = (500, 3000)
QUESTION_TOKENS = (50, 300)
OUTPUT_TOKENS = (32, 224)

WORDS = ("the of and to in is for on with as by at from that this it be are was or an not "
         "model query table user order price data time value list name state code page "
         "result error report account service region status count total policy answer").split()


def modelsim_args(time_scale, kv_blocks):
    return ["--served-model-name", MODEL, "--max-num-seqs", str(MAX_NUM_SEQS),
            "--num-gpu-blocks-override", str(kv_blocks), "--max-model-len", "16384",
            "--enable-lora", "--max-loras", str(MAX_LORAS), "--max-cpu-loras", str(len(ADAPTERS)),
            "--lora-modules"] + ["%s=/adapters/%s" % (a, a) for a in ADAPTERS] + [
            "--time-scale", str(time_scale)]


def text(rnd, tokens, head=""):
    """About `tokens` tokens of words (4 bytes a token), starting with `head`."""
    out, n = [head], len(head)
    while n < 4 * tokens:
        w = rnd.choice(WORDS)
        out.append(w)
        n += len(w) + 1
    return " ".join(out)[:4 * tokens]


def make_workload(seed, rate, seconds):
    """The request sequence: (arrival second, model, label, JSON body) for every request."""
    rnd = random.Random(seed)
    groups = [text(rnd, SYSTEM_TOKENS, "You are the assistant of tenant %d. Policy:" % g)
              for g in range(GROUPS)]
    instructions = {a: text(rnd, ADAPTER_TOKENS, "Instructions for %s:" % a) for a in ADAPTERS}
    out, t, n = [], 0.0, 0
    while True:
        t += rnd.expovariate(rate)
        if t >= seconds:
            return out
        n += 1
        question = text(rnd, rnd.randint(*QUESTION_TOKENS), "Request %d:" % n)
        roll = rnd.random()
        if roll < ADAPTER_SHARE:
            model = rnd.choice(ADAPTERS)
            system, label = instructions[model], "adapter"
        elif roll < ADAPTER_SHARE + UNIQUE_SHARE:
            model, system, label = MODEL, None, "unique"
            question = text(rnd, rnd.randint(*UNIQUE_TOKENS), "Document %d:" % n)
        else:
            model, system, label = MODEL, groups[rnd.randrange(GROUPS)], "group"
        messages = ([{"role": "system", "content": system}] if system else []) + [
            {"role": "user", "content": question}]
        body = json.dumps({"model": model, "messages": messages, "stream": True,
                           "stream_options": {"include_usage": True}, "ignore_eos": True,
                           "max_tokens": rnd.randint(*OUTPUT_TOKENS)}).encode()
        out.append((t, model, label, body))


# ---------------------------------------------------------------------------------------------
# the client: one connection per request, streamed responses read as they come
# ---------------------------------------------------------------------------------------------

async def stream_chat(port, body, timeout):
    """POST /v1/chat/completions; returns (status, TTFT s or None, output tokens, done, e2e s).
    TTFT is the time to the first SSE chunk that carries content (not the role chunk)."""
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    ttft, tokens, done = None, 0, False
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"POST /v1/chat/completions HTTP/1.1\r\nhost: demo\r\n"
                     b"content-type: application/json\r\ncontent-length: %d\r\n"
                     b"connection: close\r\n\r\n" % len(body) + body)
        status = int((await asyncio.wait_for(reader.readline(), timeout)).split()[1])
        chunked, length = False, None
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b""):
                break
            k, _, v = line.decode("latin-1").partition(":")
            k, v = k.strip().lower(), v.strip().lower()
            if k == "transfer-encoding" and "chunked" in v:
                chunked = True
            elif k == "content-length":
                length = int(v)
        buf = b""
        while True:
            if chunked:
                size = int((await reader.readline()).split(b";")[0], 16)
                if size == 0:
                    break
                data = await reader.readexactly(size + 2)
                buf += data[:-2]
            else:
                data = await (reader.readexactly(length) if length is not None else reader.read())
                buf += data
            while b"\n\n" in buf:
                event, buf = buf.split(b"\n\n", 1)
                if ttft is None and b'"content":"' in event and b'"content":""' not in event:
                    ttft = loop.time() - t0
                elif event == b"data: [DONE]":
                    done = True
                elif b'"usage":{' in event:
                    tokens = json.loads(event[6:])["usage"]["completion_tokens"]
            if not chunked:
                break
        return status, ttft, tokens, done and status == 200, loop.time() - t0
    finally:
        writer.close()


async def run_workload(port, workload, time_scale, drain_s, progress):
    """Sends every request at its arrival time (in simulated seconds: real = sim / time_scale)
    and waits for all answers (at most drain_s after the last arrival)."""
    loop = asyncio.get_running_loop()
    results = []
    start = loop.time() + 0.2

    async def one(at, body):
        await asyncio.sleep(max(0.0, start + at / time_scale - loop.time()))
        sent = loop.time()
        try:
            r = await stream_chat(port, body, timeout=drain_s + 120)
        except (OSError, asyncio.IncompleteReadError, ValueError, IndexError) as e:
            r = (type(e).__name__, None, 0, False, loop.time() - sent)
        results.append((sent - start,) + r + (loop.time() - start,))
        if progress:
            progress(len(results), len(workload))

    tasks = [asyncio.ensure_future(one(at, body)) for at, _, _, body in workload]
    last = workload[-1][0] / time_scale
    done, pending = await asyncio.wait(tasks, timeout=last + 0.2 + drain_s)
    for t in pending:
        t.cancel()
    return results, len(pending)


# ---------------------------------------------------------------------------------------------
# one side: fresh servers, a gateway, the workload, the numbers
# ---------------------------------------------------------------------------------------------

def percentile(values, p):
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


def server_numbers(sim):
    m = sim.metric
    return {
        "requests": int(sum(m("vllm:request_success_total", finished_reason=r) or 0
                            for r in ("stop", "length", "abort"))),
        "hits": m("vllm:prefix_cache_hits_total") or 0,
        "queries": m("vllm:prefix_cache_queries_total") or 0,
        "preemptions": int(m("vllm:num_preemptions_total") or 0),
        "queue_sum": m("vllm:request_queue_time_seconds_sum") or 0,
        "queue_n": m("vllm:request_queue_time_seconds_count") or 0,
    }


def run_side(name, workload, args, work):
    """Starts four fresh servers and the gateway of side `name` ("epp" or "round-robin"), runs
    the workload through it and returns the side's numbers."""
    use_epp = name == "epp"
    stack = harness.Stack(work, tls=True, n_backends=len(HOSTS), backend_hosts=HOSTS,
                          start_epp=use_epp,
                          modelsim_args=modelsim_args(args.time_scale, args.kv_blocks),
                          scheduling=harness.DEFAULT_SCHEDULING, epp_args=["-v", "2"])
    try:
        quiet = "ext_proc:info,upstream:info"  # the harness default logs every ext_proc frame
        envoy = (stack.envoy("full_duplex", component_log_level=quiet) if use_epp else
                 stack.round_robin_envoy(component_log_level=quiet))
        stack.wait_serving(envoy)
        tty = sys.stdout.isatty()

        def progress(n, total):
            if tty and (n % 25 == 0 or n == total):
                sys.stdout.write("\r  %-12s %4d/%d answered" % (name, n, total))
                sys.stdout.flush()
        t0 = time.monotonic()
        results, unfinished = asyncio.run(run_workload(envoy.port, workload, args.time_scale,
                                                       args.drain, progress))
        wall = time.monotonic() - t0
        servers = [server_numbers(b) for b in stack.backends]
        sys.stdout.write("\r  %-12s %d requests in %.0f s%s\n" % (
            name, len(workload), wall, " " * 20))
    finally:
        stack.close()
    ts = args.time_scale
    ok = [r for r in results if r[4]]
    ttfts = [r[2] * ts for r in ok if r[2] is not None]
    span = (max(r[6] for r in ok) - min(r[0] for r in ok)) * ts if ok else float("nan")
    tokens = sum(r[3] for r in ok)
    hits, queries = sum(s["hits"] for s in servers), sum(s["queries"] for s in servers)
    qn = sum(s["queue_n"] for s in servers)
    return {
        "ok": len(ok), "errors": len(workload) - len(ok), "unfinished": unfinished,
        "statuses": sorted({str(r[1]) for r in results if not r[4]}),
        "ttft_p50": percentile(ttfts, 50), "ttft_p90": percentile(ttfts, 90),
        "ttft_p99": percentile(ttfts, 99),
        "e2e_p90": percentile([r[5] * ts for r in ok], 90),
        "throughput": tokens / span if span else float("nan"), "span": span,
        "hit_rate": hits / queries if queries else 0.0,
        "preemptions": sum(s["preemptions"] for s in servers),
        "queue_mean": sum(s["queue_sum"] for s in servers) / qn if qn else 0.0,
        "per_server": [s["requests"] for s in servers],
    }


# ---------------------------------------------------------------------------------------------
# the screen
# ---------------------------------------------------------------------------------------------

def report(workload, a, b, args, wall):
    labels = [w[2] for w in workload]
    print("\nworkload  Poisson %g/s for %g s (seed %d), streamed chat completions: %d in %d "
          "shared-prefix\n          groups (%d-token system prompts), %d for %d LoRA adapters "
          "(%d-token instructions\n          each), %d unique; the same requests at the same "
          "times on both sides" % (
              args.rate, args.seconds, args.seed, labels.count("group"), GROUPS, SYSTEM_TOKENS,
              labels.count("adapter"), len(ADAPTERS), ADAPTER_TOKENS, labels.count("unique")))
    print("servers   4 modelsim, fresh for each side: Llama-3.1-8B on one H100 (vLLM v0.11 "
          "costs);\n          KV cache %d blocks = %d tokens (room for %d of the %d system "
          "prompts);\n          %d adapters loaded, %d a batch; prefix caching on" % (
              args.kv_blocks, 16 * args.kv_blocks, 16 * args.kv_blocks // SYSTEM_TOKENS,
              GROUPS, len(ADAPTERS), MAX_LORAS))
    print("gateways  epp: Envoy -> ext_proc (FULL_DUPLEX_STREAMED, TLS) -> epp's default profile "
          "(queue 2,\n          KV cache 2, prefix 3; metrics every 50 ms) -> ORIGINAL_DST to "
          "the server it picked\n          round-robin: the same Envoy, a STATIC ROUND_ROBIN "
          "cluster over the servers")
    rows = [  # title, format, key, better, show the ratio
        ("TTFT p50", "%.3f s", "ttft_p50", "lower", True),
        ("TTFT p90", "%.3f s", "ttft_p90", "lower", True),
        ("TTFT p99", "%.3f s", "ttft_p99", "lower", True),
        ("e2e latency p90", "%.2f s", "e2e_p90", "lower", True),
        ("throughput, output tok/s", "%.0f", "throughput", "higher", True),
        ("prefix-cache hit rate", "%.1f%%", "hit_rate", "higher", True),
        ("server queue time, mean", "%.3f s", "queue_mean", "lower", False),
        ("preemptions", "%d", "preemptions", "lower", False),
        ("errors", "%d", "errors", "lower", False),
    ]
    print("\n  %-25s %16s %16s %10s" % ("", "epp", "round-robin", "advantage"))
    for title, fmt, key, better, show_ratio in rows:
        x, y = a[key], b[key]
        if key == "hit_rate":
            x, y = 100 * x, 100 * y
        ratio = ""
        if show_ratio and x > 0 and y > 0:
            ratio = "%.2fx" % (x / y if better == "higher" else y / x)
        print(("  %-25s %16s %16s %10s" % (title, fmt % x, fmt % y, ratio)).rstrip())
    print("  %-25s %16s %16s" % ("requests per endpoint", " ".join(map(str, a["per_server"])),
                                 " ".join(map(str, b["per_server"]))))
    print("\n  advantage > 1 favours epp: round-robin / epp for latencies (lower is better),"
          "\n  epp / round-robin for throughput and hit rate (higher is better). TTFT: the"
          "\n  client's time to the first SSE chunk with content; throughput: output tokens /"
          "\n  (last answer - first request); hit rate and queue time: the servers' /metrics.")
    for name, s in (("epp", a), ("round-robin", b)):
        if s["errors"]:
            print("  %s: %d errors (%s), %d unfinished" % (name, s["errors"],
                                                          ", ".join(s["statuses"]),
                                                          s["unfinished"]))
    print("\ndemo done in %.0f s; everything stopped; logs in %s" % (wall, args.work))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--rate", type=float, default=RATE, help="requests per second")
    ap.add_argument("--seconds", type=float, default=SECONDS, help="seconds of arrivals")
    ap.add_argument("--time-scale", type=float, default=1.0,
                    help="modelsim --time-scale (simulated seconds per real second); the "
                         "workload's times and the reported latencies are simulated time")
    ap.add_argument("--kv-blocks", type=int, default=KV_BLOCKS,
                    help="KV cache blocks (of 16 tokens) per server")
    ap.add_argument("--drain", type=float, default=60.0,
                    help="seconds to wait for answers after the last arrival")
    ap.add_argument("--json", help="also write both sides' numbers to this file")
    args = ap.parse_args()
    # Ctrl-C (also when started in the background, where SIGINT comes ignored) and SIGTERM end
    # the demo the same way: KeyboardInterrupt, the finally blocks stop every process started.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: signal.raise_signal(signal.SIGINT))
    args.work = tempfile.mkdtemp(prefix="epp-demo-")
    t0 = time.monotonic()
    workload = make_workload(args.seed, args.rate, args.seconds)
    print("epp vs round-robin on four modelsim servers: the same %d requests through each, "
          "about %.0f s a side" % (len(workload), args.seconds / args.time_scale + 10))
    sides = {}
    for name in ("epp", "round-robin"):
        work = os.path.join(args.work, name)
        os.makedirs(work)
        sides[name] = run_side(name, workload, args, work)
    report(workload, sides["epp"], sides["round-robin"], args, time.monotonic() - t0)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "sides": sides}, f, indent=1)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        print("\ninterrupted; everything the demo started is stopped")
        sys.exit(130)
