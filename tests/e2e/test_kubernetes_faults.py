"""Kubernetes mode against the FakeApiServer (fake_apiserver.py) with injected faults: paging,
expired continue tokens, 410 Gone (HTTP and ERROR event), torn watch events, watches closed
under churn, 429 Retry-After, failing lists at start, the pool going away, and leader election
with a released Lease.

Each test checks two things: that epp's endpoint set (GET /debug/endpoints on --metrics-port)
converges to what the fake's store says, and, from the fake's request log, what epp sent to get
there (which list/watch requests, with which parameters, in which order).

epp is started with a minimal EndpointPickerConfig (random-picker, `dataLayer: {sources: []}`:
without a dataLayer section epp scrapes /metrics of every endpoint by default; the pods here
point at 127.x addresses where nothing listens). Every wait is harness.wait_until (a bound, not a
timing assertion); the only timing assertions are lower bounds ("epp waited at least ...").
"""

import datetime
import json
import os
import time
import urllib.request

import pytest

import harness
from harness import Proc, epp_bin, free_port, wait_until

NS = "faults"
POOL = "pool"
PORT = 8000
POOL_API = "inference.networking.k8s.io/v1"
X_API = "inference.networking.x-k8s.io/v1alpha2"
POOLS_PATH = "/apis/inference.networking.k8s.io/v1/namespaces/%s/inferencepools" % NS
PODS_PATH = "/api/v1/namespaces/%s/pods" % NS
OBJECTIVES_PATH = "/apis/%s/namespaces/%s/inferenceobjectives" % (X_API, NS)
REWRITES_PATH = "/apis/%s/namespaces/%s/inferencemodelrewrites" % (X_API, NS)
LEASE_NAME = "epp-%s-%s.gateway-api-inference-extension.sigs.k8s.io" % (NS, POOL)
LEASE_PATH = "/apis/coordination.k8s.io/v1/namespaces/%s/leases/%s" % (NS, LEASE_NAME)
LABELS = {"app": "sim"}

# The smallest configuration epp accepts (apiVersion and kind are required); sources: [] turns
# metrics scraping off.
CONFIG = """apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: random-picker
dataLayer:
  sources: []
"""


def pool_object(ports=(PORT,)):
    return {"apiVersion": POOL_API, "kind": "InferencePool",
            "metadata": {"name": POOL, "namespace": NS},
            "spec": {"selector": {"matchLabels": dict(LABELS)},
                     "targetPorts": [{"number": p} for p in ports],
                     "endpointPickerRef": {"name": "epp", "port": {"number": 9002}}}}


def ip_for(i):
    """A distinct 127.x address for pod number i (nothing listens there)."""
    return "127.%d.%d.%d" % (1 + i // 62500, (i // 250) % 250, 1 + i % 250)


class KEpp:
    """epp in Kubernetes mode against the fake (kubeconfig with a plain-http server URL)."""

    def __init__(self, workdir, name, kubeconfig, extra_args=(), wait_admin=True):
        self.name = name
        self.grpc_port = free_port()
        self.health_port = free_port()
        self.metrics_port = free_port()
        argv = [epp_bin(), "--pool-name", POOL, "--pool-namespace", NS,
                "--kubeconfig", kubeconfig, "--config-text", CONFIG,
                "--grpc-port", str(self.grpc_port), "--grpc-health-port", str(self.health_port),
                "--metrics-port", str(self.metrics_port), "--secure-serving=false",
                "-v", "3"] + list(extra_args)
        env = dict(os.environ)
        env.pop("KUBECONFIG", None)
        env.pop("KUBERNETES_SERVICE_HOST", None)
        self.proc = Proc(name, argv, os.path.join(workdir, "%s.log" % name), env=env)
        if wait_admin:
            wait_until(lambda: harness.tcp_connectable("127.0.0.1", self.metrics_port),
                       "%s admin port" % name, procs=[self.proc])

    def debug(self, path):
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (self.metrics_port, path),
                                    timeout=5) as r:
            return json.loads(r.read())

    def endpoints(self):
        """{name: "ip:port"} as epp sees them."""
        return {e["name"]: "%s:%s" % (e["address"], e["port"])
                for e in self.debug("/debug/endpoints")}

    def kube(self):
        return self.debug("/debug/kubernetes")

    def watcher(self, resource):
        return [w for w in self.kube()["watchers"] if w["resource"] == resource][0]

    def health(self, service="readiness"):
        try:
            return harness.grpc_health_check(self.health_port, service, timeout=2)
        except (OSError, harness.HarnessError):
            return "UNREACHABLE"


class Env:
    """The fake API server (pool + the two x-k8s.io collections registered, the pool stored)
    plus the epp processes of one test. `.stack` lets conftest attach the epp logs to a
    failure report."""

    def __init__(self, fake, workdir):
        self.fake = fake
        self.workdir = workdir
        fake.register(X_API, "InferenceObjective", "inferenceobjectives")
        fake.register(X_API, "InferenceModelRewrite", "inferencemodelrewrites")
        fake.add(pool_object())
        self.kubeconfig = os.path.join(workdir, "kubeconfig")
        fake.write_kubeconfig(self.kubeconfig)
        self.stack = harness.Stack(workdir, tls=False, n_backends=0, start_epp=False)
        self.epps = []

    def start(self, name="epp", extra_args=(), wait_admin=True):
        e = KEpp(self.workdir, name, self.kubeconfig, extra_args, wait_admin)
        self.epps.append(e)
        self.stack._all.append(e.proc)
        return e

    def procs(self):
        return [e.proc for e in self.epps]

    # -- the store ------------------------------------------------------------------------------

    def add_pod(self, name, i, ready=True, labels=None):
        return self.fake.add_pod(NS, name, dict(LABELS if labels is None else labels),
                                 ip=ip_for(i), ready=ready)

    def truth(self, port=PORT):
        """The endpoint set the fake's store implies: ready pods with an IP matching the
        pool's selector, one endpoint per pod (one target port)."""
        out = {}
        for p in self.fake.objects("v1", "Pod", NS):
            md, st = p["metadata"], p.get("status", {})
            if any(md.get("labels", {}).get(k) != v for k, v in LABELS.items()):
                continue
            if md.get("deletionTimestamp") or not st.get("podIP"):
                continue
            if not any(c.get("type") == "Ready" and c.get("status") == "True"
                       for c in st.get("conditions", [])):
                continue
            out["%s-rank-0" % md["name"]] = "%s:%d" % (st["podIP"], port)
        return out

    def converge(self, epp, what, want=None, timeout=20):
        """Waits until epp's endpoints equal `want` (default: the store's truth, re-read on
        every poll)."""
        def ok():
            return epp.endpoints() == (self.truth() if want is None else want)
        wait_until(ok, "%s: endpoints converge (%s)" % (epp.name, what), timeout=timeout,
                   interval=0.05, procs=[epp.proc])

    # -- the request log ------------------------------------------------------------------------

    def gets(self, path, watch=None, since=0):
        return self.fake.requests_matching(method="GET", path_prefix=path, watch=watch,
                                           since=since)

    def mark(self):
        return len(self.fake.requests)


@pytest.fixture
def env(fake_api, tmp_path):
    harness.require_epp()
    e = Env(fake_api, str(tmp_path))
    try:
        yield e
    finally:
        e.stack.close()


def describe(reqs):
    return "\n".join(repr(r) for r in reqs)


# ---------------------------------------------------------------------------------------------
# lists
# ---------------------------------------------------------------------------------------------

def test_huge_pod_list_is_paged(env):
    """1,200 matching pods (plus 30 that do not match): epp lists with limit=500, follows
    `continue` over 3 pages, then watches from the list's resourceVersion."""
    fake = env.fake
    for i in range(1200):
        env.add_pod("pod-%04d" % i, i)
    for i in range(20):
        env.add_pod("other-%02d" % i, 2000 + i, labels={"app": "other"})
    for i in range(10):
        env.add_pod("unready-%02d" % i, 3000 + i, ready=False)
    list_rv = fake.resource_version
    epp = env.start()
    env.converge(epp, "1,200 pods")
    assert len(epp.endpoints()) == 1200

    lists = env.gets(PODS_PATH, watch=False)
    assert len(lists) == 3, describe(lists)
    assert all(r.status == 200 and r.query.get("limit") == "500" for r in lists), describe(lists)
    assert "continue" not in lists[0].query, lists[0]
    tokens = [r.query.get("continue") for r in lists[1:]]
    assert all(tokens) and tokens[0] != tokens[1], describe(lists)
    # The watch follows the list, so it may not have been sent yet when the pods show.
    watches = fake.wait_for_request("GET", PODS_PATH, watch=True)
    assert watches[0].query.get("resourceVersion") == list_rv, describe(watches)
    assert watches[0].t > lists[-1].t
    assert watches[0].query.get("allowWatchBookmarks") == "true", watches[0]
    w = epp.watcher("pods")
    assert w["synced"] and w["lists"] == 1 and w["relists_gone"] == 0, w

    # Still following changes afterwards.
    fake.delete("v1", "Pod", NS, "pod-0007")
    env.add_pod("pod-late", 4000)
    env.converge(epp, "a change after the paged list")


def test_expired_continue_token_falls_back_to_one_unpaged_list(env):
    """The continue token of page 2 has expired (410): epp starts over with one unpaged list,
    which sees the store as it is then (a pod deleted from page 1 and a pod added meanwhile)."""
    fake = env.fake
    for i in range(600):
        env.add_pod("pod-%04d" % i, i)
    fired = []

    def expire_on_first_continue(req):
        # Runs inside the fake (its lock held) when a pods list arrives: on the first one that
        # carries a continue token, expire every token and change the store, then let the fake
        # answer normally (410 Expired for the continue token).
        if "continue" in req.query and not fired:
            fired.append(req)
            fake.expire_continue_tokens()
            fake.delete("v1", "Pod", NS, "pod-0000")
            env.add_pod("pod-late", 4000)
        return False
    fake.inject(500, count=1, method="GET", path_prefix=PODS_PATH, watch=False,
                match=expire_on_first_continue)
    epp = env.start()
    env.converge(epp, "after the unpaged re-list")
    eps = epp.endpoints()
    assert "pod-late-rank-0" in eps and "pod-0000-rank-0" not in eps and len(eps) == 600

    lists = env.gets(PODS_PATH, watch=False)
    assert fired, "epp never sent a continue token"
    assert len(lists) == 3, describe(lists)
    first, cont, unpaged = lists
    assert first.status == 200 and first.query.get("limit") == "500" \
        and "continue" not in first.query, first
    assert cont.status == 410 and cont.query.get("continue"), cont
    assert unpaged.status == 200 and "limit" not in unpaged.query \
        and "continue" not in unpaged.query, unpaged
    # The watch is sent after the list is applied and counted: wait for it before reading the
    # counters (the endpoints are published a moment before the counters move).
    watches = fake.wait_for_request("GET", PODS_PATH, watch=True)
    assert watches[0].t > unpaged.t, describe(watches)
    w = epp.watcher("pods")
    assert w["synced"] and w["lists"] == 1, w


# ---------------------------------------------------------------------------------------------
# 410 Gone on a watch
# ---------------------------------------------------------------------------------------------

def start_with_pods(env, n=3, **kw):
    for i in range(n):
        env.add_pod("pod-%d" % i, i)
    epp = env.start(**kw)
    env.converge(epp, "initial sync")
    env.fake.wait_for_watches(4)
    return epp


def flush_pod_events(env, epp):
    """Ends the open pods watch and waits for the re-watch, so the counters are read between
    two watches. Returns the pods watcher."""
    n = epp.watcher("pods")["watches"]
    assert env.fake.close_watches(path_prefix=PODS_PATH) == 1
    wait_until(lambda: epp.watcher("pods")["watches"] > n, "pods re-watch", procs=[epp.proc])
    return epp.watcher("pods")


def test_watch_answered_410_relists(env):
    """A re-watch answered with HTTP 410: epp lists again (and so sees a pod added while the
    watch was being refused: it is in no watch stream, only in the new list)."""
    fake = env.fake
    epp = start_with_pods(env)
    before = epp.watcher("pods")
    since = env.mark()
    added = []

    def add_meanwhile(req):
        if not added:
            added.append(env.add_pod("pod-meanwhile", 50))
        return True
    fake.inject(410, count=1, method="GET", path_prefix=PODS_PATH, watch=True,
                match=add_meanwhile, reason="Expired",
                message="too old resource version: injected")
    assert fake.close_watches(path_prefix=PODS_PATH) == 1
    wait_until(lambda: added, "the re-watch (answered 410)", procs=[epp.proc])
    env.converge(epp, "pod added while the watch got 410")
    assert "pod-meanwhile-rank-0" in epp.endpoints()

    # the re-watch follows the re-list, so it may not have been sent yet
    fake.wait_for_request("GET", PODS_PATH, since=since, count=3)
    reqs = env.gets(PODS_PATH, since=since)
    gone, relist, rewatch = reqs[:3]
    assert gone.watch and gone.status == 410, describe(reqs)
    assert not relist.watch and relist.status == 200, describe(reqs)
    assert rewatch.watch and rewatch.query.get("resourceVersion") != \
        gone.query.get("resourceVersion"), describe(reqs)
    after = epp.watcher("pods")
    assert after["lists"] == before["lists"] + 1, (before, after)
    assert after["relists_gone"] == before["relists_gone"] + 1, (before, after)
    assert after["events"] == before["events"], (before, after)  # seen by the list, not a watch


def test_error_event_410_in_watch_stream_relists(env):
    """An ERROR event carrying a 410 Status inside an open 200 watch stream: epp lists again.
    The pod added just before the ERROR never reaches that stream (the fake sends the ERROR
    first), so only the re-list can show it."""
    fake = env.fake
    epp = start_with_pods(env)
    before = epp.watcher("pods")
    since = env.mark()
    with fake._lock:  # both changes land before the watch thread wakes up
        env.add_pod("pod-before-error", 60)
        assert fake.inject_error_event(410, path_prefix=PODS_PATH) == 1
    env.converge(epp, "pod added just before the ERROR event")
    assert "pod-before-error-rank-0" in epp.endpoints()

    # epp watches again after the re-list, which it counts first: wait for that watch (it may
    # not have been sent when the pod showed up) before reading the requests and counters.
    fake.wait_for_request("GET", PODS_PATH, watch=True, since=since, timeout=10)
    reqs = env.gets(PODS_PATH, since=since)
    assert reqs and not reqs[0].watch and reqs[0].status == 200, describe(reqs)
    after = epp.watcher("pods")
    assert after["lists"] == before["lists"] + 1, (before, after)
    assert after["relists_gone"] == before["relists_gone"] + 1, (before, after)
    assert after["events"] == before["events"], (before, after)


# ---------------------------------------------------------------------------------------------
# torn events, closed watches
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["chunk", "frame"])
def test_truncated_event_rewatches_from_last_good_version(env, mode):
    """A watch event cut in the middle (a chunk holding half the JSON line, or a chunk header
    announcing more than follows), then the connection is cut: epp watches again from the last
    resourceVersion it applied, without a re-list, after a backoff; the event replayed on the
    new watch and a later one are applied exactly once."""
    fake = env.fake
    fake.bookmark_interval = None  # no bookmark may be the torn event or move the version on
    epp = start_with_pods(env, n=2)
    b = env.add_pod("pod-b", 10)
    env.converge(epp, "pod-b")
    rv_b = b["metadata"]["resourceVersion"]
    before = epp.watcher("pods")
    since = env.mark()
    fake.truncate_next_event(mode)
    t_add = time.monotonic()
    env.add_pod("pod-a", 11)  # this event is torn
    rewatch = fake.wait_for_request("GET", PODS_PATH, watch=True, since=since, timeout=15)[0]
    assert rewatch.query.get("resourceVersion") == rv_b, (rewatch, rv_b)
    env.converge(epp, "torn pod-a replayed after the reconnect")
    fake.wait_for_watches(1, path_prefix=PODS_PATH)
    env.add_pod("pod-c", 12)
    env.converge(epp, "pod-c on the new watch")

    torn = [r for r in fake.requests if r.fault == "truncate-" + mode]
    assert len(torn) == 1 and torn[0].path == PODS_PATH and torn[0].watch, torn
    reqs = env.gets(PODS_PATH, since=since)
    assert all(r.watch for r in reqs), "re-listed after a torn event:\n" + describe(reqs)
    # The re-watch came after a backoff (≥ 0.8 × the 800 ms initial backoff; a lower bound).
    assert rewatch.t - t_add >= 0.64, rewatch.t - t_add
    after = flush_pod_events(env, epp)
    assert after["lists"] == before["lists"] and after["relists_gone"] == 0, (before, after)
    assert after["events"] == 3, after  # pod-b, pod-a once (replayed, not torn), pod-c


def test_watches_closed_every_1_5s_under_churn(env):
    """Every watch is closed by the server 1.5 s after it opened, for ~6 s, while pods are
    added, deleted and flip readiness: epp re-watches each time from where it was (never
    re-lists) and applies every change exactly once."""
    fake = env.fake
    epp = start_with_pods(env, n=5)
    before = epp.watcher("pods")
    since = env.mark()
    fake.close_watches_every(1.5)
    changes = 0
    ready = {i: True for i in range(5)}
    t_end = time.monotonic() + 6.0
    i = 0
    try:
        while time.monotonic() < t_end:
            env.add_pod("churn-%03d" % i, 100 + i)
            changes += 1
            if i % 3 == 2:
                fake.delete("v1", "Pod", NS, "churn-%03d" % (i - 2))
                changes += 1
            if i % 4 == 3:
                k = (i // 4) % 5
                ready[k] = not ready[k]
                fake.set_pod_ready(NS, "pod-%d" % k, ready[k])
                changes += 1
            i += 1
            time.sleep(0.1)
    finally:
        fake.close_watches_every(None)
    env.converge(epp, "after the churn")
    # The last periodic close may have come just before it stopped: wait for the re-watch.
    fake.wait_for_watches(1, path_prefix=PODS_PATH)

    reqs = env.gets(PODS_PATH, since=since)
    watches = [r for r in reqs if r.watch]
    assert not [r for r in reqs if not r.watch], "re-listed:\n" + describe(reqs)
    assert len(watches) >= 3, describe(reqs)
    assert all(r.status == 200 and r.query.get("resourceVersion") not in (None, "", "0")
               for r in watches), describe(watches)
    after = flush_pod_events(env, epp)
    assert after["lists"] == before["lists"] and after["relists_gone"] == 0, (before, after)
    assert before["events"] == 0 and after["events"] == changes, (changes, before, after)
    assert after["watches"] >= before["watches"] + 3, (before, after)
    for w in epp.kube()["watchers"]:
        assert w["lists"] == 1, w  # the other three were closed just as often


def test_events_counter_counts_the_open_watch(env):
    """`events` (ADDED/MODIFIED/DELETED events applied) counts events of the watch that is still
    open (it once lagged until the watch ended)."""
    epp = start_with_pods(env)
    env.add_pod("pod-new", 20)
    env.converge(epp, "pod-new applied by the open watch")
    wait_until(lambda: epp.watcher("pods")["events"] == 1, "events counts pod-new", timeout=3,
               procs=[epp.proc])


# ---------------------------------------------------------------------------------------------
# throttling and failures
# ---------------------------------------------------------------------------------------------

def test_watch_429_honours_retry_after(env):
    """A re-watch answered 429 with Retry-After: 2: the next watch comes no sooner than ~2 s
    (lower bound only), is a watch (no re-list), and a pod added meanwhile is applied."""
    fake = env.fake
    epp = start_with_pods(env)
    since = env.mark()
    fake.throttle(count=1, retry_after=2, method="GET", path_prefix=PODS_PATH, watch=True)
    assert fake.close_watches(path_prefix=PODS_PATH) == 1
    throttled = fake.wait_for_request("GET", PODS_PATH, watch=True, since=since)[0]
    env.add_pod("pod-during-429", 70)
    env.converge(epp, "pod added while epp waited out Retry-After")

    reqs = env.gets(PODS_PATH, since=since)
    assert reqs[0] is throttled and throttled.status == 429, describe(reqs)
    assert len(reqs) >= 2 and reqs[1].watch and reqs[1].status == 200, describe(reqs)
    assert all(r.watch for r in reqs), "re-listed after a 429:\n" + describe(reqs)
    waited = reqs[1].t - throttled.t
    assert waited >= 0.8 * 2, "next watch %.2f s after a 429 with Retry-After: 2" % waited
    assert reqs[1].query.get("resourceVersion") == throttled.query.get("resourceVersion")


def test_failing_lists_at_start_back_off_then_ready(env):
    """Pod lists fail at start (two 500s, then connection resets until the test stops them):
    epp retries with a growing backoff, is not ready meanwhile, and becomes ready once the list
    succeeds."""
    fake = env.fake
    for i in range(3):
        env.add_pod("pod-%d" % i, i)
    fake.fail_requests(count=2, code=500, method="GET", path_prefix=PODS_PATH, watch=False)
    fake.reset_requests(count=10 ** 6, method="GET", path_prefix=PODS_PATH, watch=False)
    epp = env.start(wait_admin=False)
    # epp opens its health and admin ports at once; readiness stays off while lists fail.
    wait_until(lambda: len(env.gets(PODS_PATH, watch=False)) >= 4, "four failed pod lists",
               timeout=25, procs=[epp.proc])
    assert epp.health("readiness") == "NOT_SERVING"
    assert epp.endpoints() == {}
    w = epp.watcher("pods")
    assert not w["synced"] and w["last_error"], w
    failed = env.gets(PODS_PATH, watch=False)
    assert [r.status for r in failed[:2]] == [500, 500], describe(failed)
    # The newest request may be in flight (recorded before its fault is set): the ones before
    # it were answered, and epp retried them.
    assert len(failed) >= 4 and all(r.fault == "reset" for r in failed[2:-1]), describe(failed)
    fake.clear_faults()
    wait_until(lambda: epp.health("readiness") == "SERVING", "ready once the list succeeds",
               timeout=40, procs=[epp.proc])
    env.converge(epp, "after the lists succeed")

    lists = env.gets(PODS_PATH, watch=False)
    assert lists[-1].status == 200 and all(r.status != 200 for r in lists[:-1]), describe(lists)
    # Backoff 800 ms doubling: gap k is at least ~0.8 × 0.8 s × 2^k (lower bounds only).
    gaps = [b.t - a.t for a, b in zip(lists, lists[1:])]
    for k, g in enumerate(gaps):
        assert g >= 0.8 * min(0.8 * 2 ** k, 30), ("gap %d" % k, gaps, describe(lists))
    assert epp.watcher("pods")["synced"]


# ---------------------------------------------------------------------------------------------
# the pool and leader election
# ---------------------------------------------------------------------------------------------

def test_pool_deleted_then_readded(env):
    """The InferencePool is deleted (endpoints empty, not ready), then re-created with another
    target port (endpoints back on that port, ready), all through the watch."""
    fake = env.fake
    epp = start_with_pods(env)
    assert epp.health("readiness") == "SERVING"
    fake.delete(POOL_API, "InferencePool", NS, POOL)
    env.converge(epp, "pool deleted", want={})
    wait_until(lambda: epp.health("readiness") == "NOT_SERVING", "not ready without a pool",
               procs=[epp.proc])
    fake.add(pool_object(ports=(8001,)))
    env.converge(epp, "pool re-created on port 8001", want=env.truth(port=8001))
    wait_until(lambda: epp.health("readiness") == "SERVING", "ready again", procs=[epp.proc])
    pools = env.gets(POOLS_PATH)
    assert all(r.query.get("fieldSelector") == "metadata.name=%s" % POOL for r in pools), \
        describe(pools)
    w = epp.watcher("inferencepools")
    assert w["lists"] == 1 and w["watches"] == 1, w  # both changes came on the first watch


def lease_puts(fake, since=0):
    """(request, spec) of every successful PUT of the Lease: each one is what the store held
    from then on."""
    return [(r, r.body["spec"]) for r in fake.requests_matching(method="PUT",
                                                                 path_prefix=LEASE_PATH,
                                                                 since=since)
            if r.status == 200 and isinstance(r.body, dict)]


def test_leader_election_release_on_sigterm(env):
    """Two replicas with --ha-enable-leader-election against the fake's Leases: exactly one is
    ready. SIGTERM to the leader: it clears holderIdentity in the Lease, and the other replica
    acquires the released Lease (not an expired one) and becomes ready."""
    fake = env.fake
    for i in range(3):
        env.add_pod("pod-%d" % i, i)
    replicas = [env.start("epp-ha%d" % i, ["--ha-enable-leader-election"]) for i in range(2)]

    def ready():
        return [r.health("readiness") for r in replicas]
    wait_until(lambda: sorted(ready()) == ["NOT_SERVING", "SERVING"], "exactly one leader",
               timeout=20, procs=env.procs())
    for r in replicas:
        env.converge(r, "replica synced")  # followers keep their endpoints too
        assert r.health("liveness") == "SERVING"
    leader = replicas[ready().index("SERVING")]
    follower = replicas[1 - replicas.index(leader)]
    assert leader.kube()["leader"] is True and follower.kube()["leader"] is False
    lease = fake.get("coordination.k8s.io/v1", "Lease", NS, LEASE_NAME)
    old_holder = lease["spec"]["holderIdentity"]
    assert old_holder, lease

    since = env.mark()
    leader.proc.stop(grace=10)
    assert leader.proc.returncode() == 0, leader.proc.tail()
    wait_until(lambda: follower.health("readiness") == "SERVING", "follower takes over",
               timeout=12, procs=[follower.proc])

    puts = lease_puts(fake, since)
    holders = [spec["holderIdentity"] for _, spec in puts]
    assert "" in holders, "the leader did not release the Lease: %s" % holders
    k = holders.index("")
    # Renewals by the old leader (until SIGTERM), the release, then the new holder's records.
    assert set(holders[:k]) <= {old_holder}, holders
    assert puts[k][0].body["metadata"].get("resourceVersion"), puts[k][0].body
    release = puts[k][1]
    new = fake.get("coordination.k8s.io/v1", "Lease", NS, LEASE_NAME)["spec"]
    assert new["holderIdentity"] not in ("", old_holder), new
    assert holders[k + 1:] and set(holders[k + 1:]) == {new["holderIdentity"]}, holders
    assert new["leaseTransitions"] == lease["spec"].get("leaseTransitions", 0) + 1, (lease, new)
    # The follower took the released record, not one that expired: its acquireTime is within
    # the lease duration of the old leader's last renewal.
    assert new["acquireTime"] >= release["renewTime"], (release, new)
    assert _rfc3339(new["acquireTime"]) - _rfc3339(release["renewTime"]) < \
        lease["spec"]["leaseDurationSeconds"], (release, new)
    assert follower.kube()["leader"] is True


def _rfc3339(s):
    s = s.rstrip("Z")
    base, _, frac = s.partition(".")
    t = datetime.datetime.strptime(base, "%Y-%m-%dT%H:%M:%S").replace(
        tzinfo=datetime.timezone.utc).timestamp()
    return t + (float("0." + frac) if frac else 0.0)
