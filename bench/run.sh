#!/usr/bin/env bash
# The benchmark's one command: sets up (scripts/setup.sh builds attache, then
# bench/build.sh builds the load generator and the go-control-plane
# baseline) and runs bench/run.py with the arguments given, for example
#   bash bench/run.sh            every scenario, a table per scenario
#   bash bench/run.sh --smoke    seconds long, as CI runs it
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >&2
bash bench/build.sh >&2
exec python3 bench/run.py "$@"
