#!/usr/bin/env bash
# Installs the Debian packages the test suite needs (as root, with apt-get), without asking anything.
#
# Idempotent: a package that is already installed is skipped, and `apt-get update` runs at most
# once, only when something is missing. Safe under CI=true with no standard input.
#
# Add a package by appending it to PACKAGES, with what needs it.
set -euo pipefail

PACKAGES=(
    # Debian's Compose 1.29: only validates docker-compose.yml (tests/unit/test_compose.py).
    docker-compose
    # Bake / Find Image / registry tests and `python -m bench bake` (tests/support/docker_rig.py):
    # the Docker engine (dockerd, started by the tests when none answers), the distribution registry
    # v2 (`docker-registry serve`), a static busybox to build images FROM scratch (no public registry
    # is reachable), and `htpasswd -B` for the registry's bcrypt password file.
    docker.io
    docker-registry
    busybox-static
    apache2-utils
    # Console browser tests (tests/e2e/): Playwright for Python drives Debian's Chromium through
    # executable_path=/usr/bin/chromium; Playwright never downloads a browser of its own here.
    chromium
    # Metrics tests (tests/observability/test_prometheus.py) scrape the stack with a real Prometheus.
    prometheus
    # The store's tests against a real PostgreSQL 15 (tests/support/postgres.py runs initdb/postgres
    # from /usr/lib/postgresql/15/bin in a temp dir; the packaged cluster service is not used).
    postgresql
)

export DEBIAN_FRONTEND=noninteractive

installed() {
    # dpkg-query prints "install ok installed" only for a fully installed package.
    [[ $(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) == "install ok installed" ]]
}

missing=()
for package in "${PACKAGES[@]}"; do
    if installed "$package"; then
        echo "setup-system.sh: $package already installed"
    else
        missing+=("$package")
    fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
    exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
    echo "setup-system.sh: ${missing[*]} missing; run as root to install them with apt-get" >&2
    exit 1
fi

echo "setup-system.sh: installing ${missing[*]}"
if ! apt-get update -q </dev/null; then
    echo "setup-system.sh: 'apt-get update' failed; cannot install ${missing[*]}" >&2
    exit 1
fi
if ! apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null; then
    echo "setup-system.sh: 'apt-get install ${missing[*]}' failed (see apt's output above)" >&2
    exit 1
fi

for package in "${missing[@]}"; do
    if ! installed "$package"; then
        echo "setup-system.sh: $package is still not installed after apt-get install" >&2
        exit 1
    fi
done
echo "setup-system.sh: installed ${missing[*]}"
