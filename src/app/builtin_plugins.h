// RegisterBuiltinPlugins: the one place that knows every in-tree plugin type.
#ifndef EPP_APP_BUILTIN_PLUGINS_H_
#define EPP_APP_BUILTIN_PLUGINS_H_

#include "common/plugin.h"

namespace epp::app {

void RegisterBuiltinPlugins(PluginRegistry& registry);

}  // namespace epp::app

#endif  // EPP_APP_BUILTIN_PLUGINS_H_
