#include "k8s/rest_config.h"

#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "common/host_port.h"
#include "common/strings.h"

namespace epp::k8s {
namespace {

absl::StatusOr<std::string> ReadFile(const std::string& path, std::string_view what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(StrCat(what, ": cannot read ", path));
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Trim(std::string s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  size_t e = s.find_last_not_of(" \t\r\n");
  return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

// Splits "https://host:port[/...]" into the config's scheme/host/port.
absl::Status ParseServer(const std::string& server, RestConfig& out) {
  std::string_view rest = server;
  if (rest.rfind("https://", 0) == 0) {
    out.scheme = "https";
    rest.remove_prefix(8);
  } else if (rest.rfind("http://", 0) == 0) {
    out.scheme = "http";
    rest.remove_prefix(7);
  } else {
    return absl::InvalidArgumentError(
        StrCat("server \"", server, "\": must start with https:// or http://"));
  }
  if (size_t slash = rest.find('/'); slash != std::string_view::npos) {
    if (rest.substr(slash) != "/") {
      return absl::InvalidArgumentError(
          StrCat("server \"", server, "\": a path prefix is not supported"));
    }
    rest = rest.substr(0, slash);
  }
  uint16_t default_port = out.scheme == "https" ? 443 : 80;
  // Without a port: a bare host or a bracketed IPv6 literal.
  bool has_port = !rest.empty() && rest.back() != ']' && rest.find(':') != std::string_view::npos &&
                  (rest.front() == '[' || rest.find(':') == rest.rfind(':'));
  if (!has_port) {
    std::string host(rest);
    if (host.size() > 1 && host.front() == '[' && host.back() == ']') {
      host = host.substr(1, host.size() - 2);
    }
    if (host.empty()) return absl::InvalidArgumentError(StrCat("server \"", server, "\": no host"));
    out.host = host;
    out.port = default_port;
    return absl::OkStatus();
  }
  auto hp = SplitHostPort(rest);
  if (!hp.ok()) {
    return absl::InvalidArgumentError(StrCat("server \"", server, "\": ", hp.status().message()));
  }
  out.host = hp->host;
  out.port = hp->port;
  return absl::OkStatus();
}

std::string ResolvePath(const std::string& base_dir, const std::string& path) {
  if (path.empty() || path.front() == '/' || base_dir.empty()) return path;
  return base_dir + "/" + path;
}

// Reads `<key>-data` (base64) or `<key>` (a file path) from a kubeconfig map.
absl::StatusOr<std::string> DataOrFile(const YAML::Node& node, const std::string& key,
                                       const std::string& base_dir, const std::string& where) {
  if (auto data = node[key + "-data"]; data && !data.IsNull()) {
    std::string decoded;
    std::string encoded = data.as<std::string>();
    if (!absl::Base64Unescape(AV(encoded), &decoded)) {
      return absl::InvalidArgumentError(StrCat(where, ".", key, "-data: not valid base64"));
    }
    return decoded;
  }
  if (auto file = node[key]; file && !file.IsNull()) {
    return ReadFile(ResolvePath(base_dir, file.as<std::string>()), StrCat(where, ".", key));
  }
  return std::string();
}

// The entry of a kubeconfig named list (`clusters`, `users`, `contexts`) with this name.
YAML::Node FindNamed(const YAML::Node& root, const char* list, const std::string& name) {
  const YAML::Node items = root[list];
  if (!items || !items.IsSequence()) return YAML::Node();
  for (const auto& item : items) {
    if (item["name"] && item["name"].as<std::string>() == name) return item;
  }
  return YAML::Node();
}

}  // namespace

TokenSource::TokenSource(std::string path, std::chrono::seconds refresh)
    : path_(std::move(path)), refresh_(refresh) {}

std::string TokenSource::Token() {
  MutexLock lock(&mu_);
  if (path_.empty()) return token_;
  auto now = std::chrono::steady_clock::now();
  if (token_.empty() || now - read_at_ >= refresh_) {
    auto text = ReadFile(path_, "token file");
    if (text.ok() && !Trim(*text).empty()) token_ = Trim(*text);
    read_at_ = now;
  }
  return token_;
}

std::string RestConfig::HostPort() const { return JoinHostPort(host, port); }

absl::StatusOr<RestConfig> LoadInClusterConfig(
    const std::string& dir, const std::function<const char*(const char*)>& getenv_fn) {
  auto get = [&](const char* name) -> std::string {
    const char* v = getenv_fn ? getenv_fn(name) : std::getenv(name);
    return v ? std::string(v) : std::string();
  };
  std::string host = get("KUBERNETES_SERVICE_HOST");
  std::string port = get("KUBERNETES_SERVICE_PORT");
  if (host.empty() || port.empty()) {
    return absl::FailedPreconditionError(
        "not running in a cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not "
        "set (pass --kubeconfig or set KUBECONFIG)");
  }
  RestConfig c;
  c.host = host;
  int p = 0;
  if (!absl::SimpleAtoi(AV(port), &p) || p <= 0 || p > 65535) {
    return absl::InvalidArgumentError(StrCat("KUBERNETES_SERVICE_PORT \"", port, "\": not a port"));
  }
  c.port = static_cast<uint16_t>(p);
  std::string token_path = dir + "/token";
  auto token = ReadFile(token_path, "service-account token");
  if (!token.ok()) return token.status();
  if (Trim(*token).empty()) {
    return absl::InvalidArgumentError(StrCat("service-account token ", token_path, " is empty"));
  }
  c.token = std::make_shared<TokenSource>(token_path, std::chrono::seconds(60));
  auto ca = ReadFile(dir + "/ca.crt", "service-account CA");
  if (!ca.ok()) return ca.status();
  c.ca_pem = std::move(*ca);
  auto ns = ReadFile(dir + "/namespace", "service-account namespace");
  if (ns.ok()) c.namespace_ = Trim(*ns);
  return c;
}

absl::StatusOr<RestConfig> ParseKubeconfig(std::string_view text, const std::string& base_dir,
                                           const std::string& context) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(StrCat("kubeconfig: not YAML: ", e.what()));
  }
  if (!root.IsMap()) return absl::InvalidArgumentError("kubeconfig: not a mapping");
  try {
    std::string ctx_name = context;
    if (ctx_name.empty()) {
      if (!root["current-context"] || root["current-context"].as<std::string>().empty()) {
        return absl::InvalidArgumentError("kubeconfig: current-context is not set");
      }
      ctx_name = root["current-context"].as<std::string>();
    }
    YAML::Node ctx = FindNamed(root, "contexts", ctx_name);
    if (!ctx || !ctx["context"]) {
      return absl::InvalidArgumentError(StrCat("kubeconfig: context \"", ctx_name, "\" not found"));
    }
    YAML::Node cx = ctx["context"];
    std::string cluster_name = cx["cluster"] ? cx["cluster"].as<std::string>() : "";
    std::string user_name = cx["user"] ? cx["user"].as<std::string>() : "";
    YAML::Node cluster = FindNamed(root, "clusters", cluster_name);
    if (!cluster || !cluster["cluster"]) {
      return absl::InvalidArgumentError(StrCat("kubeconfig: cluster \"", cluster_name,
                                               "\" (context \"", ctx_name, "\") not found"));
    }
    YAML::Node cl = cluster["cluster"];
    RestConfig c;
    if (!cl["server"]) {
      return absl::InvalidArgumentError(
          StrCat("kubeconfig: clusters[", cluster_name, "].cluster.server is not set"));
    }
    if (absl::Status s = ParseServer(cl["server"].as<std::string>(), c); !s.ok()) {
      return absl::InvalidArgumentError(
          StrCat("kubeconfig: clusters[", cluster_name, "].cluster.", s.message()));
    }
    std::string where = StrCat("kubeconfig: clusters[", cluster_name, "].cluster");
    auto ca = DataOrFile(cl, "certificate-authority", base_dir, where);
    if (!ca.ok()) return ca.status();
    c.ca_pem = std::move(*ca);
    if (cl["insecure-skip-tls-verify"])
      c.insecure_skip_verify = cl["insecure-skip-tls-verify"].as<bool>();
    if (cl["tls-server-name"]) c.tls_server_name = cl["tls-server-name"].as<std::string>();
    if (cx["namespace"]) c.namespace_ = cx["namespace"].as<std::string>();

    c.token = std::make_shared<TokenSource>();
    if (!user_name.empty()) {
      YAML::Node user = FindNamed(root, "users", user_name);
      if (!user) {
        return absl::InvalidArgumentError(StrCat("kubeconfig: user \"", user_name, "\" not found"));
      }
      YAML::Node u = user["user"];
      if (u && u.IsMap()) {
        std::string uwhere = StrCat("kubeconfig: users[", user_name, "].user");
        if (u["exec"] || u["auth-provider"]) {
          return absl::UnimplementedError(
              StrCat(uwhere,
                     ": exec and auth-provider credential plugins are not supported; use "
                     "a token, tokenFile or client certificate"));
        }
        if (u["token"] && !u["token"].as<std::string>().empty()) {
          c.token = std::make_shared<TokenSource>(u["token"].as<std::string>());
        } else if (u["tokenFile"]) {
          std::string path = ResolvePath(base_dir, u["tokenFile"].as<std::string>());
          auto t = ReadFile(path, StrCat(uwhere, ".tokenFile"));
          if (!t.ok()) return t.status();
          c.token = std::make_shared<TokenSource>(path, std::chrono::seconds(60));
        }
        auto cert = DataOrFile(u, "client-certificate", base_dir, uwhere);
        if (!cert.ok()) return cert.status();
        auto key = DataOrFile(u, "client-key", base_dir, uwhere);
        if (!key.ok()) return key.status();
        if (cert->empty() != key->empty()) {
          return absl::InvalidArgumentError(
              StrCat(uwhere, ": client-certificate and client-key must be set together"));
        }
        c.client_cert_pem = std::move(*cert);
        c.client_key_pem = std::move(*key);
      }
    }
    return c;
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(StrCat("kubeconfig: ", e.what()));
  }
}

absl::StatusOr<RestConfig> LoadKubeconfig(const std::string& path, const std::string& context) {
  auto text = ReadFile(path, "kubeconfig");
  if (!text.ok()) return text.status();
  std::string base_dir;
  if (size_t slash = path.rfind('/'); slash != std::string::npos) base_dir = path.substr(0, slash);
  return ParseKubeconfig(*text, base_dir, context);
}

absl::StatusOr<RestConfig> LoadRestConfig(const std::string& kubeconfig_flag,
                                          const std::string& sa_dir) {
  if (!kubeconfig_flag.empty()) return LoadKubeconfig(kubeconfig_flag);
  if (const char* env = std::getenv("KUBECONFIG"); env != nullptr && *env != '\0') {
    std::string first(env);
    first = first.substr(0, first.find(':'));
    return LoadKubeconfig(first);
  }
  auto in_cluster = LoadInClusterConfig(sa_dir);
  if (in_cluster.ok() || !absl::IsFailedPrecondition(in_cluster.status())) return in_cluster;
  if (const char* home = std::getenv("HOME"); home != nullptr) {
    std::string path = StrCat(home, "/.kube/config");
    if (std::ifstream(path).good()) return LoadKubeconfig(path);
  }
  return in_cluster.status();
}

}  // namespace epp::k8s
