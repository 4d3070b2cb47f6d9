#!/usr/bin/env bash
# A real Kubernetes control plane on loopback for the test rig and the demo (docs/real-cluster.md):
# kube-apiserver, kube-controller-manager, kube-scheduler and etcd built from their Go modules
# (scripts/kubeplane/), kwok standing in for nodes and kubelets, all started by kwokctl's binary
# runtime with every binary given by path. TLS with a generated CA, RBAC on, a static token file.
#
#   scripts/kube-up.sh               build if needed, start (or find running), print where things are
#   scripts/kube-up.sh --foreground  the same, then stay until Ctrl-C/TERM and stop the cluster
#   scripts/kube-down.sh             stop everything it started (by the PIDs kwokctl recorded)
#
# Writes under ${GENNAKER_KUBE_DIR:-.data/kubeplane}: admin.kubeconfig (a token in system:masters),
# revoked.kubeconfig (a token the API server no longer accepts: 401), limited.kubeconfig (a token
# whose user may only read namespaces: 403 on anything else), and `env` (shell assignments of these
# paths for scripts/test.sh). Idempotent, no prompts, safe with CI=true.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
foreground=false
[ "${1:-}" = "--foreground" ] && foreground=true
state="${GENNAKER_KUBE_DIR:-$repo/.data/kubeplane}"
name=gennaker
nodes="${GENNAKER_KUBE_NODES:-3}"
kubectl="${KUBECTL:-$(command -v kubectl || true)}"
[ -n "$kubectl" ] || { echo "kube-up: kubectl not found (Debian's kubernetes-client or /usr/bin/kubectl)" >&2; exit 3; }

# Helm and kustomize (bakeManifest) come from the same cache, built by their own script.
# Their failure does not stop the cluster: only bakeManifest needs them, and its tests say so.
if [ -f "$repo/scripts/tools-up.sh" ]; then
  bash "$repo/scripts/tools-up.sh" >&2 || echo "kube-up: scripts/tools-up.sh failed (helm/kustomize); going on" >&2
fi

bin="$(bash "$repo/scripts/kubeplane/build.sh")"
# shellcheck source=scripts/kubeplane/env.sh
source "$repo/scripts/kubeplane/env.sh"
mkdir -p "$state"
admin="$state/admin.kubeconfig"
export KWOK_WORKDIR="$state/kwok"
cluster_dir="$KWOK_WORKDIR/clusters/$name"
k() { "$kubectl" --kubeconfig "$admin" --request-timeout=10s "$@"; }

print_where() {
  cat <<MSG
kube-up: Kubernetes $("$bin/kube-apiserver" --version | awk '{print $2}') is up at $(k config view -o jsonpath='{.clusters[0].cluster.server}') ($nodes kwok nodes)
  admin kubeconfig:   $admin
  revoked token:      $state/revoked.kubeconfig  (401 Unauthorized)
  limited RBAC token: $state/limited.kubeconfig  (only get/list namespaces: 403 elsewhere)
  for the tests:      export GENNAKER_TEST_KUBECONFIG=$admin   (or: source $state/env)
  stop it:            scripts/kube-down.sh
MSG
}

if [ -f "$admin" ] && k get --raw /readyz >/dev/null 2>&1; then
  print_where
  if ! $foreground; then exit 0; fi
else
  # A half-started or stale cluster (a crash, a reboot): remove it and start clean.
  bash "$repo/scripts/kube-down.sh" >/dev/null 2>&1 || true
  trap 'echo "kube-up: interrupted; stopping what started" >&2; bash "$repo/scripts/kube-down.sh" >&2; exit 130' INT TERM
  trap 'rc=$?; if [ $rc -ne 0 ]; then echo "kube-up: failed (exit $rc); logs: $cluster_dir/logs" >&2; bash "$repo/scripts/kube-down.sh" >&2 || true; fi' EXIT

  # The static token file: an admin token, a token whose user RBAC barely allows anything, and a
  # "revoked" token — issued to the same user as the admin one but absent from the file, which is
  # what a revocation leaves behind (the API server answers 401 to it).
  tokens="$state/tokens.csv"
  new_token() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
  admin_token="$(new_token)"; limited_token="$(new_token)"; revoked_token="$(new_token)"
  umask 077
  printf '%s,gennaker-admin,gennaker-admin,"system:masters"\n%s,gennaker-limited,gennaker-limited\n' \
    "$admin_token" "$limited_token" > "$tokens"
  umask 022
  # kwokctl's configuration: the token file for the API server, then kwok's stages — its own node
  # stages and fast pod stages from the kwok module, plus ours (scripts/kubeplane/stages.yaml says
  # why; any Stage given replaces all of kwokctl's defaults, hence the copies).
  kwok_module="$(cd "$KUBEPLANE_MODULE" && go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)"
  {
    cat <<YAML
kind: KwokctlConfiguration
apiVersion: config.kwok.x-k8s.io/v1alpha1
options:
  bindAddress: 127.0.0.1
  kubectlBinary: $kubectl
componentsPatches:
- name: kube-apiserver
  extraArgs:
  - key: token-auth-file
    value: $tokens
YAML
    for stage in node/fast/node-initialize node/heartbeat-with-lease/node-heartbeat-with-lease \
                 pod/fast/pod-ready pod/fast/pod-delete; do
      echo "---"; cat "$kwok_module/kustomize/stage/$stage.yaml"
    done
    echo "---"; cat "$repo/scripts/kubeplane/stages.yaml"
  } > "$state/kwokctl.yaml"
  # Nothing may be downloaded: every binary is given by path, and any HTTP(S) fetch kwokctl might
  # still attempt goes to a closed loopback port and fails at once (loopback itself is never proxied).
  echo "kube-up: starting the control plane (state in $state)" >&2
  HTTPS_PROXY=http://127.0.0.1:9 HTTP_PROXY=http://127.0.0.1:9 NO_PROXY=127.0.0.1,localhost,::1 \
    "$bin/kwokctl" create cluster --name "$name" --runtime binary --config "$state/kwokctl.yaml" \
    --kube-apiserver-binary "$bin/kube-apiserver" \
    --kube-controller-manager-binary "$bin/kube-controller-manager" \
    --kube-scheduler-binary "$bin/kube-scheduler" \
    --etcd-binary "$bin/etcd" \
    --kwok-controller-binary "$bin/kwok" \
    --kube-authorization --kube-admission \
    --kubeconfig "$state/kwokctl.kubeconfig" \
    --quiet-pull --wait 120s >&2

  server="$("$kubectl" --kubeconfig "$cluster_dir/kubeconfig.yaml" config view -o jsonpath='{.clusters[0].cluster.server}')"
  write_kubeconfig() { # file user token
    rm -f "$1"
    "$kubectl" config --kubeconfig "$1" set-cluster "$name" --server "$server" \
      --certificate-authority "$cluster_dir/pki/ca.crt" --embed-certs=true >/dev/null
    "$kubectl" config --kubeconfig "$1" set-credentials "$2" --token "$3" >/dev/null
    "$kubectl" config --kubeconfig "$1" set-context "$name" --cluster "$name" --user "$2" >/dev/null
    "$kubectl" config --kubeconfig "$1" use-context "$name" >/dev/null
    chmod 600 "$1"
  }
  write_kubeconfig "$admin" gennaker-admin "$admin_token"
  write_kubeconfig "$state/revoked.kubeconfig" gennaker-admin "$revoked_token"
  write_kubeconfig "$state/limited.kubeconfig" gennaker-limited "$limited_token"

  k apply -f - >/dev/null <<YAML
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: gennaker-limited}
rules:
- {apiGroups: [""], resources: [namespaces], verbs: [get, list]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: gennaker-limited}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: gennaker-limited}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: gennaker-limited}
YAML
  for i in $(seq 1 "$nodes"); do
    cat <<YAML
---
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-$i
  annotations: {kwok.x-k8s.io/node: fake, node.alpha.kubernetes.io/ttl: "0"}
  labels: {kubernetes.io/hostname: kwok-node-$i, kubernetes.io/os: linux, kubernetes.io/arch: amd64, type: kwok}
spec:
  taints: []
status:
  allocatable: {cpu: "32", memory: 256Gi, pods: "110"}
  capacity: {cpu: "32", memory: 256Gi, pods: "110"}
  nodeInfo: {architecture: amd64, operatingSystem: linux, kubeletVersion: fake, kubeProxyVersion: fake}
  phase: Running
YAML
  done | k apply -f - >/dev/null
  k wait --for=condition=Ready node --all --timeout=60s >/dev/null
  # Pods need the namespace's default ServiceAccount (ServiceAccount admission is on, as everywhere).
  for _ in $(seq 1 100); do k get serviceaccount default -n default >/dev/null 2>&1 && break; sleep 0.2; done
  {
    echo "GENNAKER_TEST_KUBECONFIG=$admin"
    echo "GENNAKER_KUBE_REVOKED_KUBECONFIG=$state/revoked.kubeconfig"
    echo "GENNAKER_KUBE_LIMITED_KUBECONFIG=$state/limited.kubeconfig"
  } > "$state/env"
  trap - EXIT INT TERM
  print_where
fi

if $foreground; then
  trap 'echo; bash "$repo/scripts/kube-down.sh"; exit 0' INT TERM
  echo "kube-up: running in the foreground; Ctrl-C stops the cluster" >&2
  while k get --raw /readyz >/dev/null 2>&1; do sleep 5 & wait $!; done
  echo "kube-up: the API server stopped answering; stopping the rest" >&2
  bash "$repo/scripts/kube-down.sh"
  exit 1
fi
