#include "sim/server/api.h"

#include <array>

#include "common/strings.h"
#include "simdjson.h"

namespace epp::sim::api {

namespace dom = simdjson::dom;

Error BadRequest(std::string message) { return Error{400, "BadRequestError", std::move(message)}; }
Error NotFound(std::string message) { return Error{404, "NotFoundError", std::move(message)}; }

std::string ErrorJson(const Error& e) {
  return StrCat("{\"error\":{\"message\":\"", JsonEscape(e.message), "\",\"type\":\"",
                JsonEscape(e.type), "\",\"param\":null,\"code\":", e.status, "}}");
}

namespace {

using dom::element_type;

std::string_view TypeName(element_type t) {
  switch (t) {
    case element_type::ARRAY:
      return "an array";
    case element_type::OBJECT:
      return "an object";
    case element_type::INT64:
    case element_type::UINT64:
      return "an integer";
    case element_type::DOUBLE:
      return "a number";
    case element_type::STRING:
      return "a string";
    case element_type::BOOL:
      return "a boolean";
    case element_type::NULL_VALUE:
      return "null";
  }
  return "a value";
}

Error WrongType(std::string_view field, std::string_view want, const dom::element& got) {
  return BadRequest(StrCat(field, ": expected ", want, ", got ", TypeName(got.type())));
}

bool IsInt(const dom::element& e) {
  return e.type() == element_type::INT64 || e.type() == element_type::UINT64;
}

// Reads an optional boolean; false on success (absent or bool), sets *err otherwise.
bool ReadBool(const dom::object& obj, std::string_view key, bool* out, Error* err) {
  dom::element e;
  if (obj.at_key(key).get(e) != simdjson::SUCCESS || e.is_null()) return true;
  if (e.type() != element_type::BOOL) {
    *err = WrongType(key, "a boolean", e);
    return false;
  }
  *out = bool(e);
  return true;
}

bool ReadString(const dom::object& obj, std::string_view key, std::string* out, Error* err) {
  dom::element e;
  if (obj.at_key(key).get(e) != simdjson::SUCCESS || e.is_null()) return true;
  if (e.type() != element_type::STRING) {
    *err = WrongType(key, "a string", e);
    return false;
  }
  *out = std::string(std::string_view(e));
  return true;
}

// Token ids in `arr`; false (with *err) when an element is not a non-negative integer.
bool ReadTokenIds(const dom::array& arr, std::string_view field, std::vector<TokenId>* out,
                  Error* err) {
  for (dom::element t : arr) {
    if (!IsInt(t) || (t.type() == element_type::INT64 && int64_t(t) < 0) ||
        (t.type() == element_type::INT64 && int64_t(t) > 0xffffffffLL) ||
        (t.type() == element_type::UINT64 && uint64_t(t) > 0xffffffffULL)) {
      *err = BadRequest(StrCat(field, ": token ids must be integers in [0, 2^32)"));
      return false;
    }
    out->push_back(t.type() == element_type::INT64 ? static_cast<TokenId>(int64_t(t))
                                                   : static_cast<TokenId>(uint64_t(t)));
  }
  return true;
}

// prompt: "text" | [ids] | ["text"] | [[ids]].
bool ReadPrompt(const dom::element& p, std::vector<TokenId>* tokens, std::string* text,
                Error* err) {
  if (p.type() == element_type::STRING) {
    *text = std::string(std::string_view(p));
    *tokens = Tokenize(*text);
    return true;
  }
  if (p.type() != element_type::ARRAY) {
    *err = WrongType("prompt", "a string or a list of token ids", p);
    return false;
  }
  dom::array arr = p;
  if (arr.size() == 0) {
    *err = BadRequest("prompt: must not be empty");
    return false;
  }
  dom::element first = arr.at(0);
  if (IsInt(first)) return ReadTokenIds(arr, "prompt", tokens, err);
  if (arr.size() > 1) {
    *err = BadRequest(StrCat("prompt: batched prompts (", arr.size(),
                             " prompts) are not supported by modelsim; send one per request"));
    return false;
  }
  if (first.type() == element_type::STRING) {
    *text = std::string(std::string_view(first));
    *tokens = Tokenize(*text);
    return true;
  }
  if (first.type() == element_type::ARRAY) {
    return ReadTokenIds(dom::array(first), "prompt", tokens, err);
  }
  *err = WrongType("prompt[0]", "a string or a list of token ids", first);
  return false;
}

bool ReadMessages(const dom::element& m, std::vector<ChatMessage>* out, Error* err) {
  if (m.type() != element_type::ARRAY) {
    *err = WrongType("messages", "a list", m);
    return false;
  }
  size_t i = 0;
  for (dom::element msg : dom::array(m)) {
    std::string where = StrCat("messages[", i++, "]");
    if (msg.type() != element_type::OBJECT) {
      *err = WrongType(where, "an object", msg);
      return false;
    }
    dom::object obj = msg;
    ChatMessage cm;
    dom::element role;
    if (obj.at_key("role").get(role) != simdjson::SUCCESS || role.type() != element_type::STRING) {
      *err = BadRequest(StrCat(where, ".role: required string"));
      return false;
    }
    cm.role = std::string(std::string_view(role));
    dom::element content;
    if (obj.at_key("content").get(content) == simdjson::SUCCESS && !content.is_null()) {
      if (content.type() == element_type::STRING) {
        cm.content = std::string(std::string_view(content));
      } else if (content.type() == element_type::ARRAY) {
        for (dom::element part : dom::array(content)) {
          std::string_view type, text;
          if (part.type() != element_type::OBJECT ||
              part["type"].get_string().get(type) != simdjson::SUCCESS) {
            *err = BadRequest(StrCat(where, ".content: parts must be objects with a type"));
            return false;
          }
          if (type != "text") {
            *err = BadRequest(StrCat(where, ".content: part type \"", type,
                                     "\" is not supported by modelsim (text only)"));
            return false;
          }
          if (part["text"].get_string().get(text) != simdjson::SUCCESS) {
            *err = BadRequest(StrCat(where, ".content: text part without a string \"text\""));
            return false;
          }
          cm.content.append(text);
        }
      } else {
        *err = WrongType(StrCat(where, ".content"), "a string or a list of parts", content);
        return false;
      }
    }
    out->push_back(std::move(cm));
  }
  if (out->empty()) {
    *err = BadRequest("messages: must not be empty");
    return false;
  }
  return true;
}

bool ParseObject(dom::parser& parser, std::string_view body, dom::object* obj, Error* err) {
  dom::element doc;
  auto code = parser.parse(body.data(), body.size()).get(doc);
  if (code != simdjson::SUCCESS) {
    *err = BadRequest(StrCat("invalid JSON body: ", simdjson::error_message(code)));
    return false;
  }
  if (doc.type() != element_type::OBJECT) {
    *err = BadRequest("request body must be a JSON object");
    return false;
  }
  *obj = doc;
  return true;
}

}  // namespace

std::variant<GenerationRequest, Error> ParseGeneration(Endpoint endpoint, std::string_view body) {
  dom::parser parser;
  dom::object obj;
  Error err;
  if (!ParseObject(parser, body, &obj, &err)) return err;
  GenerationRequest r;
  r.endpoint = endpoint;
  if (!ReadString(obj, "model", &r.model, &err)) return err;
  if (endpoint == Endpoint::kCompletions) {
    dom::element p;
    if (obj.at_key("prompt").get(p) != simdjson::SUCCESS || p.is_null()) {
      return BadRequest("prompt: field required");
    }
    if (!ReadPrompt(p, &r.prompt_tokens, &r.prompt_text, &err)) return err;
  } else {
    dom::element m;
    if (obj.at_key("messages").get(m) != simdjson::SUCCESS || m.is_null()) {
      return BadRequest("messages: field required");
    }
    std::vector<ChatMessage> messages;
    if (!ReadMessages(m, &messages, &err)) return err;
    r.prompt_text = RenderChat(messages);
    r.prompt_tokens = Tokenize(r.prompt_text);
  }
  if (r.prompt_tokens.empty()) return BadRequest("prompt: must not be empty");
  // max_tokens, or max_completion_tokens (chat's newer name).
  for (std::string_view key : {"max_tokens", "max_completion_tokens"}) {
    dom::element e;
    if (obj.at_key(key).get(e) != simdjson::SUCCESS || e.is_null()) continue;
    if (!IsInt(e)) return WrongType(key, "an integer", e);
    int64_t v = e.type() == element_type::INT64 ? int64_t(e) : INT64_MAX;
    if (v < 1) return BadRequest(StrCat(key, ": must be at least 1, got ", v, "."));
    r.max_tokens = static_cast<int>(std::min<int64_t>(v, INT32_MAX));
    break;
  }
  dom::element n;
  if (obj.at_key("n").get(n) == simdjson::SUCCESS && !n.is_null()) {
    if (!IsInt(n)) return WrongType("n", "an integer", n);
    if (n.type() != element_type::INT64 || int64_t(n) != 1) {
      return BadRequest("n: only n = 1 is supported by modelsim");
    }
  }
  if (!ReadBool(obj, "stream", &r.stream, &err)) return err;
  if (!ReadBool(obj, "ignore_eos", &r.ignore_eos, &err)) return err;
  if (!ReadString(obj, "cache_salt", &r.cache_salt, &err)) return err;
  dom::element so;
  if (obj.at_key("stream_options").get(so) == simdjson::SUCCESS && !so.is_null()) {
    if (so.type() != element_type::OBJECT) return WrongType("stream_options", "an object", so);
    if (!r.stream) return BadRequest("stream_options: only allowed when stream is true");
    dom::object sobj = so;
    if (!ReadBool(sobj, "include_usage", &r.include_usage, &err)) return err;
    if (!ReadBool(sobj, "continuous_usage_stats", &r.continuous_usage, &err)) return err;
  }
  return r;
}

std::variant<TokenizeRequest, Error> ParseTokenize(std::string_view body) {
  dom::parser parser;
  dom::object obj;
  Error err;
  if (!ParseObject(parser, body, &obj, &err)) return err;
  TokenizeRequest r;
  if (!ReadString(obj, "model", &r.model, &err)) return err;
  dom::element e;
  std::string text;
  if (obj.at_key("prompt").get(e) == simdjson::SUCCESS && !e.is_null()) {
    if (!ReadPrompt(e, &r.tokens, &text, &err)) return err;
  } else if (obj.at_key("messages").get(e) == simdjson::SUCCESS && !e.is_null()) {
    std::vector<ChatMessage> messages;
    if (!ReadMessages(e, &messages, &err)) return err;
    r.tokens = Tokenize(RenderChat(messages));
  } else {
    return BadRequest("prompt: field required (or messages)");
  }
  return r;
}

std::string TokenizeResponseJson(const std::vector<TokenId>& tokens, int max_model_len) {
  std::string out =
      StrCat("{\"count\":", tokens.size(), ",\"max_model_len\":", max_model_len, ",\"tokens\":[");
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (i) out.push_back(',');
    StrAppend(&out, tokens[i]);
  }
  out += "],\"token_strs\":null}";
  return out;
}

std::variant<LoraRequest, Error> ParseLoraRequest(std::string_view body, bool need_path) {
  dom::parser parser;
  dom::object obj;
  Error err;
  if (!ParseObject(parser, body, &obj, &err)) return err;
  LoraRequest r;
  if (!ReadString(obj, "lora_name", &r.name, &err)) return err;
  if (!ReadString(obj, "lora_path", &r.path, &err)) return err;
  if (r.name.empty()) return BadRequest("lora_name: field required");
  if (need_path && r.path.empty()) return BadRequest("lora_path: field required");
  return r;
}

std::string_view TokenText(uint64_t seed, int k) {
  // 64 four-byte words (a space and three letters).
  static constexpr std::array<std::string_view, 64> kWords = {
      " the", " and", " for", " are", " but", " not", " you", " all", " any", " can", " her",
      " was", " one", " our", " out", " day", " get", " has", " him", " his", " how", " man",
      " new", " now", " old", " see", " two", " way", " who", " boy", " did", " its", " let",
      " put", " say", " she", " too", " use", " dad", " mom", " sky", " sea", " sun", " air",
      " art", " box", " car", " cat", " dog", " egg", " eye", " fan", " fox", " gem", " hat",
      " ice", " jam", " key", " lab", " map", " net", " owl", " pen", " row"};
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(k) * 0xBF58476D1CE4E5B9ull;
  x ^= x >> 29;
  return kWords[x % kWords.size()];
}

namespace {

void AppendHead(std::string* out, const ResponseMeta& m, std::string_view object) {
  StrAppend(out, "{\"id\":\"", m.id, "\",\"object\":\"", object, "\",\"created\":", m.created,
            ",\"model\":\"", JsonEscape(m.model), "\"");
}

void AppendUsage(std::string* out, const Usage& u) {
  StrAppend(out, "{\"prompt_tokens\":", u.prompt_tokens,
            ",\"total_tokens\":", u.prompt_tokens + u.completion_tokens,
            ",\"completion_tokens\":", u.completion_tokens, "}");
}

void AppendFinish(std::string* out, std::string_view finish_reason) {
  if (finish_reason.empty()) {
    out->append("null");
  } else {
    StrAppend(out, "\"", finish_reason, "\"");
  }
}

}  // namespace

std::string StreamChunk(const ResponseMeta& m, std::string_view text,
                        std::string_view finish_reason, const Usage* usage) {
  std::string out = "data: ";
  if (m.endpoint == Endpoint::kChatCompletions) {
    AppendHead(&out, m, "chat.completion.chunk");
    StrAppend(&out, ",\"choices\":[{\"index\":0,\"delta\":{");
    StrAppend(&out, "\"content\":\"", JsonEscape(text), "\"},\"logprobs\":null,\"finish_reason\":");
    AppendFinish(&out, finish_reason);
    if (!finish_reason.empty()) out += ",\"stop_reason\":null";
    out += "}]";
    // Chat chunks omit unset fields: no usage key unless continuous usage stats are on.
    if (usage) {
      out += ",\"usage\":";
      AppendUsage(&out, *usage);
    }
    out += "}\n\n";
  } else {
    AppendHead(&out, m, "text_completion");
    StrAppend(&out, ",\"choices\":[{\"index\":0,\"text\":\"", JsonEscape(text),
              "\",\"logprobs\":null,\"finish_reason\":");
    AppendFinish(&out, finish_reason);
    out += ",\"stop_reason\":null}],\"usage\":";
    if (usage) {
      AppendUsage(&out, *usage);
    } else {
      out += "null";
    }
    out += "}\n\n";
  }
  return out;
}

std::string ChatRoleChunk(const ResponseMeta& m, const Usage* usage) {
  std::string out = "data: ";
  AppendHead(&out, m, "chat.completion.chunk");
  out +=
      ",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},"
      "\"logprobs\":null,\"finish_reason\":null}]";
  if (usage) {
    out += ",\"usage\":";
    AppendUsage(&out, *usage);
  }
  out += "}\n\n";
  return out;
}

std::string UsageChunk(const ResponseMeta& m, const Usage& usage) {
  std::string out = "data: ";
  AppendHead(
      &out, m,
      m.endpoint == Endpoint::kChatCompletions ? "chat.completion.chunk" : "text_completion");
  out += ",\"choices\":[],\"usage\":";
  AppendUsage(&out, usage);
  out += "}\n\n";
  return out;
}

std::string StreamErrorEvent(const Error& e) { return StrCat("data: ", ErrorJson(e), "\n\n"); }

std::string CompleteResponse(const ResponseMeta& m, std::string_view text,
                             std::string_view finish_reason, const Usage& usage) {
  std::string out;
  if (m.endpoint == Endpoint::kChatCompletions) {
    AppendHead(&out, m, "chat.completion");
    StrAppend(&out, ",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"",
              JsonEscape(text),
              "\",\"tool_calls\":[],\"reasoning_content\":null},\"logprobs\":null,"
              "\"finish_reason\":");
    AppendFinish(&out, finish_reason);
    out += ",\"stop_reason\":null}],\"usage\":";
    AppendUsage(&out, usage);
    out += ",\"prompt_logprobs\":null,\"kv_transfer_params\":null}";
  } else {
    AppendHead(&out, m, "text_completion");
    StrAppend(&out, ",\"choices\":[{\"index\":0,\"text\":\"", JsonEscape(text),
              "\",\"logprobs\":null,\"finish_reason\":");
    AppendFinish(&out, finish_reason);
    out += ",\"stop_reason\":null,\"prompt_logprobs\":null}],\"usage\":";
    AppendUsage(&out, usage);
    out += "}";
  }
  return out;
}

std::string ModelsJson(const std::vector<ModelCard>& cards, int64_t created, int max_model_len) {
  std::string out = "{\"object\":\"list\",\"data\":[";
  for (size_t i = 0; i < cards.size(); ++i) {
    const ModelCard& c = cards[i];
    if (i) out.push_back(',');
    StrAppend(&out, "{\"id\":\"", JsonEscape(c.id), "\",\"object\":\"model\",\"created\":", created,
              ",\"owned_by\":\"vllm\",\"root\":\"", JsonEscape(c.root), "\",\"parent\":");
    if (c.parent.empty()) {
      StrAppend(&out, "null,\"max_model_len\":", max_model_len);
    } else {
      StrAppend(&out, "\"", JsonEscape(c.parent), "\",\"max_model_len\":null");
    }
    StrAppend(&out, ",\"permission\":[{\"id\":\"modelperm-", i,
              "\",\"object\":\"model_permission\","
              "\"created\":",
              created,
              ",\"allow_create_engine\":false,\"allow_sampling\":true,\"allow_logprobs\":true,"
              "\"allow_search_indices\":false,\"allow_view\":true,\"allow_fine_tuning\":false,"
              "\"organization\":\"*\",\"group\":null,\"is_blocking\":false}]}");
  }
  out += "]}";
  return out;
}

}  // namespace epp::sim::api
