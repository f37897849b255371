"""A small fake Kubernetes API server for fault injection (things a real apiserver rarely does on
demand): HTTP/1.1 (plain, or TLS with ALPN http/1.1), threaded, in-memory store.

Served (any registered collection; pods, leases and InferencePools are registered by default):
  GET    /api/v1/namespaces/{ns}/{resource}            list / watch (?watch=1)
  GET    /api/v1/{resource}                            list / watch across namespaces
  GET    /apis/{group}/{version}/namespaces/{ns}/{resource}   (same for API groups)
  GET|PUT|PATCH|DELETE  .../{resource}/{name}          one object (PUT: optimistic concurrency)
  POST   .../namespaces/{ns}/{resource}                create (409 AlreadyExists)
  GET    /version, /healthz, /readyz, /livez
Lists: labelSelector, fieldSelector, limit/continue paging (snapshot per list, remainingItemCount),
metadata.resourceVersion. Watches: resourceVersion (""/"0": synthetic ADDED of the current state
first), allowWatchBookmarks (periodic BOOKMARK), sendInitialEvents (ADDED ... then a BOOKMARK with
annotation k8s.io/initial-events-end), timeoutSeconds, selectors with ADDED/DELETED when an object
starts/stops matching; chunked `application/json;stream=watch`, one JSON event per line and chunk.
resourceVersions are opaque and NOT increasing numerically (rv_style="random": random digit
strings; "opaque": non-numeric; "sequential": increasing integers).

Faults (all one-shot unless said otherwise; `count` requests each): fail_next_watch (HTTP 410),
inject_error_event (ERROR event with a Status inside an open 200 stream, then the stream ends),
close_watches / close_watches_every(seconds), truncate_next_event (torn JSON or torn chunk, then
the connection is cut), expire_continue_tokens (410 on continue), throttle (429 + Retry-After),
fail_requests (500 or any code), reset_requests (connection cut without a response),
compact (watches from an older resourceVersion get 410). Every request is recorded in .requests.
"""

import copy
import json
import random
import re
import secrets
import select
import socket
import ssl
import struct
import threading
import time
import urllib.parse
import uuid
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def status_object(code, reason, message, details=None, retry_after=None):
    st = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
          "message": message, "reason": reason, "code": code}
    if details or retry_after is not None:
        st["details"] = dict(details or {})
        if retry_after is not None:
            st["details"]["retryAfterSeconds"] = retry_after
    return st


_REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
            405: "MethodNotAllowed", 409: "Conflict", 410: "Expired", 422: "Invalid",
            429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable",
            504: "Timeout"}


def _now():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


# ---------------------------------------------------------------------------------------------
# selectors
# ---------------------------------------------------------------------------------------------

class SelectorError(ValueError):
    pass


def _split_top(s):
    parts, depth, cur = [], 0, ""
    for ch in s:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return [p.strip() for p in parts if p.strip()]


_KEY = r"[A-Za-z0-9][A-Za-z0-9_./-]*"


def parse_label_selector(s):
    """A predicate labels-dict -> bool for a label selector string (=, ==, !=, in, notin, key,
    !key). Raises SelectorError."""
    reqs = []
    for part in _split_top(s or ""):
        m = re.fullmatch(r"(!?)\s*(%s)" % _KEY, part)
        if m:
            neg, key = m.group(1) == "!", m.group(2)
            reqs.append(lambda L, k=key, n=neg: (k in L) != n)
            continue
        m = re.fullmatch(r"(%s)\s+(in|notin)\s+\(([^)]*)\)" % _KEY, part)
        if m:
            key, op = m.group(1), m.group(2)
            vals = {v.strip() for v in m.group(3).split(",") if v.strip()}
            if op == "in":
                reqs.append(lambda L, k=key, vs=vals: L.get(k) in vs)
            else:
                reqs.append(lambda L, k=key, vs=vals: L.get(k) not in vs)
            continue
        m = re.fullmatch(r"(%s)\s*(==|=|!=)\s*([A-Za-z0-9_./-]*)" % _KEY, part)
        if m:
            key, op, val = m.groups()
            if op == "!=":
                reqs.append(lambda L, k=key, v=val: L.get(k) != v)
            else:
                reqs.append(lambda L, k=key, v=val: L.get(k) == v)
            continue
        raise SelectorError("unable to parse requirement: %r" % part)
    return lambda labels: all(r(labels or {}) for r in reqs)


def parse_field_selector(s):
    """A predicate obj -> bool for a field selector (path=value, ==, !=; dotted paths)."""
    reqs = []
    for part in _split_top(s or ""):
        m = re.fullmatch(r"([A-Za-z0-9_.]+)\s*(==|=|!=)\s*(.*)", part)
        if not m:
            raise SelectorError("invalid field selector: %r" % part)
        path, op, val = m.group(1).split("."), m.group(2), m.group(3).strip()

        def get(o, p=path):
            for k in p:
                o = o.get(k) if isinstance(o, dict) else None
            return "" if o is None else str(o)
        if op == "!=":
            reqs.append(lambda o, g=get, v=val: g(o) != v)
        else:
            reqs.append(lambda o, g=get, v=val: g(o) == v)
    return lambda obj: all(r(obj) for r in reqs)


def merge_patch(target, patch):
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


# ---------------------------------------------------------------------------------------------
# records
# ---------------------------------------------------------------------------------------------

class Request:
    """One recorded request: method, path, query (dict, last value wins), raw_query, headers
    (lower-case names), body (parsed JSON or None), status (int once answered; None for an
    answer-less fault), fault (name of the injected fault or None), op (list, watch, get,
    create, replace, patch, delete; None for other paths or when a fault answered first),
    t (time.monotonic()); property watch (query watch=1|true)."""

    def __init__(self, method, path, query, raw_query, headers, body):
        self.method = method
        self.path = path
        self.query = query
        self.raw_query = raw_query
        self.headers = headers
        self.body = body
        self.status = None
        self.fault = None
        self.op = None  # list | watch | get | create | replace | patch | delete | None (other)
        self.t = time.monotonic()

    @property
    def watch(self):
        return self.query.get("watch") in ("1", "true")

    def __repr__(self):
        return "<%s %s%s -> %s%s>" % (self.method, self.path,
                                      "?" + self.raw_query if self.raw_query else "",
                                      self.status, " fault=%s" % self.fault if self.fault else "")


class _Coll:
    def __init__(self, api_version, kind, resource, namespaced, builtin):
        self.api_version = api_version
        self.kind = kind
        self.resource = resource
        self.namespaced = namespaced
        self.builtin = builtin
        if "/" in api_version:
            self.group, self.version = api_version.split("/", 1)
            self.prefix = "/apis/" + api_version
        else:
            self.group, self.version = "", api_version
            self.prefix = "/api/" + api_version

    @property
    def key(self):
        return (self.group, self.version, self.resource)

    @property
    def qualified(self):
        return self.resource + ("." + self.group if self.group else "")


class _Event:
    __slots__ = ("seq", "rv", "type", "coll", "obj", "prev")

    def __init__(self, seq, rv, type_, coll, obj, prev):
        self.seq, self.rv, self.type, self.coll, self.obj, self.prev = seq, rv, type_, coll, obj, prev


class _Watch:
    def __init__(self, coll, ns, label_pred, field_pred, bookmarks, handler, path):
        self.coll = coll
        self.ns = ns
        self.label_pred = label_pred
        self.field_pred = field_pred
        self.bookmarks = bookmarks
        self.handler = handler
        self.path = path
        self.cursor = 0
        self.control = deque()
        self.opened = time.monotonic()

    def matches(self, obj):
        if obj is None:
            return False
        if self.ns and obj.get("metadata", {}).get("namespace") != self.ns:
            return False
        return self.label_pred(obj.get("metadata", {}).get("labels")) and self.field_pred(obj)


class _Fault:
    def __init__(self, name, count, match, status=None, reason=None, message=None,
                 headers=None, action="status", details=None):
        self.name = name
        self.count = count
        self.match = match
        self.status = status
        self.reason = reason
        self.message = message
        self.headers = headers or {}
        self.action = action
        self.details = details


# ---------------------------------------------------------------------------------------------
# server
# ---------------------------------------------------------------------------------------------

class FakeApiServer:
    """See the module doc. Use as a context manager or call start()/stop()."""

    def __init__(self, host="127.0.0.1", port=0, tls=False, pki=None, token=None,
                 rv_style="random", bookmark_interval=1.0, too_old_as_event=False,
                 register_defaults=True):
        """tls: serve HTTPS with `pki` (a k8s_env.Pki; one is made in a temp dir when None).
        token: require `Authorization: Bearer <token>` (401 otherwise); None = no auth.
        bookmark_interval: seconds between BOOKMARKs on watches that allow them (None: never).
        too_old_as_event: a watch from a compacted/unknown resourceVersion gets 200 + an ERROR
        event (410) instead of an HTTP 410."""
        self.host = host
        self._req_port = port
        self.tls = tls
        self.pki = pki
        self.token = token
        self.rv_style = rv_style
        self.bookmark_interval = bookmark_interval
        self.too_old_as_event = too_old_as_event
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._colls = {}
        self._objs = {}
        self._log = []
        self._rv_seq = {}
        self._used_rvs = set()
        self._compacted_seq = 0
        self._watches = set()
        self._faults = []
        self._truncate = None
        self._close_every = None
        self._snapshots = {}
        self._conns = set()
        self._stopping = False
        self._httpd = None
        self._thread = None
        self.requests = []
        with self._lock:
            self._new_event(None, None, None, None)  # genesis resourceVersion
        if register_defaults:
            self.register("v1", "Pod", "pods", builtin=True)
            self.register("coordination.k8s.io/v1", "Lease", "leases", builtin=True)
            self.register("inference.networking.k8s.io/v1", "InferencePool", "inferencepools")
            self.register("inference.networking.x-k8s.io/v1alpha2", "InferencePool",
                          "inferencepools")

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self):
        fake = self
        ctx = None
        if self.tls:
            if self.pki is None:
                import tempfile
                import k8s_env
                self.pki = k8s_env.Pki(tempfile.mkdtemp(prefix="fake-apiserver-pki-"))
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(self.pki.server_crt, self.pki.server_key)
            ctx.set_alpn_protocols(["http/1.1"])

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            allow_reuse_address = True
            request_queue_size = 64

            def get_request(self):
                sock, addr = self.socket.accept()
                if ctx is not None:
                    sock = ctx.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
                return sock, addr

            def handle_error(self, request, client_address):
                pass  # client went away, TLS handshake failed, ...

        class Handler(_Handler):
            pass
        Handler.fake = fake
        self._httpd = Server((self.host, self._req_port), Handler)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.1}, daemon=True,
                                        name="fake-apiserver")
        self._thread.start()
        return self

    def stop(self):
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            conns = list(self._conns)
        for c in conns:
            _abort_socket(c)
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def url(self):
        h = "[%s]" % self.host if ":" in self.host else self.host
        return "%s://%s:%d" % ("https" if self.tls else "http", h, self.port)

    @property
    def ssl_context(self):
        """Client-side SSL context trusting the fake's CA (None without TLS)."""
        return self.pki.ssl_context() if self.tls else None

    def write_kubeconfig(self, path, token=None, namespace=None):
        import k8s_env
        ca = None
        if self.tls:
            with open(self.pki.ca_crt, "rb") as f:
                ca = f.read()
        return k8s_env.write_kubeconfig_file(path, self.url, ca,
                                             token if token is not None else self.token,
                                             None, namespace)

    def write_incluster_dir(self, directory, token=None, namespace="default"):
        """In-cluster files + env (KUBERNETES_SERVICE_HOST/PORT); needs tls=True (in-cluster
        clients always use https)."""
        import k8s_env
        if not self.tls:
            raise ValueError("in-cluster config implies https: start the fake with tls=True")
        with open(self.pki.ca_crt, "rb") as f:
            ca = f.read()
        return k8s_env.write_incluster_files(directory, self.port, ca,
                                             token if token is not None else (self.token or "x"),
                                             namespace)

    # -- store (for tests) ------------------------------------------------------------------------

    def register(self, api_version, kind, resource=None, namespaced=True, builtin=False):
        """Makes a collection servable (unregistered ones answer 404, like a missing CRD)."""
        c = _Coll(api_version, kind, resource or kind.lower() + "s", namespaced, builtin)
        with self._lock:
            self._colls[c.key] = c
        return c

    def unregister(self, api_version, resource):
        g, v = api_version.split("/", 1) if "/" in api_version else ("", api_version)
        with self._lock:
            self._colls.pop((g, v, resource), None)

    def _coll_for(self, obj):
        av, kind = obj["apiVersion"], obj["kind"]
        with self._lock:
            for c in self._colls.values():
                if c.api_version == av and c.kind == kind:
                    return c
        return self.register(av, kind)

    def _new_rv(self, seq):
        if self.rv_style == "sequential":
            return str(1000 + seq)
        while True:
            if self.rv_style == "opaque":
                rv = "rv-" + secrets.token_hex(5)
            else:
                rv = str(random.randint(10 ** random.randint(3, 5), 10 ** 12))
            if rv not in self._used_rvs:
                self._used_rvs.add(rv)
                return rv

    def _new_event(self, type_, coll, obj, prev):
        seq = len(self._log)
        rv = self._new_rv(seq)
        if obj is not None:
            obj["metadata"]["resourceVersion"] = rv
        ev = _Event(seq, rv, type_, coll, obj, prev)
        self._log.append(ev)
        self._rv_seq[rv] = seq
        self._cond.notify_all()
        return ev

    @property
    def resource_version(self):
        """The current (latest) resourceVersion."""
        with self._lock:
            return self._log[-1].rv

    @staticmethod
    def _okey(coll, obj):
        md = obj["metadata"]
        return (coll.key, (md.get("namespace") or "") if coll.namespaced else "", md["name"])

    def _create_locked(self, coll, obj):
        obj = copy.deepcopy(obj)
        md = obj.setdefault("metadata", {})
        if coll.namespaced:
            md.setdefault("namespace", "default")
        k = self._okey(coll, obj)
        if k in self._objs:
            return None
        obj["apiVersion"], obj["kind"] = coll.api_version, coll.kind
        md["uid"] = str(uuid.uuid4())
        md["creationTimestamp"] = _now()
        if not coll.builtin or "spec" in obj:
            md["generation"] = 1
        self._objs[k] = obj
        self._new_event("ADDED", coll, obj, None)
        return obj

    def _update_locked(self, coll, obj):
        obj = copy.deepcopy(obj)
        if coll.namespaced:
            obj["metadata"].setdefault("namespace", "default")
        k = self._okey(coll, obj)
        cur = self._objs.get(k)
        if cur is None:
            return None
        obj["apiVersion"], obj["kind"] = coll.api_version, coll.kind
        md = obj["metadata"]
        for f in ("uid", "creationTimestamp"):
            md[f] = cur["metadata"].get(f)
        if "generation" in cur["metadata"]:
            gen = cur["metadata"]["generation"]
            md["generation"] = gen + 1 if obj.get("spec") != cur.get("spec") else gen
        self._objs[k] = obj
        self._new_event("MODIFIED", coll, obj, cur)
        return obj

    def _delete_locked(self, coll, ns, name):
        k = (coll.key, ns if coll.namespaced else "", name)
        cur = self._objs.pop(k, None)
        if cur is None:
            return None
        last = copy.deepcopy(cur)
        self._new_event("DELETED", coll, last, cur)
        return last

    def add(self, obj):
        """Stores a new object (ADDED to open watches); returns the stored copy (with uid,
        resourceVersion, creationTimestamp). Raises KeyError when it exists."""
        coll = self._coll_for(obj)
        with self._lock:
            out = self._create_locked(coll, obj)
        if out is None:
            raise KeyError("exists: %s %s" % (obj["kind"], obj["metadata"]["name"]))
        return copy.deepcopy(out)

    def update(self, obj):
        """Replaces an object (MODIFIED); its resourceVersion is ignored. Raises KeyError when
        missing."""
        coll = self._coll_for(obj)
        with self._lock:
            out = self._update_locked(coll, obj)
        if out is None:
            raise KeyError("missing: %s %s" % (obj["kind"], obj["metadata"]["name"]))
        return copy.deepcopy(out)

    def upsert(self, obj):
        coll = self._coll_for(obj)
        with self._lock:
            out = self._update_locked(coll, obj) or self._create_locked(coll, obj)
        return copy.deepcopy(out)

    def delete(self, obj_or_api_version, kind=None, ns=None, name=None):
        """delete(obj) or delete(api_version, kind, ns, name): DELETED with the last state.
        Returns the deleted object or None."""
        if isinstance(obj_or_api_version, dict):
            o = obj_or_api_version
            coll = self._coll_for(o)
            ns, name = o["metadata"].get("namespace") or "default", o["metadata"]["name"]
        else:
            coll = self._coll_for({"apiVersion": obj_or_api_version, "kind": kind})
        with self._lock:
            out = self._delete_locked(coll, ns or "", name)
        return copy.deepcopy(out)

    def get(self, api_version, kind, ns, name):
        coll = self._coll_for({"apiVersion": api_version, "kind": kind})
        with self._lock:
            o = self._objs.get((coll.key, ns if coll.namespaced else "", name))
            return copy.deepcopy(o)

    def mutate(self, api_version, kind, ns, name, fn):
        """fn(obj) edits a copy in place; the result is stored (MODIFIED). Returns it."""
        with self._lock:
            o = self.get(api_version, kind, ns, name)
            if o is None:
                raise KeyError("missing: %s %s/%s" % (kind, ns, name))
            fn(o)
            return self.update(o)

    def objects(self, api_version=None, kind=None, ns=None):
        with self._lock:
            return [copy.deepcopy(o) for (_, ons, _), o in sorted(self._objs.items())
                    if (api_version is None or o["apiVersion"] == api_version)
                    and (kind is None or o["kind"] == kind) and (ns is None or ons == ns)]

    # Pods ---------------------------------------------------------------------------------------

    @staticmethod
    def pod(ns, name, labels=None, ip=None, ready=True, annotations=None, phase="Running",
            node_name=None, deleting=False):
        """A Pod manifest (not stored). ip None: no podIP yet (Pending)."""
        md = {"name": name, "namespace": ns, "labels": dict(labels or {})}
        if annotations:
            md["annotations"] = dict(annotations)
        if deleting:
            md["deletionTimestamp"] = _now()
            md["deletionGracePeriodSeconds"] = 30
        spec = {"containers": [{"name": "server", "image": "placeholder"}]}
        if node_name:
            spec["nodeName"] = node_name
        status = {"phase": phase if ip else "Pending"}
        if ip:
            st = "True" if ready else "False"
            status.update({"podIP": ip, "podIPs": [{"ip": ip}], "conditions": [
                {"type": "Ready", "status": st, "lastTransitionTime": _now()}]})
        return {"apiVersion": "v1", "kind": "Pod", "metadata": md, "spec": spec,
                "status": status}

    def add_pod(self, ns, name, labels=None, ip=None, ready=True, **kw):
        return self.add(self.pod(ns, name, labels, ip, ready, **kw))

    def set_pod_ready(self, ns, name, ready=True, ip=None):
        def fn(p):
            a = ip or p.get("status", {}).get("podIP")
            p["status"] = self.pod(ns, name, ip=a, ready=ready)["status"]
        return self.mutate("v1", "Pod", ns, name, fn)

    # -- faults -----------------------------------------------------------------------------------

    @staticmethod
    def _matcher(method=None, path_prefix=None, watch=None, match=None):
        def m(req):
            if method and req.method != method:
                return False
            if path_prefix and not req.path.startswith(path_prefix):
                return False
            if watch is not None and req.watch != watch:
                return False
            return match(req) if match else True
        return m

    def inject(self, status, count=1, method=None, path_prefix=None, watch=None, match=None,
               reason=None, message=None, headers=None, details=None):
        """Generic fault: the next `count` matching requests get HTTP `status` with a Status body.
        Matching: method, path prefix, watch (True/False/None=any), match(Request) -> bool."""
        self._add_fault(_Fault("status-%d" % status, count,
                               self._matcher(method, path_prefix, watch, match), status,
                               reason or _REASONS.get(status, "Unknown"),
                               message or "injected fault", headers, details=details))

    def _add_fault(self, f):
        with self._lock:
            self._faults.append(f)

    def fail_next_watch(self, count=1, code=410, path_prefix=None):
        """The next `count` watch requests get HTTP `code` (410: reason Expired, "too old
        resource version") before any stream starts."""
        msg = "too old resource version: injected" if code == 410 else "injected fault"
        self.inject(code, count, method="GET", path_prefix=path_prefix, watch=True, message=msg)

    def throttle(self, count=1, retry_after=1, method=None, path_prefix=None, watch=None):
        """The next `count` matching requests get 429 with `Retry-After: retry_after`."""
        self._add_fault(_Fault("throttle", count, self._matcher(method, path_prefix, watch),
                               429, "TooManyRequests",
                               "the server has received too many requests and has asked us to "
                               "try again later", {"Retry-After": str(retry_after)},
                               details={"retryAfterSeconds": retry_after}))

    def fail_requests(self, count=1, code=500, method=None, path_prefix=None, watch=None):
        """The next `count` matching requests get `code` (default 500 InternalError)."""
        self.inject(code, count, method, path_prefix, watch)

    def reset_requests(self, count=1, method=None, path_prefix=None, watch=None):
        """The next `count` matching requests get no answer: the connection is cut (RST)."""
        self._add_fault(_Fault("reset", count, self._matcher(method, path_prefix, watch),
                               action="reset"))

    def clear_faults(self):
        with self._lock:
            self._faults.clear()
            self._truncate = None
            self._close_every = None

    def _take_fault(self, req):
        with self._lock:
            for f in self._faults:
                if f.count > 0 and f.match(req):
                    f.count -= 1
                    if f.count == 0:
                        self._faults.remove(f)
                    return f
        return None

    def inject_error_event(self, code=410, reason=None, message=None, path_prefix=None):
        """Every open watch (whose path starts with path_prefix) gets an ERROR event carrying a
        Status with `code`, then its stream ends. Returns how many watches got it (see
        wait_for_watches)."""
        st = status_object(code, reason or _REASONS.get(code, "Unknown"),
                           message or ("too old resource version: injected" if code == 410
                                       else "injected error event"))
        return self._control(("error", st), path_prefix)

    def close_watches(self, path_prefix=None, abort=False):
        """Ends every open watch now: cleanly (terminal chunk) or, abort=True, by cutting the
        connection. Returns how many."""
        return self._control(("abort",) if abort else ("close",), path_prefix)

    def send_bookmarks(self, path_prefix=None):
        """A BOOKMARK now on every open watch that allows bookmarks."""
        return self._control(("bookmark",), path_prefix)

    def _control(self, action, path_prefix):
        with self._cond:
            n = 0
            for w in self._watches:
                if path_prefix is None or w.path.startswith(path_prefix):
                    w.control.append(action)
                    n += 1
            self._cond.notify_all()
            return n

    def close_watches_every(self, seconds):
        """Each watch ends cleanly `seconds` after it opened (None: off). Persistent."""
        with self._cond:
            self._close_every = seconds
            self._cond.notify_all()

    def truncate_next_event(self, mode="chunk"):
        """The next watch event written (on any watch) is cut in the middle of its JSON and the
        connection is closed. mode "chunk": a complete HTTP chunk holding half the JSON line;
        "frame": the chunk header announces the full line but only half follows."""
        assert mode in ("chunk", "frame")
        with self._lock:
            self._truncate = mode

    def expire_continue_tokens(self):
        """Every continue token handed out so far answers 410 Expired from now on."""
        with self._lock:
            self._snapshots.clear()

    def compact(self):
        """Watches (and continue) from any resourceVersion older than the current one get 410."""
        with self._lock:
            self._compacted_seq = len(self._log) - 1
            self._snapshots.clear()

    # -- observation ------------------------------------------------------------------------------

    @property
    def open_watches(self):
        with self._lock:
            return len(self._watches)

    def wait_for_watches(self, n=1, timeout=10.0, path_prefix=None):
        """Waits until at least n watches (on paths starting with path_prefix) are streaming."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                k = sum(1 for w in self._watches
                        if path_prefix is None or w.path.startswith(path_prefix))
                if k >= n:
                    return k
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("%d open watches after %.1fs, wanted %d; requests: %s"
                                       % (k, timeout, n, self.requests[-10:]))
                self._cond.wait(min(left, 0.2))

    def requests_matching(self, method=None, path_prefix=None, watch=None, since=0, match=None):
        m = self._matcher(method, path_prefix, watch, match)
        with self._lock:
            return [r for r in self.requests[since:] if m(r)]

    def wait_for_request(self, method=None, path_prefix=None, watch=None, since=0, match=None,
                         timeout=10.0, count=1):
        """Waits until `count` recorded requests (from index `since`) match; returns the list."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.requests_matching(method, path_prefix, watch, since, match)
            if len(got) >= count:
                return got
            if time.monotonic() > deadline:
                raise TimeoutError("wanted %d requests %s %s watch=%s since #%d; recorded: %s"
                                   % (count, method, path_prefix, watch, since,
                                      self.requests[since:][-20:]))
            time.sleep(0.02)

    def clear_requests(self):
        with self._lock:
            self.requests.clear()

    # -- request handling (called from handler threads) --------------------------------------------

    def _record(self, req):
        with self._lock:
            self.requests.append(req)

    def _route(self, path):
        """-> (coll, ns, name, subresource) or None."""
        segs = [urllib.parse.unquote(s) for s in path.strip("/").split("/")]
        if len(segs) >= 2 and segs[0] == "api":
            group, version, rest = "", segs[1], segs[2:]
        elif len(segs) >= 3 and segs[0] == "apis":
            group, version, rest = segs[1], segs[2], segs[3:]
        else:
            return None
        if not rest:
            return None
        ns = None
        if rest[0] == "namespaces" and len(rest) >= 3:
            ns, rest = rest[1], rest[2:]
        res, name, sub = rest[0], (rest[1] if len(rest) > 1 else None), \
            (rest[2] if len(rest) > 2 else None)
        with self._lock:
            coll = self._colls.get((group, version, res))
        if coll is None or len(rest) > 3 or (ns is not None and not coll.namespaced):
            return None
        return coll, ns, name, sub

    def _list_locked(self, coll, ns, label_pred, field_pred):
        out = []
        for (ck, ons, _), o in sorted(self._objs.items()):
            if ck != coll.key or (ns and ons != ns):
                continue
            if label_pred(o["metadata"].get("labels")) and field_pred(o):
                out.append(o)
        return out

    def _events_for(self, w):
        """Events after w.cursor converted for watch w (caller holds the lock)."""
        out = []
        while w.cursor + 1 < len(self._log):
            w.cursor += 1
            ev = self._log[w.cursor]
            if ev.coll is None or ev.coll.key != w.coll.key:
                continue
            if ev.type == "ADDED":
                if w.matches(ev.obj):
                    out.append(("ADDED", ev.obj))
            elif ev.type == "MODIFIED":
                now, before = w.matches(ev.obj), w.matches(ev.prev)
                if now and before:
                    out.append(("MODIFIED", ev.obj))
                elif now:
                    out.append(("ADDED", ev.obj))
                elif before:
                    gone = copy.deepcopy(ev.prev)
                    gone["metadata"]["resourceVersion"] = ev.rv
                    out.append(("DELETED", gone))
            elif ev.type == "DELETED":
                if w.matches(ev.obj):
                    out.append(("DELETED", ev.obj))
        return out


def _abort_socket(sock):
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


class _Abort(Exception):
    pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    fake = None  # set per server

    def setup(self):
        if isinstance(self.request, ssl.SSLSocket):
            self.request.settimeout(10)
            self.request.do_handshake()
            self.request.settimeout(None)
        super().setup()
        with self.fake._lock:
            self.fake._conns.add(self.request)

    def finish(self):
        with self.fake._lock:
            self.fake._conns.discard(self.request)
        try:
            super().finish()
        except OSError:
            pass

    def log_message(self, *args):
        pass

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = lambda self: self._handle()

    # -- plumbing ---------------------------------------------------------------------------------

    def _read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                n = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if n == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return data
                data += self.rfile.read(n)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _send(self, req, code, obj, headers=None):
        data = json.dumps(obj).encode()
        req.status = code
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def _fail(self, req, code, message, reason=None, details=None, headers=None):
        self._send(req, code, status_object(code, reason or _REASONS.get(code, "Unknown"),
                                            message, details), headers)

    def _abort(self):
        self.close_connection = True
        try:
            self.wfile.flush()
        except OSError:
            pass
        _abort_socket(self.request)
        raise _Abort()

    def _handle(self):
        try:
            self._handle_inner()
        except (_Abort, BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            self.close_connection = True

    def _handle_inner(self):
        fake = self.fake
        u = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(u.query, keep_blank_values=True))
        raw = self._read_body()
        body = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw.decode(errors="replace")
        req = Request(self.command, u.path, query, u.query,
                      {k.lower(): v for k, v in self.headers.items()}, body)
        fake._record(req)
        f = fake._take_fault(req)
        if f is not None:
            req.fault = f.name
            if f.action == "reset":
                self._abort()
            self._send(req, f.status, status_object(f.status, f.reason, f.message, f.details),
                       f.headers)
            return
        if fake.token is not None:
            tokens = fake.token if isinstance(fake.token, (list, tuple, set)) else [fake.token]
            if self.headers.get("Authorization") not in ["Bearer " + t for t in tokens]:
                return self._fail(req, 401, "Unauthorized")
        if u.path in ("/healthz", "/readyz", "/livez"):
            req.status = 200
            data = b"ok"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        if u.path == "/version":
            return self._send(req, 200, {"major": "1", "minor": "36", "gitVersion": "v1.36.3-fake"})
        r = fake._route(u.path)
        if r is None:
            return self._fail(req, 404, "the server could not find the requested resource")
        coll, ns, name, sub = r
        if sub is not None:
            return self._fail(req, 404, "subresource %s not served by the fake" % sub)
        m = self.command
        req.op = {"GET": "get", "PUT": "replace", "PATCH": "patch", "DELETE": "delete",
                  "POST": "create"}.get(m)
        if name is None:
            req.op = "watch" if m == "GET" and req.watch else ("list" if m == "GET" else req.op)
            if m == "GET" and req.watch:
                return self._watch(req, coll, ns)
            if m == "GET":
                return self._list(req, coll, ns)
            if m == "POST":
                return self._create(req, coll, ns, body)
            return self._fail(req, 405, "method %s not allowed on a collection" % m)
        if m == "GET":
            with fake._lock:
                o = fake._objs.get((coll.key, ns or "", name))
                o = copy.deepcopy(o)
            if o is None:
                return self._not_found(req, coll, name)
            return self._send(req, 200, o)
        if m == "PUT":
            return self._replace(req, coll, ns, name, body)
        if m == "PATCH":
            return self._patch(req, coll, ns, name, body)
        if m == "DELETE":
            with fake._lock:
                o = fake._delete_locked(coll, ns or "", name)
            if o is None:
                return self._not_found(req, coll, name)
            return self._send(req, 200, o)
        return self._fail(req, 405, "method not allowed")

    def _not_found(self, req, coll, name):
        return self._fail(req, 404, '%s "%s" not found' % (coll.qualified, name),
                          details={"name": name, "group": coll.group, "kind": coll.resource})

    def _check_body(self, req, coll, ns, body, name=None):
        if not isinstance(body, dict) or not isinstance(body.get("metadata"), dict):
            self._fail(req, 400, "body must be a JSON object with metadata")
            return False
        md = body["metadata"]
        if name is not None and md.get("name") not in (None, name):
            self._fail(req, 400, "the name of the object does not match the name on the URL")
            return False
        if ns is not None and md.get("namespace") not in (None, "", ns):
            self._fail(req, 400, "the namespace of the object does not match the namespace "
                                 "on the request")
            return False
        if ns is not None:
            md["namespace"] = ns
        if name is not None:
            md["name"] = name
        if not md.get("name"):
            if md.get("generateName"):
                md["name"] = md["generateName"] + secrets.token_hex(3)[:5]
            else:
                self._fail(req, 422, "name or generateName is required", "Invalid")
                return False
        return True

    def _create(self, req, coll, ns, body):
        if not self._check_body(req, coll, ns, body):
            return
        body.get("metadata", {}).pop("resourceVersion", None)
        with self.fake._lock:
            o = self.fake._create_locked(coll, body)
            o = copy.deepcopy(o)
        if o is None:
            n = body["metadata"]["name"]
            return self._fail(req, 409, '%s "%s" already exists' % (coll.qualified, n),
                              "AlreadyExists",
                              {"name": n, "group": coll.group, "kind": coll.resource})
        return self._send(req, 201, o)

    def _replace(self, req, coll, ns, name, body):
        if not self._check_body(req, coll, ns, body, name):
            return
        fake = self.fake
        with fake._lock:
            cur = fake._objs.get((coll.key, ns or "", name))
            if cur is None:
                return self._not_found(req, coll, name)
            rv = body["metadata"].get("resourceVersion")
            if rv and rv != cur["metadata"]["resourceVersion"]:
                return self._fail(req, 409, 'Operation cannot be fulfilled on %s "%s": the object '
                                            "has been modified; please apply your changes to the "
                                            "latest version and try again" % (coll.qualified, name),
                                  "Conflict", {"name": name, "group": coll.group,
                                               "kind": coll.resource})
            o = copy.deepcopy(fake._update_locked(coll, body))
        return self._send(req, 200, o)

    def _patch(self, req, coll, ns, name, body):
        fake = self.fake
        with fake._lock:
            cur = fake._objs.get((coll.key, ns or "", name))
            if cur is None:
                return self._not_found(req, coll, name)
            if not isinstance(body, dict):
                return self._fail(req, 400, "patch must be a JSON object")
            new = merge_patch(cur, body)
            new["metadata"]["name"] = name
            o = copy.deepcopy(fake._update_locked(coll, new))
        return self._send(req, 200, o)

    def _selectors(self, req):
        try:
            return (parse_label_selector(req.query.get("labelSelector", "")),
                    parse_field_selector(req.query.get("fieldSelector", "")))
        except SelectorError as e:
            self._fail(req, 400, str(e))
            return None

    def _list(self, req, coll, ns):
        fake = self.fake
        cont = req.query.get("continue")
        limit = int(req.query.get("limit") or 0)
        if cont:
            try:
                tok = json.loads(_b64d(cont))
                snap_id, offset = tok["id"], int(tok["off"])
            except (ValueError, KeyError, TypeError):
                return self._fail(req, 400, "continue key is not valid")
            with fake._lock:
                snap = fake._snapshots.get(snap_id)
            if snap is None:
                return self._fail(req, 410, "The provided continue parameter is too old to "
                                            "display a consistent list result. You can start a "
                                            "new list without the continue parameter.",
                                  "Expired")
            items, rv = snap
        else:
            sel = self._selectors(req)
            if sel is None:
                return
            with fake._lock:
                items = [copy.deepcopy(o) for o in fake._list_locked(coll, ns, *sel)]
                rv = fake._log[-1].rv
            if coll.builtin:
                for o in items:  # the real server omits kind/apiVersion of built-in list items
                    o.pop("kind", None)
                    o.pop("apiVersion", None)
            offset = 0
        md = {"resourceVersion": rv}
        page = items[offset:]
        if limit and len(page) > limit:
            page = page[:limit]
            with fake._lock:
                snap_id = cont and json.loads(_b64d(cont))["id"] or secrets.token_hex(6)
                fake._snapshots[snap_id] = (items, rv)
            md["continue"] = _b64e(json.dumps({"id": snap_id, "off": offset + limit,
                                               "rv": rv}))
            md["remainingItemCount"] = len(items) - offset - limit
        self._send(req, 200, {"kind": coll.kind + "List", "apiVersion": coll.api_version,
                              "metadata": md, "items": page})

    # -- watch ------------------------------------------------------------------------------------

    def _chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _write_event(self, type_, obj):
        fake = self.fake
        line = json.dumps({"type": type_, "object": obj}).encode() + b"\n"
        with fake._lock:
            mode, fake._truncate = fake._truncate, None
        if mode is None:
            return self._chunk(line)
        half = line[:max(1, len(line) // 2)]
        if mode == "chunk":
            self._chunk(half)
        else:
            self.wfile.write(b"%x\r\n%s" % (len(line), half))
            self.wfile.flush()
        self._req.fault = "truncate-" + mode
        self._abort()

    def _end_stream(self):
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _bookmark(self, coll, rv, initial_end=False):
        md = {"resourceVersion": rv}
        if initial_end:
            md["annotations"] = {"k8s.io/initial-events-end": "true"}
        self._write_event("BOOKMARK", {"kind": coll.kind, "apiVersion": coll.api_version,
                                       "metadata": md})

    def _watch(self, req, coll, ns):
        fake = self.fake
        self._req = req
        sel = self._selectors(req)
        if sel is None:
            return
        q = req.query
        bookmarks = q.get("allowWatchBookmarks") == "true"
        send_initial = q.get("sendInitialEvents") == "true"
        rv = q.get("resourceVersion", "")
        timeout_s = float(q["timeoutSeconds"]) if q.get("timeoutSeconds") else None
        w = _Watch(coll, ns, sel[0], sel[1], bookmarks, self, req.path)
        gone = False
        with fake._lock:
            initial = []
            if rv in ("", "0") or send_initial:
                initial = [copy.deepcopy(o) for o in fake._list_locked(coll, ns, *sel)]
                w.cursor = len(fake._log) - 1
            else:
                seq = fake._rv_seq.get(rv)
                if seq is None or seq < fake._compacted_seq:
                    gone = True
                else:
                    w.cursor = seq
            initial_rv = fake._log[-1].rv
            if not gone:
                fake._watches.add(w)
                fake._cond.notify_all()
        msg = "too old resource version: %s (%s)" % (rv, initial_rv)
        if gone and not fake.too_old_as_event:
            return self._fail(req, 410, msg, "Expired")
        req.status = 200
        self.send_response(200)
        self.send_header("Content-Type", "application/json;stream=watch")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        self.wfile.flush()
        try:
            if gone:
                self._write_event("ERROR", status_object(410, "Expired", msg))
                return self._end_stream()
            for o in initial:
                self._write_event("ADDED", o)
            if send_initial and bookmarks:
                self._bookmark(coll, initial_rv, initial_end=True)
            self._watch_loop(w, timeout_s)
        finally:
            with fake._cond:
                fake._watches.discard(w)
                fake._cond.notify_all()

    def _client_gone(self):
        """True when the watching client closed its connection (a client sends nothing while a
        watch response streams, so readable = EOF, or a TLS close_notify)."""
        sock = self.request
        try:
            r, _, _ = select.select([sock], [], [], 0)
            if not r:
                return False
            if isinstance(sock, ssl.SSLSocket):
                return True
            return sock.recv(1, socket.MSG_PEEK) == b""
        except (OSError, ValueError):
            return True

    def _watch_loop(self, w, timeout_s):
        fake = self.fake
        next_bookmark = time.monotonic() + (fake.bookmark_interval or 1e9)
        while True:
            action, events, bm_rv = None, [], None
            with fake._cond:
                while True:
                    if fake._stopping:
                        action = ("abort",)
                        break
                    if self._client_gone():
                        action = ("abort",)
                        break
                    if w.control:
                        action = w.control.popleft()
                        if action[0] == "bookmark":
                            bm_rv = fake._log[w.cursor].rv
                        break
                    events = fake._events_for(w)
                    if events:
                        break
                    now = time.monotonic()
                    deadline = w.opened + timeout_s if timeout_s else 1e18
                    if fake._close_every:
                        deadline = min(deadline, w.opened + fake._close_every)
                    if now >= deadline:
                        action = ("close",)
                        break
                    if w.bookmarks and fake.bookmark_interval and now >= next_bookmark:
                        action = ("bookmark",)
                        bm_rv = fake._log[w.cursor].rv
                        next_bookmark = now + fake.bookmark_interval
                        break
                    fake._cond.wait(max(0.01, min(deadline, next_bookmark, now + 0.5) - now))
                events = [(t, copy.deepcopy(o)) for t, o in events]
            for t, o in events:
                self._write_event(t, o)
            if action is None:
                continue
            kind = action[0]
            if kind == "bookmark":
                if w.bookmarks:
                    self._bookmark(w.coll, bm_rv)
            elif kind == "error":
                self._write_event("ERROR", action[1])
                return self._end_stream()
            elif kind == "close":
                return self._end_stream()
            elif kind == "abort":
                self._abort()


def _b64e(s):
    import base64
    return base64.urlsafe_b64encode(s.encode()).decode().rstrip("=")


def _b64d(s):
    import base64
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)).decode()
