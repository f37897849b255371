// How to reach the Kubernetes API server: address, TLS trust, client credentials. Loaded from a
// kubeconfig file or from the in-cluster service-account mount, as client-go does.
#ifndef EPP_K8S_REST_CONFIG_H_
#define EPP_K8S_REST_CONFIG_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/mutex.h"

namespace epp::k8s {

inline constexpr std::string_view kServiceAccountDir =
    "/var/run/secrets/kubernetes.io/serviceaccount";

// A bearer token, optionally backed by a file that is re-read when older than `refresh` (bound
// service-account tokens rotate; client-go re-reads every minute). Thread-safe.
class TokenSource {
 public:
  TokenSource() = default;
  explicit TokenSource(std::string fixed_token) : token_(std::move(fixed_token)) {}
  TokenSource(std::string path, std::chrono::seconds refresh);

  // The current token; "" when none. A failed re-read keeps the last good token.
  std::string Token();

 private:
  const std::string path_;
  const std::chrono::seconds refresh_{60};
  Mutex mu_;
  std::string token_ ABSL_GUARDED_BY(mu_);
  std::chrono::steady_clock::time_point read_at_ ABSL_GUARDED_BY(mu_){};
};

struct RestConfig {
  std::string scheme = "https";  // "https" or "http"
  std::string host;              // name or IP literal (no brackets)
  uint16_t port = 443;
  // TLS trust: PEM CA bundle; empty = the system's CAs. insecure skips verification.
  std::string ca_pem;
  bool insecure_skip_verify = false;
  std::string tls_server_name;  // overrides the name verified and sent as SNI
  // Client certificate authentication (PEM), optional.
  std::string client_cert_pem;
  std::string client_key_pem;
  std::shared_ptr<TokenSource> token;  // never null
  // The namespace the credentials come with (in-cluster: the pod's; kubeconfig: the context's).
  std::string namespace_;

  std::string HostPort() const;  // "host:port", IPv6 bracketed
};

// In-cluster: KUBERNETES_SERVICE_HOST / KUBERNETES_SERVICE_PORT from the environment (`getenv`),
// token, ca.crt and namespace from `dir`. FailedPrecondition when not running in a cluster (the
// variables are unset), NotFound/InvalidArgument naming the file otherwise.
absl::StatusOr<RestConfig> LoadInClusterConfig(
    const std::string& dir, const std::function<const char*(const char*)>& getenv_fn = nullptr);

// kubeconfig: the named context, or current-context when `context` is empty. Supports server
// (http/https), certificate-authority(-data), insecure-skip-tls-verify, tls-server-name,
// client-certificate(-data), client-key(-data), token, tokenFile. Relative file paths are
// resolved against the kubeconfig's directory. Exec and auth-provider plugins are refused with
// Unimplemented naming the user. InvalidArgument names the missing or bad field.
absl::StatusOr<RestConfig> LoadKubeconfig(const std::string& path, const std::string& context = "");
absl::StatusOr<RestConfig> ParseKubeconfig(std::string_view text, const std::string& base_dir,
                                           const std::string& context = "");

// client-go's order: an explicit kubeconfig path (flag), else $KUBECONFIG (first entry), else the
// in-cluster config, else ~/.kube/config. `sa_dir` is the service-account directory.
absl::StatusOr<RestConfig> LoadRestConfig(const std::string& kubeconfig_flag,
                                          const std::string& sa_dir);

}  // namespace epp::k8s

#endif  // EPP_K8S_REST_CONFIG_H_
