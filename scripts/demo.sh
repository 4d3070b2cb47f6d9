#!/usr/bin/env bash
# The main job on the embedded stack, end to end: set up, start `gennaker dev`, save a child
# pipeline, run the release demo (variables → wait → manual judgment → child pipeline), approve the
# judgment from the CLI, follow it to the end. `--keep` leaves the stack running to explore the UI.
set -euo pipefail
cd "$(dirname "$0")/.."
keep=false
[ "${1:-}" = "--keep" ] && keep=true

bash scripts/setup.sh
offset=${GENNAKER_PORT_OFFSET:-0}
export GENNAKER_API_URL="http://127.0.0.1:$((8084 + offset))"
export GENNAKER_USER=${GENNAKER_USER:-${USER:-demo}}
gennaker=.venv/bin/gennaker
mkdir -p .data
"$gennaker" dev --data-dir .data/demo --port-offset "$offset" > .data/demo-stack.log 2>&1 &
stack=$!
stop_stack() { kill -INT "$stack" 2>/dev/null && wait "$stack" 2>/dev/null || true; }
$keep || trap stop_stack EXIT

for _ in $(seq 1 120); do
  curl -fsS "$GENNAKER_API_URL/readyz" >/dev/null 2>&1 && break
  kill -0 "$stack" 2>/dev/null || { cat .data/demo-stack.log; echo "demo: the dev stack did not start" >&2; exit 3; }
  sleep 0.5
done
sed -n '1,5p' .data/demo-stack.log

"$gennaker" save examples/smoke-test.yaml
id=$("$gennaker" run examples/release-demo.yaml -p tag=v1.2.3 -p soak=3 | sed -n 's/^started //p')
echo "running $id; waiting for the manual judgment…"
for _ in $(seq 1 120); do
  "$gennaker" status "$id" --json | grep -q '"waitingForJudgment": true' && break
  sleep 0.5
done
"$gennaker" approve "$id" approve --option ship --comment "approved by the demo script"
"$gennaker" status "$id" --follow
echo
echo "Temporal UI: http://127.0.0.1:$((8233 + offset))/namespaces/default/workflows/$id"
if $keep; then
  echo "The stack keeps running (PID $stack); stop it with: kill -INT $stack"
fi
