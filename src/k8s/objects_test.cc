#include "k8s/objects.h"

#include <gtest/gtest.h>

namespace epp::k8s {
namespace {

simdjson::dom::element Parse(simdjson::dom::parser& parser, const std::string& json) {
  simdjson::dom::element e;
  EXPECT_EQ(parser.parse(json).get(e), simdjson::SUCCESS) << json;
  return e;
}

TEST(ObjectsTest, DecodesAPod) {
  simdjson::dom::parser parser;
  auto pod = DecodePod(Parse(parser, R"({
    "kind":"Pod","apiVersion":"v1",
    "metadata":{"name":"vllm-0","namespace":"ns","resourceVersion":"812","uid":"u1",
      "creationTimestamp":"2026-11-27T10:00:00Z",
      "labels":{"app":"vllm","inference.networking.k8s.io/engine-type":"sglang"},
      "annotations":{"llm-d.ai/active-ports":"8000"},"unknownField":{"x":1}},
    "spec":{"containers":[{"name":"c"}]},
    "status":{"phase":"Running","podIP":"10.1.2.3",
      "conditions":[{"type":"PodScheduled","status":"True"},{"type":"Ready","status":"True"}]}})"));
  ASSERT_TRUE(pod.ok()) << pod.status();
  EXPECT_EQ(pod->meta.name, "vllm-0");
  EXPECT_EQ(pod->meta.ns, "ns");
  EXPECT_EQ(pod->meta.resource_version, "812");
  EXPECT_EQ(pod->meta.labels.at("inference.networking.k8s.io/engine-type"), "sglang");
  EXPECT_EQ(pod->pod_ip, "10.1.2.3");
  EXPECT_TRUE(pod->ready_condition);
  EXPECT_FALSE(pod->meta.deleting);
  EXPECT_TRUE(IsPodReady(*pod));

  auto pending = DecodePod(Parse(parser, R"({"metadata":{"name":"p"}})"));
  ASSERT_TRUE(pending.ok());
  EXPECT_FALSE(IsPodReady(*pending));

  auto terminating = DecodePod(Parse(parser, R"({"metadata":{"name":"p",
    "deletionTimestamp":"2026-11-27T10:00:00Z"},
    "status":{"podIP":"10.0.0.1","conditions":[{"type":"Ready","status":"True"}]}})"));
  ASSERT_TRUE(terminating.ok());
  EXPECT_TRUE(terminating->meta.deleting);
  EXPECT_FALSE(IsPodReady(*terminating));

  auto bad = DecodePod(Parse(parser, R"({"metadata":{"name":"p","labels":{"a":1}}})"));
  EXPECT_EQ(bad.status().message(), "metadata.labels.a: must be a string");
  bad = DecodePod(Parse(parser, R"({"metadata":{"name":"p"},"status":{"conditions":[1]}})"));
  EXPECT_EQ(bad.status().message(), "status.conditions[0]: must be an object");
}

TEST(ObjectsTest, DecodesAnInferencePool) {
  simdjson::dom::parser parser;
  auto pool = DecodeInferencePool(Parse(parser, R"({"metadata":{"name":"pool"},
    "spec":{"selector":{"matchLabels":{"app":"vllm"}},
            "targetPorts":[{"number":8000},{"number":8001}],"appProtocol":"kubernetes.io/h2c",
            "endpointPickerRef":{"name":"epp","port":{"number":9002}}}})"));
  ASSERT_TRUE(pool.ok()) << pool.status();
  EXPECT_EQ(pool->match_labels.at("app"), "vllm");
  EXPECT_EQ(pool->target_ports, (std::vector<int>{8000, 8001}));
  EXPECT_EQ(pool->app_protocol, "kubernetes.io/h2c");

  struct Case {
    std::string spec;
    std::string error;
  };
  std::vector<Case> cases = {
      {R"({"targetPorts":[{"number":1}]})", "spec.selector: required"},
      {R"({"selector":{"matchLabels":{}},"targetPorts":[{"number":1}]})",
       "spec.selector.matchLabels: at least one label required"},
      {R"({"selector":{"matchLabels":{"a":"b"}}})", "spec.targetPorts: required"},
      {R"({"selector":{"matchLabels":{"a":"b"}},"targetPorts":[]})",
       "spec.targetPorts: must have 1 to 8 entries"},
      {R"({"selector":{"matchLabels":{"a":"b"}},"targetPorts":[{"number":0}]})",
       "spec.targetPorts[0].number: must be 1..65535"},
      {R"({"selector":{"matchLabels":{"a":"b"}},"targetPorts":[{"number":1},{"number":1}]})",
       "spec.targetPorts[1].number: port number must be unique"},
      {R"({"selector":{"matchLabels":{"a":"b"}},"targetPorts":[{"number":"80"}]})",
       "spec.targetPorts[0].number: must be an integer"},
  };
  for (const auto& tc : cases) {
    auto p =
        DecodeInferencePool(Parse(parser, R"({"metadata":{"name":"x"},"spec":)" + tc.spec + "}"));
    ASSERT_FALSE(p.ok()) << tc.spec;
    EXPECT_EQ(p.status().message(), tc.error);
  }
}

TEST(ObjectsTest, DecodesObjectivesAndRewrites) {
  simdjson::dom::parser parser;
  auto o = DecodeInferenceObjective(Parse(parser, R"({"metadata":{"name":"batch"},
    "spec":{"priority":-1,"poolRef":{"name":"pool"}}})"));
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->priority, -1);
  EXPECT_EQ(o->pool_ref.name, "pool");
  EXPECT_EQ(o->pool_ref.group, "inference.networking.k8s.io");
  EXPECT_EQ(o->pool_ref.kind, "InferencePool");
  auto no_priority = DecodeInferenceObjective(
      Parse(parser, R"({"metadata":{"name":"x"},"spec":{"poolRef":{"name":"pool"}}})"));
  ASSERT_TRUE(no_priority.ok());
  EXPECT_FALSE(no_priority->priority.has_value());
  EXPECT_EQ(DecodeInferenceObjective(Parse(parser, R"({"metadata":{"name":"x"},"spec":{}})"))
                .status()
                .message(),
            "spec.poolRef: required");

  auto r = DecodeInferenceModelRewrite(Parse(parser, R"({"metadata":{"name":"split"},
    "spec":{"poolRef":{"name":"pool"},"rules":[
      {"matches":[{"model":{"type":"Exact","value":"llama"}}],
       "targets":[{"modelRewrite":"llama-a","weight":90},{"modelRewrite":"llama-b","weight":10}]},
      {"targets":[{"modelRewrite":"fallback"}]}]}})"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->rewrite.name, "split");
  ASSERT_EQ(r->rewrite.rules.size(), 2u);
  EXPECT_EQ(r->rewrite.rules[0].matches, (std::vector<std::string>{"llama"}));
  EXPECT_EQ(r->rewrite.rules[0].targets[1].model, "llama-b");
  EXPECT_EQ(r->rewrite.rules[0].targets[1].weight, 10u);
  EXPECT_TRUE(r->rewrite.rules[1].matches.empty());
  auto bad = DecodeInferenceModelRewrite(Parse(parser, R"({"metadata":{"name":"x"},
    "spec":{"poolRef":{"name":"p"},"rules":[{"targets":[{"modelRewrite":"a","weight":0}]}]}})"));
  EXPECT_EQ(bad.status().message(), "spec.rules[0].targets[0].weight: must be 1..1000000");
  bad = DecodeInferenceModelRewrite(Parse(parser, R"({"metadata":{"name":"x"},
    "spec":{"poolRef":{"name":"p"},"rules":[{"matches":[{"model":{"type":"Regex","value":"a"}}],
    "targets":[{"modelRewrite":"a"}]}]}})"));
  EXPECT_EQ(bad.status().message(),
            "spec.rules[0].matches[0].model.type: \"Regex\" is not supported (only Exact)");
}

TEST(ObjectsTest, ApiStatusFromBodies) {
  ApiStatus s = ParseApiStatus(
      R"({"kind":"Status","status":"Failure","message":"pods is forbidden","reason":"Forbidden","code":403})");
  EXPECT_EQ(s.code, 403);
  EXPECT_EQ(s.reason, "Forbidden");
  EXPECT_EQ(s.message, "pods is forbidden");
  ApiStatus raw = ParseApiStatus("upstream connect error");
  EXPECT_EQ(raw.code, 0);
  EXPECT_EQ(raw.message, "upstream connect error");
}

TEST(ObjectsTest, ActivePortsAsTheReferenceReadsThem) {
  Pod pod;
  std::vector<int> ports = {8000, 8001, 8002};
  EXPECT_EQ(ActivePorts(pod, ports), ports);  // no annotation: all
  pod.meta.annotations[std::string(kLegacyActivePortsAnnotation)] = "8001, 9999,x,8002abc";
  EXPECT_EQ(ActivePorts(pod, ports), (std::vector<int>{8001, 8002}));
  // The llm-d annotation wins over the legacy one.
  pod.meta.annotations[std::string(kActivePortsAnnotation)] = "8000";
  EXPECT_EQ(ActivePorts(pod, ports), (std::vector<int>{8000}));
  pod.meta.annotations[std::string(kActivePortsAnnotation)] = "";
  EXPECT_TRUE(ActivePorts(pod, ports).empty());
}

TEST(ObjectsTest, SelectorIsAnAndOfLabels) {
  std::map<std::string, std::string> sel = {{"app", "vllm"}, {"tier", "gpu"}};
  EXPECT_TRUE(SelectorMatches(sel, {{"app", "vllm"}, {"tier", "gpu"}, {"x", "y"}}));
  EXPECT_FALSE(SelectorMatches(sel, {{"app", "vllm"}}));
  EXPECT_FALSE(SelectorMatches(sel, {{"app", "vllm"}, {"tier", "cpu"}}));
  EXPECT_FALSE(SelectorMatches({}, {{"app", "vllm"}}));
}

}  // namespace
}  // namespace epp::k8s
