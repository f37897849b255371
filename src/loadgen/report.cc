#include "loadgen/report.h"

#include <cstdio>

#include "common/strings.h"

namespace epp::loadgen {

namespace {

// A fixed-point number ("12.345"); JSON and text alike.
std::string Fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", decimals, v);
  return buf;
}

std::string DistributionJsonMs(const Distribution& d) {
  auto ms = [](double s) { return Fixed(s * 1000, 3); };
  return StrCat("{\"count\":", d.count, ",\"mean\":", ms(d.mean), ",\"min\":", ms(d.min),
                ",\"p50\":", ms(d.p50), ",\"p90\":", ms(d.p90), ",\"p99\":", ms(d.p99),
                ",\"max\":", ms(d.max), "}");
}

std::string RecordJson(const RequestRecord& r) {
  const RequestResult& x = r.result;
  std::string out = StrCat(
      "{\"index\":", r.index, ",\"scheduled_s\":", Fixed(r.scheduled_s, 6), ",\"model\":\"",
      JsonEscape(r.model), "\",\"prompt_bytes\":", r.prompt_bytes, ",\"max_tokens\":", r.max_tokens,
      ",\"group\":", r.group, ",\"status\":", x.status, ",\"ok\":", x.ok(), ",\"error_kind\":\"",
      ErrorKindName(x.error_kind), "\",\"error\":\"", JsonEscape(x.error),
      "\",\"ttft_ms\":", x.ttft_s < 0 ? std::string("null") : Fixed(x.ttft_s * 1000, 3),
      ",\"e2e_ms\":", Fixed(x.e2e_s * 1000, 3), ",\"output_tokens\":", x.output_tokens,
      ",\"content_chunks\":", x.content_chunks, ",\"prompt_tokens\":");
  if (x.prompt_tokens) {
    StrAppend(&out, *x.prompt_tokens);
  } else {
    out += "null";
  }
  out += ",\"itl_ms\":[";
  for (size_t i = 0; i < x.itl_s.size(); ++i) {
    StrAppend(&out, i ? "," : "", Fixed(x.itl_s[i] * 1000, 3));
  }
  out += "]}";
  return out;
}

// "12,345" for counts in the text summary.
std::string Grouped(int64_t n) {
  std::string digits = StrCat(n < 0 ? -n : n);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out.push_back(',');
    out.push_back(digits[i]);
  }
  return n < 0 ? "-" + out : out;
}

std::string Row(std::string_view name, const Distribution& d) {
  char buf[160];
  if (d.count == 0) {
    std::snprintf(buf, sizeof(buf), "  %-5s %10s\n", std::string(name).c_str(), "-");
  } else {
    std::snprintf(buf, sizeof(buf), "  %-5s %10.2f %10.2f %10.2f %10.2f %10.2f %10.2f %9lld\n",
                  std::string(name).c_str(), d.mean * 1000, d.min * 1000, d.p50 * 1000,
                  d.p90 * 1000, d.p99 * 1000, d.max * 1000, static_cast<long long>(d.count));
  }
  return buf;
}

}  // namespace

Summary Summarize(const std::vector<RequestRecord>& records, double duration_s) {
  Summary s;
  s.duration_s = duration_s;
  std::vector<double> ttft, itl, e2e, tpot;
  for (const RequestRecord& r : records) {
    const RequestResult& x = r.result;
    ++s.requests;
    if (!x.ok()) {
      ++s.failed;
      ++s.errors_by_status[x.status];
      ++s.errors_by_kind[std::string(ErrorKindName(x.error_kind))];
      continue;
    }
    ++s.succeeded;
    s.output_tokens += x.output_tokens;
    s.prompt_tokens += x.prompt_tokens.value_or(0);
    if (x.ttft_s >= 0) ttft.push_back(x.ttft_s);
    itl.insert(itl.end(), x.itl_s.begin(), x.itl_s.end());
    e2e.push_back(x.e2e_s);
    if (x.ttft_s >= 0 && x.output_tokens > 1) {
      tpot.push_back((x.e2e_s - x.ttft_s) / static_cast<double>(x.output_tokens - 1));
    }
  }
  if (duration_s > 0) {
    s.requests_per_s = static_cast<double>(s.succeeded) / duration_s;
    s.output_tokens_per_s = static_cast<double>(s.output_tokens) / duration_s;
  }
  s.ttft_s = Summarize(std::move(ttft));
  s.itl_s = Summarize(std::move(itl));
  s.e2e_s = Summarize(std::move(e2e));
  s.tpot_s = Summarize(std::move(tpot));
  return s;
}

std::string ResultJson(const LoadgenConfig& config, const Summary& s,
                       const std::vector<RequestRecord>* records) {
  std::string out = StrCat("{\"config\":", ConfigJson(config), ",\"summary\":{");
  StrAppend(&out, "\"requests\":", s.requests, ",\"succeeded\":", s.succeeded,
            ",\"failed\":", s.failed, ",\"errors_by_status\":{");
  bool first = true;
  for (const auto& [status, n] : s.errors_by_status) {
    StrAppend(&out, first ? "" : ",", "\"", status, "\":", n);
    first = false;
  }
  out += "},\"errors_by_kind\":{";
  first = true;
  for (const auto& [kind, n] : s.errors_by_kind) {
    StrAppend(&out, first ? "" : ",", "\"", JsonEscape(kind), "\":", n);
    first = false;
  }
  StrAppend(
      &out, "},\"duration_s\":", Fixed(s.duration_s, 6),
      ",\"requests_per_s\":", Fixed(s.requests_per_s, 4), ",\"output_tokens\":", s.output_tokens,
      ",\"output_tokens_per_s\":", Fixed(s.output_tokens_per_s, 3),
      ",\"prompt_tokens\":", s.prompt_tokens, ",\"ttft_ms\":", DistributionJsonMs(s.ttft_s),
      ",\"itl_ms\":", DistributionJsonMs(s.itl_s), ",\"e2e_ms\":", DistributionJsonMs(s.e2e_s),
      ",\"tpot_ms\":", DistributionJsonMs(s.tpot_s),
      ",\"connections_opened\":", s.connections_opened, ",\"interrupted\":", s.interrupted, "}");
  if (records) {
    out += ",\"records\":[";
    for (size_t i = 0; i < records->size(); ++i) {
      if (i) out += ",\n";
      out += RecordJson((*records)[i]);
    }
    out += "]";
  }
  out += "}\n";
  return out;
}

std::string TextSummary(const LoadgenConfig& c, const Summary& s) {
  std::string out = StrCat("loadgen: ", c.workload, " -> ", c.target, c.endpoint, "\n");
  StrAppend(&out, "load:    ", LoadShape(c), ", seed ", c.seed, ", model ",
            c.workload == "multi-lora" ? c.multi_lora.adapter_prefix + "*" : c.model,
            s.interrupted ? " (interrupted)" : "", "\n");
  StrAppend(&out, "result:  ", Grouped(s.requests), " requests: ", Grouped(s.succeeded), " ok, ",
            Grouped(s.failed), " failed, in ", Fixed(s.duration_s, 2), " s over ",
            s.connections_opened, " connections\n");
  if (!s.errors_by_status.empty()) {
    out += "errors:  status ";
    bool first = true;
    for (const auto& [status, n] : s.errors_by_status) {
      StrAppend(&out, first ? "" : ", ", status, ": ", n);
      first = false;
    }
    out += "; ";
    first = true;
    for (const auto& [kind, n] : s.errors_by_kind) {
      StrAppend(&out, first ? "" : ", ", kind, ": ", n);
      first = false;
    }
    out += "\n";
  }
  StrAppend(&out, "rate:    ", Fixed(s.requests_per_s, 2), " req/s, ",
            Grouped(static_cast<int64_t>(s.output_tokens_per_s + 0.5)), " output tokens/s (",
            Grouped(s.output_tokens), " output, ", Grouped(s.prompt_tokens), " prompt tokens)\n");
  out += "  (ms)        mean        min        p50        p90        p99        max   samples\n";
  out += Row("TTFT", s.ttft_s);
  out += Row("ITL", s.itl_s);
  out += Row("TPOT", s.tpot_s);
  out += Row("E2E", s.e2e_s);
  return out;
}

}  // namespace epp::loadgen
