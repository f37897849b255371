"""Self-tests of the Kubernetes test infrastructure: k8s_env.KubeEnv (a real kube-apiserver +
etcd) and fake_apiserver.FakeApiServer (fault injection). Nothing here needs the epp binary.

Run: .venv/bin/pytest -q tests/e2e/test_k8s_env.py     (EPP_SKIP_K8S=1 skips the real-server part)
"""

import json
import os
import shutil
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

import fake_apiserver as fa
import k8s_env

SELFTEST_GROUP = "selftest.epp.local"  # not the real InferencePool group: the real CRD may be
# applied to the same session apiserver by other tests (deploy/crds/).
SELFTEST_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "inferencepools." + SELFTEST_GROUP},
    "spec": {
        "group": SELFTEST_GROUP,
        "scope": "Namespaced",
        "names": {"plural": "inferencepools", "singular": "inferencepool",
                  "kind": "InferencePool", "listKind": "InferencePoolList"},
        "versions": [{
            "name": "v1", "served": True, "storage": True,
            "subresources": {"status": {}},
            "schema": {"openAPIV3Schema": {
                "type": "object",
                "properties": {
                    "spec": {"type": "object", "properties": {
                        "selector": {"type": "object", "properties": {
                            "matchLabels": {"type": "object",
                                            "additionalProperties": {"type": "string"}}}},
                        "targetPorts": {"type": "array", "items": {
                            "type": "object", "properties": {"number": {"type": "integer"}}}},
                    }},
                    "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                }}},
        }],
    },
}


def _ready(pod):
    for c in pod.get("status", {}).get("conditions", []):
        if c["type"] == "Ready":
            return c["status"] == "True"
    return False


def _whoami(kube, token):
    st, body = kube.api("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews",
                        {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
                        token=token)
    assert st == 201, body
    return body["status"]["userInfo"]


# =============================================================================================
# real kube-apiserver
# =============================================================================================

def test_real_crd_pod_list_watch(kube):
    ns = kube.unique_namespace("selftest")
    kube.apply(SELFTEST_CRD)
    kube.wait_crd_established(SELFTEST_CRD["metadata"]["name"])
    pools = "/apis/%s/v1/namespaces/%s/inferencepools" % (SELFTEST_GROUP, ns)
    plist = kube.list(pools)
    with kube.watch(pools, plist["metadata"]["resourceVersion"], timeout_seconds=60) as pw:
        pool = kube.apply({"apiVersion": SELFTEST_GROUP + "/v1", "kind": "InferencePool",
                           "metadata": {"name": "pool", "namespace": ns},
                           "spec": {"selector": {"matchLabels": {"app": "m"}},
                                    "targetPorts": [{"number": 8000}]}})
        ev = pw.wait_for(lambda e: e["type"] == "ADDED")
        assert ev["object"]["metadata"]["name"] == "pool"
        pool["spec"]["targetPorts"] = [{"number": 8001}]
        kube.apply(pool)  # replace via GET + PUT
        ev = pw.wait_for(lambda e: e["type"] == "MODIFIED")
        assert ev["object"]["spec"]["targetPorts"] == [{"number": 8001}]
        assert ev["object"]["metadata"]["generation"] == 2

    pods = "/api/v1/namespaces/%s/pods" % ns
    lst = kube.list(pods)
    assert lst["items"] == []
    with kube.watch(pods, lst["metadata"]["resourceVersion"], timeout_seconds=60) as w:
        kube.make_pod(ns, "p0", {"app": "m"}, annotations={"a": "b"})
        ev = w.wait_for(lambda e: e["type"] == "ADDED")
        assert ev["object"]["metadata"]["labels"] == {"app": "m"}
        assert ev["object"]["status"]["phase"] == "Pending"
        kube.set_pod_ready(ns, "p0", "10.1.0.5")
        ev = w.wait_for(lambda e: e["type"] == "MODIFIED" and _ready(e["object"]))
        st = ev["object"]["status"]
        assert st["podIP"] == "10.1.0.5" and st["podIPs"] == [{"ip": "10.1.0.5"}]
        assert st["phase"] == "Running"
        kube.set_pod_ready(ns, "p0", "10.1.0.5", ready=False)
        ev = w.wait_for(lambda e: e["type"] == "MODIFIED" and not _ready(e["object"]))
        kube.delete_pod(ns, "p0")  # no nodeName: removed at once
        ev = w.wait_for(lambda e: e["type"] == "DELETED")
        assert ev["object"]["metadata"]["name"] == "p0"
    # paging with limit/continue on the real server
    for i in range(5):
        kube.make_pod(ns, "q%d" % i, {"app": "q"})
    page = kube.list(pods, limit=2, labelSelector="app=q")
    names = [p["metadata"]["name"] for p in page["items"]]
    while page["metadata"].get("continue"):
        page = kube.list(pods, limit=2, labelSelector="app=q", **{"continue": page["metadata"]["continue"]})
        names += [p["metadata"]["name"] for p in page["items"]]
    assert names == ["q0", "q1", "q2", "q3", "q4"]


def test_real_terminating_pod(kube):
    ns = kube.unique_namespace("selftest")
    kube.make_pod(ns, "t0", {"app": "m"}, node_name="node-a")
    kube.set_pod_ready(ns, "t0", "10.1.0.9")
    st, body = kube.delete_pod(ns, "t0")
    assert st in (200, 202)
    pod = kube.get(kube.pod_path(ns, "t0"))
    assert pod is not None and pod["metadata"].get("deletionTimestamp"), pod
    kube.delete_pod(ns, "t0", grace_period_seconds=0)
    harness_wait(lambda: kube.get(kube.pod_path(ns, "t0")) is None, "pod t0 gone")


def harness_wait(pred, what, timeout=10.0):
    import harness
    return harness.wait_until(pred, what, timeout=timeout, interval=0.1)


def test_real_rbac_and_identities(kube):
    pods = "/api/v1/namespaces/%s/pods" % k8s_env.SESSION_SA_NAMESPACE
    kube.create_namespace(k8s_env.SESSION_SA_NAMESPACE)
    st, body = kube.api("GET", pods, token=kube.token_for(k8s_env.NO_RBAC_USER))
    assert st == 403 and body["reason"] == "Forbidden", body
    st, body = kube.api("GET", pods, token="")  # anonymous
    assert st in (401, 403), body
    st, body = kube.api("GET", pods, token="not-a-token")
    assert st == 401, body

    sa_user, sa_groups = k8s_env.KubeEnv.service_account_user(k8s_env.SESSION_SA_NAMESPACE, "epp")
    sa_token = kube.token_for(sa_user)
    info = _whoami(kube, sa_token)
    assert info["username"] == sa_user and set(sa_groups) <= set(info["groups"])
    kube.apply({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                "metadata": {"name": "selftest-pod-reader", "namespace": k8s_env.SESSION_SA_NAMESPACE},
                "rules": [{"apiGroups": [""], "resources": ["pods"],
                           "verbs": ["get", "list", "watch"]}]})
    kube.apply({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                "metadata": {"name": "selftest-pod-reader", "namespace": k8s_env.SESSION_SA_NAMESPACE},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                            "name": "selftest-pod-reader"},
                "subjects": [{"kind": "ServiceAccount", "name": "epp",
                              "namespace": k8s_env.SESSION_SA_NAMESPACE}]})
    harness_wait(lambda: kube.api("GET", pods, token=sa_token)[0] == 200, "RBAC grant")
    st, _ = kube.api("GET", "/api/v1/namespaces/default/pods", token=sa_token)
    assert st == 403

    # A real bound ServiceAccount token from the TokenRequest API.
    ns = kube.unique_namespace("selftest")
    tok = kube.create_sa_token(ns, "epp")
    info = _whoami(kube, tok)
    assert info["username"] == "system:serviceaccount:%s:epp" % ns
    # A client certificate signed by the test CA.
    crt, key = kube.make_client_cert("cert-user", ["selftest-group"])
    ctx = ssl.create_default_context(cafile=kube.pki.ca_crt)
    ctx.load_cert_chain(crt, key)
    req = urllib.request.Request(kube.server + "/apis/authentication.k8s.io/v1/selfsubjectreviews",
                                 data=json.dumps({"apiVersion": "authentication.k8s.io/v1",
                                                  "kind": "SelfSubjectReview"}).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
        info = json.loads(r.read())["status"]["userInfo"]
    assert info["username"] == "cert-user" and "selftest-group" in info["groups"]


def test_real_lease_optimistic_concurrency(kube):
    ns = kube.unique_namespace("selftest")
    path = "/apis/coordination.k8s.io/v1/namespaces/%s/leases" % ns
    lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
             "metadata": {"name": "epp", "namespace": ns},
             "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15,
                      "renewTime": "2026-01-01T00:00:00.000000Z", "leaseTransitions": 0}}
    st, created = kube.api("POST", path, lease)
    assert st == 201, created
    st, body = kube.api("POST", path, lease)
    assert st == 409 and body["reason"] == "AlreadyExists", body
    upd = dict(created, spec=dict(created["spec"], holderIdentity="b"))
    st, updated = kube.api("PUT", path + "/epp", upd)
    assert st == 200, updated
    st, body = kube.api("PUT", path + "/epp", upd)  # stale resourceVersion
    assert st == 409 and body["reason"] == "Conflict", body


def test_real_kubeconfig_and_incluster_files(kube, tmp_path):
    ns = kube.unique_namespace("selftest")
    kcfg = kube.write_kubeconfig(str(tmp_path / "kubeconfig"), namespace=ns)
    import yaml
    with open(kcfg) as f:
        cfg = yaml.safe_load(f)
    assert cfg["current-context"] == "epp-test"
    assert cfg["clusters"][0]["cluster"]["server"] == "https://127.0.0.1:%d" % kube.port
    if shutil.which("kubectl"):
        r = subprocess.run(["kubectl", "--kubeconfig", kcfg, "get", "pods", "-o", "name"],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        crt, key = kube.make_client_cert("kubectl-admin", ["system:masters"])
        kcfg2 = kube.write_kubeconfig(str(tmp_path / "kubeconfig-cert"), client_cert=(crt, key))
        r = subprocess.run(["kubectl", "--kubeconfig", kcfg2, "get", "ns", ns, "-o", "name"],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0 and r.stdout.strip() == "namespace/" + ns, r.stderr

    d = str(tmp_path / "sa")
    env = kube.write_incluster_dir(d, kube.create_sa_token(ns, "epp"), ns)
    assert env == {"KUBERNETES_SERVICE_HOST": "127.0.0.1",
                   "KUBERNETES_SERVICE_PORT": str(kube.port)}
    assert sorted(os.listdir(d)) == ["ca.crt", "namespace", "token"]
    with open(os.path.join(d, "namespace")) as f:
        assert f.read() == ns
    with open(os.path.join(d, "token")) as f:
        token = f.read()
    ctx = ssl.create_default_context(cafile=os.path.join(d, "ca.crt"))
    url = "https://%s:%s/api" % (env["KUBERNETES_SERVICE_HOST"], env["KUBERNETES_SERVICE_PORT"])
    req = urllib.request.Request(url, headers={"Authorization": "Bearer " + token})
    with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
        assert r.status == 200 and json.loads(r.read())["kind"] == "APIVersions"


def test_real_yaml_apply(kube, tmp_path):
    ns = kube.unique_namespace("selftest")
    p = tmp_path / "objs.yaml"
    p.write_text("""\
apiVersion: v1
kind: ServiceAccount
metadata:
  name: ${NAME}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: ${NAME}
rules:
- apiGroups: ["coordination.k8s.io"]
  resources: ["leases"]
  verbs: ["get", "create", "update"]
---
""")
    out = kube.apply_yaml_file(str(p), {"${NAME}": "epp"}, namespace=ns)
    assert [o["kind"] for o in out] == ["ServiceAccount", "Role"]
    assert all(o["metadata"]["namespace"] == ns for o in out)
    out2 = kube.apply_yaml_file(str(p), {"${NAME}": "epp"}, namespace=ns)  # idempotent
    assert out2[1]["metadata"]["uid"] == out[1]["metadata"]["uid"]


def test_real_restart_apiserver(kube):
    ns = kube.unique_namespace("selftest")
    pods = "/api/v1/namespaces/%s/pods" % ns
    kube.make_pod(ns, "r0", {"app": "m"})
    rv = kube.list(pods)["metadata"]["resourceVersion"]
    w = kube.watch(pods, rv, timeout_seconds=300)
    took = kube.restart_apiserver()
    # The open watch ends (clean end or a cut connection) when the apiserver goes away.
    end = None
    try:
        end = w.next(timeout=30)
    except TimeoutError:
        pytest.fail("watch still open after apiserver restart")
    assert end is None or end["type"] == "ERROR", end
    assert kube.get(kube.pod_path(ns, "r0")) is not None  # etcd kept the data
    # A watch from the pre-restart resourceVersion: record what this version does.
    w2 = kube.watch(pods, rv, timeout_seconds=5)
    first = None if w2.status != 200 else w2.next(timeout=10)
    print("\n[k8s_env] apiserver restart to /readyz: %.1fs; watch from old RV after restart: "
          "HTTP %s first event %s" % (took, w2.status, first and json.dumps(first)[:300]))
    w2.close()
    assert w2.status == 410 or (first["type"] == "ERROR" and first["object"]["code"] == 410), first
    # Down for a while: connection refused meanwhile.
    kube.stop_apiserver()
    with pytest.raises(OSError):
        kube.api("GET", "/readyz", timeout=2)
    kube.start_apiserver()
    assert kube.api("GET", "/readyz")[0] == 200


def test_real_report_measurements(kube):
    rss = kube.rss_kb()
    print("\n[k8s_env] etcd ready %.1fs; apiserver /readyz after start/restarts: %s s; "
          "RSS kB: %s, peak: %s" % (kube.timings["etcd_ready_s"],
                                    ["%.1f" % t for t in kube.timings["apiserver_ready_s"]], rss,
                                    kube.rss_kb(peak=True)))
    assert all(v for v in rss.values())


# =============================================================================================
# fake apiserver
# =============================================================================================

def _get(srv, path, token=None, **query):
    url = srv.url + path + ("?" + urllib.parse.urlencode(query) if query else "")
    req = urllib.request.Request(url)
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=10, context=srv.ssl_context) as r:
            return r.status, dict(r.headers), json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), json.loads(e.read())


def _send(srv, method, path, obj):
    req = urllib.request.Request(srv.url + path, data=json.dumps(obj).encode(), method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def _watch(srv, path, **query):
    query = dict({"watch": "1"}, **query)
    return k8s_env.WatchStream(srv.url, path, query, ssl_context=srv.ssl_context, timeout=10)


def _raw_get(srv, path_query, timeout=5):
    """Raw bytes of a GET until the server closes (or timeout)."""
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=timeout)
    s.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % path_query.encode())
    data = b""
    try:
        while True:
            b = s.recv(65536)
            if not b:
                break
            data += b
    except (socket.timeout, ConnectionResetError):
        pass
    s.close()
    return data


PODS = "/api/v1/namespaces/a/pods"


def test_fake_paging_and_selectors(fake_api):
    for i in range(7):
        fake_api.add_pod("a", "p%d" % i, {"app": "m" if i % 2 == 0 else "n"}, ip="10.0.0.%d" % i)
    fake_api.add_pod("b", "x0", {"app": "m"})
    st, _, page = _get(fake_api, PODS, limit=3)
    assert st == 200 and [p["metadata"]["name"] for p in page["items"]] == ["p0", "p1", "p2"]
    assert page["metadata"]["remainingItemCount"] == 4 and page["metadata"]["continue"]
    assert "kind" not in page["items"][0]  # like the real server for built-in types
    rv = page["metadata"]["resourceVersion"]
    fake_api.add_pod("a", "p7", {})  # not in the snapshot the continue token refers to
    names = [p["metadata"]["name"] for p in page["items"]]
    while page["metadata"].get("continue"):
        st, _, page = _get(fake_api, PODS, limit=3, **{"continue": page["metadata"]["continue"]})
        assert st == 200 and page["metadata"]["resourceVersion"] == rv
        names += [p["metadata"]["name"] for p in page["items"]]
    assert names == ["p%d" % i for i in range(7)]
    conts = fake_api.requests_matching("GET", PODS, match=lambda r: "continue" in r.query)
    assert len(conts) == 2 and all(r.op == "list" and r.status == 200 for r in conts)

    assert len(_get(fake_api, "/api/v1/pods")[2]["items"]) == 9  # all namespaces
    sel = lambda s: sorted(p["metadata"]["name"] for p in _get(fake_api, PODS, labelSelector=s)[2]["items"])  # noqa: E731
    assert sel("app=m") == ["p0", "p2", "p4", "p6"]
    assert sel("app in (n),app!=m") == ["p1", "p3", "p5"]
    assert sel("!app") == ["p7"] and sel("app") == ["p%d" % i for i in range(7)]
    assert sel("app notin (m,n)") == ["p7"]
    st, _, page = _get(fake_api, PODS, fieldSelector="status.podIP=10.0.0.3")
    assert [p["metadata"]["name"] for p in page["items"]] == ["p3"]
    assert _get(fake_api, PODS, labelSelector="app=(")[0] == 400
    assert _get(fake_api, "/apis/example.com/v1/namespaces/a/widgets")[0] == 404  # no such CRD


def test_fake_resource_versions_are_opaque(fake_api):
    rvs = [fake_api.add_pod("a", "p%d" % i)["metadata"]["resourceVersion"] for i in range(20)]
    assert len(set(rvs)) == 20
    ints = [int(r) for r in rvs]
    assert ints != sorted(ints), "random-style RVs must not be increasing"


def test_fake_watch_events_bookmarks_selectors(fake_api):
    fake_api.bookmark_interval = 0.2
    fake_api.add_pod("a", "old", {"app": "m"})
    rv = _get(fake_api, PODS)[2]["metadata"]["resourceVersion"]
    w = _watch(fake_api, PODS, resourceVersion=rv, allowWatchBookmarks="true")
    assert w.status == 200 and w.headers["content-type"] == "application/json;stream=watch"
    assert w.headers["transfer-encoding"] == "chunked"
    sw = _watch(fake_api, PODS, resourceVersion=rv, labelSelector="app=m")
    fake_api.wait_for_watches(2)
    p = fake_api.add_pod("a", "p0", {"app": "m"})
    fake_api.set_pod_ready("a", "p0", ready=True, ip="10.0.0.1")
    fake_api.mutate("v1", "Pod", "a", "p0", lambda o: o["metadata"]["labels"].update(app="x"))
    fake_api.delete("v1", "Pod", "a", "p0")
    fake_api.add_pod("b", "other")  # another namespace: not on this watch
    evs = []
    while len(evs) < 4:
        ev = w.next()
        if ev["type"] != "BOOKMARK":
            evs.append(ev)
    assert [e["type"] for e in evs] == ["ADDED", "MODIFIED", "MODIFIED", "DELETED"]
    assert evs[0]["object"]["metadata"]["resourceVersion"] == p["metadata"]["resourceVersion"]
    assert evs[0]["object"]["kind"] == "Pod"
    assert evs[1]["object"]["status"]["podIP"] == "10.0.0.1"
    bm = w.wait_for(lambda e: e["type"] == "BOOKMARK", timeout=3)
    assert set(bm["object"]["metadata"]) == {"resourceVersion"}
    assert bm["object"]["metadata"]["resourceVersion"] == fake_api.resource_version
    # selector watch: leaving the selector is DELETED, no bookmarks without allowWatchBookmarks
    stypes = [sw.next()["type"] for _ in range(3)]
    assert stypes == ["ADDED", "MODIFIED", "DELETED"]
    with pytest.raises(TimeoutError):
        sw.next(timeout=0.5)
    w.close()
    sw.close()
    # RV "0": synthetic ADDED of the current state first; timeoutSeconds ends it cleanly.
    w0 = _watch(fake_api, PODS, resourceVersion="0", timeoutSeconds="1")
    assert [e["object"]["metadata"]["name"] for e in [w0.next(), ]] == ["old"]
    t0 = time.monotonic()
    assert w0.next(timeout=5) is None and time.monotonic() - t0 < 3
    # sendInitialEvents: ADDED..., then the initial-events-end bookmark.
    wl = _watch(fake_api, PODS, sendInitialEvents="true", allowWatchBookmarks="true",
                resourceVersionMatch="NotOlderThan", resourceVersion="")
    assert wl.next()["type"] == "ADDED"
    bm = wl.next()
    assert bm["type"] == "BOOKMARK"
    assert bm["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
    wl.close()


def test_fake_watch_client_close_and_cluster_scope(fake_api):
    w = _watch(fake_api, "/api/v1/pods", resourceVersion=fake_api.resource_version)
    fake_api.wait_for_watches(1)
    fake_api.add_pod("x", "p0")
    fake_api.add_pod("y", "p1")
    assert [w.next()["object"]["metadata"]["namespace"] for _ in range(2)] == ["x", "y"]
    w.close()
    deadline = time.monotonic() + 3
    while fake_api.open_watches and time.monotonic() < deadline:
        time.sleep(0.05)
    assert fake_api.open_watches == 0  # a closed client is noticed without further events


def test_fake_fault_next_watch_410_and_compaction(fake_api):
    rv = _get(fake_api, PODS)[2]["metadata"]["resourceVersion"]
    fake_api.fail_next_watch()
    w = _watch(fake_api, PODS, resourceVersion=rv)
    assert w.status == 410 and w.error["reason"] == "Expired" and w.error["kind"] == "Status"
    w = _watch(fake_api, PODS, resourceVersion=rv)
    assert w.status == 200
    w.close()
    watches = fake_api.requests_matching(watch=True)
    assert [r.status for r in watches] == [410, 200] and watches[0].fault == "status-410"
    # compaction: the old RV is gone (HTTP 410), a current one is fine
    fake_api.add_pod("a", "p0")
    fake_api.compact()
    assert _watch(fake_api, PODS, resourceVersion=rv).status == 410
    fake_api.too_old_as_event = True
    w = _watch(fake_api, PODS, resourceVersion=rv)
    ev = w.next()
    assert w.status == 200 and ev["type"] == "ERROR" and ev["object"]["code"] == 410
    assert w.next() is None
    w = _watch(fake_api, PODS, resourceVersion=fake_api.resource_version)
    assert w.status == 200
    w.close()


def test_fake_fault_error_event_mid_stream(fake_api):
    rv = fake_api.resource_version
    w = _watch(fake_api, PODS, resourceVersion=rv)
    fake_api.wait_for_watches(1)
    fake_api.add_pod("a", "p0")
    assert w.next()["type"] == "ADDED"
    assert fake_api.inject_error_event(410) == 1
    ev = w.next()
    assert ev["type"] == "ERROR" and ev["object"]["code"] == 410
    assert ev["object"]["reason"] == "Expired" and ev["object"]["kind"] == "Status"
    assert w.next() is None  # stream ended after the ERROR


def test_fake_fault_close_watches(fake_api):
    fake_api.close_watches_every(0.5)
    t0 = time.monotonic()
    w = _watch(fake_api, PODS, resourceVersion=fake_api.resource_version)
    assert w.next(timeout=5) is None and 0.4 < time.monotonic() - t0 < 3
    fake_api.close_watches_every(None)
    w = _watch(fake_api, PODS, resourceVersion=fake_api.resource_version)
    fake_api.wait_for_watches(1)
    assert fake_api.close_watches(abort=True) == 1
    assert w.next(timeout=5) is None


@pytest.mark.parametrize("mode", ["chunk", "frame"])
def test_fake_fault_truncated_event(fake_api, mode):
    fake_api.add_pod("a", "p0", {"app": "m"})
    fake_api.truncate_next_event(mode)
    data = _raw_get(fake_api, PODS + "?watch=1&resourceVersion=0")
    head, _, body = data.partition(b"\r\n\r\n")
    assert b" 200 " in head.split(b"\r\n")[0] and b"chunked" in head.lower()
    size_line, _, rest = body.partition(b"\r\n")
    size = int(size_line, 16)
    if mode == "chunk":
        assert rest.endswith(b"\r\n") and len(rest) == size + 2  # one complete chunk, no more
        payload = rest[:-2]
    else:
        assert len(rest) < size  # the chunk announces more than arrives
        payload = rest
    assert payload.startswith(b'{"type": "ADDED"') and not payload.endswith(b"\n")
    with pytest.raises(ValueError):
        json.loads(payload)
    assert fake_api.requests_matching(watch=True)[0].fault == "truncate-" + mode
    # the next watch is normal again
    w = _watch(fake_api, PODS, resourceVersion="0")
    assert w.next()["object"]["metadata"]["name"] == "p0"
    w.close()


def test_fake_fault_expired_continue(fake_api):
    for i in range(4):
        fake_api.add_pod("a", "p%d" % i)
    page = _get(fake_api, PODS, limit=2)[2]
    fake_api.expire_continue_tokens()
    st, _, body = _get(fake_api, PODS, limit=2, **{"continue": page["metadata"]["continue"]})
    assert st == 410 and body["reason"] == "Expired"
    st, _, full = _get(fake_api, PODS)
    assert st == 200 and len(full["items"]) == 4


def test_fake_fault_429_500_reset(fake_api):
    fake_api.throttle(count=2, retry_after=3, path_prefix=PODS)
    for _ in range(2):
        st, hdrs, body = _get(fake_api, PODS)
        assert st == 429 and hdrs["Retry-After"] == "3"
        assert body["reason"] == "TooManyRequests" and body["details"]["retryAfterSeconds"] == 3
    assert _get(fake_api, PODS)[0] == 200
    fake_api.fail_requests(count=1)
    st, _, body = _get(fake_api, PODS)
    assert st == 500 and body["reason"] == "InternalError"
    fake_api.fail_requests(count=1, code=504, watch=True)
    assert _get(fake_api, PODS)[0] == 200  # not a watch: unaffected
    assert _watch(fake_api, PODS, resourceVersion="0").status == 504
    fake_api.reset_requests(count=1)
    with pytest.raises((ConnectionError, urllib.error.URLError, OSError)):
        _get(fake_api, PODS)
    assert _get(fake_api, PODS)[0] == 200
    assert [r.fault for r in fake_api.requests if r.fault] == [
        "throttle", "throttle", "status-500", "status-504", "reset"]


def test_fake_leases(fake_api):
    path = "/apis/coordination.k8s.io/v1/namespaces/a/leases"
    lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
             "metadata": {"name": "epp"},
             "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15}}
    assert _get(fake_api, path + "/epp")[0] == 404
    w = _watch(fake_api, path, resourceVersion=fake_api.resource_version)
    st, created = _send(fake_api, "POST", path, lease)
    assert st == 201 and created["metadata"]["namespace"] == "a"
    st, body = _send(fake_api, "POST", path, lease)
    assert st == 409 and body["reason"] == "AlreadyExists"
    upd = dict(created, spec=dict(created["spec"], holderIdentity="b"))
    st, updated = _send(fake_api, "PUT", path + "/epp", upd)
    assert st == 200 and updated["spec"]["holderIdentity"] == "b"
    assert updated["metadata"]["resourceVersion"] != created["metadata"]["resourceVersion"]
    st, body = _send(fake_api, "PUT", path + "/epp", upd)  # stale resourceVersion
    assert st == 409 and body["reason"] == "Conflict"
    st, body = _send(fake_api, "PUT", path + "/nope", dict(upd, metadata={"name": "nope"}))
    assert st == 404
    assert [w.next()["type"] for _ in range(2)] == ["ADDED", "MODIFIED"]
    w.close()
    assert fake_api.get("coordination.k8s.io/v1", "Lease", "a", "epp")["spec"]["holderIdentity"] == "b"


def test_fake_tls_token_and_kubeconfig(tmp_path):
    pki = k8s_env.make_pki(str(tmp_path / "pki"))
    with fa.FakeApiServer(tls=True, pki=pki, token="s3cret") as srv:
        assert srv.url.startswith("https://127.0.0.1:")
        assert _get(srv, PODS)[0] == 401
        st, _, body = _get(srv, PODS, token="s3cret")
        assert st == 200 and body["kind"] == "PodList"
        ctx = srv.ssl_context
        ctx.set_alpn_protocols(["h2", "http/1.1"])
        with socket.create_connection(("127.0.0.1", srv.port)) as s:
            with ctx.wrap_socket(s, server_hostname="localhost") as t:
                assert t.selected_alpn_protocol() == "http/1.1"
        kcfg = srv.write_kubeconfig(str(tmp_path / "kubeconfig"))
        import yaml
        with open(kcfg) as f:
            cfg = yaml.safe_load(f)
        assert cfg["clusters"][0]["cluster"]["server"] == srv.url
        assert cfg["users"][0]["user"]["token"] == "s3cret"
        env = srv.write_incluster_dir(str(tmp_path / "sa"), namespace="a")
        assert env["KUBERNETES_SERVICE_PORT"] == str(srv.port)
