#!/usr/bin/env bash
# Stop the control plane scripts/kube-up.sh started. kwokctl stops each component by the PID it
# recorded when it started it (under the cluster's pids/ directory), never by name.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
state="${GENNAKER_KUBE_DIR:-$repo/.data/kubeplane}"
# shellcheck source=scripts/kubeplane/env.sh
source "$repo/scripts/kubeplane/env.sh"
export KWOK_WORKDIR="$state/kwok"
if [ ! -d "$KWOK_WORKDIR/clusters/gennaker" ]; then
  echo "kube-down: no cluster under $state"
  exit 0
fi
cluster_dir="$KWOK_WORKDIR/clusters/gennaker"
pids=()
for pidfile in "$cluster_dir"/pids/*.pid; do [ -f "$pidfile" ] && pids+=("$(cat "$pidfile")"); done
if ! { [ -x "$KUBEPLANE_BIN/kwokctl" ] && "$KUBEPLANE_BIN/kwokctl" delete cluster --name gennaker >&2; }; then
  # kwokctl is gone or failed: end the components by the PIDs it recorded, then forget the cluster.
  for pidfile in "$cluster_dir"/pids/*.pid; do
    [ -f "$pidfile" ] || continue
    pid="$(cat "$pidfile")"
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill "$pid" 2>/dev/null || true; fi
  done
  rm -rf "$cluster_dir"
fi
# Return once they have exited (ports and the etcd directory free for the next kube-up).
for _ in $(seq 1 100); do
  alive=false
  for pid in "${pids[@]}"; do if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then alive=true; fi; done
  $alive || break
  sleep 0.1
done
rm -f "$state/env" "$state/admin.kubeconfig" "$state/revoked.kubeconfig" "$state/limited.kubeconfig"
echo "kube-down: stopped (state was in $state)"
