#!/usr/bin/env bash
# Re-pin the wrapper module to another Kubernetes (and kwok) version:
#   scripts/kubeplane/pin.sh v1.36.3 v0.8.0
# k8s.io/kubernetes replaces its k8s.io/* staging modules with ./staging/src/... paths, which only
# work inside its own repository, so `go install k8s.io/kubernetes/cmd/...@v` refuses it. This main
# module requires k8s.io/kubernetes and replaces every staging module with its published v0.x.y
# twin; etcd's server module (same replace habit) and kwok ride along so one build graph compiles
# the shared k8s.io libraries once.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
k8s="${1:?kubernetes version, e.g. v1.36.3}"
kwok="${2:?kwok version, e.g. v0.8.0}"
staging="v0.${k8s#v1.}"
# shellcheck source=scripts/kubeplane/env.sh
source "$here/env.sh"
cd "$here"
kube_mod="$(go mod download -json "k8s.io/kubernetes@$k8s" | sed -n 's/.*"GoMod": "\(.*\)",/\1/p')"
etcd="$(sed -n 's#^\s*go.etcd.io/etcd/server/v3 \(v[^ ]*\).*#\1#p' "$kube_mod")"
{
  echo "module gennaker.local/kubeplane"
  echo
  echo "go 1.26.0"
  echo
  echo "require ("
  echo "	k8s.io/kubernetes $k8s"
  echo "	sigs.k8s.io/kwok $kwok"
  echo "	go.etcd.io/etcd/server/v3 $etcd"
  echo ")"
  echo
  echo "replace ("
  sed -n 's#^\s*\(k8s.io/[a-z0-9-]*\) => ./staging/src/.*#\1#p' "$kube_mod" | while read -r mod; do
    echo "	$mod => $mod $staging"
  done
  # etcd's server module replaces its siblings with ../ paths; pin them to the same release.
  for mod in api/v3 client/pkg/v3 client/v3 pkg/v3; do echo "	go.etcd.io/etcd/$mod => go.etcd.io/etcd/$mod $etcd"; done
  echo ")"
  echo
  echo "tool ("
  echo "	k8s.io/kubernetes/cmd/kube-apiserver"
  echo "	k8s.io/kubernetes/cmd/kube-controller-manager"
  echo "	k8s.io/kubernetes/cmd/kube-scheduler"
  echo "	go.etcd.io/etcd/server/v3"
  echo "	sigs.k8s.io/kwok/cmd/kwok"
  echo "	sigs.k8s.io/kwok/cmd/kwokctl"
  echo ")"
} > go.mod
rm -f go.sum
GOFLAGS="-mod=mod -buildvcs=false" go mod tidy
echo "pinned kubernetes $k8s (staging $staging), etcd $etcd, kwok $kwok"
