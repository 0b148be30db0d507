#!/usr/bin/env bash
# Runs the libFuzzer targets built by `cmake --preset fuzz` (build-fuzz/fuzz/): first each one
# over its committed seed corpus (tests/fuzz/corpus/<target>/, found crashes included), then
# fuzzing for --seconds each. Fails on any crash, sanitizer report, leak, timeout or
# out-of-memory, naming the input that caused it.
#   scripts/fuzz.sh [--seconds N] [--replay-only] [target ...]     (targets: fuzz_config, ...)
# New inputs the fuzzers find accumulate in build-fuzz/fuzz-corpus/<target>/ (a later run
# starts from them); a failing input is saved as build-fuzz/fuzz-artifacts/<target>/crash-*
# (or leak-*, timeout-*, oom-*); the full log is build-fuzz/fuzz-logs/<target>.log.
set -uo pipefail
cd "$(dirname "$0")/.."

seconds=15
replay_only=0
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    --replay-only) replay_only=1; shift ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) targets+=("$1"); shift ;;
  esac
done
bin=build-fuzz/fuzz
[ ${#targets[@]} -gt 0 ] || targets=(fuzz_safetensors fuzz_config fuzz_tokenizer fuzz_chat_template fuzz_protocol fuzz_http_parser fuzz_content_coding)

# -max_len bounds an input (and so JSON nesting depth): deeper nesting than this is a separate
# concern (issue 12: a depth limit on JSON parsing), not what these runs look for.
max_len() {
  case "$1" in
    fuzz_tokenizer) echo 16384 ;;  # a trimmed DeepSeek tokenizer.json seed is 11 KB
    fuzz_http_parser) echo 8192 ;;  # room for a few pipelined requests
    *) echo 4096 ;;
  esac
}

export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:allocator_may_return_null=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
command -v llvm-symbolizer >/dev/null || export ASAN_SYMBOLIZER_PATH=/usr/lib/llvm-14/bin/llvm-symbolizer

mkdir -p build-fuzz/fuzz-logs
failed=()
summary=()
for t in "${targets[@]}"; do
  exe="$bin/$t"
  if [ ! -x "$exe" ]; then
    echo "fuzz: $exe is missing (cmake --preset fuzz && cmake --build --preset fuzz)" >&2
    exit 2
  fi
  seeds="tests/fuzz/corpus/$t"
  work="build-fuzz/fuzz-corpus/$t"
  artifacts="build-fuzz/fuzz-artifacts/$t/"
  log="build-fuzz/fuzz-logs/$t.log"
  mkdir -p "$work" "$artifacts"
  common=(-max_len="$(max_len "$t")" -timeout=25 -rss_limit_mb=2560 -artifact_prefix="$artifacts")
  [ -f "tests/fuzz/dict/$t.dict" ] && common+=(-dict="tests/fuzz/dict/$t.dict")

  # Every seed, unchanged: what once crashed must keep passing.
  if ! "$exe" "${common[@]}" -runs=0 "$seeds" >"$log" 2>&1; then
    echo "fuzz: $t FAILED replaying $seeds" >&2
    grep -E "ERROR|runtime error|invariant|Running:|Test unit written" "$log" | tail -n 20 >&2
    failed+=("$t")
    continue
  fi
  if [ "$replay_only" = 1 ]; then
    summary+=("$t: $(ls "$seeds" | wc -l) seeds replayed")
    continue
  fi
  if ! "$exe" "${common[@]}" -max_total_time="$seconds" -print_final_stats=1 "$work" "$seeds" >>"$log" 2>&1; then
    echo "fuzz: $t FAILED (log: $log)" >&2
    grep -E -A 12 "ERROR|runtime error|invariant" "$log" | head -n 40 >&2
    grep -E "Test unit written" "$log" | tail -n 1 >&2
    echo "fuzz: reproduce with $exe <that file>; add it to $seeds as regression-<name> once fixed" >&2
    failed+=("$t")
    continue
  fi
  runs=$(grep -oP 'stat::number_of_executed_units: \K[0-9]+' "$log" | tail -n 1)
  rate=$(grep -oP 'stat::average_exec_per_sec: +\K[0-9]+' "$log" | tail -n 1)
  cov=$(grep -oP ' cov: \K[0-9]+' "$log" | tail -n 1)
  summary+=("$t: ${runs:-?} runs in ${seconds}s (${rate:-?} exec/s), coverage ${cov:-?} edges, corpus $(ls "$work" | wc -l) + $(ls "$seeds" | wc -l) seeds")
done

for line in "${summary[@]}"; do echo "fuzz: $line"; done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: FAILED: ${failed[*]}" >&2
  exit 1
fi
