#include "admin/debug_endpoints.h"

#include "common/strings.h"

namespace epp::admin {
namespace {

void AppendString(std::string& out, std::string_view s) {
  out.push_back('"');
  out.append(JsonEscape(s));
  out.push_back('"');
}

void AppendModels(std::string& out, const std::map<std::string, int>& models) {
  out.push_back('[');
  bool first = true;
  for (const auto& [name, n] : models) {
    if (!first) out.push_back(',');
    first = false;
    AppendString(out, name);
  }
  out.push_back(']');
}

}  // namespace

std::string DebugEndpointsJson(const datastore::Snapshot& snapshot,
                               const std::function<std::string(const std::string&)>& last_error,
                               std::chrono::system_clock::time_point now) {
  std::string out = "[";
  bool first = true;
  for (const auto& e : snapshot.endpoints) {
    if (!first) out.push_back(',');
    first = false;
    out += "{\"name\":";
    AppendString(out, e->name);
    out += ",\"namespace\":";
    AppendString(out, e->ns);
    out += ",\"address\":";
    AppendString(out, e->address);
    StrAppend(&out, ",\"port\":", e->port, ",\"labels\":{");
    bool first_label = true;
    for (const auto& [k, v] : e->labels) {
      if (!first_label) out.push_back(',');
      first_label = false;
      AppendString(out, k);
      out.push_back(':');
      AppendString(out, v);
    }
    out += "},\"metrics\":{";
    auto m = e->metrics ? e->metrics->Load() : std::make_shared<const datastore::Metrics>();
    StrAppend(&out, "\"waiting_queue_size\":", m->waiting_queue_size,
              ",\"running_requests_size\":", m->running_requests_size,
              ",\"kv_cache_usage_percent\":", m->kv_cache_usage_percent, ",\"active_models\":");
    AppendModels(out, m->active_models);
    out += ",\"waiting_models\":";
    AppendModels(out, m->waiting_models);
    StrAppend(&out, ",\"max_active_models\":", m->max_active_models,
              ",\"cache_block_size\":", m->cache_block_size,
              ",\"cache_num_gpu_blocks\":", m->cache_num_gpu_blocks, ",\"age_ms\":");
    if (m->update_time == std::chrono::system_clock::time_point{}) {
      out += "null";
    } else {
      StrAppend(
          &out,
          std::chrono::duration_cast<std::chrono::milliseconds>(now - m->update_time).count());
    }
    out += ",\"last_error\":";
    AppendString(out, last_error(e->Key()));
    out += "}}";
  }
  out += "]";
  return out;
}

}  // namespace epp::admin
