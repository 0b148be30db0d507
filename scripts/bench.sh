#!/usr/bin/env bash
# The full benchmark runs behind docs/benchmarks.md (CI runs only each benchmark's --smoke).
# Makes the benchmark models under models/ when absent (bench-v3-small: ~1.7 GB FP8, ~3 GB BF16).
# Usage: scripts/bench.sh [decode|all]   (default all)
set -euo pipefail
what=${1:-all}
models=${DSINFER_MODELS:-models}
for variant in fp8 bf16; do
  dir="$models/bench-v3-small-$variant"
  if [ ! -f "$dir/config.json" ]; then
    flag=""; [ "$variant" = fp8 ] && flag="--fp8"
    ./build/dsinfer make-model --preset bench-v3-small $flag --out "$dir"
  fi
done
echo "== decode, batch 1 (issue: foundation / kernels end to end)"
for variant in fp8 bf16; do
  ./build/bench/decode_bench --model "$models/bench-v3-small-$variant" --tokens 64
done
[ "$what" = decode ] && exit 0
for b in build/bench/*_bench; do
  case "$b" in */decode_bench) continue ;; esac
  echo "== $(basename "$b")"
  "$b"
done
