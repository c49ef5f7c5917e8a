#!/usr/bin/env bash
# Style and static checks: clang-format (Google) and clang-tidy (.clang-tidy).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD="${ATTACHE_BUILD_DIR:-build}"
mapfile -t sources < <(git ls-files 'src/*.cc' 'src/*.h' 'tests/*.cc' 'e2e/peers/*.cc' \
  'fuzz/*.cc' 'fuzz/*.h' 'bench/micro/*.cc')
clang-format --dry-run --Werror "${sources[@]}"
mapfile -t units < <(git ls-files 'src/*.cc')
log=$(mktemp)
status=0
clang-tidy -p "$BUILD" --quiet "${units[@]}" >"$log" 2>&1 || status=$?
grep -v "warnings generated" "$log" || true
rm -f "$log"
if ((status)); then
  echo "lint: clang-tidy found problems"
  exit "$status"
fi
echo "lint: clean"
