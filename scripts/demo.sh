#!/usr/bin/env bash
# The main job on the embedded stack, end to end: set up, start `gennaker dev` (Temporal, worker,
# gateway, a simulated Kubernetes cluster, and a registry when a Docker engine is available), then
# release the demo app twice — v1, then v2 — each time: bake, deploy red/black (v2 takes the
# traffic from v1), a manual judgment approved from the CLI, and a child smoke-test pipeline.
# `--keep` leaves the stack running afterwards to explore the Temporal UI.
# On a real API server instead of kubesim (docs/real-cluster.md):
#   --kubeconfig PATH (or GENNAKER_DEMO_KUBECONFIG=PATH)  deploy to that cluster (account `local`,
#                                                         namespace `default`)
#   --real-cluster                                        start scripts/kube-up.sh's control plane
#                                                         and deploy to it (stopped at the end
#                                                         unless --keep)
set -euo pipefail
cd "$(dirname "$0")/.."
keep=false
kubeconfig="${GENNAKER_DEMO_KUBECONFIG:-}"
real_cluster=false
while [ $# -gt 0 ]; do
  case "$1" in
    --keep) keep=true ;;
    --kubeconfig) kubeconfig="${2:?--kubeconfig needs a path}"; shift ;;
    --kubeconfig=*) kubeconfig="${1#--kubeconfig=}" ;;
    --real-cluster) real_cluster=true ;;
    *) echo "demo: unknown argument $1 (use --keep, --kubeconfig PATH, --real-cluster)" >&2; exit 2 ;;
  esac
  shift
done
started_cluster=false
if $real_cluster && [ -z "$kubeconfig" ]; then
  kubeconfig="$(pwd)/.data/kubeplane/admin.kubeconfig"
  # Stop it at the end only if this demo started it.
  if ! { [ -f "$kubeconfig" ] && kubectl --kubeconfig "$kubeconfig" get --raw /readyz >/dev/null 2>&1; }; then
    started_cluster=true
  fi
  bash scripts/kube-up.sh
fi
account=local-sim
dev_args=()
if [ -n "$kubeconfig" ]; then
  [ -r "$kubeconfig" ] || { echo "demo: cannot read the kubeconfig $kubeconfig" >&2; exit 2; }
  account=local
  dev_args=(--kubeconfig "$kubeconfig")
fi

# As root, also install Docker and the registry (Debian packages) so the demo can bake.
if [ "$(id -u)" = 0 ]; then bash scripts/setup-system.sh >/dev/null; fi
bash scripts/setup.sh
offset=${GENNAKER_PORT_OFFSET:-0}
export GENNAKER_API_URL="http://127.0.0.1:$((8084 + offset))"
gennaker=.venv/bin/gennaker
mkdir -p .data

started_dockerd=false
if host=$(bash scripts/docker-up.sh); then
  export DOCKER_HOST="$host"
  [ -f .data/dockerd/dockerd.pid ] && [[ "$host" == *".data/dockerd/"* ]] && started_dockerd=true
else
  echo "demo: no Docker engine here, so the demo deploys without baking"
fi

if curl -fsS -o /dev/null "$GENNAKER_API_URL/readyz" 2>/dev/null; then
  echo "demo: a gateway already answers on $GENNAKER_API_URL (another gennaker dev?): stop it, or run with GENNAKER_PORT_OFFSET=N" >&2
  exit 3
fi
"$gennaker" dev --data-dir .data/demo --port-offset "$offset" "${dev_args[@]}" > .data/demo-stack.log 2>&1 &
stack=$!
stop_all() {
  kill -INT "$stack" 2>/dev/null && wait "$stack" 2>/dev/null || true
  if $started_dockerd; then kill "$(cat .data/dockerd/dockerd.pid)" 2>/dev/null || true; fi
  if $started_cluster; then bash scripts/kube-down.sh || true; fi
}
$keep || trap stop_all EXIT

# Our stack must be the one answering: another stack on the same ports answers /readyz too, while
# ours has already exited saying why (e.g. "port(s) 8084 already in use").
not_started() {
  sed 's/^/  /' .data/demo-stack.log >&2
  echo "demo: the dev stack did not start ($1); see .data/demo-stack.log" >&2
  echo "demo: another stack on these ports? stop it, or run with GENNAKER_PORT_OFFSET=N" >&2
  exit 3
}
ready=false
for _ in $(seq 1 120); do
  kill -0 "$stack" 2>/dev/null || not_started "gennaker dev exited"
  curl -fsS "$GENNAKER_API_URL/readyz" >/dev/null 2>&1 && [ -s .data/demo/admin-token ] && { ready=true; break; }
  sleep 0.5
done
$ready || not_started "not ready after 60 s"
kill -0 "$stack" 2>/dev/null || not_started "gennaker dev exited"
sed -n '1,12p' .data/demo-stack.log
GENNAKER_TOKEN=$(cat .data/demo/admin-token)
export GENNAKER_TOKEN

# Bake only when the stack brought up a registry account (it reports it within a few seconds).
bake=false
for _ in $(seq 1 20); do
  accounts=$(curl -fsS -H "Authorization: Bearer $GENNAKER_TOKEN" "$GENNAKER_API_URL/accounts" || true)
  if grep -q '"kind":"registry"' <<<"$accounts"; then bake=true; break; fi
  grep -q '"kind":"kubernetes"' <<<"$accounts" && ! grep -q "Registry    account" .data/demo-stack.log && break
  sleep 0.5
done

"$gennaker" save examples/smoke-test.yaml
for tag in v1 v2; do
  id=$("$gennaker" run examples/release-demo.yaml -p tag=$tag -p bake=$bake -p account=$account | sed -n 's/^started //p')
  echo "== release $tag: $id (bake=$bake); waiting for the manual judgment…"
  for _ in $(seq 1 240); do
    state=$("$gennaker" status "$id" --json || true)
    grep -q '"waitingForJudgment": true' <<<"$state" && break
    grep -q '"status": "TERMINAL"' <<<"$state" && break
    sleep 0.5
  done
  "$gennaker" approve "$id" approve --option ship --comment "approved by the demo script" || true
  "$gennaker" status "$id" --follow
done
echo
echo "Server groups (v2's took the traffic; v1's is disabled):"
COLUMNS=120 "$gennaker" clusters shop
echo
echo "Temporal UI: http://127.0.0.1:$((8233 + offset))/namespaces/default/workflows?query=GennakerApplication%3D%22shop%22"
if $keep; then
  echo "The stack keeps running (PID $stack); stop it with: kill -INT $stack"
  if $started_cluster; then echo "The control plane keeps running too; stop it with: scripts/kube-down.sh"; fi
fi
