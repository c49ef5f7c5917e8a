#!/usr/bin/env bash
# Sets up everything, starts small HTTP backends on 127.0.0.1:8081-8084 and
# runs attache on the built-in demo configuration (demo/attache.yaml).
# Point an Envoy at 127.0.0.1:18000 (see README.md, "Quick start").
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
VENV="${ATTACHE_CACHE:-$HOME/.cache/attache}/venv"
"$VENV/bin/python" demo/backends.py 8081 8082 8083 8084 &
BACKENDS=$!
trap 'kill $BACKENDS 2>/dev/null || true' EXIT
echo "demo: backends on 127.0.0.1:8081-8084; admin at http://127.0.0.1:19000/debug/clients"
"${ATTACHE_BUILD_DIR:-build}/attache" serve --config demo/attache.yaml "$@"
