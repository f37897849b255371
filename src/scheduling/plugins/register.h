// RegisterSchedulingPlugins: every scheduling plugin type (filters, scorers, pickers, profile
// handlers, producers) under its reference name. app::RegisterBuiltinPlugins calls it; tests use
// it to build schedulers from config text the way epp does.
#ifndef EPP_SCHEDULING_PLUGINS_REGISTER_H_
#define EPP_SCHEDULING_PLUGINS_REGISTER_H_

#include "common/plugin.h"

namespace epp::scheduling {

void RegisterSchedulingPlugins(PluginRegistry& registry);

}  // namespace epp::scheduling

#endif  // EPP_SCHEDULING_PLUGINS_REGISTER_H_
