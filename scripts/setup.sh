#!/usr/bin/env bash
# Installs everything the project needs on a fresh Debian 12 machine. Idempotent: a second run
# with everything present does no network work and returns quickly.
#   Debian packages: compiler toolchain and C++ libraries (apt-get).
#   Python tools:    .venv with the pinned requirements (the real Envoy binary, pytest).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

apt_packages=(
  build-essential cmake ninja-build ccache pkg-config clang clang-format
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc
  libabsl-dev libboost-dev libboost-system-dev libsimdjson-dev libyaml-cpp-dev libxxhash-dev
  libspdlog-dev libfmt-dev libcli11-dev libssl-dev libgtest-dev libgmock-dev
  libbenchmark-dev openssl python3-venv curl wrk nginx-light
  libclang-rt-14-dev
)

missing=()
for p in "${apt_packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -q --no-install-recommends \
    "${missing[@]}"
fi

# Python virtualenv with pinned tools. The stamp records the requirements it was built from, so
# a changed requirements file re-runs pip and an unchanged one costs nothing.
venv="$root/.venv"
req="$root/requirements.txt"
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$req" | cut -d' ' -f1)"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "setup: installing Python tools into .venv"
  "$venv/bin/python" -m pip install -q --upgrade pip
  "$venv/bin/python" -m pip install -q -r "$req"
  echo "$want" > "$stamp"
fi

# Go tools for the Kubernetes tests: helm (renders and lints deploy/charts/epp), built from the Go
# module proxy into $(go env GOPATH)/bin once per machine. kube-apiserver and etcd are built on
# first use by tools/k8s-testenv/build.sh (cached under ~/.cache/epp-k8s).
HELM_VERSION=v3.22.0
if ! command -v go >/dev/null && [ -x /usr/local/go/bin/go ]; then
  export PATH="/usr/local/go/bin:$PATH"
fi
if command -v go >/dev/null; then
  helm="$(go env GOPATH)/bin/helm"
  # The module version recorded in the binary (helm's own `version` omits the patch level).
  if [ ! -x "$helm" ] || ! go version -m "$helm" 2>/dev/null |
      grep -q "helm.sh/helm/v3[[:space:]]*$HELM_VERSION"; then
    echo "setup: building helm $HELM_VERSION from the Go module proxy (once; a few minutes)"
    go install "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  fi
else
  echo "setup: no Go toolchain: the Kubernetes tests will fail (they build kube-apiserver)" >&2
fi
