// TLS material (for the ext_proc server, and test servers): a self-signed certificate made at start
// (as the reference does; proxies are configured to skip verification), or tls.crt/tls.key from a
// directory.
#ifndef EPP_NET_TLS_H_
#define EPP_NET_TLS_H_

#include <string>

#include "absl/status/statusor.h"

namespace epp::net {

struct KeyCertPair {
  std::string private_key_pem;
  std::string cert_chain_pem;
};

// RSA-2048, 10 years, organization "Inference Ext". Errors carry OpenSSL's reason.
absl::StatusOr<KeyCertPair> GenerateSelfSigned();

// Reads <dir>/tls.key and <dir>/tls.crt; errors name the missing or empty file.
absl::StatusOr<KeyCertPair> LoadKeyCertPair(const std::string& dir);

}  // namespace epp::net

#endif  // EPP_NET_TLS_H_
