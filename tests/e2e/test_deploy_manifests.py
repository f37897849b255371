"""Static checks of deploy/: CRDs, the plain RBAC file, the Helm chart and the examples.

No cluster is needed. With a `helm` binary (on PATH, $HELM_BIN or ~/go/bin/helm) the chart is
also rendered and linted; without one those tests are skipped.

Run: cd /work/main && .venv/bin/pytest -q tests/e2e/test_deploy_manifests.py
"""

import os
import re
import shutil
import subprocess

import pytest
import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEPLOY = os.path.join(ROOT, "deploy")
CRDS = os.path.join(DEPLOY, "crds")
CHART = os.path.join(DEPLOY, "charts", "epp")
TEMPLATES = os.path.join(CHART, "templates")
PLAIN_RBAC = os.path.join(DEPLOY, "rbac", "epp-rbac.yaml")
EXAMPLES = os.path.join(DEPLOY, "examples")

POOL_GROUP = "inference.networking.k8s.io"
X_GROUP = "inference.networking.x-k8s.io"

# What epp may do, and nothing more (deploy/README.md, "RBAC").
EXPECTED_GRANTS = {
    ("", "pods", "get"), ("", "pods", "list"), ("", "pods", "watch"),
    (POOL_GROUP, "inferencepools", "get"), (POOL_GROUP, "inferencepools", "list"),
    (POOL_GROUP, "inferencepools", "watch"),
    (X_GROUP, "inferenceobjectives", "get"), (X_GROUP, "inferenceobjectives", "list"),
    (X_GROUP, "inferenceobjectives", "watch"),
    (X_GROUP, "inferencemodelrewrites", "get"), (X_GROUP, "inferencemodelrewrites", "list"),
    (X_GROUP, "inferencemodelrewrites", "watch"),
    ("coordination.k8s.io", "leases", "get"), ("coordination.k8s.io", "leases", "create"),
    ("coordination.k8s.io", "leases", "update"),
}


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def load_all(text):
    return [d for d in yaml.safe_load_all(text) if d is not None]


def by_kind(docs):
    out = {}
    for d in docs:
        assert d["kind"] not in out, "two %s objects" % d["kind"]
        out[d["kind"]] = d
    return out


def grants(role):
    """The (apiGroup, resource, verb) triples a Role allows."""
    out = set()
    for rule in role["rules"]:
        assert set(rule) <= {"apiGroups", "resources", "verbs"}, rule
        for g in rule["apiGroups"]:
            for r in rule["resources"]:
                for v in rule["verbs"]:
                    out.add((g, r, v))
    return out


# --- RBAC --------------------------------------------------------------------------------------

def render_rbac_template(name, namespace):
    """templates/rbac.yaml with its helpers replaced by plain values and the if/end lines (and
    the comment) dropped: the 'trivial substitution' the template promises to need."""
    text = read(os.path.join(TEMPLATES, "rbac.yaml"))
    text = re.sub(r"\{\{-?\s*/\*.*?\*/\s*-?\}\}", "", text, flags=re.S)
    subst = {"epp.fullname": name, "epp.serviceAccountName": name, "epp.namespace": namespace}
    lines = []
    for line in text.splitlines():
        if re.fullmatch(r"\s*\{\{-?\s*(if|end|else)\b.*\}\}\s*", line):
            continue
        if re.fullmatch(r"\s*\{\{-?\s*include \"epp.labels\".*\}\}\s*", line):
            continue
        line = re.sub(r"\{\{\s*include \"([\w.]+)\" \.\s*\}\}", lambda m: subst[m.group(1)], line)
        assert "{{" not in line, "rbac.yaml needs more than trivial substitution: %r" % line
        lines.append(line)
    return load_all("\n".join(lines))


def test_plain_rbac_grants_exactly_what_epp_needs():
    objs = by_kind(load_all(read(PLAIN_RBAC)))
    assert set(objs) == {"ServiceAccount", "Role", "RoleBinding"}
    assert grants(objs["Role"]) == EXPECTED_GRANTS
    for o in objs.values():
        assert o["metadata"] == {"name": "epp", "namespace": "default"}
    rb = objs["RoleBinding"]
    assert rb["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                             "name": "epp"}
    assert rb["subjects"] == [{"kind": "ServiceAccount", "name": "epp", "namespace": "default"}]


def test_plain_rbac_and_chart_template_grant_the_same():
    plain = by_kind(load_all(read(PLAIN_RBAC)))
    templ = by_kind(render_rbac_template("epp", "default"))
    assert set(templ) == {"Role", "RoleBinding"}
    assert grants(templ["Role"]) == grants(plain["Role"])
    assert templ["RoleBinding"]["roleRef"] == plain["RoleBinding"]["roleRef"]
    assert templ["RoleBinding"]["subjects"] == plain["RoleBinding"]["subjects"]


def test_plain_rbac_substitution_contract():
    """The header's promise: replacing 'namespace: default' and 'name: epp' moves everything."""
    text = read(PLAIN_RBAC)
    body = [l for l in text.splitlines() if not l.lstrip().startswith("#")]
    for line in body:
        if "epp" in line:
            assert line.strip() == "name: epp", line
        if "default" in line:
            assert line.strip() == "namespace: default", line
    moved = text.replace("namespace: default", "namespace: team-a").replace("name: epp",
                                                                             "name: picker")
    objs = by_kind(load_all(moved))
    for o in objs.values():
        assert o["metadata"] == {"name": "picker", "namespace": "team-a"}
    assert objs["RoleBinding"]["roleRef"]["name"] == "picker"
    assert objs["RoleBinding"]["subjects"] == [
        {"kind": "ServiceAccount", "name": "picker", "namespace": "team-a"}]
    assert grants(objs["Role"]) == EXPECTED_GRANTS


def test_rbac_has_no_wildcards_events_or_writes_beyond_leases():
    for role in (by_kind(load_all(read(PLAIN_RBAC)))["Role"],
                 by_kind(render_rbac_template("epp", "default"))["Role"]):
        for g, r, v in grants(role):
            assert "*" not in (g, r, v)
            assert r != "events"
            if v not in ("get", "list", "watch"):
                assert (g, r) == ("coordination.k8s.io", "leases"), (g, r, v)


def test_lease_rule_only_with_leader_election():
    text = read(os.path.join(TEMPLATES, "rbac.yaml"))
    cond = re.search(r'\{\{-\s*if include "epp.leaderElection" \.\s*\}\}(.*?)\{\{-\s*end\s*\}\}',
                     text, flags=re.S)
    assert cond and "leases" in cond.group(1)
    assert text.count("leases") == 1


# --- CRDs --------------------------------------------------------------------------------------

CRD_FILES = {
    "inference.networking.k8s.io_inferencepools.yaml":
        ("inferencepools", POOL_GROUP, "InferencePool", "v1"),
    "inference.networking.x-k8s.io_inferenceobjectives.yaml":
        ("inferenceobjectives", X_GROUP, "InferenceObjective", "v1alpha2"),
    "inference.networking.x-k8s.io_inferencemodelrewrites.yaml":
        ("inferencemodelrewrites", X_GROUP, "InferenceModelRewrite", "v1alpha2"),
}


def load_crd(file):
    docs = load_all(read(os.path.join(CRDS, file)))
    assert len(docs) == 1
    return docs[0]


def schema_of(crd):
    (version,) = crd["spec"]["versions"]
    return version["schema"]["openAPIV3Schema"]


def node(schema, path):
    """The schema node at a dotted path; '[]' steps into array items."""
    n = schema
    for part in path.split("."):
        n = n["items"] if part == "[]" else n["properties"][part]
    return n


def walk(schema, path="", arrays=()):
    """Yields (path, node, enclosing array nodes) for every schema node."""
    yield path, schema, arrays
    if schema.get("type") == "array":
        arrays = arrays + (schema,)
    for k, child in schema.get("properties", {}).items():
        yield from walk(child, path + "." + k, arrays)
    if "items" in schema:
        yield from walk(schema["items"], path + "[]", arrays)
    if isinstance(schema.get("additionalProperties"), dict):
        yield from walk(schema["additionalProperties"], path + "{}", arrays)


def test_crd_files_are_exactly_the_three():
    assert sorted(os.listdir(CRDS)) == sorted(CRD_FILES)


@pytest.mark.parametrize("file", sorted(CRD_FILES))
def test_crd_identity(file):
    plural, group, kind, version = CRD_FILES[file]
    crd = load_crd(file)
    assert crd["apiVersion"] == "apiextensions.k8s.io/v1"
    assert crd["kind"] == "CustomResourceDefinition"
    assert crd["metadata"]["name"] == "%s.%s" % (plural, group)
    spec = crd["spec"]
    assert spec["group"] == group and spec["scope"] == "Namespaced"
    names = spec["names"]
    assert names["plural"] == plural and names["kind"] == kind
    assert names["singular"] == kind.lower() and names["listKind"] == kind + "List"
    (v,) = spec["versions"]
    assert v["name"] == version and v["served"] is True and v["storage"] is True
    assert v["subresources"] == {"status": {}}
    # *.k8s.io groups are protected: the API server wants the approval annotation.
    approved = crd["metadata"].get("annotations", {}).get("api-approved.kubernetes.io")
    if group.endswith(".k8s.io") and not group.endswith(".x-k8s.io"):
        assert approved and approved.startswith("https://")
    else:
        assert approved is None


@pytest.mark.parametrize("file", sorted(CRD_FILES))
def test_crd_schema_is_structural(file):
    schema = schema_of(load_crd(file))
    assert schema["type"] == "object"
    assert {"apiVersion", "kind", "metadata", "spec", "status"} <= set(schema["properties"])
    for path, n, _ in walk(schema):
        assert n.get("type") in ("object", "array", "string", "integer", "boolean",
                                 "number"), "%s has no type" % path
        if n["type"] == "array":
            assert "items" in n, path
        assert not ("properties" in n and "additionalProperties" in n), path
        if "enum" in n and "default" in n:
            assert n["default"] in n["enum"], path
        for key in ("x-kubernetes-list-map-keys",):
            if key in n:
                assert n.get("x-kubernetes-list-type") == "map", path
                for k in n[key]:
                    assert k in n["items"].get("required", []), (path, k)


@pytest.mark.parametrize("file", sorted(CRD_FILES))
def test_crd_cel_rules_are_cost_bounded(file):
    """Every list a CEL rule iterates, and every list around it, has maxItems."""
    for path, n, arrays in walk(schema_of(load_crd(file))):
        if "x-kubernetes-validations" not in n:
            continue
        for rule in n["x-kubernetes-validations"]:
            assert set(rule) <= {"rule", "message"} and rule["message"], (path, rule)
        if n["type"] == "array":
            assert "maxItems" in n, path
        for a in arrays:
            assert "maxItems" in a, "%s lies under an unbounded list" % path


def test_inferencepool_schema():
    crd = load_crd("inference.networking.k8s.io_inferencepools.yaml")
    assert crd["spec"]["names"]["shortNames"] == ["infpool"]
    s = schema_of(crd)
    assert s["required"] == ["spec"]
    assert sorted(node(s, "spec")["required"]) == ["selector", "targetPorts"]
    labels = node(s, "spec.selector.matchLabels")
    assert (labels["minProperties"], labels["maxProperties"]) == (1, 64)
    assert labels["additionalProperties"]["maxLength"] == 63
    assert re.fullmatch(labels["additionalProperties"]["pattern"], "my-model.v1_a")
    ports = node(s, "spec.targetPorts")
    assert (ports["minItems"], ports["maxItems"]) == (1, 8)
    assert ports["x-kubernetes-list-type"] == "atomic"
    assert [r["message"] for r in ports["x-kubernetes-validations"]] == [
        "port number must be unique"]
    number = node(s, "spec.targetPorts.[].number")
    assert (number["minimum"], number["maximum"]) == (1, 65535)
    proto = node(s, "spec.appProtocol")
    assert proto["enum"] == ["http", "kubernetes.io/h2c"] and proto["default"] == "http"
    epp = node(s, "spec.endpointPickerRef")
    assert "endpointPickerRef" not in node(s, "spec")["required"]
    assert epp["required"] == ["name"]
    assert epp["properties"]["kind"]["default"] == "Service"
    assert epp["properties"]["group"]["default"] == ""
    assert epp["properties"]["failureMode"]["enum"] == ["FailOpen", "FailClose"]
    assert epp["properties"]["failureMode"]["default"] == "FailClose"
    assert node(s, "spec.endpointPickerRef.port")["required"] == ["number"]
    assert [r["message"] for r in epp["x-kubernetes-validations"]] == [
        "port is required when kind is 'Service' or unspecified (defaults to 'Service')"]
    parents = node(s, "status.parents")
    assert parents["maxItems"] == 32 and parents["x-kubernetes-list-type"] == "atomic"
    ref = node(s, "status.parents.[].parentRef")
    assert ref["properties"]["group"]["default"] == "gateway.networking.k8s.io"
    assert ref["properties"]["kind"]["default"] == "Gateway"
    assert node(s, "status.parents.[].conditions")["maxItems"] == 8


def test_inferenceobjective_schema():
    crd = load_crd("inference.networking.x-k8s.io_inferenceobjectives.yaml")
    s = schema_of(crd)
    assert node(s, "spec")["required"] == ["poolRef"]
    priority = node(s, "spec.priority")
    assert priority["type"] == "integer"
    assert not set(priority) & {"default", "minimum", "maximum", "format"}  # unset means 0
    ref = node(s, "spec.poolRef")
    assert ref["required"] == ["name"]
    assert ref["properties"]["group"]["default"] == POOL_GROUP
    assert ref["properties"]["kind"]["default"] == "InferencePool"
    assert node(s, "status.conditions")["x-kubernetes-list-map-keys"] == ["type"]
    (v,) = crd["spec"]["versions"]
    assert [(c["name"], c["jsonPath"]) for c in v["additionalPrinterColumns"]] == [
        ("Inference Pool", ".spec.poolRef.name"), ("Priority", ".spec.priority"),
        ("Age", ".metadata.creationTimestamp")]


def test_inferencemodelrewrite_schema():
    s = schema_of(load_crd("inference.networking.x-k8s.io_inferencemodelrewrites.yaml"))
    assert sorted(node(s, "spec")["required"]) == ["poolRef", "rules"]
    model = node(s, "spec.rules.[].matches.[].model")
    assert model["properties"]["type"]["enum"] == ["Exact"]
    assert model["properties"]["type"]["default"] == "Exact"
    assert model["properties"]["value"]["minLength"] == 1
    targets = node(s, "spec.rules.[].targets")
    assert targets["minItems"] == 1
    assert targets["items"]["required"] == ["modelRewrite"]
    weight = targets["items"]["properties"]["weight"]
    assert (weight["minimum"], weight["maximum"], weight["format"]) == (1, 1000000, "int32")
    (rule,) = targets["x-kubernetes-validations"]
    assert "has(t.weight)" in rule["rule"]
    assert node(s, "status.conditions")["x-kubernetes-list-map-keys"] == ["type"]


# --- Helm chart --------------------------------------------------------------------------------

def values():
    return yaml.safe_load(read(os.path.join(CHART, "values.yaml")))


def template_texts():
    out = {}
    for name in sorted(os.listdir(TEMPLATES)):
        out[name] = read(os.path.join(TEMPLATES, name))
    return out


def lookup(tree, dotted):
    n = tree
    for part in dotted.split("."):
        if not isinstance(n, dict) or part not in n:
            return False
        n = n[part]
    return True


def test_chart_metadata():
    chart = yaml.safe_load(read(os.path.join(CHART, "Chart.yaml")))
    assert chart["apiVersion"] == "v2" and chart["name"] == "epp"
    assert chart["type"] == "application" and chart["version"] and chart["appVersion"]


def test_values_referenced_in_templates_exist():
    vals = values()
    refs = set()
    for name, text in template_texts().items():
        aliases = dict(re.findall(r"\$(\w+)\s*:=\s*\.Values\.([\w.]+)", text))
        refs.update(re.findall(r"\.Values\.([A-Za-z_][\w.]*\w)", text))
        for var, base in aliases.items():
            for rest in re.findall(r"\$%s((?:\.\w+)+)" % var, text):
                refs.add(base + rest)
    assert len(refs) > 20
    missing = sorted(r for r in refs if not lookup(vals, r))
    assert not missing, "templates use values that values.yaml lacks: %s" % missing


def test_values_defaults():
    v = values()
    ie, pool = v["inferenceExtension"], v["inferencePool"]
    assert ie["replicas"] == 1 and ie["failureMode"] == "FailOpen"
    assert (ie["extProcPort"], ie["grpcHealthPort"], ie["metricsPort"]) == (9002, 9003, 9090)
    assert pool["create"] is True and pool["targetPorts"] == [{"number": 8000}]
    assert pool["appProtocol"] == "http" and pool["modelServers"]["matchLabels"]
    assert ie["podSecurityContext"]["runAsNonRoot"] is True
    assert ie["securityContext"]["readOnlyRootFilesystem"] is True


def test_deployment_template_flags_and_probes():
    text = read(os.path.join(TEMPLATES, "deployment.yaml"))
    for needle in ("--pool-name", "--pool-namespace", "- --pool-group\n        - "
                   "inference.networking.k8s.io", "--config-file", "/config/%s",
                   "--ha-enable-leader-election", "type: Recreate",
                   "terminationGracePeriodSeconds: 130", "fieldPath: metadata.namespace",
                   "fieldPath: metadata.name", "name: NAMESPACE", "name: POD_NAME",
                   '"readiness" "inference-extension"', '"liveness" "inference-extension"'):
        assert needle in text, needle


def test_default_plugins_config_is_the_reference_default():
    chart_cfg = yaml.safe_load(read(os.path.join(CHART, "files", "default-plugins.yaml")))
    gie = yaml.safe_load(read(os.path.join(ROOT, "examples", "configs", "gie-default.yaml")))
    assert chart_cfg["kind"] == "EndpointPickerConfig"
    assert chart_cfg["schedulingProfiles"] == gie["schedulingProfiles"]
    weights = {p["pluginRef"]: p.get("weight") for p in
               chart_cfg["schedulingProfiles"][0]["plugins"]}
    assert weights == {"queue-scorer": 2, "kv-cache-utilization-scorer": 2,
                       "prefix-cache-scorer": 3, "max-score-picker": None}
    # The same plugins minus file discovery: in Kubernetes the pool supplies the endpoints.
    assert chart_cfg["plugins"] == [p for p in gie["plugins"] if p["type"] != "file-discovery"]
    assert "discovery" not in chart_cfg["dataLayer"]
    assert chart_cfg["dataLayer"]["sources"] == gie["dataLayer"]["sources"]


# --- examples ----------------------------------------------------------------------------------

def example_objects():
    out = []
    for name in sorted(os.listdir(EXAMPLES)):
        out.extend(load_all(read(os.path.join(EXAMPLES, name))))
    return out


def test_examples_wire_gateway_pool_and_epp():
    objs = example_objects()
    kinds = {}
    for o in objs:
        kinds.setdefault(o["kind"], []).append(o)
    (route,) = kinds["HTTPRoute"]
    (gw,) = kinds["Gateway"]
    (pool,) = kinds["InferencePool"]
    (backend,) = route["spec"]["rules"][0]["backendRefs"]
    assert backend == {"group": POOL_GROUP, "kind": "InferencePool",
                       "name": pool["metadata"]["name"]}
    assert route["spec"]["parentRefs"][0]["name"] == gw["metadata"]["name"]
    ref = pool["spec"]["endpointPickerRef"]
    assert ref["name"] == pool["metadata"]["name"] + "-epp"  # the chart's "<release>-epp"
    assert ref["port"] == {"number": 9002}
    (vllm,) = kinds["Deployment"]
    labels = vllm["spec"]["template"]["metadata"]["labels"]
    assert labels["app"] == "vllm"
    assert all(labels.get(k) == v for k, v in pool["spec"]["selector"]["matchLabels"].items())
    assert pool["spec"]["selector"]["matchLabels"] == values()["inferencePool"]["modelServers"][
        "matchLabels"]
    for o in kinds["InferenceObjective"] + kinds["InferenceModelRewrite"]:
        assert o["apiVersion"] == X_GROUP + "/v1alpha2"
        assert o["spec"]["poolRef"]["name"] == pool["metadata"]["name"]
    for o in kinds["InferenceModelRewrite"]:
        for rule in o["spec"]["rules"]:
            has = [("weight" in t) for t in rule["targets"]]
            assert all(has) or not any(has), o["metadata"]["name"]


# --- helm (optional) ---------------------------------------------------------------------------

def helm_bin():
    for cand in (os.environ.get("HELM_BIN"), shutil.which("helm"),
                 os.path.expanduser("~/go/bin/helm")):
        if cand and os.access(cand, os.X_OK):
            return cand
    return None


needs_helm = pytest.mark.skipif(helm_bin() is None, reason="no helm binary")


def helm_template(*sets):
    cmd = [helm_bin(), "template", "vllm-pool", CHART, "--namespace", "default"]
    for s in sets:
        cmd += ["--set", s]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    return load_all(res.stdout)


def find(objs, kind):
    (o,) = [x for x in objs if x["kind"] == kind]
    return o


@needs_helm
def test_helm_lint():
    res = subprocess.run([helm_bin(), "lint", "--strict", CHART], capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr


@needs_helm
def test_helm_single_replica():
    objs = helm_template()
    assert sorted(o["kind"] for o in objs) == sorted(
        ["ServiceAccount", "ConfigMap", "Role", "RoleBinding", "Service", "Deployment",
         "InferencePool"])
    dep = find(objs, "Deployment")
    pod = dep["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert "--ha-enable-leader-election" not in c["args"]
    assert c["readinessProbe"]["grpc"] == {"port": 9003, "service": "inference-extension"}
    assert c["livenessProbe"]["grpc"] == {"port": 9003, "service": "inference-extension"}
    args = c["args"]
    assert args[args.index("--pool-name") + 1] == "vllm-pool"
    assert args[args.index("--pool-namespace") + 1] == "default"
    assert args[args.index("--pool-group") + 1] == POOL_GROUP
    assert args[args.index("--config-file") + 1] == "/config/default-plugins.yaml"
    assert dep["spec"]["strategy"] == {"type": "Recreate"}
    assert pod["terminationGracePeriodSeconds"] == 130
    assert {e["name"] for e in c["env"]} >= {"NAMESPACE", "POD_NAME"}
    assert {p["containerPort"] for p in c["ports"]} == {9002, 9003, 9090}
    cfg = yaml.safe_load(find(objs, "ConfigMap")["data"]["default-plugins.yaml"])
    assert cfg == yaml.safe_load(read(os.path.join(CHART, "files", "default-plugins.yaml")))
    # No lease permissions without leader election.
    assert not any(r == "leases" for _, r, _ in grants(find(objs, "Role")))
    # The chart's pool is the example's pool.
    example_pool = [o for o in example_objects() if o["kind"] == "InferencePool"][0]
    assert find(objs, "InferencePool")["spec"] == example_pool["spec"]


@needs_helm
def test_helm_ha_replicas_and_rbac_match_plain_file():
    objs = helm_template("inferenceExtension.replicas=3", "fullnameOverride=epp")
    (c,) = find(objs, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert "--ha-enable-leader-election" in c["args"]
    assert c["readinessProbe"]["grpc"]["service"] == "readiness"
    assert c["livenessProbe"]["grpc"]["service"] == "liveness"
    plain = by_kind(load_all(read(PLAIN_RBAC)))
    for kind in ("ServiceAccount", "Role", "RoleBinding"):
        rendered = find(objs, kind)
        rendered["metadata"].pop("labels", None)
        assert rendered == plain[kind], kind


@needs_helm
def test_helm_without_pool_and_with_custom_config():
    objs = helm_template("inferencePool.create=false",
                         "inferenceExtension.pluginsConfigFile=mine.yaml",
                         "inferenceExtension.pluginsCustomConfig.mine\\.yaml=kind: X")
    assert not [o for o in objs if o["kind"] == "InferencePool"]
    cm = find(objs, "ConfigMap")
    assert set(cm["data"]) == {"default-plugins.yaml", "mine.yaml"}
    (c,) = find(objs, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert c["args"][c["args"].index("--config-file") + 1] == "/config/mine.yaml"
