#!/usr/bin/env python3
"""Mock OpenAI-style model server for the epp end-to-end tests (stdlib only).

Run: python backend.py --port N [--host 127.0.0.1]

* Reads request bodies sent with Content-Length or Transfer-Encoding: chunked (Envoy removes
  content-length in the streamed ext_proc modes and forwards chunked bodies).
* POST (any path): JSON
    {"served_by_port": N, "served_by_host": H, "destination_header": <x-gateway-destination-endpoint
     received, or null>, "body_len": L, "body_sha256": HEX, "model": <"model" of a JSON body or null>,
     "path": P, "x_request_id": ..., "transfer_encoding": ..., "content_length": ...,
     "gateway_headers": {other x-gateway-* headers received}}
  with response header x-served-by-port.
* POST whose JSON body has "stream": true: text/event-stream, chunked; `chunks` events
  (default 5, header x-backend-chunks) `interval` ms apart (default 50, header
  x-backend-interval-ms), each `data: {...}\\n\\n` carrying served_by_port, then `data: [DONE]\\n\\n`;
  with header x-backend-trailers: 1 the chunked response ends with trailer x-backend-trailer: done.
* POST with header x-backend-echo: 1: the request body comes back as the response body
  (Content-Length), with headers x-served-by-port, x-destination-header, x-body-sha256.
* GET /v1/models: OpenAI models list. GET /health: 200 "ok".

With --port 0 the kernel picks the port. Once listening, the server prints
`READY <host>:<port>` on stdout (flushed); the harness waits for that line.
"""

import argparse
import hashlib
import http.server
import json
import socket
import socketserver
import sys
import time

DEST_HEADER = "x-gateway-destination-endpoint"
MAX_BODY = 256 << 20  # refuse absurd bodies rather than exhausting memory


class BadRequest(Exception):
    pass


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "epp-e2e-backend/1"
    # Large request bodies: read in big blocks. No Nagle: SSE events must leave at once.
    rbufsize = 1 << 16
    disable_nagle_algorithm = True

    def log_message(self, fmt, *args):  # one line per request on stderr
        sys.stderr.write("%s backend[%d] %s\n" % (time.strftime("%H:%M:%S"), self.server.server_address[1], fmt % args))

    # ---- body reading -------------------------------------------------------------------------
    def _read_exact(self, n):
        chunks = []
        left = n
        while left > 0:
            b = self.rfile.read(min(left, 1 << 20))
            if not b:
                raise BadRequest("connection closed with %d body bytes missing" % left)
            chunks.append(b)
            left -= len(b)
        return b"".join(chunks)

    def _read_chunked(self):
        out = []
        total = 0
        while True:
            line = self.rfile.readline(65537)
            if not line:
                raise BadRequest("connection closed inside a chunked body")
            size_s = line.split(b";", 1)[0].strip()
            try:
                size = int(size_s, 16)
            except ValueError:
                raise BadRequest("bad chunk size line %r" % line[:80])
            if size == 0:
                # Trailer section: header lines until an empty line.
                while True:
                    t = self.rfile.readline(65537)
                    if not t or t in (b"\r\n", b"\n"):
                        break
                break
            total += size
            if total > MAX_BODY:
                raise BadRequest("chunked body too large")
            out.append(self._read_exact(size))
            crlf = self.rfile.readline(3)
            if crlf not in (b"\r\n", b"\n"):
                raise BadRequest("missing CRLF after chunk data")
        return b"".join(out)

    def _read_body(self):
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            return self._read_chunked()
        cl = self.headers.get("Content-Length")
        if cl is None:
            return b""
        try:
            n = int(cl)
        except ValueError:
            raise BadRequest("bad content-length %r" % cl)
        if n < 0 or n > MAX_BODY:
            raise BadRequest("content-length out of range")
        return self._read_exact(n)

    # ---- responses ----------------------------------------------------------------------------
    def _port(self):
        return self.server.server_address[1]

    def _host(self):
        return self.server.server_address[0]

    def _send_json(self, status, obj):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-served-by-port", str(self._port()))
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def _write_chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def do_GET(self):
        path = self.path.split("?", 1)[0]
        if path == "/v1/models":
            self._send_json(200, {
                "object": "list",
                "data": [{"id": "mock-model", "object": "model", "created": 0, "owned_by": "epp-e2e"}],
                "served_by_port": self._port(),
                "served_by_host": self._host(),
                "destination_header": self.headers.get(DEST_HEADER),
            })
        elif path == "/metrics":
            # A vLLM V1 page (what epp's scraper reads); scrapes are counted for the tests.
            self.server.metrics_scrapes += 1
            page = ("# TYPE vllm:num_requests_waiting gauge\n"
                    'vllm:num_requests_waiting{engine="0",model_name="mock-model"} %d.0\n'
                    % self.server.waiting_gauge +
                    "# TYPE vllm:num_requests_running gauge\n"
                    'vllm:num_requests_running{engine="0",model_name="mock-model"} 0.0\n'
                    "# TYPE vllm:kv_cache_usage_perc gauge\n"
                    'vllm:kv_cache_usage_perc{engine="0",model_name="mock-model"} 0.0\n').encode()
            self.send_response(200)
            self.send_header("content-type", "text/plain; version=0.0.4")
            self.send_header("content-length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)
        elif path == "/stats":
            self._send_json(200, {"metrics_scrapes": self.server.metrics_scrapes})
        elif path == "/health":
            data = b"ok"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("x-served-by-port", str(self._port()))
            self.end_headers()
            self.wfile.write(data)
        else:
            self._send_json(404, {"error": "not found", "path": self.path, "served_by_port": self._port()})

    def do_POST(self):
        try:
            body = self._read_body()
        except BadRequest as e:
            self.close_connection = True
            self._send_json(400, {"error": "backend: %s" % e, "served_by_port": self._port()})
            return
        model = None
        stream = False
        try:
            obj = json.loads(body)
            if isinstance(obj, dict):
                m = obj.get("model")
                model = m if isinstance(m, str) else None
                stream = obj.get("stream") is True
        except (ValueError, UnicodeDecodeError):
            pass
        info = {
            "served_by_port": self._port(),
            "served_by_host": self._host(),
            "destination_header": self.headers.get(DEST_HEADER),
            "body_len": len(body),
            "body_sha256": hashlib.sha256(body).hexdigest(),
            "model": model,
            "path": self.path,
            "x_request_id": self.headers.get("x-request-id"),
            "transfer_encoding": self.headers.get("Transfer-Encoding"),
            "content_length": self.headers.get("Content-Length"),
            # Control headers of the Endpoint Picker protocol that reached the backend.
            "gateway_headers": {k.lower(): v for k, v in self.headers.items()
                                if k.lower().startswith("x-gateway-") and k.lower() != DEST_HEADER},
        }
        if self.headers.get("x-backend-echo") == "1":
            # Echo the request body as the response body (large-response tests).
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("x-served-by-port", str(self._port()))
            self.send_header("x-destination-header", info["destination_header"] or "")
            self.send_header("x-body-sha256", info["body_sha256"])
            self.end_headers()
            view = memoryview(body)
            for i in range(0, len(body), 1 << 18):
                self.wfile.write(view[i:i + (1 << 18)])
            self.wfile.flush()
            return
        if not stream:
            self._send_json(200, info)
            return
        chunks = int(self.headers.get("x-backend-chunks", "5"))
        interval = float(self.headers.get("x-backend-interval-ms", "50")) / 1000.0
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("x-served-by-port", str(self._port()))
        self.end_headers()
        self.wfile.flush()
        for i in range(chunks):
            if i:
                time.sleep(interval)
            ev = dict(info, index=i, object="text_completion.chunk", t=time.time(),
                      choices=[{"index": 0, "text": "tok%d " % i, "finish_reason": None}])
            self._write_chunk(b"data: " + json.dumps(ev).encode() + b"\n\n")
        time.sleep(interval)
        self._write_chunk(b"data: [DONE]\n\n")
        if self.headers.get("x-backend-trailers") == "1":
            self.wfile.write(b"0\r\nx-backend-trailer: done\r\n\r\n")
        else:
            self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    metrics_scrapes = 0
    waiting_gauge = 0  # what /metrics reports as vllm:num_requests_waiting (--waiting)
    allow_reuse_address = True
    request_queue_size = 128


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--waiting", type=int, default=0,
                    help="value of vllm:num_requests_waiting on /metrics")
    args = ap.parse_args(argv)
    if ":" in args.host:  # an IPv6 literal
        Server.address_family = socket.AF_INET6
    srv = Server((args.host, args.port), Handler)
    srv.waiting_gauge = args.waiting
    host, port = srv.server_address[:2]
    print("READY %s:%d" % (host, port), flush=True)
    try:
        srv.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        srv.server_close()


if __name__ == "__main__":
    main()
