#!/usr/bin/env bash
# Builds a real kube-apiserver and etcd from the Go module proxy for the Kubernetes tests and caches
# them outside the work tree, keyed by version. A warm run (both binaries present) does nothing.
#
# Why builder modules: k8s.io/kubernetes requires its staging modules at v0.0.0 and maps them with
# replace directives, which apply only in the main module, so `go install` cannot build it. The
# builder modules below require it and replace each staging module with its published v0.Y.Z tag;
# the replace list is generated from the upstream go.mod so it follows the release.
#
# Usage: tools/k8s-testenv/build.sh          prints the directory holding kube-apiserver and etcd
# Env:   EPP_K8S_CACHE   cache root (default ~/.cache/epp-k8s)
set -euo pipefail

K8S_VERSION=v1.36.3
ETCD_VERSION=v3.6.15
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${EPP_K8S_CACHE:-$HOME/.cache/epp-k8s}/k8s-${K8S_VERSION}-etcd-${ETCD_VERSION}"
mkdir -p "$cache"

if [ -x "$cache/kube-apiserver" ] && [ -x "$cache/etcd" ]; then
  echo "$cache"
  exit 0
fi
if ! command -v go >/dev/null && [ -x /usr/local/go/bin/go ]; then
  export PATH="/usr/local/go/bin:$PATH"
fi
command -v go >/dev/null || {
  echo "build.sh: the Go toolchain (>= 1.26, from go.dev or the machine image) is required to" \
       "build kube-apiserver and etcd for the Kubernetes tests" >&2
  exit 1
}

export CGO_ENABLED=0 GOFLAGS=-mod=mod
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

if [ ! -x "$cache/kube-apiserver" ]; then
  mkdir -p "$work/apiserver" && cd "$work/apiserver"
  upstream_mod="$(go mod download -json "k8s.io/kubernetes@${K8S_VERSION}" |
    sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')"
  staging_version="v0.${K8S_VERSION#v1.}"
  godebug="$(sed -n 's/^godebug //p' "$upstream_mod")"
  {
    echo "module epp.local/tools/kubeapiserver"
    echo
    echo "go $(sed -n 's/^go //p' "$upstream_mod")"
    [ -n "$godebug" ] && echo "godebug $godebug"
    echo
    echo "require k8s.io/kubernetes ${K8S_VERSION}"
    echo
    echo "replace ("
    sed -n 's/^[[:space:]]*\(k8s.io\/[^ ]*\) => \.\/staging.*/\1/p' "$upstream_mod" |
      while read -r m; do echo "	$m => $m $staging_version"; done
    echo ")"
  } > go.mod
  cat > main.go <<'GO'
// Command kube-apiserver is the upstream kube-apiserver, built through a builder module.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func main() {
	os.Exit(cli.Run(app.NewAPIServerCommand()))
}
GO
  go mod tidy >&2
  minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
  go build -trimpath -ldflags "-s -w \
      -X k8s.io/component-base/version.gitVersion=${K8S_VERSION} \
      -X k8s.io/component-base/version.gitMajor=1 \
      -X k8s.io/component-base/version.gitMinor=${minor}" \
    -o "$cache/kube-apiserver.tmp" . >&2
  mv "$cache/kube-apiserver.tmp" "$cache/kube-apiserver"
fi

if [ ! -x "$cache/etcd" ]; then
  mkdir -p "$work/etcd" && cd "$work/etcd"
  cat > go.mod <<MOD
module epp.local/tools/etcd

go 1.26
MOD
  cat > main.go <<'GO'
// Command etcd is the upstream etcd server, built through a builder module.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
  go get "go.etcd.io/etcd/server/v3@${ETCD_VERSION}" >&2
  go mod tidy >&2
  go build -trimpath -ldflags "-s -w" -o "$cache/etcd.tmp" . >&2
  mv "$cache/etcd.tmp" "$cache/etcd"
fi
echo "$cache"
