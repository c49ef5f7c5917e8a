#!/usr/bin/env bash
# Runs the faster end-to-end suites against attache built with ASan+UBSan and
# with TSan (the build-address and build-thread folders of sanitize.sh). A
# sanitizer report anywhere fails the run, even if every test passed: each
# attache writes its reports to a folder checked at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${ATTACHE_CACHE:-$HOME/.cache/attache}/venv"
BUILD="${ATTACHE_BUILD_DIR:-build}"
# The suites that start attache many times with small catalogs. Tests that
# start it on a catalog of several MiB are left out: a Debug sanitizer build
# takes longer than the tests' 20 s start-up limit to translate it.
ASAN_SUITES=(e2e/conformance e2e/cli e2e/envoy e2e/registry e2e/kubernetes/test_k8s_failures.py
             e2e/kubernetes/test_k8s_faults.py)
TSAN_SUITES=(e2e/conformance e2e/envoy/test_envoy.py e2e/registry e2e/kubernetes/test_k8s_failures.py
             e2e/kubernetes/test_k8s_faults.py e2e/kubernetes/test_k8s_bursts.py)
SKIP="not 4_mib"

for dir in build-address build-thread; do
  if [[ ! -f "$dir/build.ninja" ]]; then
    echo "sanitize_e2e: $dir is missing: run scripts/sanitize.sh first" >&2
    exit 2
  fi
  ninja -C "$dir" attache
done

run() {  # run <build dir> <suites...>
  local dir="$1"
  shift
  local reports
  reports="$(mktemp -d "${TMPDIR:-/tmp}/attache-$dir-reports.XXXXXX")"
  echo "== end-to-end tests against $dir/attache (reports in $reports)"
  local status=0
  ASAN_OPTIONS="log_path=$reports/asan:halt_on_error=1" \
  UBSAN_OPTIONS="log_path=$reports/ubsan:halt_on_error=1:print_stacktrace=1" \
  TSAN_OPTIONS="log_path=$reports/tsan:suppressions=$PWD/scripts/sanitizers/tsan.supp" \
  ATTACHE_BIN="$PWD/$dir/attache" ATTACHE_BUILD_DIR="$PWD/$BUILD" PATH="$VENV/bin:$PATH" \
    "$VENV/bin/python" -m pytest "$@" -q -k "$SKIP" -p no:cacheprovider || status=$?
  if compgen -G "$reports/*" >/dev/null; then
    cat "$reports"/*
    echo "sanitize_e2e: $dir/attache reported the problems above" >&2
    status=1
  fi
  return "$status"
}

run build-address "${ASAN_SUITES[@]}"
run build-thread "${TSAN_SUITES[@]}"
