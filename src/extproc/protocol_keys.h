// Every protocol string of the Endpoint Picker protocol (GIE proposal 004 as GIE v1.5 and
// llm-d-router implement it), in one place.
#ifndef EPP_EXTPROC_PROTOCOL_KEYS_H_
#define EPP_EXTPROC_PROTOCOL_KEYS_H_

#include <cstddef>
#include <string_view>

namespace epp::extproc {

inline constexpr std::string_view kDestinationEndpointNamespace = "envoy.lb";
inline constexpr std::string_view kDestinationEndpointKey = "x-gateway-destination-endpoint";
inline constexpr std::string_view kDestinationEndpointServedKey =
    "x-gateway-destination-endpoint-served";
inline constexpr std::string_view kSubsetFilterNamespace = "envoy.lb.subset_hint";
inline constexpr std::string_view kSubsetFilterKey = "x-gateway-destination-endpoint-subset";

inline constexpr std::string_view kObjectiveHeader = "x-gateway-inference-objective";
inline constexpr std::string_view kFairnessIdHeader = "x-gateway-inference-fairness-id";
inline constexpr std::string_view kModelNameRewriteHeader = "x-gateway-model-name-rewrite";
inline constexpr std::string_view kObjectiveHeaderAlias = "x-llm-d-inference-objective";
inline constexpr std::string_view kFairnessIdHeaderAlias = "x-llm-d-inference-fairness-id";
inline constexpr std::string_view kModelNameRewriteHeaderAlias = "x-llm-d-model-name-rewrite";
inline constexpr std::string_view kDefaultFairnessId = "default-flow";

inline constexpr std::string_view kRequestIdHeader = "x-request-id";
inline constexpr std::string_view kContentLengthHeader = "content-length";
inline constexpr std::string_view kContentTypeHeader = "content-type";
inline constexpr std::string_view kPathHeader = ":path";
inline constexpr std::string_view kEventStreamContentType = "text/event-stream";

// Headers the picker consumes and removes from what is forwarded upstream.
inline constexpr std::string_view kStrippedControlHeaders[] = {
    kObjectiveHeader,      kFairnessIdHeader,      kModelNameRewriteHeader,
    kObjectiveHeaderAlias, kFairnessIdHeaderAlias, kModelNameRewriteHeaderAlias,
    kSubsetFilterKey};

// Largest body chunk per ext_proc message: below Envoy's 64 KiB per-message limit, as GIE uses.
inline constexpr size_t kBodyChunkBytes = 62000;

// Prefix of every ImmediateResponse body.
inline constexpr std::string_view kErrorBodyPrefix = "inference error: ";

// gRPC health service names.
inline constexpr std::string_view kExtProcServiceName =
    "envoy.service.ext_proc.v3.ExternalProcessor";
inline constexpr std::string_view kLivenessServiceName = "liveness";
inline constexpr std::string_view kReadinessServiceName = "readiness";

}  // namespace epp::extproc

#endif  // EPP_EXTPROC_PROTOCOL_KEYS_H_
