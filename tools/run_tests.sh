#!/usr/bin/env bash
# Set up the environment (idempotent, see tools/setup_env.sh) and run the test suite.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$repo/tools/setup_env.sh"
cd "$repo"
exec "${IFKD_MM_VENV:-$repo/.venv}/bin/python" -m pytest tests "$@"
