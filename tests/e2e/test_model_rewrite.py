"""Model rewrite through the real Envoy and epp, in front of modelsim servers that serve `llama`
(and a LoRA adapter `llama-v2`) and answer 404 for any other model name.

InferenceModelRewrite rules come from the file-discovery endpoints file (`modelRewrites:`) and
are changed while epp runs; the `x-gateway-model-name-rewrite` header is the other way in.
Whatever renamed the request, the client reads its own model name back in the response."""

import json
import os

import pytest

import harness
from harness import chat_body, completion_body, make_stack, request

SERVED = ["--served-model-name", "llama", "--enable-lora", "--max-loras", "2",
          "--lora-modules", "llama-v2=/adapters/v2"]


@pytest.fixture(scope="module")
def stack(request, tmp_path_factory):
    harness.require_epp()
    return make_stack(request, tmp_path_factory, "model-rewrite", tls=False, n_backends=2,
                      modelsim_args=SERVED)


def endpoints_yaml(stack):
    lines = ["endpoints:"]
    for b in stack.backends:
        lines.append('- {name: b%d, address: "%s", port: %d}' % (b.index, b.host, b.port))
    return "\n".join(lines) + "\n"


def write_file(stack, rewrites_yaml):
    """Rewrites the endpoints file (atomic rename, as the watcher expects) with a
    `modelRewrites` section (None: no section)."""
    text = endpoints_yaml(stack)
    if rewrites_yaml is not None:
        text += "modelRewrites:\n" + rewrites_yaml
    path = stack.epp.endpoints_path
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


def alias_rule(name, incoming, target):
    return ("- name: %s\n  spec:\n    rules:\n    - matches: [{model: {type: Exact, value: %s}}]\n"
            "      targets: [{modelRewrite: %s}]\n" % (name, incoming, target))


def complete(env, model, headers=None, **extra):
    st, _, data = request(env.port, "POST", "/v1/completions",
                          completion_body(model=model, prompt="hello there", max_tokens=3, **extra),
                          headers=headers)
    return st, data


def set_rules(stack, env, rewrites_yaml, probe_model, want_status):
    """Writes the rules and waits until a request for `probe_model` answers `want_status`
    (epp re-reads the file on its own)."""
    write_file(stack, rewrites_yaml)
    harness.wait_until(lambda: complete(env, probe_model)[0] == want_status,
                       "a request for %s to answer %d after the rules changed"
                       % (probe_model, want_status), procs=[stack.epp.proc, env.proc])


def sse_events(data):
    events = []
    for block in data.decode().split("\n\n"):
        if block.startswith("data: ") and block != "data: [DONE]":
            events.append(json.loads(block[len("data: "):]))
    return events


def test_rules_rename_requests_and_responses_get_the_clients_name_back(stack):
    env = stack.serving_envoy("full_duplex")
    # Without a rule modelsim does not know `alias`.
    set_rules(stack, env, None, "alias", 404)

    set_rules(stack, env, alias_rule("alias-rule", "alias", "llama"), "alias", 200)
    st, data = complete(env, "alias")
    assert st == 200, data[:300]
    body = json.loads(data)
    assert body["model"] == "alias", body
    assert body["usage"]["completion_tokens"] == 3
    assert b'"llama"' not in data

    # Streaming chat: every SSE event names the client's model.
    st, _, data = request(env.port, "POST", "/v1/chat/completions",
                          chat_body("hi", model="alias", max_tokens=4, stream=True,
                                    stream_options={"include_usage": True}))
    assert st == 200, data[:300]
    events = sse_events(data)
    assert len(events) >= 3, data[:500]
    assert all(e["model"] == "alias" for e in events), data[:500]
    assert b'"llama"' not in data

    # A model no rule names is passed through as it is.
    st, data = complete(env, "llama")
    assert st == 200 and json.loads(data)["model"] == "llama"

    # Removing the section removes the rule.
    set_rules(stack, env, None, "alias", 404)


def test_header_rewrite_is_reversed_in_the_response(stack):
    env = stack.serving_envoy("full_duplex")
    set_rules(stack, env, None, "alias", 404)
    st, data = complete(env, "llama", headers={"x-gateway-model-name-rewrite": "llama-v2"})
    assert st == 200, data[:300]
    assert json.loads(data)["model"] == "llama"
    # The header really renamed it: modelsim answers 404 for a name it does not serve.
    st, data = complete(env, "llama", headers={"x-gateway-model-name-rewrite": "nope"})
    assert st == 404 and b"nope" in data, data[:300]


def test_rule_for_the_incoming_model_wins_over_the_header(stack):
    env = stack.serving_envoy("full_duplex")
    set_rules(stack, env, alias_rule("r", "alias", "llama-v2"), "alias", 200)
    st, data = complete(env, "alias", headers={"x-gateway-model-name-rewrite": "nope"})
    assert st == 200, data[:300]
    assert json.loads(data)["model"] == "alias"


def test_weighted_split_and_catch_all(stack):
    env = stack.serving_envoy("full_duplex")
    rules = (
        # The earlier object wins for `canary`; `rest` catches every other name.
        "- name: canary\n  spec:\n    rules:\n"
        "    - matches: [{model: {value: canary}}]\n"
        "      targets: [{modelRewrite: llama, weight: 1}, {modelRewrite: missing, weight: 1}]\n"
        "- name: rest\n  spec:\n    rules:\n"
        "    - targets: [{modelRewrite: llama-v2}]\n"
        "    - matches: [{model: {value: canary}}]\n"
        "      targets: [{modelRewrite: never}]\n")
    set_rules(stack, env, rules, "anything-at-all", 200)
    st, data = complete(env, "anything-at-all")
    assert json.loads(data)["model"] == "anything-at-all"

    # Half of `canary` goes to a model modelsim serves, half to one it does not (404 naming it).
    statuses = {}
    for _ in range(60):
        st, data = complete(env, "canary")
        statuses[st] = statuses.get(st, 0) + 1
        if st == 200:
            assert json.loads(data)["model"] == "canary"
        else:
            assert st == 404 and b"missing" in data, (st, data[:300])
    assert set(statuses) == {200, 404}, statuses
    assert 12 <= statuses[200] <= 48, statuses  # binomial(60, 1/2): outside is ~1e-6


def test_invalid_rules_keep_the_previous_ones(stack):
    env = stack.serving_envoy("full_duplex")
    set_rules(stack, env, alias_rule("alias-rule", "alias", "llama"), "alias", 200)
    log_before = stack.epp.proc.log_text()
    write_file(stack, alias_rule("alias-rule", "alias", "missing") +
               "- name: broken\n  spec:\n    rules:\n"
               "    - targets: [{modelRewrite: x, weight: 2000000}]\n")

    def new_log():
        return stack.epp.proc.log_text()[len(log_before):]
    harness.wait_until(lambda: "invalid modelRewrites" in new_log(),
                       "epp to log the invalid section", procs=[stack.epp.proc])
    log = new_log()
    assert "modelRewrites[1] (broken): spec.rules[0].targets[0].weight" in log, log[-2000:]
    st, data = complete(env, "alias")
    assert st == 200 and json.loads(data)["model"] == "alias", data[:300]
    set_rules(stack, env, None, "alias", 404)


def buffered_response_mode(body_mode):
    mode = ORIGINAL_PROCESSING_MODE(body_mode)
    mode["response_body_mode"] = "BUFFERED"
    return mode


ORIGINAL_PROCESSING_MODE = harness.processing_mode


def test_buffered_response_body_is_replaced_with_a_matching_length(stack, monkeypatch):
    """BUFFERED request and response bodies: the response is replaced whole, and Envoy accepts
    the new Content-Length epp sets with it."""
    monkeypatch.setattr(harness, "processing_mode", buffered_response_mode)
    env = harness.Envoy(stack.workdir, "envoy-buffered-responses", "buffered", stack.tls,
                        stack.epp_port)
    stack._all.append(env.proc)
    try:
        stack.wait_serving(env)
        set_rules(stack, env, alias_rule("alias-rule", "a-much-longer-alias-name", "llama"),
                  "a-much-longer-alias-name", 200)
        st, hdrs, data = request(env.port, "POST", "/v1/completions",
                                 completion_body(model="a-much-longer-alias-name", max_tokens=2))
        assert st == 200, data[:300]
        assert json.loads(data)["model"] == "a-much-longer-alias-name"
        # Envoy keeps the server's Content-Length in BUFFERED mode: it must be the new one.
        assert int(hdrs["content-length"]) == len(data), hdrs
    finally:
        env.stop()
        set_rules(stack, stack.serving_envoy("full_duplex"), None, "alias", 404)
