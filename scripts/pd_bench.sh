#!/usr/bin/env bash
# Disaggregated against co-located serving on a mixed load (docs/serving.md, docs/benchmarks.md):
#   co-located:     one `dsinfer serve --role both` on every core
#   disaggregated:  `serve --role prefill` on half the cores, `serve --role decode` on the other
#                   half, `dsinfer router` in front
# The same `dsinfer bench` load against each: long prompts (--long-input-len, 2-4k tokens) among
# short chat turns, TTFT and TPOT p50/p99 per class. Then the KV transfer: bytes and time from the
# prefill instance's /metrics (GB/s while serving, share hidden behind the prompt's compute)
# against UCX's own bandwidth between two processes, measured in the same run (transfer-bench).
#
#   scripts/pd_bench.sh [--quick] [--fp8]     (DSINFER=path/to/dsinfer, WORK=dir)
# --quick: tiny-v3 and a small load, for CI (a smoke run: the numbers mean nothing).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${DSINFER:-$here/build/dsinfer}
work=${WORK:-/tmp/dsinfer-pd-bench}
quick=0
fp8=()
for a in "$@"; do
  case $a in
    --quick) quick=1 ;;
    --fp8) fp8=(--fp8) ;;
    *) echo "usage: $0 [--quick] [--fp8]" >&2; exit 2 ;;
  esac
done
mkdir -p "$work"
if [ $quick = 1 ]; then
  preset=tiny-v3; requests=8; conc=4; short=32; out=8; long=256; kv=0.1; upk=0.1
else
  preset=bench-v3-small; requests=16; conc=4; short=128; out=64; long=3072; kv=1; upk=1
fi
model=$work/$preset${fp8:+-fp8}
[ -f "$model/config.json" ] || "$bin" make-model --preset $preset "${fp8[@]}" --out "$model" >/dev/null

pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

# Starts a process that prints "listening on URL"; sets $url and appends its pid.
start() {
  local log=$1; shift
  rm -f "$log"  # not a previous run's address
  "$@" >"$log" 2>&1 &
  pids+=($!)
  for _ in $(seq 600); do
    url=$(grep -so 'listening on http://[0-9.:]*' "$log" | head -1 | cut -d' ' -f3 || true)
    [ -n "$url" ] && return 0
    kill -0 "${pids[-1]}" 2>/dev/null || { cat "$log" >&2; return 1; }
    sleep 0.1
  done
  echo "timed out starting: $*" >&2
  return 1
}

# GET a URL (no curl on a bare Debian: python3 is a dependency anyway); fails on a non-2xx status.
fetch() { /usr/bin/python3 -c 'import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())' "$1"; }

ncpu=$(nproc)
half=$(( ncpu / 2 > 0 ? ncpu / 2 : 1 ))
pin() {  # pin FIRST COUNT: run on cores [FIRST, FIRST + COUNT) when the machine has them
  if [ "$ncpu" -ge 2 ]; then echo "taskset -c $1-$(( $1 + $2 - 1 ))"; fi
}
load=(--concurrency $conc --num-requests $requests --input-len $short --input-len-spread 0.5 --output-len $out
      --long-fraction 0.25 --long-input-len $long --long-input-len-spread 0.33 --seed 7 --timeout 1800)
serve_flags=(--model "$model" --served-model-name bench --host 127.0.0.1 --port 0 --kv-cache-gb $kv)

echo "== UCX between two processes (1 MB tagged messages)" >&2
"$bin" transfer-bench --mb 1 --seconds $([ $quick = 1 ] && echo 0.5 || echo 3) --json \
  $([ $quick = 1 ] && echo "--kv-transfers 2 --kv-tokens 512") >"$work/ucx.json"
cat "$work/ucx.json" >&2

echo "== co-located: serve --role both on $ncpu cores" >&2
start "$work/both.log" env DSINFER_THREADS=$ncpu "$bin" serve "${serve_flags[@]}"
"$bin" bench --url "$url" "${load[@]}" --out "$work/colocated.json" >/dev/null
kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true

echo "== disaggregated: prefill on $half cores, decode on $(( ncpu - half )), router" >&2
start "$work/prefill.log" env DSINFER_THREADS=$half $(pin 0 $half) "$bin" serve "${serve_flags[@]}" --role prefill
prefill=$url
start "$work/decode.log" env DSINFER_THREADS=$(( ncpu - half )) $(pin $half $(( ncpu - half > 0 ? ncpu - half : 1 ))) \
  "$bin" serve "${serve_flags[@]}" --role decode --kv-cache-gb $upk
decode=$url
start "$work/router.log" "$bin" router --prefill "$prefill" --decode "$decode" --port 0 --upstream-timeout 1800
router=$url
for _ in $(seq 100); do fetch "$router/health" >/dev/null 2>&1 && break; sleep 0.1; done
"$bin" bench --url "$router" "${load[@]}" --out "$work/disaggregated.json" >/dev/null
fetch "$prefill/metrics" >"$work/prefill_metrics.txt"
fetch "$decode/metrics" >"$work/decode_metrics.txt"

/usr/bin/python3 - "$work" "$preset${fp8:+ fp8}" <<'EOF'
import json, re, sys
work, name = sys.argv[1], sys.argv[2]
ucx = json.load(open(f"{work}/ucx.json"))
co = json.load(open(f"{work}/colocated.json"))["levels"][0]
dis = json.load(open(f"{work}/disaggregated.json"))["levels"][0]
def metric(text, name, labels=""):
    m = re.search(r"^" + name + (r"\{" + labels + r"[^}]*\}" if labels else "") + r" (\S+)$", text, re.M)
    return float(m.group(1)) if m else 0.0
pm = open(f"{work}/prefill_metrics.txt").read()
sent = metric(pm, "dsinfer_pd_kv_sent_bytes_total")
total = metric(pm, "dsinfer_pd_transfer_seconds_total")
exposed = metric(pm, "dsinfer_pd_transfer_exposed_seconds_total")
transfers = metric(pm, "dsinfer_pd_transfers_total", 'result="ok"')
print(f"model {name}; {co['requests']} requests, concurrency {co['concurrency']}; failed: co-located {co['failed']}, disaggregated {dis['failed']}")
print("| class | metric | co-located p50 / p99 (ms) | disaggregated p50 / p99 (ms) | p99 ratio (dis/co) |")
print("|---|---|---|---|---|")
for cls in ("short", "long"):
    for m in ("ttft", "tpot"):
        a, b = co.get(cls, co)[m], dis.get(cls, dis)[m]
        ratio = b["p99_ms"] / a["p99_ms"] if a["p99_ms"] else float("nan")
        print(f"| {cls} | {m.upper()} | {a['p50_ms']:.0f} / {a['p99_ms']:.0f} | {b['p50_ms']:.0f} / {b['p99_ms']:.0f} | {ratio:.2f} |")
print(f"| all | output tokens/s | {co['output_tokens_per_s']:.1f} | {dis['output_tokens_per_s']:.1f} | {dis['output_tokens_per_s'] / co['output_tokens_per_s']:.2f} |")
gbps = sent / total / 1e9 if total else 0
print(f"KV transfer: {transfers:.0f} transfers, {sent / 1e6:.1f} MB; {gbps:.3f} GB/s over the transfers' lifetimes "
      f"(paced by the prompt's compute); hidden behind the compute: {100 * (1 - exposed / total) if total else 0:.1f}% "
      f"(exposed {1e3 * exposed / max(transfers, 1):.2f} ms per transfer)")
print(f"UCX between two processes, same run ({ucx['transports']}): raw {ucx['raw_ucx_gbps']:.2f} GB/s, through dsinfer's "
      f"agent {ucx['agent_gbps']:.2f} GB/s, the whole KV path ({ucx['kv_transfers']} prompts of {ucx['kv_tokens']} tokens, "
      f"{ucx['kv_dtype']} rows, encoded, checksummed, verified, written) {ucx['kv_gbps']:.2f} GB/s = "
      f"{100 * ucx['kv_gbps'] / ucx['raw_ucx_gbps']:.0f}% of raw")
EOF
