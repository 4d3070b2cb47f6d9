#!/usr/bin/env bash
# Prints a DOCKER_HOST at which a Docker engine answers, starting one when none does and we may:
# root, with Debian's docker.io installed. The engine it starts keeps its data under .data/dockerd and
# its PID in .data/dockerd/dockerd.pid (stop it with: kill "$(cat .data/dockerd/dockerd.pid)").
# Prints nothing (exit 1) when no engine can be had; the demo then skips the bake.
set -uo pipefail
cd "$(dirname "$0")/.."

answers() { DOCKER_HOST="$1" timeout 5 docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

for host in "${DOCKER_HOST:-}" unix:///var/run/docker.sock; do
  if [ -n "$host" ] && command -v docker >/dev/null && answers "$host"; then echo "$host"; exit 0; fi
done

dir="$PWD/.data/dockerd"
own="unix://$dir/docker.sock"
if command -v docker >/dev/null && answers "$own"; then echo "$own"; exit 0; fi
if [ "$(id -u)" != 0 ] || ! command -v dockerd >/dev/null; then exit 1; fi
mkdir -p "$dir"
dockerd --data-root "$dir/data" --exec-root "$dir/exec" --pidfile "$dir/dockerd.pid" -H "$own" \
  >>"$dir/dockerd.log" 2>&1 &
for _ in $(seq 1 120); do
  if answers "$own"; then echo "$own"; exit 0; fi
  sleep 0.5
done
echo "docker-up: dockerd did not come up; see $dir/dockerd.log" >&2
exit 1
