#include "app/builtin_plugins.h"

#include "datalayer/plugins.h"
#include "discovery/file_discovery.h"
#include "scheduling/plugins/pickers.h"
#include "scheduling/plugins/single_profile_handler.h"

namespace epp::app {

void RegisterBuiltinPlugins(PluginRegistry& registry) {
  registry.Register(std::string(discovery::kFileDiscoveryType), discovery::FileDiscovery::Create);
  registry.Register(std::string(datalayer::kMetricsDataSourceType),
                    datalayer::MetricsDataSource::Create);
  registry.Register(std::string(datalayer::kCoreMetricsExtractorType),
                    datalayer::CoreMetricsExtractor::Create);
  registry.Register(std::string(scheduling::kMaxScorePickerType),
                    scheduling::MaxScorePicker::Create);
  registry.Register(std::string(scheduling::kRandomPickerType), scheduling::RandomPicker::Create);
  registry.Register(std::string(scheduling::kSingleProfileHandlerType),
                    scheduling::SingleProfileHandler::Create);
}

}  // namespace epp::app
