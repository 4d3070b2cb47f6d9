# Sourced by kube-up.sh, kube-down.sh and pin.sh: where Go, its caches and the built binaries live.
# Everything sits outside the checkout in a per-user cache so a fresh clone on the same machine
# (CI) reuses the module downloads, the compile cache and the binaries.
export PATH="/usr/local/go/bin:$PATH"
GENNAKER_CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/gennaker"
export GOMODCACHE="$GENNAKER_CACHE/go/mod"
export GOCACHE="$GENNAKER_CACHE/go/build"
# The committed go.sum is the pin: a build never rewrites go.mod (pin.sh opts into -mod=mod).
export GOFLAGS="-mod=readonly -buildvcs=false"
export GOTOOLCHAIN=local
export CGO_ENABLED=0
KUBEPLANE_MODULE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# The versions the wrapper module pins (pin.sh writes them).
kubeplane_version() { awk -v m="$1" '$1 == m { print $2; exit }' "$KUBEPLANE_MODULE/go.mod"; }
K8S_VERSION="$(kubeplane_version k8s.io/kubernetes)"
ETCD_VERSION="$(kubeplane_version go.etcd.io/etcd/server/v3)"
KWOK_VERSION="$(kubeplane_version sigs.k8s.io/kwok)"
KUBEPLANE_BIN="$GENNAKER_CACHE/kubeplane/k8s-$K8S_VERSION-etcd-$ETCD_VERSION-kwok-$KWOK_VERSION-$(go env GOOS)-$(go env GOARCH)"
