#!/usr/bin/env bash
# Builds the benchmark's Go programs (xdsload, gcpserver) into
# ${ATTACHE_CACHE:-~/.cache/attache}/bin. Go's build cache makes a rebuild
# with nothing changed take a second or two.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
source "$root/tools/go-env.sh"
BIN="$ATTACHE_CACHE/bin"
mkdir -p "$BIN"
cd "$root/bench/go"
for program in xdsload gcpserver; do
  gocmd build -p "$ATTACHE_GO_JOBS" -trimpath -o "$BIN/.$program.tmp" "./cmd/$program"
  mv -f "$BIN/.$program.tmp" "$BIN/$program"
done
echo "bench/build.sh: built xdsload and gcpserver in $BIN"
