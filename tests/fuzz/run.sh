#!/bin/bash
# Builds the fuzz targets with clang, libFuzzer, ASan and UBSan into
# $BACKY_FUZZ_BUILD (default build/fuzz; only the libraries they need) and
# runs each over its seed corpus (corpus/TARGET) and then for
# $BACKY_FUZZ_SECONDS (default 8) seconds of fuzzing, $BACKY_FUZZ_JOBS
# (default: the number of cores) targets at a time, with a fixed seed
# ($BACKY_FUZZ_SEED, default 1). Exits 1 if any target crashed, leaked,
# hung or ran out of memory, naming the reproducer (kept under the build
# directory; replay it with `build/fuzz/tests/fuzz/fuzz_TARGET FILE`);
# 77 if clang or libFuzzer is missing. Failures of targets listed in
# known_failing are reported as KNOWN and do not fail the run.
#   run.sh [TARGET...]           fuzz these targets (default: all)
#   run.sh --crashes [TARGET...] replay crashes/TARGET/* (known crashes)
set -uo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
build=${BACKY_FUZZ_BUILD:-$src/build/fuzz}
seconds=${BACKY_FUZZ_SECONDS:-8}
seed=${BACKY_FUZZ_SEED:-1}
all=(index chunk chunk_file revision legacy_chunk legacy_revision scheduler_config nbd_option nbd_request)

replay_crashes=
if [ "${1:-}" = --crashes ]; then
  replay_crashes=1
  shift
fi
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all[@]}")

log() { echo "fuzz: $*" >&2; }
known() { sed 's/#.*//' "$src/tests/fuzz/known_failing" | grep -qw -- "$1"; }

if ! command -v clang++ >/dev/null || ! command -v clang >/dev/null; then
  log "clang is not installed (tests/setup.sh installs it); skipping"
  exit 77
fi
mkdir -p "$build"
probe=$build/probe.cc
echo 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }' >"$probe"
if ! clang++ -fsanitize=fuzzer,address,undefined "$probe" -o "$build/probe" 2>"$build/probe.log"; then
  log "clang cannot build libFuzzer targets (libclang-rt-14-dev missing?); skipping"
  cat "$build/probe.log" >&2
  exit 77
fi

flags="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
launcher=()
if command -v ccache >/dev/null; then
  launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
log "building ${targets[*]} in $build"
if ! cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
    -DCMAKE_C_FLAGS="$flags" -DCMAKE_CXX_FLAGS="$flags" \
    -DBACKY_FUZZ=ON -DBUILD_TESTING=OFF -DBACKY_WITH_RBD=OFF \
    "${launcher[@]}" >"$build/build.log" 2>&1 ||
  ! make -C "$build" -j"$(nproc)" "${targets[@]/#/fuzz_}" >>"$build/build.log" 2>&1; then
  tail -40 "$build/build.log" >&2
  log "FAILED to build the fuzz targets"
  exit 1
fi

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
failed=()

# fuzz_one TARGET: fuzzes one target in $build/run/TARGET; prints its
# verdict line and exits 0 (passed or KNOWN) or 1 (failed).
fuzz_one() {
  local t=$1 bin=$build/tests/fuzz/fuzz_$1 work=$build/run/$1 rc stats cov what
  rm -rf "$work"
  mkdir -p "$work/corpus"
  local args=(-seed="$seed" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=512
        -max_len=65536 -print_final_stats=1 -artifact_prefix="$work/")
  [ -f "$src/tests/fuzz/$t.dict" ] && args+=(-dict="$src/tests/fuzz/$t.dict")
  # New inputs go to $work/corpus; the checked-in seeds are only read.
  # (chunk_file keeps its chunk store under $TMPDIR: inside the work dir.)
  TMPDIR=$work "$bin" "${args[@]}" "$work/corpus" "$src/tests/fuzz/corpus/$t" >"$work/log" 2>&1
  rc=$?
  stats=$(grep -E '^stat::(number_of_executed_units|new_units_added)' "$work/log" |
    sed 's/^stat:://' | tr '\n' ' ')
  cov=$(grep -oE 'cov: [0-9]+' "$work/log" | tail -1)
  if [ $rc -ne 0 ]; then
    grep -m3 -E '==ERROR|FUZZ_CHECK|runtime error|SUMMARY' "$work/log" >&2
    what="FAILED (exit $rc) after ${seconds}s; reproducer: $(ls "$work"/{crash,leak,timeout,oom}-* 2>/dev/null | head -1); log: $work/log"
    if known "$t"; then
      log "$t KNOWN $what (listed in known_failing)"
    else
      log "$t $what"
      return 1
    fi
  else
    log "$t ok: ${seconds}s, $cov, $stats"
    if known "$t"; then
      log "$t is listed in known_failing but passed (try run.sh --crashes $t)"
    fi
  fi
}

if [ -n "$replay_crashes" ]; then
  for t in "${targets[@]}"; do
    bin=$build/tests/fuzz/fuzz_$t
    for f in "$src/tests/fuzz/crashes/$t"/*; do
      [ -f "$f" ] || continue
      if "$bin" "$f" >"$build/replay.log" 2>&1; then
        log "$t: $(basename "$f") no longer crashes"
      else
        log "$t: $(basename "$f") crashes: $(grep -m1 -E 'ERROR|FUZZ_CHECK|runtime error' "$build/replay.log")"
        failed+=("$t/$(basename "$f")")
      fi
    done
  done
else
  # Each fuzzer is one single-threaded process: run $BACKY_FUZZ_JOBS of
  # them at once (default: the number of cores).
  jobs_max=${BACKY_FUZZ_JOBS:-$(nproc)}
  declare -A pid_of=()
  for t in "${targets[@]}"; do
    while [ "$(jobs -rp | wc -l)" -ge "$jobs_max" ]; do wait -n || true; done
    fuzz_one "$t" &
    pid_of[$t]=$!
  done
  for t in "${targets[@]}"; do
    wait "${pid_of[$t]}" || failed+=("$t")
  done
fi
if [ ${#failed[@]} -gt 0 ]; then
  log "FAILED: ${failed[*]}"
  exit 1
fi
log "no failures beyond known_failing: ${targets[*]}"
