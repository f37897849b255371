"""The example configs in examples/configs start epp and route through Envoy; invalid configs
make epp exit with status 2 and a message naming the plugin and field."""

import glob
import json
import os
import subprocess

import pytest

import harness
from harness import ROOT

EXAMPLES = sorted(glob.glob(os.path.join(ROOT, "examples", "configs", "*.yaml")))


def epp_with_config(workdir, name, text):
    path = os.path.join(workdir, name + ".yaml")
    with open(path, "w") as f:
        f.write(text)
    return path


@pytest.mark.parametrize("example", EXAMPLES, ids=[os.path.basename(e) for e in EXAMPLES])
def test_example_config_routes(example, tmp_path):
    harness.require_epp()
    work = str(tmp_path)
    sims = [harness.Modelsim(i, "127.0.0.%d" % (i + 1), work, ["--served-model-name", "llama"])
            for i in range(2)]
    endpoints = os.path.join(work, "endpoints.yaml")
    harness.write_endpoints_file(endpoints, sims)
    text = open(example).read().replace("/etc/epp/endpoints.yaml", endpoints)
    cfg = epp_with_config(work, "example", text)
    grpc, health, metrics = harness.free_port(), harness.free_port(), harness.free_port()
    epp = harness.Proc("epp", [harness.epp_bin(), "--grpc-port", str(grpc), "--grpc-health-port",
                               str(health), "--metrics-port", str(metrics),
                               "--secure-serving=false", "--config-file", cfg],
                       os.path.join(work, "epp.log"))
    env = None
    try:
        harness.wait_until(lambda: harness.tcp_connectable("127.0.0.1", grpc), "epp up",
                           procs=[epp])
        env = harness.Envoy(work, "envoy", "full_duplex", False, grpc)
        harness.wait_until(
            lambda: harness.request(env.port, "GET", "/v1/models", timeout=5)[0] == 200,
            "Envoy serving", procs=[epp, env.proc])
        for i in range(4):
            st, _, body = harness.request(env.port, "POST", "/v1/completions", json.dumps(
                {"model": "llama", "prompt": "hello %d" % i, "max_tokens": 2}).encode())
            assert st == 200, body[:200]
    finally:
        if env is not None:
            env.stop()
        epp.stop()
        for s in sims:
            s.proc.stop()


BASE = """apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: file-discovery
  parameters: {path: %s}
%s
dataLayer:
  discovery: {pluginRef: file-discovery}
%s"""

INVALID = [
    ("unknown-type", "- type: no-such-scorer", "", "no-such-scorer"),
    ("bad-parameter", "- type: queue-scorer\n  parameters: {depth: 3}", "", "depth"),
    ("bad-prefix-mode", "- type: prefix-cache-scorer\n  parameters: {mode: greedy}", "",
     "mode"),
    ("deprecated-block-size", "- type: prefix-cache-scorer\n  parameters: {blockSize: 64}", "",
     "blockSizeTokens"),
    ("dangling-ref", "- type: queue-scorer",
     "schedulingProfiles:\n- name: p\n  plugins:\n  - pluginRef: nope\n", "nope"),
    ("weight-on-picker", "- type: max-score-picker",
     "schedulingProfiles:\n- name: p\n  plugins:\n  - pluginRef: max-score-picker\n"
     "    weight: 2\n", "weight"),
    ("duplicate-name", "- type: queue-scorer\n- type: queue-scorer", "", "queue-scorer"),
]


@pytest.mark.parametrize("name,plugins,profiles,want", INVALID, ids=[c[0] for c in INVALID])
def test_invalid_config_exits_naming_the_problem(name, plugins, profiles, want, tmp_path):
    harness.require_epp()
    work = str(tmp_path)
    endpoints = os.path.join(work, "endpoints.yaml")
    harness.write_endpoints_file(endpoints, [])
    cfg = epp_with_config(work, name, BASE % (endpoints, plugins, profiles))
    r = subprocess.run([harness.epp_bin(), "--grpc-port", "0", "--grpc-health-port", "0",
                        "--metrics-port", "0", "--secure-serving=false", "--config-file", cfg],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2, (r.returncode, r.stderr[-500:])
    assert want in r.stderr, r.stderr[-500:]
