#!/usr/bin/env bash
# Builds the libFuzzer harnesses (fuzz/*_fuzzer.cc) with clang, ASan and UBSan
# into build-fuzz and runs each for ATTACHE_FUZZ_SECONDS (default 60) on a
# copy of its seed corpus (fuzz/corpus/<fuzzer>), so that nothing is written
# into the repository. Fails if any fuzzer finds a crash, a sanitizer report
# or a broken invariant; the inputs that did it are kept in the directory
# printed at the start (a fuzzer's own corpus stays there too).
#
#   bash scripts/fuzz.sh                              # every fuzzer, 60 s each
#   ATTACHE_FUZZ_SECONDS=3600 bash scripts/fuzz.sh    # an hour each
#   ATTACHE_FUZZERS="xds_stream_fuzzer" bash scripts/fuzz.sh
#
# See docs/reliability.md for running one fuzzer by hand and reproducing.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD="${ATTACHE_FUZZ_BUILD_DIR:-build-fuzz}"
SECONDS_EACH="${ATTACHE_FUZZ_SECONDS:-60}"

if [[ ! -f "$BUILD/build.ninja" ]]; then
  # -O1 without NDEBUG: fast enough, and assertions stay in.
  cmake -S . -B "$BUILD" -G Ninja -DATTACHE_FUZZ=ON -DCMAKE_UNITY_BUILD=ON \
    -DCMAKE_CXX_COMPILER=clang++ \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" \
    >/dev/null
fi
mapfile -t all < <(cd fuzz && ls -- *_fuzzer.cc | sed 's/\.cc$//')
read -r -a fuzzers <<<"${ATTACHE_FUZZERS:-${all[*]}}"
ninja -C "$BUILD" "${fuzzers[@]}"

out="$(mktemp -d "${TMPDIR:-/tmp}/attache-fuzz.XXXXXX")"
echo "fuzz: ${#fuzzers[@]} fuzzers, ${SECONDS_EACH}s each; corpora and crashes in $out"
# A smaller quarantine and shorter allocation stacks keep RSS flat over long
# runs (with ASan's defaults it grows by about 1 GB in 5 minutes and an hour
# would hit -rss_limit_mb); use-after-free within one input is still caught.
# Options the caller sets come later and win.
export ASAN_OPTIONS="quarantine_size_mb=64:malloc_context_size=10:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:${UBSAN_OPTIONS:-}"
failed=()
for fuzzer in "${fuzzers[@]}"; do
  corpus="$out/$fuzzer/corpus"
  artifacts="$out/$fuzzer/crashes/"
  mkdir -p "$corpus" "$artifacts"
  if [[ -d "fuzz/corpus/$fuzzer" ]]; then
    cp -r "fuzz/corpus/$fuzzer/." "$corpus/"
  fi
  args=(-max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048
        -artifact_prefix="$artifacts" -print_final_stats=1)
  if [[ -f "fuzz/$fuzzer.dict" ]]; then
    args+=(-dict="fuzz/$fuzzer.dict")
  fi
  echo "== $fuzzer"
  log="$out/$fuzzer/fuzz.log"
  if "$BUILD/$fuzzer" "${args[@]}" "$corpus" >"$log" 2>&1; then
    grep -E "^(stat::number_of_executed_units|stat::average_exec_per_sec|Done )|#[0-9]+ +DONE" "$log" || true
  else
    tail -n 60 "$log"
    echo "fuzz: $fuzzer FAILED; input(s) in $artifacts, log in $log"
    failed+=("$fuzzer")
  fi
done
if ((${#failed[@]})); then
  echo "fuzz: findings in ${failed[*]} (see $out)"
  exit 1
fi
echo "fuzz: no findings"
