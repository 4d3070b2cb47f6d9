#!/usr/bin/env bash
# Builds the rendering tools bakeManifest runs on a worker, `helm` and `kustomize`, from their Go
# modules (nothing prebuilt can be downloaded here; the Go module proxy is reachable), into
#   ${XDG_CACHE_HOME:-$HOME/.cache}/gennaker/bin
# Versions are pinned; a tool whose stamp matches its pinned version is not rebuilt, so running this
# again is instant. Safe under CI=true (no prompts, no stdin). Prints where the tools are on the
# last line ("tools: <dir>") so callers can put that directory on PATH or GENNAKER_TOOLS_DIR.
#
# Cold build on a 2-core machine: see docs/artifacts.md ("Tools") for the measured time.
set -euo pipefail

HELM_VERSION=${HELM_VERSION:-v3.22.0}
# v5.8.3 needs Go 1.27; v5.8.2 builds with the Go 1.26 on these machines.
KUSTOMIZE_VERSION=${KUSTOMIZE_VERSION:-v5.8.2}

cache=${XDG_CACHE_HOME:-$HOME/.cache}/gennaker
bin=$cache/bin
mkdir -p "$bin"
export GOCACHE=$cache/go/build
export GOMODCACHE=$cache/go/mod
export GOPATH=$cache/go/path
# Build with the Go on this machine, never a downloaded toolchain; CGO off gives static binaries.
export GOTOOLCHAIN=local
export CGO_ENABLED=0
export GOFLAGS=-mod=mod

go=$(command -v go || true)
if [ -z "$go" ] && [ -x /usr/local/go/bin/go ]; then
  go=/usr/local/go/bin/go
fi
if [ -z "$go" ]; then
  echo "tools-up: no Go toolchain found (install Go >= 1.24, e.g. /usr/local/go/bin/go)" >&2
  exit 1
fi

# build NAME VERSION PACKAGE EXTRA_LDFLAGS
build() {
  local name=$1 version=$2 package=$3 extra=$4
  local stamp=$bin/.$name.version
  if [ -x "$bin/$name" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$version" ]; then
    echo "tools-up: $name $version already built"
    return
  fi
  echo "tools-up: building $name $version from $package (first build takes minutes)"
  local started=$SECONDS
  # Install into a scratch GOBIN, then move into place: an interrupted build never leaves a
  # half-written binary under the stamped name.
  local scratch
  scratch=$(mktemp -d "$cache/build-$name.XXXXXX")
  GOBIN=$scratch "$go" install -trimpath -ldflags="-s -w $extra" "$package@$version"
  mv -f "$scratch/$name" "$bin/$name"
  rmdir "$scratch"
  echo "$version" > "$stamp"
  echo "tools-up: built $name $version in $((SECONDS - started))s"
}

build helm "$HELM_VERSION" helm.sh/helm/v3/cmd/helm \
  "-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
build kustomize "$KUSTOMIZE_VERSION" sigs.k8s.io/kustomize/kustomize/v5 \
  "-X sigs.k8s.io/kustomize/api/provenance.version=$KUSTOMIZE_VERSION"

"$bin/helm" version --short >/dev/null
"$bin/kustomize" version >/dev/null
echo "tools: $bin"
