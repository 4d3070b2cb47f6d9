#!/usr/bin/env bash
# The whole test suite: setup, lint, types, then pytest against real services it starts itself —
# once with kubesim as the Kubernetes rig and, side by side with it, the provider modules against a real control
# plane (scripts/kube-up.sh; docs/real-cluster.md). GENNAKER_SKIP_REAL_CLUSTER=1 skips the second pass.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-system.sh
bash scripts/setup.sh

echo "== ruff"
.venv/bin/ruff check core workflows activities api workers stack kubesim tests bench
.venv/bin/ruff format --check core workflows activities api workers stack bench
echo "== mypy --strict"
# The cache lives beside the other built tools, outside the checkout: a clean clone of the same code
# checks in ~2 s instead of ~40 s (mypy compares file hashes when mtimes differ).
.venv/bin/mypy --strict --cache-dir "${XDG_CACHE_HOME:-$HOME/.cache}/gennaker/mypy" core workflows activities api workers stack bench

# Kubernetes runs twice: kubesim (the embedded default), then a real API server — the one
# GENNAKER_TEST_KUBECONFIG names (kind, minikube, GKE...), else scripts/kube-up.sh's control plane,
# which builds (first time only: minutes) and starts here while nothing else runs, and is stopped on
# every way out of this script.
real_kubeconfig="${GENNAKER_TEST_KUBECONFIG:-}"
if [ -z "$real_kubeconfig" ] && [ "${GENNAKER_SKIP_REAL_CLUSTER:-0}" != 1 ]; then
  echo "== kube-up (a real Kubernetes control plane on loopback)"
  trap 'bash scripts/kube-down.sh >/dev/null 2>&1 || true' EXIT
  trap 'exit 130' INT TERM
  bash scripts/kube-up.sh
  set -a
  # shellcheck disable=SC1091
  source .data/kubeplane/env
  set +a
  real_kubeconfig="$GENNAKER_TEST_KUBECONFIG"
fi

echo "== helm and kustomize (bakeManifest; built from their Go modules once, then cached)"
bash scripts/tools-up.sh

# The two passes run side by side: both mostly wait on servers (load stays under 2 on two cores), and
# each has its own Temporal dev server, store and temp dirs (the Docker rig is shared by design).
# The real-cluster pass's output is printed after the kubesim pass's.
status=0
real_pid=""
if [ -n "$real_kubeconfig" ]; then
  mkdir -p .data
  real_log=.data/pytest-real-cluster.log
  echo "== pytest (Kubernetes: the real API server of $real_kubeconfig) started beside the kubesim pass"
  # The provider modules, plus the reliability faults that need no kubesim fault injection.
  GENNAKER_TEST_KUBECONFIG="$real_kubeconfig" .venv/bin/python -m pytest -q -p no:cacheprovider \
    tests/integration/test_deploy.py tests/integration/test_servergroup_stages.py \
    tests/integration/test_manifest_stages.py tests/integration/test_manifest_any_kind.py \
    tests/integration/test_manifest_traffic.py tests/integration/test_manifest_artifacts.py \
    tests/integration/test_run_job.py \
    tests/integration/test_clusters_api.py tests/realcluster \
    tests/reliability/test_server_restart.py >"$real_log" 2>&1 &
  real_pid=$!
  trap 'kill "$real_pid" 2>/dev/null || true; bash scripts/kube-down.sh >/dev/null 2>&1 || true' EXIT
fi

echo "== pytest (Kubernetes: kubesim)"
# tests/conftest.py ends the process with pytest's own exit status (see there why).
env -u GENNAKER_TEST_KUBECONFIG .venv/bin/python -m pytest -q -p no:cacheprovider --durations=15 "$@" || status=$?

if [ -n "$real_pid" ]; then
  real_status=0
  wait "$real_pid" || real_status=$?
  echo "== pytest (Kubernetes: the real API server of $real_kubeconfig): output"
  cat "$real_log"
  [ "$real_status" = 0 ] || status=$real_status
fi
exit "$status"
