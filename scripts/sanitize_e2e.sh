#!/usr/bin/env bash
# Runs the faster end-to-end suites against attache built with ASan+UBSan and
# with TSan (the build-address and build-thread folders of sanitize.sh). A
# sanitizer report anywhere fails the run, even if every test passed: each
# attache writes its reports to a folder checked at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${ATTACHE_CACHE:-$HOME/.cache/attache}/venv"
BUILD="${ATTACHE_BUILD_DIR:-build}"
# The suites that start attache many times with small catalogs. Left out:
# tests that start it on a catalog of several MiB (a Debug sanitizer build
# takes longer than their 20 s start-up limit to translate it) and the one
# that measures RSS (ASan keeps freed memory in quarantine).
ASAN_SUITES=(e2e/conformance e2e/cli e2e/envoy e2e/registry e2e/kubernetes/test_k8s_failures.py
             e2e/kubernetes/test_k8s_faults.py)
TSAN_SUITES=(e2e/conformance e2e/envoy/test_envoy.py e2e/registry e2e/kubernetes/test_k8s_failures.py
             e2e/kubernetes/test_k8s_faults.py e2e/kubernetes/test_k8s_bursts.py)
SKIP="not 4_mib and not leave_no_memory_behind"
# Tests that bound attache's CPU time skip that one assertion when
# ATTACHE_SANITIZED is set: the bound is for an optimised build.
# Under TSan (5-15 times slower) also the tests that bound attache's CPU
# time or reaction time, or start it on a 160,000-endpoint catalog; ASan
# runs them.
TSAN_SKIP="$SKIP and not nack_loop and not never_reads and not malformed_watch_events"

for dir in build-address build-thread; do
  if [[ ! -f "$dir/build.ninja" ]]; then
    echo "sanitize_e2e: $dir is missing: run scripts/sanitize.sh first" >&2
    exit 2
  fi
  ninja -C "$dir" attache
done

run() {  # run <build dir> <-k expression> <suites...>
  local dir="$1" skip="$2"
  shift 2
  local reports
  reports="$(mktemp -d "${TMPDIR:-/tmp}/attache-$dir-reports.XXXXXX")"
  echo "== end-to-end tests against $dir/attache (reports in $reports)"
  local status=0
  ASAN_OPTIONS="log_path=$reports/asan:halt_on_error=1" \
  UBSAN_OPTIONS="log_path=$reports/ubsan:halt_on_error=1:print_stacktrace=1" \
  TSAN_OPTIONS="log_path=$reports/tsan:suppressions=$PWD/scripts/sanitizers/tsan.supp:history_size=7" \
  ATTACHE_SANITIZED="$dir" ATTACHE_BIN="$PWD/$dir/attache" ATTACHE_BUILD_DIR="$PWD/$BUILD" PATH="$VENV/bin:$PATH" \
    "$VENV/bin/python" -m pytest "$@" -q -k "$skip" -p no:cacheprovider || status=$?
  if compgen -G "$reports/*" >/dev/null; then
    cat "$reports"/*
    echo "sanitize_e2e: $dir/attache reported the problems above" >&2
    status=1
  fi
  return "$status"
}

# ATTACHE_SANITIZERS="thread" runs only the TSan part, for example.
for which in ${ATTACHE_SANITIZERS:-address thread}; do
  if [[ "$which" == address ]]; then
    run build-address "$SKIP" "${ASAN_SUITES[@]}"
  else
    run build-thread "$TSAN_SKIP" "${TSAN_SUITES[@]}"
  fi
done
