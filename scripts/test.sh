#!/usr/bin/env bash
# Sets up everything and runs every test: unit tests (ctest) and the
# end-to-end suites against real Envoy and real gRPC clients (pytest), plus
# lint, the sanitizer builds (unit tests and the faster end-to-end suites)
# and a few minutes of fuzzing (skip those with ATTACHE_QUICK=1).
set -euo pipefail
cd "$(dirname "$0")/.."

# Each phase's wall time, printed as it ends and again at the end: CI's
# budget is counted in these (docs/reliability.md, "CI time").
timings=()
phase_name="setup and build"
phase_start=$SECONDS
phase() {
  local took=$((SECONDS - phase_start))
  timings+=("$(printf '%5d s  %s' "$took" "$phase_name")")
  echo "== ($phase_name took ${took} s)"
  phase_name="$1"
  phase_start=$SECONDS
  echo "== $1"
}
report_timings() {
  phase "done"
  echo "== phase times (total ${SECONDS} s)"
  printf '%s\n' "${timings[@]}"
}
trap report_timings EXIT

bash scripts/setup.sh
BUILD="${ATTACHE_BUILD_DIR:-build}"
VENV="${ATTACHE_CACHE:-$HOME/.cache/attache}/venv"

phase "unit tests"
ctest --test-dir "$BUILD" --output-on-failure -j2

if [[ -z "${ATTACHE_QUICK:-}" ]]; then
  phase "lint (clang-format, clang-tidy)"
  bash scripts/lint.sh
  phase "unit tests under ASan+UBSan and TSan"
  bash scripts/sanitize.sh
  # Five fuzzers at 55 s each: about five minutes (docs/reliability.md).
  phase "fuzzing (libFuzzer under ASan+UBSan)"
  ATTACHE_FUZZ_SECONDS="${ATTACHE_FUZZ_SECONDS:-55}" bash scripts/fuzz.sh
fi

phase "Kubernetes test peers (kube-apiserver, kubectl, etcd from Go modules)"
ATTACHE_GO_JOBS="${ATTACHE_GO_JOBS:-2}" bash tools/build.sh

phase "benchmark smoke (attache and go-control-plane, a few seconds)"
bash bench/build.sh
python3 bench/run.py --smoke --attache "$PWD/$BUILD/attache"

phase "end-to-end tests"
export ATTACHE_BIN="$PWD/$BUILD/attache" ATTACHE_BUILD_DIR="$PWD/$BUILD"
export PATH="$VENV/bin:$PATH"
"$VENV/bin/python" -m pytest e2e -q "$@"

if [[ -z "${ATTACHE_QUICK:-}" ]]; then
  phase "end-to-end tests against the ASan+UBSan and TSan builds"
  bash scripts/sanitize_e2e.sh
fi
