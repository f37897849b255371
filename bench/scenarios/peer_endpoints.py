#!/usr/bin/env python3
"""Which model-server endpoints each peer router asks for, and what modelsim answers.

Every peer router (sglang-router, smg, vllm-router with cache_aware and power_of_two) is put in
front of 2 modelsim servers through a recording HTTP proxy each; the router is probed until a
completion routes, then sent 3 streamed completions, then left alone for --idle seconds (for
periodic health and load polls). The report lists every method and path the router sent to
the servers, with modelsim's status code, and whether routing worked.

Writes bench/results/peer_endpoints.md. Run: .venv/bin/python bench/scenarios/peer_endpoints.py
"""
import argparse
import collections
import http.client
import http.server
import os
import shutil
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import harness  # noqa: E402


class RecordingProxy:
    """A threaded HTTP/1.1 proxy on 127.0.0.1 that forwards to one upstream and counts
    (method, path, upstream status). Answers are buffered (fine for short completions)."""

    def __init__(self, upstream_port):
        self.counts = collections.Counter()
        self.lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _forward(self):
                n = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(n) if n else None
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("host", "connection", "content-length",
                                                "transfer-encoding")}
                conn = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=30)
                try:
                    conn.request(self.command, self.path, body=body, headers=headers)
                    r = conn.getresponse()
                    data, status = r.read(), r.status
                    ctype = r.getheader("content-type", "application/octet-stream")
                except OSError as e:
                    data, status, ctype = str(e).encode(), 502, "text/plain"
                finally:
                    conn.close()
                with proxy.lock:
                    proxy.counts[(self.command, self.path, status)] += 1
                self.send_response(status)
                self.send_header("content-type", ctype)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _forward

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.host, self.port = "127.0.0.1", self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def run_peer(name, work, idle):
    d = os.path.join(work, name)
    os.makedirs(d, exist_ok=True)
    cluster = common.Cluster(2, [], d)
    servers = cluster.start()
    proxies = [RecordingProxy(s.port) for s in servers]
    for i, (p, s) in enumerate(zip(proxies, servers)):  # what Router.start reads of a server
        p.index, p.name, p.labels = i, s.name, {}
    router = common.make_router(name)
    out = {"name": name}
    try:
        router.start(d, proxies)
        try:
            common.wait_routing(router, timeout=30)
            statuses = []
            for i in range(3):
                st, _, _ = common.http_post(router.port, "/v1/completions", {
                    "model": common.MODEL, "max_tokens": 3, "stream": True,
                    "prompt": "request %d: " % i + "a fairly long prompt of some bytes " * 4})
                statuses.append(st)
            out["completions"] = statuses
        except Exception as e:  # noqa: BLE001
            out["error"] = str(e).strip()[:1200]
        time.sleep(idle)
        out["log"] = router.log_excerpt(r"WARN|ERROR|error|fall", limit=10)
        out["cmdline"] = router.cmdline
    finally:
        router.stop()
        for p in proxies:
            p.close()
        cluster.stop()
    total = collections.Counter()
    for p in proxies:
        total.update(p.counts)
    out["paths"] = sorted(total.items())
    return out


def main():
    common.ensure_venv()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--idle", type=float, default=12, help="seconds to watch after the requests")
    ap.add_argument("--routers", default=",".join(common.PEERS))
    ap.add_argument("--out", default=os.path.join(common.ROOT, "bench", "results",
                                                   "peer_endpoints.md"))
    args = ap.parse_args()
    common.ensure_requirements()
    common.check_binaries()
    work = tempfile.mkdtemp(prefix="scenario-peers-")
    results = []
    try:
        for name in [r for r in args.routers.split(",") if r]:
            common.log(name)
            results.append(run_peer(name, work, args.idle))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    cmd = " ".join([".venv/bin/python", "bench/scenarios/peer_endpoints.py"] + sys.argv[1:])
    lines = common.report_header("Peer routers in front of modelsim: the endpoints they ask for",
                                 cmd)
    lines += ["- %s" % ", ".join("%s %s" % kv for kv in common.package_versions().items()),
              "- each router in front of 2 modelsim servers (vLLM API: /health, /ping, /version, "
              "/v1/models, /v1/completions, /v1/chat/completions, /tokenize, /metrics, LoRA "
              "load/unload) through a recording proxy; a 1-token probe until it routes, 3 "
              "streamed completions, then %g s idle; counts over both servers; routed "
              "completions include the probe" % args.idle, ""]
    for r in results:
        lines += ["## %s" % r["name"], "", "- command: `%s`" % r.get("cmdline", "?")]
        if "error" in r:
            lines += ["- **did not route**: `%s`" % r["error"].splitlines()[0]]
        else:
            lines += ["- completions through it: %s" % ", ".join(map(str, r["completions"]))]
        routed = sum(n for (m, p, st), n in r["paths"]
                     if m == "POST" and p.startswith("/v1/completions") and
                     not p.startswith("/v1/completions/") and st == 200)
        lines += [""] + common.md_table(
            ["method", "path", "modelsim status", "count", "per routed completion"],
            [[m, "`%s`" % p, st, n, "%.1f" % (n / routed) if routed else "—"]
             for (m, p, st), n in r["paths"]])
        missing = sorted({p.split("?")[0] for (m, p, st), n in r["paths"] if st == 404})
        lines += ["", "Asked for but not served by modelsim (404): %s" % (
            ", ".join("`%s`" % p for p in missing) or "none")]
        if r.get("log"):
            lines += ["", "Router log (warnings):", "", "```"] + [l[:300] for l in r["log"]] + \
                     ["```"]
        lines += [""]
    with open(args.out, "w") as f:
        f.write("\n".join(lines) + "\n")
    common.log("wrote %s" % args.out)


if __name__ == "__main__":
    main()
