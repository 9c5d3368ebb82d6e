#!/usr/bin/env bash
# The project's test command (README): lint, strict type check, then every test tier.
set -euo pipefail
cd "$(dirname "$0")/.."
ruff check .
ruff format --check .
mypy
python -m pytest "$@"
