#include "loadgen/config.h"

#include <charconv>
#include <cmath>

#include "common/duration.h"
#include "common/strings.h"

namespace epp::loadgen {

namespace {

constexpr int kMaxTokens = 16 << 20;  // 64 MB of prompt: far beyond any model's context

absl::Status Invalid(std::string_view flag, std::string_view what) {
  return absl::InvalidArgumentError(StrCat(flag, ": ", what));
}

absl::Status Positive(std::string_view flag, double v) {
  if (!std::isfinite(v) || v <= 0) return Invalid(flag, StrCat("must be > 0, got ", v));
  return absl::OkStatus();
}

absl::Status TokenCount(std::string_view flag, int v, int min) {
  if (v < min || v > kMaxTokens) {
    return Invalid(flag, StrCat("must be in [", min, ", ", kMaxTokens, "], got ", v));
  }
  return absl::OkStatus();
}

bool IsTokenChar(char c) {
  // RFC 9110 tchar.
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

std::string_view TrimSpaces(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

absl::Status ValidateWorkload(const LoadgenConfig& c) {
  if (c.workload == "shared-prefix") {
    const SharedPrefixSpec& s = c.shared_prefix;
    if (s.groups < 1 || s.groups > 1'000'000) return Invalid("--groups", "must be in [1, 1000000]");
    if (s.prompts_per_group < 1 || s.prompts_per_group > 1'000'000 ||
        static_cast<int64_t>(s.groups) * s.prompts_per_group > (1 << 30)) {
      return Invalid("--prompts-per-group", "must be >= 1, with groups x prompts ≤ 2^30");
    }
    if (auto st = TokenCount("--system-tokens", s.system_tokens, 0); !st.ok()) return st;
    if (static_cast<int64_t>(s.groups) * s.system_tokens > (int64_t{1} << 28)) {
      return Invalid("--system-tokens", "groups x system tokens must be ≤ 2^28 (1 GiB of text)");
    }
    if (auto st = TokenCount("--question-tokens", s.question_tokens, 1); !st.ok()) return st;
    return TokenCount("--output-tokens", s.output_tokens, 1);
  }
  if (c.workload == "multi-lora") {
    const MultiLoraSpec& s = c.multi_lora;
    if (s.adapters < 1 || s.adapters > 100'000)
      return Invalid("--adapters", "must be in [1, 100000]");
    if (s.tier_weights.empty()) return Invalid("--adapter-weights", "needs at least one weight");
    double sum = 0;
    for (double w : s.tier_weights) {
      if (!std::isfinite(w) || w < 0) return Invalid("--adapter-weights", "weights must be >= 0");
      sum += w;
    }
    if (sum <= 0) return Invalid("--adapter-weights", "needs a weight > 0");
    if (s.adapter_prefix.empty()) return Invalid("--adapter-prefix", "must not be empty");
    if (auto st = TokenCount("--prompt-tokens", s.prompt_tokens, 1); !st.ok()) return st;
    return TokenCount("--output-tokens", s.output_tokens, 1);
  }
  if (c.workload == "sharegpt") {
    const NoSharingSpec& s = c.sharegpt;
    if (auto st = Positive("--input-tokens-median", s.prompt_tokens_median); !st.ok()) return st;
    if (auto st = Positive("--output-tokens-median", s.output_tokens_median); !st.ok()) return st;
    if (!std::isfinite(s.prompt_tokens_sigma) || s.prompt_tokens_sigma < 0) {
      return Invalid("--input-tokens-sigma", "must be >= 0");
    }
    if (!std::isfinite(s.output_tokens_sigma) || s.output_tokens_sigma < 0) {
      return Invalid("--output-tokens-sigma", "must be >= 0");
    }
    if (auto st = TokenCount("--min-input-tokens", s.min_prompt_tokens, 1); !st.ok()) return st;
    if (auto st = TokenCount("--max-input-tokens", s.max_prompt_tokens, s.min_prompt_tokens);
        !st.ok()) {
      return st;
    }
    if (auto st = TokenCount("--min-output-tokens", s.min_output_tokens, 1); !st.ok()) return st;
    return TokenCount("--max-output-tokens", s.max_output_tokens, s.min_output_tokens);
  }
  if (c.workload == "long-prompt") {
    if (auto st = TokenCount("--prompt-bytes / 4", c.long_prompt.prompt_tokens, 1); !st.ok()) {
      return st;
    }
    return TokenCount("--output-tokens", c.long_prompt.output_tokens, 1);
  }
  return Invalid("--workload", StrCat("unknown \"", c.workload,
                                      "\" (shared-prefix, multi-lora, sharegpt or long-prompt)"));
}

}  // namespace

absl::StatusOr<HostPort> ParseTarget(std::string_view url) {
  constexpr std::string_view kScheme = "http://";
  if (url.starts_with("https://")) {
    return Invalid("--target", StrCat("\"", url, "\": https is not supported"));
  }
  if (!url.starts_with(kScheme)) {
    return Invalid("--target", StrCat("\"", url, "\" is not http://host:port"));
  }
  std::string_view rest = url.substr(kScheme.size());
  if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  if (rest.empty() || rest.find('/') != std::string_view::npos) {
    return Invalid("--target", StrCat("\"", url,
                                      "\" is not http://host:port (no path: see "
                                      "--endpoint)"));
  }
  bool has_port = rest.front() == '[' ? rest.find("]:") != std::string_view::npos
                                      : rest.find(':') != std::string_view::npos;
  if (!has_port) {
    HostPort hp;
    hp.host = std::string(
        rest.front() == '[' && rest.back() == ']' ? rest.substr(1, rest.size() - 2) : rest);
    hp.port = 80;
    if (hp.host.empty()) return Invalid("--target", StrCat("\"", url, "\" has no host"));
    return hp;
  }
  auto hp = SplitHostPort(rest);
  if (!hp.ok()) return Invalid("--target", SV(hp.status().message()));
  if (hp->port == 0) return Invalid("--target", StrCat("\"", url, "\": port 0"));
  return hp;
}

absl::StatusOr<double> ParseSeconds(std::string_view flag, std::string_view text) {
  double v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec == std::errc() && end == text.data() + text.size()) {
    if (!std::isfinite(v) || v < 0) return Invalid(flag, StrCat("\"", text, "\" is not >= 0"));
    return v;
  }
  if (auto d = ParseGoDuration(text)) return std::chrono::duration<double>(*d).count();
  return Invalid(flag, StrCat("\"", text, "\" is neither seconds nor a duration like 90s or 5m"));
}

absl::StatusOr<std::pair<std::string, std::string>> ParseHeader(std::string_view text) {
  size_t colon = text.find(':');
  if (colon == std::string_view::npos) {
    return Invalid("--header", StrCat("\"", text, "\" is not name:value"));
  }
  std::string_view name = TrimSpaces(text.substr(0, colon));
  std::string_view value = TrimSpaces(text.substr(colon + 1));
  if (name.empty()) return Invalid("--header", StrCat("\"", text, "\" has no name"));
  for (char c : name) {
    if (!IsTokenChar(c)) return Invalid("--header", StrCat("\"", name, "\" is not a header name"));
  }
  for (char c : value) {
    if (c == '\r' || c == '\n' || c == '\0') {
      return Invalid("--header", StrCat("the value of \"", name, "\" has a line break or NUL"));
    }
  }
  return std::make_pair(std::string(name), std::string(value));
}

absl::Status ValidateConfig(const LoadgenConfig& c) {
  if (auto t = ParseTarget(c.target); !t.ok()) return t.status();
  if (c.endpoint != "/v1/completions" && c.endpoint != "/v1/chat/completions") {
    return Invalid("--endpoint", StrCat("\"", c.endpoint,
                                        "\" is neither /v1/completions nor /v1/chat/completions"));
  }
  if (c.workload != "multi-lora" && c.model.empty()) return Invalid("--model", "must not be empty");
  if (auto st = ValidateWorkload(c); !st.ok()) return st;
  if (c.rate != 0 && c.concurrency != 0) {
    return Invalid("--rate",
                   "an open loop (--rate) and a closed loop (--concurrency) exclude "
                   "each other");
  }
  if (c.rate == 0 && c.concurrency == 0) {
    return Invalid("--rate", "one of --rate (open loop) or --concurrency (closed loop) is needed");
  }
  if (c.concurrency == 0) {
    if (auto st = Positive("--rate", c.rate); !st.ok()) return st;
  } else if (c.concurrency < 0 || c.concurrency > 100'000) {
    return Invalid("--concurrency", StrCat("must be in [1, 100000], got ", c.concurrency));
  }
  if (c.num_requests < 0) return Invalid("--num-requests", "must be >= 0");
  if (!std::isfinite(c.duration_s) || c.duration_s < 0) {
    return Invalid("--duration", "must be >= 0");
  }
  if (auto st = Positive("--timeout", c.timeout_s); !st.ok()) return st;
  for (const auto& [name, value] : c.headers) {
    if (auto h = ParseHeader(StrCat(name, ":", value)); !h.ok()) return h.status();
  }
  return absl::OkStatus();
}

WorkloadSpec SelectedSpec(const LoadgenConfig& c) {
  if (c.workload == "multi-lora") return c.multi_lora;
  if (c.workload == "sharegpt") {
    NoSharingSpec s = c.sharegpt;
    s.model = c.model;
    return s;
  }
  if (c.workload == "long-prompt") {
    LongPromptSpec s = c.long_prompt;
    s.model = c.model;
    return s;
  }
  SharedPrefixSpec s = c.shared_prefix;
  s.model = c.model;
  return s;
}

int64_t RequestLimit(const LoadgenConfig& c) {
  if (c.num_requests == 0 && c.duration_s == 0) return 100;
  return c.num_requests;
}

std::string LoadShape(const LoadgenConfig& c) {
  if (c.concurrency > 0) return StrCat("closed loop, concurrency ", c.concurrency);
  return StrCat(c.poisson ? "poisson " : "constant ", c.rate, " req/s");
}

std::string ConfigJson(const LoadgenConfig& c) {
  std::string out = StrCat("{\"target\":\"", JsonEscape(c.target), "\",\"endpoint\":\"",
                           JsonEscape(c.endpoint), "\",\"model\":\"", JsonEscape(c.model),
                           "\",\"workload\":\"", JsonEscape(c.workload), "\",\"workload_params\":");
  if (c.workload == "multi-lora") {
    const MultiLoraSpec& s = c.multi_lora;
    StrAppend(&out, "{\"adapters\":", s.adapters, ",\"adapter_prefix\":\"",
              JsonEscape(s.adapter_prefix), "\",\"adapter_weights\":[",
              StrJoin(s.tier_weights, ","), "],\"prompt_tokens\":", s.prompt_tokens,
              ",\"output_tokens\":", s.output_tokens, "}");
  } else if (c.workload == "sharegpt") {
    const NoSharingSpec& s = c.sharegpt;
    StrAppend(&out, "{\"input_tokens_median\":", s.prompt_tokens_median,
              ",\"input_tokens_sigma\":", s.prompt_tokens_sigma,
              ",\"min_input_tokens\":", s.min_prompt_tokens,
              ",\"max_input_tokens\":", s.max_prompt_tokens,
              ",\"output_tokens_median\":", s.output_tokens_median,
              ",\"output_tokens_sigma\":", s.output_tokens_sigma,
              ",\"min_output_tokens\":", s.min_output_tokens,
              ",\"max_output_tokens\":", s.max_output_tokens, "}");
  } else if (c.workload == "long-prompt") {
    StrAppend(&out, "{\"prompt_bytes\":", int64_t{c.long_prompt.prompt_tokens} * 4,
              ",\"output_tokens\":", c.long_prompt.output_tokens, "}");
  } else {
    const SharedPrefixSpec& s = c.shared_prefix;
    StrAppend(&out, "{\"groups\":", s.groups, ",\"prompts_per_group\":", s.prompts_per_group,
              ",\"system_tokens\":", s.system_tokens, ",\"question_tokens\":", s.question_tokens,
              ",\"output_tokens\":", s.output_tokens, "}");
  }
  if (c.concurrency > 0) {
    StrAppend(&out, ",\"load\":{\"mode\":\"closed\",\"concurrency\":", c.concurrency, "}");
  } else {
    StrAppend(&out, ",\"load\":{\"mode\":\"open\",\"arrival\":\"",
              c.poisson ? "poisson" : "constant", "\",\"rate\":", c.rate, "}");
  }
  StrAppend(&out, ",\"num_requests\":", RequestLimit(c), ",\"duration_s\":", c.duration_s,
            ",\"seed\":", c.seed, ",\"timeout_s\":", c.timeout_s, ",\"headers\":[");
  for (size_t i = 0; i < c.headers.size(); ++i) {
    StrAppend(&out, i ? "," : "", "[\"", JsonEscape(c.headers[i].first), "\",\"",
              JsonEscape(c.headers[i].second), "\"]");
  }
  StrAppend(&out, "],\"records\":", c.records, "}");
  return out;
}

}  // namespace epp::loadgen
