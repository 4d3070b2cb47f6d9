#!/usr/bin/env bash
# Build the control plane's binaries from the wrapper module into the per-user cache, once per
# version: kube-apiserver, kube-controller-manager, kube-scheduler (k8s.io/kubernetes), etcd
# (go.etcd.io/etcd/server/v3, the release k8s.io/kubernetes itself requires) and kwok + kwokctl.
# Prints the binary directory on stdout; progress and the measured cost go to stderr.
set -euo pipefail
# shellcheck source=scripts/kubeplane/env.sh
source "$(dirname "$0")/env.sh"
bins=(kube-apiserver kube-controller-manager kube-scheduler etcd kwok kwokctl)

built() { for b in "${bins[@]}"; do [ -x "$KUBEPLANE_BIN/$b" ] || return 1; done; }
if built; then echo "$KUBEPLANE_BIN"; exit 0; fi

mkdir -p "$GENNAKER_CACHE/kubeplane"
# One build at a time per cache (two helpers, or CI next to a developer, share it).
exec 9>"$GENNAKER_CACHE/kubeplane/.build.lock"
flock 9
if built; then echo "$KUBEPLANE_BIN"; exit 0; fi

command -v go >/dev/null || { echo "kubeplane: no Go toolchain (expected /usr/local/go/bin/go)" >&2; exit 3; }
echo "kubeplane: building kubernetes $K8S_VERSION, etcd $ETCD_VERSION, kwok $KWOK_VERSION ($(go version | cut -d' ' -f3)); the first build takes a while" >&2
# `--version` must tell the truth: kwokctl picks each component's flags by the version it reports.
minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
cv=k8s.io/component-base/version
ldflags="-s -w -X $cv.gitVersion=$K8S_VERSION -X $cv.gitMajor=1 -X $cv.gitMinor=$minor -X $cv.gitTreeState=clean"
ldflags+=" -X $cv.buildDate=1970-01-01T00:00:00Z"
staging="$(mktemp -d "$GENNAKER_CACHE/kubeplane/.build.XXXXXX")"
trap 'rm -rf "$staging"' EXIT
start=$(date +%s)
cd "$KUBEPLANE_MODULE"
go build -trimpath -ldflags="$ldflags" -o "$staging/" \
  k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kube-scheduler go.etcd.io/etcd/server/v3 \
  sigs.k8s.io/kwok/cmd/kwok sigs.k8s.io/kwok/cmd/kwokctl
# `go build -o dir/` names a /vN module's main package after the element before the suffix.
mv "$staging/server" "$staging/etcd"
rm -rf "$KUBEPLANE_BIN"
chmod 755 "$staging"
mv "$staging" "$KUBEPLANE_BIN"
trap - EXIT
seconds=$(( $(date +%s) - start ))
echo "kubeplane: built in ${seconds}s; binaries $(du -sh "$KUBEPLANE_BIN" | cut -f1), Go module cache $(du -sh "$GOMODCACHE" | cut -f1), Go build cache $(du -sh "$GOCACHE" | cut -f1)" >&2
echo "$KUBEPLANE_BIN"
