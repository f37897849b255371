"""Kubernetes mode against a real kube-apiserver + etcd (the session fixture `kube`).

epp runs as the ServiceAccount the chart's RBAC binds (deploy/rbac/epp-rbac.yaml: a Role that
only reads pods and the three inference resources and writes leases), with a real bound token,
so every test here also proves that the Role is sufficient. Pods never run (there is no kubelet):
the tests set their status through the status subresource, pointing podIP at modelsim servers
that listen on 127.0.0.1-3 on one shared port, and route real requests through Envoy.

Latency of each change reaching epp is measured and printed (never asserted)."""

import glob
import json
import os
import socket
import subprocess
import time
import urllib.request

import pytest

import harness
from harness import Envoy, HarnessError, Modelsim, Proc, chat_body, epp_bin, free_port, wait_until
from harness import request as http

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
HOSTS = ("127.0.0.1", "127.0.0.2", "127.0.0.3")
SERVED = ["--served-model-name", "llama"]
LATENCIES = []


def shared_free_port():
    """A port free on every host in HOSTS."""
    for _ in range(50):
        port = free_port(HOSTS[0])
        ok = True
        for h in HOSTS[1:]:
            with socket.socket() as s:
                try:
                    s.bind((h, port))
                except OSError:
                    ok = False
                    break
        if ok:
            return port
    raise HarnessError("no port free on all of %s" % (HOSTS,))


class KubeEpp:
    """epp in Kubernetes mode; `auth` is ("kubeconfig", path) or ("incluster", dir, env)."""

    def __init__(self, workdir, name, ns, auth, extra_args=()):
        self.name = name
        self.grpc_port = free_port()
        self.health_port = free_port()
        self.metrics_port = free_port()
        argv = [epp_bin(), "--pool-name", "pool", "--pool-namespace", ns,
                "--grpc-port", str(self.grpc_port), "--grpc-health-port", str(self.health_port),
                "--metrics-port", str(self.metrics_port), "--secure-serving=false",
                "--refresh-metrics-interval", "50ms", "-v", "3"] + list(extra_args)
        env = dict(os.environ)
        env.pop("KUBECONFIG", None)
        env.pop("KUBERNETES_SERVICE_HOST", None)
        if auth[0] == "kubeconfig":
            argv += ["--kubeconfig", auth[1]]
        else:
            argv += ["--service-account-dir", auth[1]]
            env.update(auth[2])
        self.proc = Proc(name, argv, os.path.join(workdir, "%s.log" % name), env=env)
        wait_until(lambda: harness.tcp_connectable("127.0.0.1", self.metrics_port),
                   "%s admin port" % name, procs=[self.proc])

    def debug(self, path="/debug/endpoints"):
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (self.metrics_port, path),
                                    timeout=5) as r:
            return json.loads(r.read())

    def endpoints(self):
        """{name: "ip:port"} as epp sees them."""
        out = {}
        data = self.debug()
        for e in data if isinstance(data, list) else data["endpoints"]:
            out[e["name"]] = "%s:%s" % (e["address"], e["port"])
        return out

    def health(self, service="readiness"):
        try:
            return harness.grpc_health_check(self.health_port, service)
        except (OSError, HarnessError):
            return "UNREACHABLE"


@pytest.fixture(scope="module")
def env(request, kube, tmp_path_factory):
    harness.require_epp()
    workdir = str(tmp_path_factory.mktemp("kubernetes"))
    ns = kube.unique_namespace("epp")
    for crd in sorted(glob.glob(os.path.join(ROOT, "deploy", "crds", "*.yaml"))):
        kube.apply_yaml_file(crd)
    kube.apply_yaml_file(os.path.join(ROOT, "deploy", "rbac", "epp-rbac.yaml"),
                         substitutions={"namespace: default": "namespace: %s" % ns})
    token = kube.create_sa_token(ns, "epp")
    kubeconfig = os.path.join(workdir, "kubeconfig")
    kube.write_kubeconfig(kubeconfig, token=token, namespace=ns)

    port = shared_free_port()
    procs = []
    state = type("Env", (), {})()
    try:
        state.sims = [Modelsim(i, h, workdir, SERVED, port=port) for i, h in enumerate(HOSTS)]
        procs += [s.proc for s in state.sims]
        for i, h in enumerate(HOSTS):
            kube.make_pod(ns, "sim-%d" % i, {"app": "sim"}, port=port)
            kube.set_pod_ready(ns, "sim-%d" % i, h)
        kube.apply(pool_object(ns, [port]))
        state.epp = KubeEpp(workdir, "epp", ns, ("kubeconfig", kubeconfig))
        procs.append(state.epp.proc)
        state.envoy = Envoy(workdir, "envoy", "full_duplex", False, state.epp.grpc_port)
        procs.append(state.envoy.proc)
        state.kube, state.ns, state.port, state.workdir = kube, ns, port, workdir
        state.token = token
        state.procs = procs
        yield state
    finally:
        for p in reversed(procs):
            p.stop()
        if LATENCIES:
            print("\nkubernetes: change -> epp latency over %d changes: max %.3f s, mean %.3f s"
                  % (len(LATENCIES), max(LATENCIES), sum(LATENCIES) / len(LATENCIES)))


def pool_object(ns, ports, labels=None):
    return {"apiVersion": "inference.networking.k8s.io/v1", "kind": "InferencePool",
            "metadata": {"name": "pool", "namespace": ns},
            "spec": {"selector": {"matchLabels": labels or {"app": "sim"}},
                     "targetPorts": [{"number": p} for p in ports],
                     "endpointPickerRef": {"name": "epp", "port": {"number": 9002}}}}


def follows(epp, want, what):
    """Waits until epp's endpoint set equals `want` and records how long it took."""
    t0 = time.monotonic()
    wait_until(lambda: epp.endpoints() == want, "epp endpoints == %s (%s)" % (want, what),
               timeout=30, interval=0.02, procs=[epp.proc])
    LATENCIES.append(time.monotonic() - t0)


def all_three(env):
    return {"sim-%d-rank-0" % i: "%s:%d" % (h, env.port) for i, h in enumerate(HOSTS)}


def send(env, headers=None, model="llama"):
    st, hdrs, body = http(env.envoy.port, "POST", "/v1/chat/completions",
                          body=chat_body("hi", model=model, max_tokens=2), headers=headers,
                          timeout=30)
    return st, hdrs, body


def test_serves_the_pool_from_the_api_server(env):
    follows(env.epp, all_three(env), "initial sync")
    assert env.epp.health("readiness") == "SERVING"
    assert env.epp.health("") == "SERVING"
    seen = set()
    for _ in range(30):
        st, _, body = send(env)
        assert st == 200, body
        seen.add(json.loads(body)["model"])
    assert seen == {"llama"}
    served = [s.metric("vllm:request_success_total", finished_reason="length") or 0
              for s in env.sims]
    assert sum(served) >= 30 and all(v > 0 for v in served), served
    kube = env.epp.debug("/debug/kubernetes")
    assert all(w["synced"] and w["last_error"] == "" for w in kube["watchers"]), kube
    assert kube["leader"] is True


def test_endpoints_follow_pod_changes(env):
    kube, ns = env.kube, env.ns
    follows(env.epp, all_three(env), "start")
    kube.set_pod_ready(ns, "sim-2", HOSTS[2], ready=False)
    want = all_three(env)
    del want["sim-2-rank-0"]
    follows(env.epp, want, "pod not ready")
    kube.patch("/api/v1/namespaces/%s/pods/sim-1" % ns, {"metadata": {"labels": {"app": "x"}}})
    del want["sim-1-rank-0"]
    follows(env.epp, want, "pod relabelled out of the selector")
    for _ in range(5):
        st, _, _ = send(env)
        assert st == 200
    assert env.sims[0].metric("vllm:num_requests_running") is not None
    kube.patch("/api/v1/namespaces/%s/pods/sim-1" % ns, {"metadata": {"labels": {"app": "sim"}}})
    kube.set_pod_ready(ns, "sim-2", HOSTS[2], ready=True)
    follows(env.epp, all_three(env), "pods back")

    # A pod whose active-ports annotation names no target port serves nothing.
    kube.make_pod(ns, "sim-idle", {"app": "sim"},
                  annotations={"llm-d.ai/active-ports": "1"}, port=env.port)
    kube.set_pod_ready(ns, "sim-idle", HOSTS[0])
    # A terminating pod (deleted with a node name: it lingers with a deletionTimestamp).
    kube.make_pod(ns, "sim-term", {"app": "sim"}, node_name="node-1", port=env.port)
    kube.set_pod_ready(ns, "sim-term", HOSTS[1])
    want = dict(all_three(env))
    want["sim-term-rank-0"] = "%s:%d" % (HOSTS[1], env.port)
    follows(env.epp, want, "terminating-to-be pod ready")
    kube.delete_pod(ns, "sim-term")
    assert kube.get("/api/v1/namespaces/%s/pods/sim-term" % ns)["metadata"].get(
        "deletionTimestamp")
    follows(env.epp, all_three(env), "pod terminating")
    kube.delete_pod(ns, "sim-idle")
    kube.delete_pod(ns, "sim-term", grace_period_seconds=0)


def test_pool_updates_and_deletion_drive_endpoints_and_readiness(env):
    kube, ns = env.kube, env.ns
    follows(env.epp, all_three(env), "start")
    other = free_port()
    kube.apply(pool_object(ns, [env.port, other]))
    want = dict(all_three(env))
    for i, h in enumerate(HOSTS):
        want["sim-%d-rank-1" % i] = "%s:%d" % (h, other)
    follows(env.epp, want, "second target port")
    kube.delete("/apis/inference.networking.k8s.io/v1/namespaces/%s/inferencepools/pool" % ns)
    follows(env.epp, {}, "pool deleted")
    wait_until(lambda: env.epp.health("readiness") == "NOT_SERVING", "readiness off",
               procs=[env.epp.proc])
    kube.apply(pool_object(ns, [env.port]))
    follows(env.epp, all_three(env), "pool re-created")
    wait_until(lambda: env.epp.health("readiness") == "SERVING", "readiness back",
               procs=[env.epp.proc])


def test_negative_priority_objective_is_shed_while_saturated(env):
    kube, ns = env.kube, env.ns
    follows(env.epp, all_three(env), "start")
    objectives = "/apis/inference.networking.x-k8s.io/v1alpha2/namespaces/%s/inferenceobjectives" % ns
    for name, prio in (("batch", -1), ("chat", 10)):
        kube.apply({"apiVersion": "inference.networking.x-k8s.io/v1alpha2",
                    "kind": "InferenceObjective", "metadata": {"name": name, "namespace": ns},
                    "spec": {"priority": prio, "poolRef": {"name": "pool"}}})
    batch = {"x-gateway-inference-objective": "batch"}
    # Idle servers with fresh metrics: nothing is shed (endpoints that have not been scraped yet,
    # e.g. just after the previous test re-created the pool, count as saturated: wait for it).
    wait_until(lambda: send(env, batch)[0] == 200, "batch served by idle servers", timeout=30,
               procs=[env.epp.proc])
    # Every server's /metrics hangs: metrics go stale, which counts as saturated.
    for s in env.sims:
        assert s.post("/sim/faults", {"metrics_delay_ms": 60000})[0] == 200
    try:
        wait_until(lambda: send(env, batch)[0] == 429, "batch requests shed (429)", timeout=30,
                   procs=[env.epp.proc])
        for headers in ({"x-gateway-inference-objective": "chat"}, None,
                        {"x-gateway-inference-objective": "unknown"}):
            st, _, body = send(env, headers)
            assert st == 200, (headers, body)
    finally:
        for s in env.sims:
            s.post("/sim/faults", {"metrics_delay_ms": 0})
    wait_until(lambda: send(env, batch)[0] == 200, "batch served again", timeout=30,
               procs=[env.epp.proc])
    # The objective changes priority: it is no longer sheddable.
    kube.delete(objectives + "/batch")


def test_model_rewrite_objects_rename_requests(env):
    kube, ns = env.kube, env.ns
    follows(env.epp, all_three(env), "start")
    path = "/apis/inference.networking.x-k8s.io/v1alpha2/namespaces/%s/inferencemodelrewrites" % ns
    st, _, _ = send(env, model="alias")
    assert st == 404  # modelsim serves only "llama"
    kube.apply({"apiVersion": "inference.networking.x-k8s.io/v1alpha2",
                "kind": "InferenceModelRewrite", "metadata": {"name": "alias", "namespace": ns},
                "spec": {"poolRef": {"name": "pool"},
                         "rules": [{"matches": [{"model": {"type": "Exact", "value": "alias"}}],
                                    "targets": [{"modelRewrite": "llama"}]}]}})
    wait_until(lambda: send(env, model="alias")[0] == 200, "alias rewritten to llama",
               timeout=30, procs=[env.epp.proc])
    st, _, body = send(env, model="alias")
    assert json.loads(body)["model"] == "alias"  # the client reads its own name back
    # A rewrite for another pool changes nothing; deleting ours ends the rename.
    kube.apply({"apiVersion": "inference.networking.x-k8s.io/v1alpha2",
                "kind": "InferenceModelRewrite", "metadata": {"name": "other", "namespace": ns},
                "spec": {"poolRef": {"name": "not-this-pool"},
                         "rules": [{"targets": [{"modelRewrite": "nope"}]}]}})
    kube.delete(path + "/alias")
    wait_until(lambda: send(env, model="alias")[0] == 404, "rewrite removed", timeout=30,
               procs=[env.epp.proc])
    assert send(env)[0] == 200  # the other pool's catch-all rule did not apply
    kube.delete(path + "/other")


def test_survives_an_api_server_restart(env):
    kube, ns = env.kube, env.ns
    follows(env.epp, all_three(env), "start")
    before = env.epp.debug("/debug/kubernetes")
    kube.restart_apiserver(down_s=1.0)
    # Requests keep flowing while the API server is away and after.
    assert send(env)[0] == 200
    kube.make_pod(ns, "sim-late", {"app": "sim"}, port=env.port)
    kube.set_pod_ready(ns, "sim-late", HOSTS[0])
    want = dict(all_three(env))
    want["sim-late-rank-0"] = "%s:%d" % (HOSTS[0], env.port)
    follows(env.epp, want, "pod created after the restart")
    after = env.epp.debug("/debug/kubernetes")
    pods_before = [w for w in before["watchers"] if w["resource"] == "pods"][0]
    pods_after = [w for w in after["watchers"] if w["resource"] == "pods"][0]
    assert pods_after["watches"] > pods_before["watches"], (pods_before, pods_after)
    kube.delete_pod(ns, "sim-late")
    follows(env.epp, all_three(env), "pod deleted")
    assert env.epp.health("readiness") == "SERVING"


def test_forbidden_without_rbac_is_reported_not_fatal(env, tmp_path):
    """A token without the Role: epp keeps running, stays not ready, and says why."""
    token = env.kube.create_sa_token(env.ns, "no-rbac")
    kubeconfig = str(tmp_path / "kubeconfig")
    env.kube.write_kubeconfig(kubeconfig, token=token, namespace=env.ns)
    epp = KubeEpp(str(tmp_path), "epp-norbac", env.ns, ("kubeconfig", kubeconfig))
    try:
        def forbidden():
            w = epp.debug("/debug/kubernetes")["watchers"]
            return all("403" in x["last_error"] for x in w)
        wait_until(forbidden, "every watcher reports 403", timeout=30, procs=[epp.proc])
        assert epp.health("readiness") == "NOT_SERVING"
        assert epp.proc.alive()
    finally:
        epp.proc.stop()


def test_leader_election_one_ready_and_takeover(env, tmp_path):
    """Two replicas with --ha-enable-leader-election, configured in-cluster style (token file,
    CA and namespace in a directory, KUBERNETES_SERVICE_HOST/PORT): both serve, exactly one is
    ready; when the leader is killed (SIGKILL: no release), the other takes over once the lease
    expires."""
    replicas = []
    try:
        for i in range(2):
            sa_dir = str(tmp_path / ("sa%d" % i))
            os.makedirs(sa_dir)
            envvars = env.kube.write_incluster_dir(sa_dir, token=env.token, namespace=env.ns)
            replicas.append(KubeEpp(str(tmp_path), "epp-ha%d" % i, env.ns,
                                    ("incluster", sa_dir, envvars),
                                    ["--ha-enable-leader-election"]))

        def ready():
            return [r.health("readiness") for r in replicas]
        wait_until(lambda: sorted(ready()) == ["NOT_SERVING", "SERVING"], "exactly one leader",
                   timeout=40, procs=[r.proc for r in replicas])
        for r in replicas:
            assert r.health("liveness") == "SERVING"
            follows(r, all_three(env), "replica %s synced" % r.name)  # followers serve too
        leader = replicas[ready().index("SERVING")]
        follower = replicas[1 - replicas.index(leader)]
        lease = env.kube.get("/apis/coordination.k8s.io/v1/namespaces/%s/leases/"
                             "epp-%s-pool.gateway-api-inference-extension.sigs.k8s.io" % (env.ns, env.ns))
        assert lease["spec"]["holderIdentity"], lease
        t0 = time.monotonic()
        leader.proc.kill()
        wait_until(lambda: follower.health("readiness") == "SERVING", "follower takes over",
                   timeout=40, procs=[follower.proc])
        print("\nleader election: takeover after SIGKILL in %.1f s" % (time.monotonic() - t0))
    finally:
        for r in replicas:
            r.proc.stop()


BAD_STARTS = [
    ("leader-election-without-pool", ["--ha-enable-leader-election"], "--pool-name"),
    ("missing-kubeconfig", ["--pool-name", "p", "--kubeconfig", "/nonexistent/kc"],
     "/nonexistent/kc"),
    ("bad-pool-group", ["--pool-name", "p", "--pool-group", "example.com", "--kubeconfig",
                        "{kubeconfig}"], "--pool-group"),
    ("pool-and-file-discovery", ["--pool-name", "p", "--kubeconfig", "{kubeconfig}",
                                 "--config-text", "{file_discovery}"], "dataLayer.discovery"),
    ("exec-plugin", ["--pool-name", "p", "--kubeconfig", "{exec_kubeconfig}"], "exec"),
]


@pytest.mark.parametrize("name,args,want", BAD_STARTS, ids=[c[0] for c in BAD_STARTS])
def test_bad_kubernetes_start_exits_naming_the_problem(name, args, want, tmp_path):
    """Misconfiguration is refused at start (status 2) with a message naming the flag or file;
    no API server is needed to find out."""
    harness.require_epp()
    kubeconfig = tmp_path / "kc"
    kubeconfig.write_text("current-context: c\ncontexts: [{name: c, context: {cluster: k, "
                          "user: u}}]\nclusters: [{name: k, cluster: {server: "
                          "'https://127.0.0.1:1'}}]\nusers: [{name: u, user: {token: t}}]\n")
    exec_kubeconfig = tmp_path / "kc-exec"
    exec_kubeconfig.write_text("current-context: c\ncontexts: [{name: c, context: {cluster: k, "
                               "user: u}}]\nclusters: [{name: k, cluster: {server: "
                               "'https://127.0.0.1:1'}}]\nusers: [{name: u, user: {exec: "
                               "{command: aws}}}]\n")
    file_discovery = ("apiVersion: inference.networking.x-k8s.io/v1alpha1\n"
                      "kind: EndpointPickerConfig\nplugins:\n- type: file-discovery\n"
                      "  parameters: {path: /nonexistent}\n"
                      "dataLayer:\n  discovery: {pluginRef: file-discovery}\n")
    argv = [a.format(kubeconfig=kubeconfig, exec_kubeconfig=exec_kubeconfig,
                     file_discovery=file_discovery) for a in args]
    env = dict(os.environ)
    env.pop("KUBECONFIG", None)
    env.pop("KUBERNETES_SERVICE_HOST", None)
    r = subprocess.run([epp_bin(), "--grpc-port", "0", "--grpc-health-port", "0",
                        "--metrics-port", "0", "--secure-serving=false"] + argv,
                       capture_output=True, text=True, timeout=30, env=env)
    assert r.returncode == 2, (r.returncode, r.stderr[-500:])
    assert want in r.stderr, r.stderr[-500:]


@pytest.mark.parametrize("case", ["wrong-ca", "wrong-server-name", "garbage-ca"])
def test_api_server_certificate_is_verified(env, tmp_path, case):
    """The API server's certificate is checked against the configured CA and the address (or
    tls-server-name): a mismatch is a retried, reported error (not ready); CA bytes that are not
    a certificate stop epp at start naming the field."""
    import base64
    import k8s_env
    kc = {"apiVersion": "v1", "kind": "Config", "current-context": "c",
          "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
          "users": [{"name": "u", "user": {"token": env.token}}]}
    cluster = {"server": env.kube.server}
    if case == "wrong-ca":
        other = k8s_env.make_pki(str(tmp_path / "other-pki"))
        with open(other.ca_crt, "rb") as f:
            cluster["certificate-authority-data"] = base64.b64encode(f.read()).decode()
    elif case == "wrong-server-name":
        cluster["certificate-authority-data"] = base64.b64encode(env.kube.ca_pem).decode()
        cluster["tls-server-name"] = "not-the-apiserver.example"
    else:
        cluster["certificate-authority-data"] = base64.b64encode(b"not a certificate").decode()
    kc["clusters"] = [{"name": "k", "cluster": cluster}]
    path = str(tmp_path / "kubeconfig")
    with open(path, "w") as f:
        json.dump(kc, f)  # JSON is YAML
    if case == "garbage-ca":
        r = subprocess.run([epp_bin(), "--pool-name", "pool", "--pool-namespace", env.ns,
                            "--kubeconfig", path, "--grpc-port", "0", "--grpc-health-port", "0",
                            "--metrics-port", "0", "--secure-serving=false"],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 2, (r.returncode, r.stderr[-500:])
        assert "certificate-authority" in r.stderr, r.stderr[-500:]
        return
    epp = KubeEpp(str(tmp_path), "epp-" + case, env.ns, ("kubeconfig", path))
    try:
        def rejected():
            w = epp.debug("/debug/kubernetes")["watchers"]
            return all("certificate verify failed" in x["last_error"] or
                       "TLS handshake" in x["last_error"] for x in w)
        wait_until(rejected, "every watcher reports the TLS failure", timeout=30,
                   procs=[epp.proc])
        assert epp.endpoints() == {}
        assert epp.health("readiness") == "NOT_SERVING"
    finally:
        epp.proc.stop()
