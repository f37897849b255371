"""A real kube-apiserver + etcd on loopback for the Kubernetes client tests (no Docker, no kubelet).

Binaries come from tools/k8s-testenv/build.sh (built once from the Go module proxy and cached;
EPP_K8S_BIN_DIR=<dir> uses a directory holding `kube-apiserver` and `etcd` instead). With
EPP_SKIP_K8S=1 every test that needs them is skipped; otherwise a failing build is a test error.

    with KubeEnv(users=[KubeEnv.service_account_user("t1", "epp")]) as kube:
        kube.create_namespace("t1")
        kube.make_pod("t1", "p0", {"app": "m"})
        kube.set_pod_ready("t1", "p0", "10.1.0.5")
        kube.write_kubeconfig(path, kube.token_for("system:serviceaccount:t1:epp"))

What the bare control plane does not do (no controller-manager, scheduler or kubelet): no default
ServiceAccounts, no namespace finalization (a deleted namespace stays Terminating, so use fresh
namespace names), no garbage collection, Pods stay Pending until a test sets their status. A Pod
with spec.nodeName set only gets a deletionTimestamp when deleted (graceful deletion waits for a
kubelet that never comes); one without nodeName is removed at once.

Authentication: static bearer tokens (CSV file read at apiserver start: users given to the
constructor, or add_user() followed by restart_apiserver()), real ServiceAccount tokens from the
TokenRequest API (create_sa_token), and client certificates signed by the test CA
(make_client_cert). The admin user is `admin` in group system:masters.
"""

import base64
import copy
import ctypes
import fcntl
import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

import harness
from harness import HarnessError, free_port

BUILD_SCRIPT = os.path.join(harness.ROOT, "tools", "k8s-testenv", "build.sh")

ADMIN_USER = "admin"
ADMIN_GROUPS = ("system:masters",)
READY_TIMEOUT_S = 90.0

# Static-token users of the session fixture `kube` (conftest.py), besides `admin`.
SESSION_SA_NAMESPACE = "epp-test"
SESSION_SA_NAME = "epp"
NO_RBAC_USER = "e2e-no-rbac"


def session_users():
    """[(username, groups)]: system:serviceaccount:epp-test:epp (groups as a real SA token) and
    e2e-no-rbac (system:authenticated only, no bindings)."""
    return [KubeEnv.service_account_user(SESSION_SA_NAMESPACE, SESSION_SA_NAME),
            (NO_RBAC_USER, ["system:authenticated"])]


class KubeError(HarnessError):
    """A Kubernetes API call answered with an unexpected status. `.status` is the HTTP status,
    `.body` the parsed answer (a Status object for API errors), `.reason` its reason
    (e.g. "Conflict", "AlreadyExists", "NotFound", "Forbidden", "Expired")."""

    def __init__(self, method, path, status, body):
        self.method = method
        self.path = path
        self.status = status
        self.body = body
        self.reason = body.get("reason") if isinstance(body, dict) else None
        msg = body.get("message") if isinstance(body, dict) else body
        super().__init__("%s %s -> %s %s: %s" % (method, path, status, self.reason or "", msg))


# ---------------------------------------------------------------------------------------------
# binaries
# ---------------------------------------------------------------------------------------------

def _skip_if_disabled():
    if os.environ.get("EPP_SKIP_K8S") == "1":
        import pytest
        pytest.skip("EPP_SKIP_K8S=1: tests against a real kube-apiserver are disabled")


def k8s_binaries(log_path=None):
    """The directory holding `kube-apiserver` and `etcd`: $EPP_K8S_BIN_DIR, or what
    tools/k8s-testenv/build.sh prints (it builds them on the first call, 15-25 min cold). Calls
    of this function are serialized with a lock file so two test runs never build at once.
    Raises HarnessError with the tail of the build log when the build fails."""
    _skip_if_disabled()
    d = os.environ.get("EPP_K8S_BIN_DIR")
    if not d:
        lock_dir = os.environ.get("EPP_K8S_CACHE", os.path.expanduser("~/.cache/epp-k8s"))
        os.makedirs(lock_dir, exist_ok=True)
        if log_path is None:
            log_path = os.path.join(tempfile.gettempdir(), "epp-k8s-build-%d.log" % os.getpid())
        with open(os.path.join(lock_dir, ".build.lock"), "w") as lockf:
            fcntl.flock(lockf, fcntl.LOCK_EX)
            try:
                with open(log_path, "ab") as logf:
                    r = subprocess.run(["bash", BUILD_SCRIPT], stdout=subprocess.PIPE,
                                       stderr=logf, stdin=subprocess.DEVNULL)
            finally:
                fcntl.flock(lockf, fcntl.LOCK_UN)
        out = r.stdout.decode(errors="replace").strip().splitlines()
        if r.returncode != 0 or not out:
            raise HarnessError("%s failed (exit %d); last lines of %s:\n%s"
                               % (BUILD_SCRIPT, r.returncode, log_path, _tail_file(log_path, 40)))
        d = out[-1].strip()
    for b in ("kube-apiserver", "etcd"):
        if not os.access(os.path.join(d, b), os.X_OK):
            raise HarnessError("%s/%s missing or not executable" % (d, b))
    return d


def _tail_file(path, lines=40):
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - (64 << 10)))
            return "\n".join(f.read().decode("utf-8", "replace").splitlines()[-lines:])
    except OSError as e:
        return "[no log: %s]" % e


# ---------------------------------------------------------------------------------------------
# PKI (openssl CLI)
# ---------------------------------------------------------------------------------------------

def _openssl(*args, cwd=None):
    r = subprocess.run(["openssl"] + list(args), cwd=cwd, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    if r.returncode != 0:
        raise HarnessError("openssl %s failed:\n%s" % (" ".join(args), r.stdout.decode(errors="replace")))


class Pki:
    """Paths of a throw-away CA, a serving cert for 127.0.0.1/localhost and an SA signing key.
    Attributes: dir, ca_crt, ca_key, server_crt, server_key, sa_key."""

    def __init__(self, directory):
        self.dir = directory
        os.makedirs(directory, exist_ok=True)
        self.ca_crt = os.path.join(directory, "ca.crt")
        self.ca_key = os.path.join(directory, "ca.key")
        self.server_crt = os.path.join(directory, "apiserver.crt")
        self.server_key = os.path.join(directory, "apiserver.key")
        self.sa_key = os.path.join(directory, "sa.key")
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "3650",
                 "-keyout", self.ca_key, "-out", self.ca_crt, "-subj", "/CN=epp-test-ca",
                 "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        self._sign("apiserver", "/CN=kube-apiserver", server=True)
        _openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                 "-out", self.sa_key)

    def _sign(self, stem, subject, server=False):
        key = os.path.join(self.dir, stem + ".key")
        csr = os.path.join(self.dir, stem + ".csr")
        crt = os.path.join(self.dir, stem + ".crt")
        ext = os.path.join(self.dir, stem + ".ext")
        lines = ["basicConstraints=CA:FALSE",
                 "keyUsage=critical,digitalSignature,keyEncipherment",
                 "subjectKeyIdentifier=hash",
                 "authorityKeyIdentifier=keyid,issuer"]
        if server:
            lines += ["extendedKeyUsage=serverAuth",
                      "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,"
                      "DNS:kubernetes.default,DNS:kubernetes.default.svc,IP:10.0.0.1"]
        else:
            lines += ["extendedKeyUsage=clientAuth"]
        with open(ext, "w") as f:
            f.write("\n".join(lines) + "\n")
        _openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
                 "-subj", subject)
        _openssl("x509", "-req", "-in", csr, "-CA", self.ca_crt, "-CAkey", self.ca_key,
                 "-CAcreateserial", "-sha256", "-days", "3650", "-out", crt, "-extfile", ext)
        return crt, key

    def client_cert(self, user, groups=()):
        """A client certificate CN=user, O=group... signed by the CA. Returns (crt, key) paths."""
        subject = "/CN=%s" % user.replace("/", "\\/") + "".join(
            "/O=%s" % g.replace("/", "\\/") for g in groups)
        stem = "client-" + "".join(c if c.isalnum() else "_" for c in user)
        return self._sign(stem, subject)

    def ssl_context(self):
        return ssl.create_default_context(cafile=self.ca_crt)


def make_pki(directory):
    """Creates CA + serving cert (SAN IP:127.0.0.1, DNS:localhost) + SA key in `directory`."""
    return Pki(directory)


# ---------------------------------------------------------------------------------------------
# processes
# ---------------------------------------------------------------------------------------------

def _die_with_parent():
    # PR_SET_PDEATHSIG: the child gets SIGKILL when the test process dies without cleaning up.
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)
    except Exception:  # noqa: BLE001
        pass


class _Proc(harness.Proc):
    """harness.Proc that also dies with the test process (PR_SET_PDEATHSIG)."""

    def __init__(self, name, argv, log_path, env=None):  # pylint: disable=super-init-not-called
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        with open(log_path, "ab") as logf:
            logf.write(("\n$ %s\n" % " ".join(self.argv)).encode())
            logf.flush()
            self.popen = subprocess.Popen(self.argv, stdout=logf, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL, env=env,
                                          start_new_session=True, preexec_fn=_die_with_parent)

    def rss_kb(self, peak=False):
        """VmRSS (peak=True: VmHWM, the high-water mark) in kB, None when gone."""
        field = "VmHWM:" if peak else "VmRSS:"
        try:
            with open("/proc/%d/status" % self.pid) as f:
                for line in f:
                    if line.startswith(field):
                        return int(line.split()[1])
        except OSError:
            pass
        return None


# ---------------------------------------------------------------------------------------------
# watch reader (works against the real apiserver and the fake)
# ---------------------------------------------------------------------------------------------

class WatchStream:
    """One watch request, read event by event. `status` is the HTTP status; when it is not 200,
    `error` holds the parsed body and next() returns None.

    next(timeout=10) -> event dict ({"type", "object"}) or None at end of stream; raises
    TimeoutError when nothing arrives within `timeout`. `events` keeps every event read."""

    def __init__(self, base_url, path, query=None, token=None, ssl_context=None, timeout=30.0):
        u = urllib.parse.urlsplit(base_url)
        self.path = path + ("?" + urllib.parse.urlencode(query) if query else "")
        if u.scheme == "https":
            self.conn = http.client.HTTPSConnection(u.hostname, u.port, context=ssl_context,
                                                    timeout=timeout)
        else:
            self.conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = "Bearer " + token
        self.conn.request("GET", self.path, headers=headers)
        self.resp = self.conn.getresponse()
        self.status = self.resp.status
        self.headers = {k.lower(): v for k, v in self.resp.getheaders()}
        self.error = None
        self.events = []
        self.closed = False
        if self.status != 200:
            raw = self.resp.read()
            try:
                self.error = json.loads(raw)
            except ValueError:
                self.error = raw.decode(errors="replace")
            self.close()

    def next(self, timeout=10.0):
        if self.closed:
            return None
        self.conn.sock.settimeout(timeout)
        try:
            line = self.resp.readline()
        except socket.timeout:
            raise TimeoutError("no watch event within %.1fs on %s" % (timeout, self.path))
        except (http.client.IncompleteRead, ConnectionError, ssl.SSLError, OSError):
            self.close()
            return None
        if not line:
            self.close()
            return None
        ev = json.loads(line)
        self.events.append(ev)
        return ev

    def wait_for(self, pred, timeout=10.0, what="a matching watch event"):
        """Reads events until pred(event) is true; returns that event. Raises TimeoutError, or
        HarnessError when the stream ends first."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("timed out waiting for %s; events so far: %s"
                                   % (what, [e.get("type") for e in self.events]))
            ev = self.next(timeout=left)
            if ev is None:
                raise HarnessError("watch ended while waiting for %s; events: %s"
                                   % (what, [e.get("type") for e in self.events]))
            if pred(ev):
                return ev

    def __iter__(self):
        while True:
            ev = self.next()
            if ev is None:
                return
            yield ev

    def close(self):
        self.closed = True
        try:
            self.conn.close()
        except Exception:  # noqa: BLE001
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ---------------------------------------------------------------------------------------------
# KubeEnv
# ---------------------------------------------------------------------------------------------

def _kubeconfig_dict(server, ca_pem=None, token=None, client_cert=None, namespace=None,
                     user_name="test-user"):
    cluster = {"server": server}
    if ca_pem is not None:
        cluster["certificate-authority-data"] = base64.b64encode(ca_pem).decode()
    user = {}
    if token is not None:
        user["token"] = token
    if client_cert is not None:
        with open(client_cert[0], "rb") as f:
            user["client-certificate-data"] = base64.b64encode(f.read()).decode()
        with open(client_cert[1], "rb") as f:
            user["client-key-data"] = base64.b64encode(f.read()).decode()
    ctx = {"cluster": "epp-test", "user": user_name}
    if namespace:
        ctx["namespace"] = namespace
    return {
        "apiVersion": "v1", "kind": "Config", "preferences": {},
        "clusters": [{"name": "epp-test", "cluster": cluster}],
        "users": [{"name": user_name, "user": user}],
        "contexts": [{"name": "epp-test", "context": ctx}],
        "current-context": "epp-test",
    }


def write_kubeconfig_file(path, server, ca_pem=None, token=None, client_cert=None,
                          namespace=None, user_name="test-user"):
    """Writes a kubeconfig (YAML) for `server`. Shared by KubeEnv and FakeApiServer."""
    cfg = _kubeconfig_dict(server, ca_pem, token, client_cert, namespace, user_name)
    try:
        import yaml
        text = yaml.safe_dump(cfg, default_flow_style=False, sort_keys=False)
    except ImportError:
        text = json.dumps(cfg, indent=2)  # JSON is valid YAML
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    return path


def write_incluster_files(directory, port, ca_pem, token, namespace):
    """The files of /var/run/secrets/kubernetes.io/serviceaccount; returns the env vars."""
    os.makedirs(directory, exist_ok=True)
    for name, data in (("token", token.encode()), ("ca.crt", ca_pem),
                       ("namespace", namespace.encode())):
        tmp = os.path.join(directory, "." + name + ".tmp")
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, os.path.join(directory, name))  # atomic, like a rotated projected token
    return {"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": str(port)}


_CORE_PATHS = {"v1": "/api/v1"}


class KubeEnv:
    """etcd + kube-apiserver on free 127.0.0.1 ports, plus a REST helper. See the module doc."""

    def __init__(self, workdir=None, users=(), min_request_timeout=None,
                 extra_apiserver_args=(), ready_timeout=READY_TIMEOUT_S, bin_dir=None):
        """users: iterable of (username, groups) given static tokens (token_for(username)).
        min_request_timeout: --min-request-timeout seconds (server-side watch timeout is a random
        value in [T, 2T] for watches without timeoutSeconds); None keeps the default (1800).
        extra_apiserver_args: more kube-apiserver flags (e.g. "--watch-cache-sizes=pods#0")."""
        self._own_workdir = workdir is None
        self.workdir = workdir or tempfile.mkdtemp(prefix="kubeenv-")
        os.makedirs(self.workdir, exist_ok=True)
        self.min_request_timeout = min_request_timeout
        self.extra_apiserver_args = list(extra_apiserver_args)
        self.ready_timeout = ready_timeout
        self._bin_dir = bin_dir
        self._started = False
        self.users = {}  # username -> {"token": str, "groups": [str]}
        self.add_user(ADMIN_USER, ADMIN_GROUPS)
        for u, g in users:
            self.add_user(u, g)
        self.etcd = None
        self.apiserver = None
        self.pki = None
        self.port = None
        self.etcd_port = None
        self.timings = {"apiserver_ready_s": []}
        self._ssl = None
        self._discovery = {}

    # -- users / tokens ---------------------------------------------------------------------------

    @staticmethod
    def service_account_user(namespace, name):
        """(username, groups) a ServiceAccount token authenticates as."""
        return ("system:serviceaccount:%s:%s" % (namespace, name),
                ["system:serviceaccounts", "system:serviceaccounts:%s" % namespace,
                 "system:authenticated"])

    def add_user(self, username, groups=(), token=None):
        """Adds a static-token user; returns its token. The token file is read when the apiserver
        starts: after start, call restart_apiserver() for the user to become valid."""
        if username in self.users and token is None:
            return self.users[username]["token"]
        token = token or secrets.token_hex(24)
        self.users[username] = {"token": token, "groups": list(groups)}
        if self._started:
            self._write_tokens()
        return token

    def token_for(self, username):
        return self.users[username]["token"]

    @property
    def admin_token(self):
        return self.users[ADMIN_USER]["token"]

    def _write_tokens(self):
        path = os.path.join(self.workdir, "tokens.csv")
        with open(path, "w") as f:
            for u, rec in self.users.items():
                f.write('%s,%s,%s,"%s"\n' % (rec["token"], u, u, ",".join(rec["groups"])))
        return path

    def make_client_cert(self, user, groups=()):
        """(crt_path, key_path) of a client certificate CN=user, O=groups (x509 client auth)."""
        return self.pki.client_cert(user, groups)

    def create_sa_token(self, namespace, name, expiration_seconds=3600, audiences=None):
        """Creates ServiceAccount namespace/name if missing and returns a real bound token for it
        from the TokenRequest API (an identity that needs no apiserver restart)."""
        self.apply({"apiVersion": "v1", "kind": "ServiceAccount",
                    "metadata": {"name": name, "namespace": namespace}})
        spec = {"expirationSeconds": expiration_seconds}
        if audiences:
            spec["audiences"] = list(audiences)
        path = "/api/v1/namespaces/%s/serviceaccounts/%s/token" % (namespace, name)
        st, body = self.api("POST", path, {"apiVersion": "authentication.k8s.io/v1",
                                           "kind": "TokenRequest", "spec": spec})
        if st not in (200, 201):
            raise KubeError("POST", path, st, body)
        return body["status"]["token"]

    # -- lifecycle --------------------------------------------------------------------------------

    @property
    def server(self):
        return "https://127.0.0.1:%d" % self.port

    @property
    def ca_pem(self):
        with open(self.pki.ca_crt, "rb") as f:
            return f.read()

    @property
    def ssl_context(self):
        return self._ssl

    def start(self):
        if self._started:
            return self
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self):
        bins = self._bin_dir or k8s_binaries(os.path.join(self.workdir, "build.log"))
        self.apiserver_bin = os.path.join(bins, "kube-apiserver")
        self.etcd_bin = os.path.join(bins, "etcd")
        self.pki = Pki(os.path.join(self.workdir, "pki"))
        self._ssl = self.pki.ssl_context()
        self._started = True
        self._write_tokens()
        self.etcd_port = free_port()
        peer_port = free_port()
        self.port = free_port()
        self.etcd_data = os.path.join(self.workdir, "etcd-data")
        t0 = time.monotonic()
        self.etcd = _Proc("etcd", [
            self.etcd_bin, "--name", "default", "--data-dir", self.etcd_data,
            "--unsafe-no-fsync", "--log-level", "warn",
            "--listen-client-urls", "http://127.0.0.1:%d" % self.etcd_port,
            "--advertise-client-urls", "http://127.0.0.1:%d" % self.etcd_port,
            "--listen-peer-urls", "http://127.0.0.1:%d" % peer_port,
            "--initial-advertise-peer-urls", "http://127.0.0.1:%d" % peer_port,
            "--initial-cluster", "default=http://127.0.0.1:%d" % peer_port,
        ], os.path.join(self.workdir, "etcd.log"))

        def etcd_healthy():
            with urllib.request.urlopen("http://127.0.0.1:%d/health" % self.etcd_port,
                                        timeout=2) as r:
                return json.loads(r.read()).get("health") == "true"
        self._wait(etcd_healthy, "etcd /health", 30.0, [self.etcd])
        self.timings["etcd_ready_s"] = time.monotonic() - t0
        self.start_apiserver()

    def _apiserver_argv(self):
        p = self.pki
        argv = [
            self.apiserver_bin,
            "--etcd-servers=http://127.0.0.1:%d" % self.etcd_port,
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
            "--secure-port=%d" % self.port,
            "--cert-dir=%s" % p.dir,
            "--tls-cert-file=%s" % p.server_crt, "--tls-private-key-file=%s" % p.server_key,
            "--client-ca-file=%s" % p.ca_crt,
            "--token-auth-file=%s" % os.path.join(self.workdir, "tokens.csv"),
            "--authorization-mode=RBAC",
            "--service-account-issuer=https://127.0.0.1:%d" % self.port,
            "--service-account-key-file=%s" % p.sa_key,
            "--service-account-signing-key-file=%s" % p.sa_key,
            "--service-cluster-ip-range=10.0.0.0/24",
            "--allow-privileged=true",
            "--disable-admission-plugins=ServiceAccount",
        ]
        if self.min_request_timeout is not None:
            argv.append("--min-request-timeout=%d" % self.min_request_timeout)
        return argv + self.extra_apiserver_args

    def start_apiserver(self):
        """Starts kube-apiserver (same port as before) and waits for /readyz. Returns seconds."""
        if self.apiserver is not None and self.apiserver.alive():
            raise HarnessError("kube-apiserver is already running")
        t0 = time.monotonic()
        self.apiserver = _Proc("kube-apiserver", self._apiserver_argv(),
                               os.path.join(self.workdir, "kube-apiserver.log"))
        self._wait(self._readyz, "kube-apiserver /readyz", self.ready_timeout,
                   [self.apiserver, self.etcd])
        dt = time.monotonic() - t0
        self.timings["apiserver_ready_s"].append(dt)
        self._discovery.clear()
        return dt

    def stop_apiserver(self, kill=False, grace=5.0):
        """Stops kube-apiserver: SIGTERM, then SIGKILL after `grace` seconds (kill=True: SIGKILL at
        once, like a crash). Measured with v1.36.3: on SIGTERM the listener closes at once (new
        connections are refused) but open watches stay open and silent, and the process does not
        exit within 60 s while a watch is open (about 1 s without open watches); so with
        watches open a stop takes `grace` seconds and ends them by the kill (connection cut)."""
        if self.apiserver is not None:
            if kill:
                self.apiserver.kill()
            else:
                self.apiserver.stop(grace=grace)

    def restart_apiserver(self, down_s=0.0, kill=False, grace=5.0):
        """stop_apiserver(kill, grace), waits down_s seconds (connections are refused meanwhile),
        starts it on the same port; etcd keeps running, so all objects survive. Returns the
        seconds from start to /readyz. Afterwards a watch from a resourceVersion older than the
        restart gets 200 + an ERROR event (410 Expired, "too old resource version")."""
        self.stop_apiserver(kill=kill, grace=grace)
        if down_s:
            time.sleep(down_s)
        return self.start_apiserver()

    def _readyz(self):
        try:
            st, _ = self.api("GET", "/readyz", timeout=5)
            return st == 200
        except (OSError, http.client.HTTPException):
            return False

    def _wait(self, pred, what, timeout, procs):
        try:
            harness.wait_until(pred, what, timeout=timeout, interval=0.2, procs=procs)
        except HarnessError as e:
            raise HarnessError("%s\n%s" % (e, self.tails(40))) from None

    def stop(self):
        for p in (self.apiserver, self.etcd):
            if p is not None:
                try:
                    p.stop(grace=10.0)
                except Exception:  # noqa: BLE001
                    pass
        self._started = False
        data = getattr(self, "etcd_data", None)
        if data:
            shutil.rmtree(data, ignore_errors=True)  # etcd preallocates 64 MB WAL files
        if self._own_workdir and os.environ.get("EPP_K8S_KEEP_LOGS") != "1":
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def procs(self):
        return [p for p in (self.etcd, self.apiserver) if p is not None]

    def tails(self, lines=40):
        return "\n".join(p.tail(lines) for p in self.procs())

    def rss_kb(self, peak=False):
        """{"kube-apiserver": kB, "etcd": kB}: VmRSS now (peak=True: VmHWM, the high-water mark
        of the current processes)."""
        return {p.name: p.rss_kb(peak) for p in self.procs()}

    def etcd_compact(self):
        """Compacts etcd at its current revision (through etcd's HTTP/JSON gateway) and returns the
        revision. Together with a disabled watch cache (extra_apiserver_args
        ["--watch-cache-sizes=pods#0"]) a watch from an older resourceVersion then gets 410."""
        base = "http://127.0.0.1:%d" % self.etcd_port

        def post(path, obj):
            req = urllib.request.Request(base + path, data=json.dumps(obj).encode(),
                                         headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=10) as r:
                return json.loads(r.read())
        rev = int(post("/v3/kv/range", {"key": base64.b64encode(b"/").decode(),
                                        "keys_only": True, "limit": 1})["header"]["revision"])
        post("/v3/kv/compaction", {"revision": rev, "physical": True})
        return rev

    # -- REST -------------------------------------------------------------------------------------

    def api(self, method, path, body=None, token=None, content_type=None, query=None,
            timeout=30.0, headers=None):
        """One request; returns (status, parsed JSON body | text | None). token None = admin,
        "" = anonymous. body: dict/list (sent as JSON), bytes or str. content_type defaults to
        application/merge-patch+json for PATCH, application/json otherwise. Never raises for an
        HTTP status; raises OSError when the server cannot be reached."""
        url = self.server + path
        if query:
            url += ("&" if "?" in path else "?") + urllib.parse.urlencode(query)
        data = None
        if body is not None:
            if isinstance(body, (dict, list)):
                data = json.dumps(body).encode()
            elif isinstance(body, str):
                data = body.encode()
            else:
                data = body
        hdrs = {"Accept": "application/json"}
        if data is not None:
            hdrs["Content-Type"] = content_type or (
                "application/merge-patch+json" if method == "PATCH" else "application/json")
        tok = self.admin_token if token is None else token
        if tok:
            hdrs["Authorization"] = "Bearer " + tok
        hdrs.update(headers or {})
        req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
        try:
            with urllib.request.urlopen(req, context=self._ssl, timeout=timeout) as r:
                st, raw = r.status, r.read()
        except urllib.error.HTTPError as e:
            st, raw = e.code, e.read()
        if not raw:
            return st, None
        try:
            return st, json.loads(raw)
        except ValueError:
            return st, raw.decode(errors="replace")

    def get(self, path, token=None):
        """The object at `path`, or None on 404; raises KubeError otherwise."""
        st, body = self.api("GET", path, token=token)
        if st == 404:
            return None
        if st != 200:
            raise KubeError("GET", path, st, body)
        return body

    def list(self, path, token=None, **query):
        """A list (dict with items and metadata.resourceVersion); raises KubeError."""
        st, body = self.api("GET", path, token=token, query=query or None)
        if st != 200:
            raise KubeError("GET", path, st, body)
        return body

    def watch(self, path, resource_version=None, token=None, timeout_seconds=None,
              bookmarks=False, label_selector=None, field_selector=None, read_timeout=30.0):
        """Opens a watch on the collection `path`; returns a WatchStream."""
        q = {"watch": "1"}
        if resource_version is not None:
            q["resourceVersion"] = resource_version
        if timeout_seconds is not None:
            q["timeoutSeconds"] = str(timeout_seconds)
        if bookmarks:
            q["allowWatchBookmarks"] = "true"
        if label_selector:
            q["labelSelector"] = label_selector
        if field_selector:
            q["fieldSelector"] = field_selector
        return WatchStream(self.server, path, q, self.admin_token if token is None else token,
                           self._ssl, timeout=read_timeout)

    def _resource(self, api_version, kind, wait_s=10.0):
        """(collection path prefix, plural, namespaced) for apiVersion/kind via discovery."""
        base = _CORE_PATHS.get(api_version, "/apis/" + api_version)
        deadline = time.monotonic() + wait_s
        while True:
            res = self._discovery.get(api_version)
            if res is None or kind not in res:
                st, body = self.api("GET", base)
                res = {}
                if st == 200:
                    for r in body.get("resources", []):
                        if "/" not in r["name"]:
                            res[r["kind"]] = (r["name"], r["namespaced"])
                self._discovery[api_version] = res
            if kind in res:
                plural, namespaced = res[kind]
                return base, plural, namespaced
            if time.monotonic() > deadline:
                raise HarnessError("no resource for %s %s in discovery (%s)" % (api_version, kind, base))
            time.sleep(0.2)

    def path_of(self, obj, namespace=None):
        """(collection path, object path) of a manifest."""
        base, plural, namespaced = self._resource(obj["apiVersion"], obj["kind"])
        md = obj.get("metadata", {})
        if namespaced:
            ns = md.get("namespace") or namespace or "default"
            coll = "%s/namespaces/%s/%s" % (base, ns, plural)
        else:
            coll = "%s/%s" % (base, plural)
        return coll, "%s/%s" % (coll, md["name"])

    def apply(self, obj, namespace=None, token=None):
        """Creates the object, or replaces it (GET + PUT with the current resourceVersion; retried
        on 409). `namespace` fills metadata.namespace of namespaced objects lacking one.
        Returns the stored object; raises KubeError."""
        obj = copy.deepcopy(obj)
        coll, path = self.path_of(obj, namespace)
        _, _, namespaced = self._resource(obj["apiVersion"], obj["kind"])
        if namespaced and not obj["metadata"].get("namespace"):
            obj["metadata"]["namespace"] = namespace or "default"
        for _ in range(10):
            st, cur = self.api("GET", path, token=token)
            if st == 404:
                obj["metadata"].pop("resourceVersion", None)
                st, res = self.api("POST", coll, obj, token=token)
                if st in (200, 201):
                    return res
                if st == 409:
                    continue
                raise KubeError("POST", coll, st, res)
            if st != 200:
                raise KubeError("GET", path, st, cur)
            obj["metadata"]["resourceVersion"] = cur["metadata"]["resourceVersion"]
            st, res = self.api("PUT", path, obj, token=token)
            if st in (200, 201):
                return res
            if st not in (404, 409):
                raise KubeError("PUT", path, st, res)
        raise KubeError("PUT", path, st, res)

    def delete(self, path, grace_period_seconds=None, ignore_missing=True, token=None):
        """DELETE `path` (or a manifest dict). Returns (status, body); raises KubeError on an
        error other than 404 (404 raises too when ignore_missing is False)."""
        if isinstance(path, dict):
            path = self.path_of(path)[1]
        q = None if grace_period_seconds is None else {"gracePeriodSeconds": grace_period_seconds}
        st, body = self.api("DELETE", path, token=token, query=q)
        if st in (200, 202) or (st == 404 and ignore_missing):
            return st, body
        raise KubeError("DELETE", path, st, body)

    def patch(self, path, patch, token=None, content_type="application/merge-patch+json"):
        st, body = self.api("PATCH", path, patch, token=token, content_type=content_type)
        if st != 200:
            raise KubeError("PATCH", path, st, body)
        return body

    def patch_status(self, path, status, token=None):
        """Merge-patches {"status": status} into the status subresource of the object at `path`
        (lists such as conditions are replaced as a whole). Returns the object."""
        return self.patch(path + "/status", {"status": status}, token=token)

    def create_namespace(self, name, labels=None):
        md = {"name": name}
        if labels:
            md["labels"] = dict(labels)
        return self.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": md})

    def unique_namespace(self, prefix="t"):
        """Creates a namespace with a fresh name (namespaces are never finalized here, so reuse
        of a name after deletion does not work). Returns the name."""
        name = "%s-%s" % (prefix, secrets.token_hex(3))
        self.create_namespace(name)
        return name

    def apply_yaml_file(self, path, substitutions=None, namespace=None):
        """Applies every document of a multi-document YAML file in order. substitutions: dict of
        literal text -> replacement applied to the file text before parsing (e.g.
        {"${NAMESPACE}": "t1"}). CRDs are waited for (Established) before the next document.
        Returns the applied objects."""
        import yaml
        with open(path) as f:
            text = f.read()
        for k, v in (substitutions or {}).items():
            text = text.replace(k, str(v))
        out = []
        for doc in yaml.safe_load_all(text):
            if not doc:
                continue
            if doc.get("kind") == "List":
                docs = doc.get("items", [])
            else:
                docs = [doc]
            for d in docs:
                out.append(self.apply(d, namespace=namespace))
                if d.get("kind") == "CustomResourceDefinition":
                    self.wait_crd_established(d["metadata"]["name"])
        return out

    def wait_crd_established(self, name, timeout=60.0):
        """Waits until the CRD is Established and NamesAccepted and a list of its resource
        answers 200 (not 429 "storage is (re)initializing")."""
        path = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/" + name

        def established():
            crd = self.get(path)
            conds = {c["type"]: c["status"] for c in (crd or {}).get("status", {}).get("conditions", [])}
            return conds.get("Established") == "True" and conds.get("NamesAccepted") == "True"
        self._wait(established, "CRD %s Established" % name, timeout, [self.apiserver])
        self._discovery.clear()
        # Right after Established a list can still answer 429 "storage is (re)initializing" (the
        # watch cache of the new resource is not ready yet): wait until a list works.
        crd = self.get(path)
        spec = crd["spec"]
        version = next(v["name"] for v in spec["versions"] if v.get("served", True))
        lpath = "/apis/%s/%s/%s" % (spec["group"], version, spec["names"]["plural"])
        self._wait(lambda: self.api("GET", lpath, query={"limit": "1"})[0] == 200,
                   "list of %s to answer 200" % lpath, timeout, [self.apiserver])

    # -- client configuration ---------------------------------------------------------------------

    def write_kubeconfig(self, path, token=None, namespace=None, client_cert=None,
                         user_name="test-user"):
        """kubeconfig for this apiserver: server https://127.0.0.1:<port>, CA inline, a token user
        (token None and no client_cert = admin token; client_cert = (crt, key) paths from
        make_client_cert), current-context set. Returns path."""
        if token is None and client_cert is None:
            token = self.admin_token
        return write_kubeconfig_file(path, self.server, self.ca_pem, token, client_cert,
                                     namespace, user_name)

    def write_incluster_dir(self, directory, token=None, namespace="default"):
        """Writes token, ca.crt, namespace (the in-cluster ServiceAccount files) into directory and
        returns {"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": "<port>"}.
        Call again with a new token to simulate rotation (files are replaced atomically)."""
        return write_incluster_files(directory, self.port, self.ca_pem,
                                     self.admin_token if token is None else token, namespace)

    # -- Pods -------------------------------------------------------------------------------------

    def make_pod(self, ns, name, labels, annotations=None, node_name=None, port=8000,
                 image="registry.invalid/epp-test/placeholder:latest"):
        """Creates a Pod with one container (never runs: no scheduler/kubelet). node_name set:
        deleting it leaves it Terminating (deletionTimestamp) until delete_pod(...,
        grace_period_seconds=0). Returns the created Pod."""
        md = {"name": name, "namespace": ns, "labels": dict(labels or {})}
        if annotations:
            md["annotations"] = dict(annotations)
        spec = {"containers": [{"name": "server", "image": image,
                                "ports": [{"containerPort": port, "name": "http"}]}],
                "terminationGracePeriodSeconds": 30}
        if node_name:
            spec["nodeName"] = node_name
        path = "/api/v1/namespaces/%s/pods" % ns
        st, body = self.api("POST", path, {"apiVersion": "v1", "kind": "Pod", "metadata": md,
                                           "spec": spec})
        if st != 201:
            raise KubeError("POST", path, st, body)
        return body

    def pod_path(self, ns, name):
        return "/api/v1/namespaces/%s/pods/%s" % (ns, name)

    def set_pod_ready(self, ns, name, ip, ready=True, ips=None, phase="Running"):
        """Sets status: phase, podIP, podIPs (ips, default [ip]), conditions PodScheduled True,
        Ready/ContainersReady True or False. Returns the Pod."""
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        st = "True" if ready else "False"
        status = {
            "phase": phase,
            "podIP": ip,
            "podIPs": [{"ip": a} for a in (ips or [ip])],
            "conditions": [
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
                {"type": "ContainersReady", "status": st, "lastTransitionTime": now},
                {"type": "Ready", "status": st, "lastTransitionTime": now},
            ],
        }
        return self.patch_status(self.pod_path(ns, name), status)

    def delete_pod(self, ns, name, grace_period_seconds=None):
        return self.delete(self.pod_path(ns, name), grace_period_seconds=grace_period_seconds)
