#!/usr/bin/env bash
# The soak test's one command (not part of CI): sets up and builds like the
# other scripts (scripts/setup.sh, bench/build.sh for xdsload), then runs
# bench/soak.py, for example
#   bash scripts/soak.sh                 10 minutes of churn and reconnects
#   bash scripts/soak.sh --minutes 1     a smoke of the same
# It prints a table and exits non-zero if a check failed. SOAK_SKIP_SETUP=1
# skips the set-up (with --attache PATH to use a binary built elsewhere).
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ "${SOAK_SKIP_SETUP:-0}" != 1 ]]; then
  bash scripts/setup.sh >&2
  bash bench/build.sh >&2
fi
exec "${ATTACHE_CACHE:-$HOME/.cache/attache}/venv/bin/python" bench/soak.py "$@"
