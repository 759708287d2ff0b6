#!/usr/bin/env bash
# Set up the environment (idempotent, see tools/setup_env.sh) and run the test suite.
#
# The tests run in IFKD_MM_TEST_WORKERS pytest-xdist processes (default 2; 0 runs them in this
# process), each test file on one worker so that its module fixtures are built once. Much of a
# test's time is single-threaded (imports, subprocess start-up), so two workers on 2 cores take
# about two thirds of the serial time. Extra arguments go to pytest (e.g. -k fdr, or -x).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$repo/tools/setup_env.sh"
cd "$repo"
exec "${IFKD_MM_VENV:-$repo/.venv}/bin/python" -m pytest tests \
  -n "${IFKD_MM_TEST_WORKERS:-2}" --dist loadfile "$@"
