#!/usr/bin/env bash
# The full benchmark runs behind docs/benchmarks.md (CI runs only each benchmark's --smoke).
# Makes the benchmark models under models/ when absent (bench-v3-small: ~1.7 GB FP8, ~3 GB BF16).
# Usage: scripts/bench.sh [decode|isa|all]   (default all)
#   isa: the per-kernel-path tables of docs/benchmarks.md — for every path this CPU runs
#   (DSINFER_ISA, kernels/cpu_features.h): batch-1 decode FP8 and BF16, batch 32, a 2,048-token
#   prefill, gemm_bench and mla_bench. DSINFER_BUILD picks the build (e.g. build-v3 for an
#   -march=x86-64-v3 build that simulates an AVX2-only machine); DSINFER_ISAS the paths.
set -euo pipefail
what=${1:-all}
models=${DSINFER_MODELS:-models}
build=${DSINFER_BUILD:-build}
for variant in fp8 bf16; do
  dir="$models/bench-v3-small-$variant"
  if [ ! -f "$dir/config.json" ]; then
    flag=""; [ "$variant" = fp8 ] && flag="--fp8"
    ./$build/dsinfer make-model --preset bench-v3-small $flag --out "$dir"
  fi
done
if [ "$what" = isa ]; then
  isas=${DSINFER_ISAS:-$(./$build/dsinfer --version | sed -n 's/.*this CPU runs: \([a-z0-9 ]*\);.*/\1/p')}
  for isa in $isas; do
    [ "$isa" = generic ] && continue  # no speed target; minutes per figure
    echo "==== kernel path $isa ($build)"
    for variant in fp8 bf16; do
      DSINFER_ISA=$isa ./$build/bench/decode_bench --model "$models/bench-v3-small-$variant" --tokens 32
    done
    DSINFER_ISA=$isa ./$build/bench/decode_bench --model "$models/bench-v3-small-fp8" --tokens 16 --batch 32 --prefill 2048
    DSINFER_ISA=$isa ./$build/bench/gemm_bench
    DSINFER_ISA=$isa ./$build/bench/mla_bench
  done
  exit 0
fi
echo "== decode, batch 1 (issue: foundation / kernels end to end)"
for variant in fp8 bf16; do
  ./$build/bench/decode_bench --model "$models/bench-v3-small-$variant" --tokens 64
done
[ "$what" = decode ] && exit 0
for b in $build/bench/*_bench; do
  case "$b" in */decode_bench) continue ;; esac
  echo "== $(basename "$b")"
  "$b"
done
