#!/bin/bash
# Decode tokens/s, serving throughput and peak RSS per rank at EP 1/2/4 (docs/benchmarks.md,
# "Expert parallelism"): dsinfer generate and serve + dsinfer bench, one process and under mpirun.
set -u
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
D=${DSINFER:-build/dsinfer}
M=${1:?usage: scripts/ep_serving_bench.sh MODEL_DIR [RANKS...]}; shift
MPI="mpirun --oversubscribe --bind-to none"
out=${OUT:-/tmp/ep_serving_bench}
mkdir -p $out
for np in ${@:-1 2 4}; do
  if [ $np = 1 ]; then L=""; else L="$MPI -np $np"; fi
  # batch-1 decode and peak RSS per rank
  $L /usr/bin/time -v $D generate --model $M --prompt "The quick brown fox jumps over the lazy dog and" --max-new-tokens 64 --json > $out/gen_$np.json 2> $out/gen_$np.err
  echo "np=$np generate: $(python3 -c "import json;d=json.loads(open('$out/gen_$np.json').read().splitlines()[-1]);print('decode tok/s %.2f prefill tok/s %.1f'%(d['decode_tokens_per_s'],d['prefill_tokens_per_s']))") RSS(KB): $(grep 'Maximum resident' $out/gen_$np.err | awk '{print $6}' | tr '\n' ' ')"
  # serving: concurrency 1 and 8
  $L $D serve --model $M --port 0 --kv-cache-gb 1 --max-running-requests 32 --max-batch-tokens 2048 > $out/serve_$np.log 2>&1 &
  spid=$!
  for i in $(seq 1 120); do grep -q "listening on" $out/serve_$np.log && break; sleep 1; done
  url=$(grep -o "http://[0-9.]*:[0-9]*" $out/serve_$np.log | head -1)
  $D bench --url $url --concurrency 1,8 --num-requests 16 --input-len 128 --output-len 32 --out $out/bench_$np.json > $out/bench_$np.txt 2>&1
  echo "np=$np serve:"; grep -E "concurrency|tok/s" $out/bench_$np.txt | head -8
  curl -s $url/metrics | grep -E "rank_step_tokens_total" > $out/metrics_$np.txt
  # stop: SIGTERM to rank 0 (or the process)
  for p in $(pgrep -f "dsinfer serve --model $M"); do
    if [ $np = 1 ] || tr '\0' '\n' < /proc/$p/environ 2>/dev/null | grep -q "^OMPI_COMM_WORLD_RANK=0"; then kill -TERM $p; fi
  done
  wait $spid
done
