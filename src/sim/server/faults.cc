#include "sim/server/faults.h"

#include "common/strings.h"
#include "simdjson.h"

namespace epp::sim {

namespace dom = simdjson::dom;

std::string FaultsJson(const Faults& f) {
  return StrCat("{\"error_rate\":", f.error_rate, ",\"error_status\":", f.error_status,
                ",\"hang_rate\":", f.hang_rate, ",\"drop_rate\":", f.drop_rate,
                ",\"metrics_delay_ms\":", f.metrics_delay_ms,
                ",\"metrics_garbage\":", f.metrics_garbage, "}");
}

std::string ErrorTypeForStatus(int status) {
  switch (status) {
    case 400:
      return "BadRequestError";
    case 401:
      return "AuthenticationError";
    case 404:
      return "NotFoundError";
    case 429:
      return "RateLimitError";
    case 501:
      return "NotImplementedError";
    case 503:
      return "ServiceUnavailableError";
    default:
      return status < 500 ? "BadRequestError" : "InternalServerError";
  }
}

std::variant<Faults, api::Error> ApplyFaultsJson(const Faults& current, std::string_view body) {
  dom::parser parser;
  dom::element doc;
  if (auto code = parser.parse(body.data(), body.size()).get(doc); code != simdjson::SUCCESS) {
    return api::BadRequest(StrCat("invalid JSON body: ", simdjson::error_message(code)));
  }
  dom::object obj;
  if (doc.get_object().get(obj) != simdjson::SUCCESS) {
    return api::BadRequest("request body must be a JSON object");
  }
  Faults f = current;
  for (auto field : obj) {
    std::string_view key(field.key.data(), field.key.size());
    dom::element v = field.value;
    auto rate = [&](double* out) -> std::optional<api::Error> {
      double d;
      if (v.get_double().get(d) != simdjson::SUCCESS) {
        int64_t i;
        if (v.get_int64().get(i) != simdjson::SUCCESS) {
          return api::BadRequest(StrCat(key, ": expected a number"));
        }
        d = static_cast<double>(i);
      }
      if (!(d >= 0 && d <= 1)) return api::BadRequest(StrCat(key, ": must be in [0, 1]"));
      *out = d;
      return std::nullopt;
    };
    std::optional<api::Error> err;
    if (key == "error_rate") {
      err = rate(&f.error_rate);
    } else if (key == "hang_rate") {
      err = rate(&f.hang_rate);
    } else if (key == "drop_rate") {
      err = rate(&f.drop_rate);
    } else if (key == "error_status") {
      int64_t s;
      if (v.get_int64().get(s) != simdjson::SUCCESS || s < 400 || s > 599) {
        err = api::BadRequest("error_status: must be an integer in [400, 599]");
      } else {
        f.error_status = static_cast<int>(s);
      }
    } else if (key == "metrics_delay_ms") {
      int64_t ms;
      if (v.get_int64().get(ms) != simdjson::SUCCESS || ms < 0 || ms > 3'600'000) {
        err = api::BadRequest("metrics_delay_ms: must be an integer in [0, 3600000]");
      } else {
        f.metrics_delay_ms = static_cast<int>(ms);
      }
    } else if (key == "metrics_garbage") {
      bool b;
      if (v.get_bool().get(b) != simdjson::SUCCESS) {
        err = api::BadRequest("metrics_garbage: expected a boolean");
      } else {
        f.metrics_garbage = b;
      }
    } else {
      err = api::BadRequest(StrCat(key,
                                   ": unknown fault (known: error_rate, error_status, "
                                   "hang_rate, drop_rate, metrics_delay_ms, "
                                   "metrics_garbage)"));
    }
    if (err) return *err;
  }
  return f;
}

}  // namespace epp::sim
