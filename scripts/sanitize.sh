#!/usr/bin/env bash
# Builds and runs the unit tests under ASan+UBSan and under TSan.
set -euo pipefail
cd "$(dirname "$0")/.."
for sanitizer in address,undefined thread; do
  dir="build-${sanitizer%%,*}"
  if [[ ! -f "$dir/build.ninja" ]]; then
    # Unity batches halve the compile time of these trees (CMakeLists.txt).
    cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DATTACHE_SANITIZE="$sanitizer" \
      -DCMAKE_UNITY_BUILD=ON >/dev/null
  fi
  ninja -C "$dir" attache_tests
  # TSan: the suppressions of the end-to-end runs (Debian's gRPC is not
  # instrumented; see scripts/sanitizers/tsan.supp).
  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  TSAN_OPTIONS="halt_on_error=1:suppressions=$PWD/scripts/sanitizers/tsan.supp:history_size=7" \
    "$dir/attache_tests" --gtest_brief=1
done
