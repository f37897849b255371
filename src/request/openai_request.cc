#include "request/openai_request.h"

#include <memory>

#include "common/strings.h"
#include "simdjson.h"

namespace epp::request {
namespace {

namespace od = simdjson::ondemand;

// Bodies above this size get a parser of their own instead of the thread's cached one, so a
// rare huge prompt does not pin its buffers to a gRPC thread forever.
constexpr size_t kCachedParserMaxBytes = 4 << 20;

absl::Status Invalid(std::string_view what) {
  return absl::InvalidArgumentError(std::string(what));
}

absl::Status JsonError(simdjson::error_code e) {
  return absl::InvalidArgumentError(StrCat("invalid JSON body: ", simdjson::error_message(e)));
}

// The span of `raw` in `body`. Scalar tokens from simdjson carry the whitespace that follows
// them; it is not part of the value.
Span SpanOf(std::string_view body, std::string_view raw) {
  while (!raw.empty() &&
         (raw.back() == ' ' || raw.back() == '\t' || raw.back() == '\n' || raw.back() == '\r')) {
    raw.remove_suffix(1);
  }
  return Span{static_cast<size_t>(raw.data() - body.data()), raw.size()};
}

struct RawJson {
  std::string_view raw;
  bool nonempty = false;  // a non-empty string or array, any object or number
  bool is_null = false;
};

// Returns the raw bytes of a value (scalar token, or whole array/object) and what the
// validation rules need to know about it.
absl::StatusOr<RawJson> RawValue(od::value& v) {
  od::json_type type;
  if (auto e = v.type().get(type)) return JsonError(e);
  std::string_view raw;
  switch (type) {
    case od::json_type::array: {
      od::array arr;
      if (auto e = v.get_array().get(arr)) return JsonError(e);
      size_t n = 0;
      if (auto e = arr.count_elements().get(n)) return JsonError(e);
      if (auto e = arr.raw_json().get(raw)) return JsonError(e);
      return RawJson{raw, n > 0};
    }
    case od::json_type::object: {
      od::object obj;
      if (auto e = v.get_object().get(obj)) return JsonError(e);
      if (auto e = obj.raw_json().get(raw)) return JsonError(e);
      return RawJson{raw, true};
    }
    case od::json_type::string: {
      raw = v.raw_json_token();
      std::string_view s;
      if (auto e = v.get_string().get(s)) return JsonError(e);
      return RawJson{raw, !s.empty()};
    }
    case od::json_type::null:
      raw = v.raw_json_token();
      return RawJson{raw, false, /*is_null=*/true};
    default:
      raw = v.raw_json_token();
      return RawJson{raw, true};
  }
}

std::string_view PromptField(ApiKind kind) {
  switch (kind) {
    case ApiKind::kChatCompletions:
      return "messages";
    case ApiKind::kEmbeddings:
    case ApiKind::kResponses:
      return "input";
    case ApiKind::kConversations:
      return "items";
    case ApiKind::kCompletions:
      break;
  }
  return "prompt";
}

absl::StatusOr<ParsedRequest> ParseWith(od::parser& parser, ApiKind kind, std::string_view body,
                                        size_t capacity) {
  ParsedRequest out;
  out.kind = kind;
  simdjson::padded_string_view input(body.data(), body.size(), capacity);
  od::document doc;
  if (auto e = parser.iterate(input).get(doc)) return JsonError(e);
  od::object root;
  if (auto e = doc.get_object().get(root)) {
    if (e == simdjson::INCORRECT_TYPE) return Invalid("invalid JSON body: not a JSON object");
    return JsonError(e);
  }
  const std::string_view prompt_field = PromptField(kind);
  bool have_model = false;
  bool have_prompt = false;
  bool prompt_nonempty = false;
  bool prompt_null = false;
  for (auto field_result : root) {
    od::field field;
    if (auto e = std::move(field_result).get(field)) return JsonError(e);
    std::string_view key;
    if (auto e = field.unescaped_key().get(key)) return JsonError(e);
    od::value value = field.value();
    if (key == "model") {
      out.model_token = SpanOf(body, value.raw_json_token());
      std::string_view model;
      if (value.get_string().get(model))
        return Invalid("invalid request body: model must be a string");
      out.model = std::string(model);
      have_model = true;
    } else if (key == "stream") {
      od::json_type t;
      if (auto e = value.type().get(t)) return JsonError(e);
      if (t == od::json_type::null) {
        out.stream = false;
      } else if (value.get_bool().get(out.stream)) {
        return Invalid("invalid request body: stream must be a boolean");
      }
    } else if (key == "cache_salt") {
      std::string_view salt;
      if (value.get_string().get(salt)) {
        return Invalid("invalid request body: cache_salt must be a string");
      }
      out.cache_salt = std::string(salt);
    } else if (key == prompt_field) {
      auto raw = RawValue(value);
      if (!raw.ok()) return raw.status();
      out.prompt = SpanOf(body, raw->raw);
      have_prompt = true;
      prompt_nonempty = raw->nonempty;
      prompt_null = raw->is_null;
    }
    // Other values are skipped by the iterator; structural errors in them surface as the
    // error of the next field.
  }
  // Anything left after the root object is trailing content (this simdjson has no at_end()).
  const char* rest = nullptr;
  if (doc.current_location().get(rest) == simdjson::SUCCESS) {
    return Invalid("invalid JSON body: trailing content after the object");
  }

  switch (kind) {
    case ApiKind::kChatCompletions:
      if (!have_prompt || !prompt_nonempty) {
        return Invalid("invalid chat completions request: messages must hold at least one message");
      }
      break;
    case ApiKind::kCompletions:
      if (!have_prompt || !prompt_nonempty) {
        return Invalid("invalid completions request: prompt is required and must not be empty");
      }
      break;
    case ApiKind::kEmbeddings:
    case ApiKind::kResponses:
      if (!have_prompt || prompt_null) {
        return Invalid(StrCat("invalid ", ApiKindName(kind), " request: input is required"));
      }
      break;
    case ApiKind::kConversations:
      if (!have_prompt || prompt_null) {
        return Invalid("invalid conversations request: items is required");
      }
      break;
  }
  if (!have_model) return Invalid("model not found in request body");
  return out;
}

}  // namespace

std::string_view ApiKindName(ApiKind kind) {
  switch (kind) {
    case ApiKind::kCompletions:
      return "completions";
    case ApiKind::kChatCompletions:
      return "chat completions";
    case ApiKind::kEmbeddings:
      return "embeddings";
    case ApiKind::kResponses:
      return "responses";
    case ApiKind::kConversations:
      return "conversations";
  }
  return "unknown";
}

ApiKind ApiKindFromPath(std::string_view path) {
  size_t q = path.find_first_of("?#");
  if (q != std::string_view::npos) path = path.substr(0, q);
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  if (path.ends_with("/conversations")) return ApiKind::kConversations;
  if (path.ends_with("/responses")) return ApiKind::kResponses;
  if (path.ends_with("/chat/completions")) return ApiKind::kChatCompletions;
  if (path.ends_with("/completions")) return ApiKind::kCompletions;
  if (path.ends_with("/embeddings")) return ApiKind::kEmbeddings;
  return ApiKind::kCompletions;
}

size_t ParsePaddingBytes() { return simdjson::SIMDJSON_PADDING; }

absl::StatusOr<ParsedRequest> ParseRequest(ApiKind kind, std::string_view body, size_t capacity) {
  if (capacity < body.size() + simdjson::SIMDJSON_PADDING) {
    // The caller could not give us padding: parse a padded copy (tests, odd callers).
    simdjson::padded_string copy(body);
    // Spans are offsets, so they are valid for the original body too.
    return ParseRequest(kind, std::string_view(copy.data(), copy.size()),
                        copy.size() + simdjson::SIMDJSON_PADDING);
  }
  if (body.size() > kCachedParserMaxBytes) {
    od::parser parser;
    return ParseWith(parser, kind, body, capacity);
  }
  thread_local od::parser parser;
  return ParseWith(parser, kind, body, capacity);
}

std::string SpliceModel(std::string_view body, Span model_token, std::string_view new_model) {
  std::string out;
  std::string escaped = JsonEscape(new_model);
  out.reserve(body.size() - model_token.length + escaped.size() + 2);
  out.append(body.substr(0, model_token.offset));
  out.push_back('"');
  out.append(escaped);
  out.push_back('"');
  out.append(body.substr(model_token.offset + model_token.length));
  return out;
}

}  // namespace epp::request
