#include "app/builtin_plugins.h"

#include "datalayer/plugins.h"
#include "discovery/file_discovery.h"
#include "scheduling/plugins/register.h"

namespace epp::app {

void RegisterBuiltinPlugins(PluginRegistry& registry) {
  registry.Register(std::string(discovery::kFileDiscoveryType), discovery::FileDiscovery::Create);
  registry.Register(std::string(datalayer::kMetricsDataSourceType),
                    datalayer::MetricsDataSource::Create);
  registry.Register(std::string(datalayer::kCoreMetricsExtractorType),
                    datalayer::CoreMetricsExtractor::Create);
  scheduling::RegisterSchedulingPlugins(registry);
}

}  // namespace epp::app
