#!/usr/bin/env bash
# The whole test suite: setup, lint, types, then pytest against real services it starts itself.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-system.sh
bash scripts/setup.sh

echo "== ruff"
.venv/bin/ruff check core workflows activities api workers stack kubesim tests bench
.venv/bin/ruff format --check core workflows activities api workers stack
echo "== mypy --strict"
.venv/bin/mypy --strict core workflows activities api workers stack
echo "== pytest"
# tests/conftest.py ends the process with pytest's own exit status (see there why).
.venv/bin/python -m pytest -q -p no:cacheprovider "$@"
