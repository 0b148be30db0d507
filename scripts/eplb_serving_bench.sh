#!/bin/bash
# Expert-load imbalance and throughput on a skewed load, with and without redundant experts and
# online EPLB (docs/benchmarks.md, "Online EPLB"): a model whose last two experts take nearly every
# token (`dsinfer make-model --hot-experts 2`), served by `mpirun -np N dsinfer serve` three ways:
#   plain      n_routed / N contiguous experts per rank (both hot ones on the last rank)
#   static     --redundant-experts N placed at start from an even load, never re-placed
#   online     the same, re-placed from the live load every I steps (--eplb-interval I)
# each loaded by `dsinfer bench`. Reads the per-rank expert rows and the dsinfer_eplb_* metrics.
#   scripts/eplb_serving_bench.sh HOT_MODEL_DIR [RANKS] [INTERVAL]
set -u
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
D=${DSINFER:-build/dsinfer}
M=${1:?usage: scripts/eplb_serving_bench.sh HOT_MODEL_DIR [RANKS] [INTERVAL]}
NP=${2:-2}
INTERVAL=${3:-16}
MPI="mpirun --oversubscribe --bind-to none"
out=${OUT:-/tmp/eplb_serving_bench}
mkdir -p $out
rows() { curl -s $1/metrics | grep -E "^dsinfer_rank_expert_rows_total" | awk '{print $2}' | tr '\n' ' '; }
for mode in plain static online; do
  extra=""
  [ $mode = static ] && extra="--redundant-experts $NP --eplb-interval 1000000000"
  [ $mode = online ] && extra="--redundant-experts $NP --eplb-interval $INTERVAL"
  $MPI -np $NP $D serve --model $M --port 0 --kv-cache-gb 1 --max-running-requests 32 $extra > $out/serve_$mode.log 2>&1 &
  spid=$!
  for i in $(seq 1 180); do grep -q "listening on" $out/serve_$mode.log && break; sleep 1; done
  url=$(grep -o "http://[0-9.]*:[0-9]*" $out/serve_$mode.log | head -1)
  # a first round (online EPLB moves the experts during it), then the measured one
  $D bench --url $url --concurrency 8 --num-requests 16 --input-len 128 --output-len 32 > $out/warm_$mode.txt 2>&1
  before=$(rows $url)
  $D bench --url $url --concurrency 8 --num-requests 32 --input-len 128 --output-len 32 > $out/bench_$mode.txt 2>&1
  after=$(rows $url)
  python3 - "$before" "$after" "$mode" <<'PY'
import sys
b = [float(x) for x in sys.argv[1].split()]; a = [float(x) for x in sys.argv[2].split()]
d = [y - x for x, y in zip(b, a)]
print(f"{sys.argv[3]}: expert rows per rank {[int(x) for x in d]}, busiest/mean {max(d) / (sum(d) / len(d)):.3f}")
PY
  grep -E "output tok/s|TPOT|concurrency" $out/bench_$mode.txt | head -4
  curl -s $url/metrics | grep -E "^dsinfer_eplb_" | sed 's/{model="[^"]*"/{/;s/{,/{/;s/{}//'
  for p in $(pgrep -f "dsinfer serve --model $M"); do
    tr '\0' '\n' < /proc/$p/environ 2>/dev/null | grep -q "^OMPI_COMM_WORLD_RANK=0" && kill -TERM $p
  done
  wait $spid
done
