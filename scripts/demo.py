#!/usr/bin/env python3
"""make demo: three backends, epp (TLS, file discovery, random picker, metrics scraping) and the
real Envoy in FULL_DUPLEX_STREAMED mode. Sends a handful of requests through Envoy and shows, for
each, the endpoint epp named and the backend that served it; then what epp scraped from the
backends, an error, a streamed response and a subset hint. Everything runs on loopback and stops
at the end."""
import json
import os
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
import harness  # noqa: E402


def debug_endpoints(stack):
    with urllib.request.urlopen("http://127.0.0.1:%d/debug/endpoints" % stack.epp.metrics_port,
                                timeout=5) as r:
        return json.loads(r.read())


def show(title):
    print("\n== %s" % title)


def main():
    work = tempfile.mkdtemp(prefix="epp-demo-")
    stack = harness.Stack(work, tls=True)
    try:
        envoy = stack.envoy("full_duplex")
        stack.wait_serving(envoy)
        print("backends: %s" % ", ".join(b.addr for b in stack.backends))
        print("epp:      127.0.0.1:%d (TLS, self-signed), endpoints from %s" % (
            stack.epp_port, stack.epp.endpoints_path))
        print("envoy:    http://127.0.0.1:%d  (ext_proc FULL_DUPLEX_STREAMED -> ORIGINAL_DST)"
              % envoy.port)

        show("10 completions through Envoy: epp picks, Envoy forwards")
        print("%-4s %-26s %-18s %s" % ("#", "epp named", "served by", "match"))
        for i in range(10):
            st, hdrs, body = harness.request(envoy.port, "POST", "/v1/completions",
                                             harness.completion_body(prompt="request %d" % i))
            j = json.loads(body)
            served = "%s:%d" % (j["served_by_host"], j["served_by_port"])
            print("%-4d %-26s %-18s %s" % (i, j["destination_header"], served,
                                          "yes" if served == j["destination_header"] else "NO"))

        show("what epp sees: GET /debug/endpoints on its admin port (metrics scraped every 50 ms)")
        harness.wait_until(lambda: all(e["metrics"]["age_ms"] is not None
                                       for e in debug_endpoints(stack)),
                           "every endpoint scraped once", procs=[stack.epp.proc])
        print("%-6s %-18s %-8s %-8s %-6s %s" % ("name", "address", "waiting", "running", "kv",
                                                "age"))
        for e in debug_endpoints(stack):
            m = e["metrics"]
            print("%-6s %-18s %-8d %-8d %-6.2f %d ms" % (
                e["name"], "%s:%d" % (e["address"], e["port"]), m["waiting_queue_size"],
                m["running_requests_size"], m["kv_cache_usage_percent"], m["age_ms"]))

        show("GET /v1/models (no body: answered at once)")
        st, _, body = harness.request(envoy.port, "GET", "/v1/models")
        print(st, body[:120].decode(errors="replace"))

        show("invalid JSON -> 400 from epp")
        st, _, body = harness.request(envoy.port, "POST", "/v1/completions", b"{not json")
        print(st, body.decode(errors="replace"))

        show("streamed chat completion (SSE passes through as it is produced)")
        st, _, body = harness.request(envoy.port, "POST", "/v1/chat/completions",
                                      harness.chat_body("hi", stream=True))
        events = [l for l in body.decode().splitlines() if l.startswith("data: ")]
        print(st, "%d SSE events, last %r" % (len(events), events[-1] if events else None))

        target = stack.backends[1]
        show("subset hint [%s] injected by Envoy's set_metadata filter" % target.addr)
        hinted = stack.envoy("full_duplex", subset_hint=[target.addr])
        stack.wait_serving(hinted)
        served = set()
        for i in range(5):
            st, _, body = harness.request(hinted.port, "POST", "/v1/completions",
                                          harness.completion_body())
            j = json.loads(body)
            served.add("%s:%d" % (j["served_by_host"], j["served_by_port"]))
        print("5 requests served by %s" % sorted(served))
    finally:
        stack.close()
    print("\ndemo done (logs were in %s)" % work)


if __name__ == "__main__":
    main()
