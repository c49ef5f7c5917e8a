#!/usr/bin/env bash
# Style and static checks: clang-format (Google) and clang-tidy (.clang-tidy).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD="${ATTACHE_BUILD_DIR:-build}"
mapfile -t sources < <(git ls-files 'src/*.cc' 'src/*.h' 'tests/*.cc' 'e2e/peers/*.cc' \
  'fuzz/*.cc' 'fuzz/*.h' 'bench/micro/*.cc')
clang-format --dry-run --Werror "${sources[@]}"
mapfile -t units < <(git ls-files 'src/*.cc')
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# One clang-tidy per core, a few files each; each batch's output is kept
# apart so that reports do not interleave.
status=0
printf '%s\0' "${units[@]}" |
  xargs -0 -n 4 -P "$(nproc)" sh -c \
    'out="$1"; shift; clang-tidy -p "$0" --quiet "$@" >"$out.$$.log" 2>&1' "$BUILD" "$work/tidy" || status=$?
cat "$work"/tidy.*.log | grep -v "warnings generated" || true
if ((status)); then
  echo "lint: clang-tidy found problems"
  exit 1
fi
echo "lint: clean"
