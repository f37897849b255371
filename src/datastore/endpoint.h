// Endpoint and Snapshot: the immutable view of the pool that every request reads.
#ifndef EPP_DATASTORE_ENDPOINT_H_
#define EPP_DATASTORE_ENDPOINT_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/published.h"
#include "datastore/metrics.h"

namespace epp::datastore {

// One model-server endpoint (a Pod × target port, or a file-discovery entry). Immutable once
// published.
struct Endpoint {
  std::string name;
  std::string ns;       // namespace
  std::string address;  // numeric IP literal (names are resolved before publishing)
  uint16_t port = 0;
  std::map<std::string, std::string> labels;
  std::string host_port;  // "ip:port" / "[v6]:port", precomputed for the hot path
  // The endpoint's latest model-server metrics, replaced whole by the data layer. Never null
  // once made by MakeEndpoint; kept across updates of the same endpoint (same Key()).
  std::shared_ptr<Published<Metrics>> metrics;

  // Key that identifies the endpoint across updates: "namespace/name".
  std::string Key() const { return ns + "/" + name; }
  // Equality of what discovery says about the endpoint; the metrics cell is not compared.
  bool operator==(const Endpoint& o) const {
    return name == o.name && ns == o.ns && address == o.address && port == o.port &&
           labels == o.labels && host_port == o.host_port;
  }
};

// Membership at one instant. Published whole; readers keep the shared_ptr for a request.
struct Snapshot {
  std::vector<std::shared_ptr<const Endpoint>> endpoints;  // sorted by Key()
  bool pool_ready = false;  // the pool (or discovery source) has been synced at least once
  uint64_t version = 0;
};

// Builds an Endpoint with host_port filled in.
Endpoint MakeEndpoint(std::string name, std::string ns, std::string address, uint16_t port,
                      std::map<std::string, std::string> labels = {});

}  // namespace epp::datastore

#endif  // EPP_DATASTORE_ENDPOINT_H_
