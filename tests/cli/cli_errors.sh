#!/usr/bin/env bash
# Bad input to the model commands: each case must exit non-zero and print one line on stderr
# that names the problem. Usage: cli_errors.sh DSINFER_BIN
set -u
bin=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$bin" make-model --preset tiny-v3 --out "$work/m" >/dev/null || { echo "make-model failed"; exit 1; }
fails=0 passes=0

# expect_error NEEDLE CMD...: non-zero exit, exactly one stderr line, containing NEEDLE.
expect_error() {
  local needle=$1; shift
  local err rc lines
  err=$("$@" 2>&1 >/dev/null); rc=$?
  lines=$(printf '%s' "$err" | grep -c '')
  if [ "$rc" -eq 0 ] || [ "$lines" -ne 1 ] || [[ "$err" != *"$needle"* ]]; then
    echo "FAIL: $* -> rc=$rc, stderr=[$err], wanted one line containing [$needle]"
    fails=$((fails + 1))
  else
    passes=$((passes + 1))
  fi
}

# expect_usage NEEDLE CMD...: a command-line mistake: exit status 2 and one stderr line naming it.
expect_usage() {
  local needle=$1; shift
  local err rc lines
  err=$("$@" 2>&1 >/dev/null); rc=$?
  lines=$(printf '%s' "$err" | grep -c '')
  if [ "$rc" -ne 2 ] || [ "$lines" -ne 1 ] || [[ "$err" != *"$needle"* ]]; then
    echo "FAIL: $* -> rc=$rc, stderr=[$err], wanted status 2 and one line containing [$needle]"
    fails=$((fails + 1))
  else
    passes=$((passes + 1))
  fi
}

m="$work/m"
# Model directory problems.
mkdir -p "$work/empty"
expect_error "config.json" "$bin" logits --model "$work/empty" --tokens 1 --out "$work/o.npy"
cp -r "$m" "$work/badjson"; echo '{ "architectures": [' > "$work/badjson/config.json"
expect_error "not valid JSON" "$bin" logits --model "$work/badjson" --tokens 1 --out "$work/o.npy"
cp -r "$m" "$work/arch"; sed -i 's/DeepseekV3ForCausalLM/LlamaForCausalLM/' "$work/arch/config.json"
expect_error "LlamaForCausalLM" "$bin" logits --model "$work/arch" --tokens 1 --out "$work/o.npy"
cp -r "$m" "$work/shape"; sed -i 's/"kv_lora_rank": 160/"kv_lora_rank": 128/' "$work/shape/config.json"
expect_error "kv_a_proj_with_mqa" "$bin" logits --model "$work/shape" --tokens 1 --out "$work/o.npy"
cp -r "$m" "$work/trunc"; truncate -s 1000000 "$work/trunc/model.safetensors"
expect_error "truncated" "$bin" logits --model "$work/trunc" --tokens 1 --out "$work/o.npy"
expect_error "nope/config.json" "$bin" generate --model "$work/nope" --tokens 1

# Models that load but are wrong: each refused with the field, tensor or file named.
# bad_float NAME FROM TO: a copy of the model with one config.json value replaced.
bad_float() {
  cp -r "$m" "$work/f-$1"; sed -i "s/\"$1\": $2,/\"$1\": $3,/" "$work/f-$1/config.json"
  grep -q "\"$1\": $3," "$work/f-$1/config.json" || { echo "FAIL: could not edit $1"; fails=$((fails + 1)); }
  expect_error "field '$1' must be a finite positive number" "$bin" generate --model "$work/f-$1" --tokens 1
}
bad_float rms_norm_eps 1e-06 0
bad_float rope_theta 10000.0 -1
bad_float routed_scaling_factor 2.5 -2.5
cp -r "$m" "$work/nan"
python3 - "$work/nan/model.safetensors" <<'PY'
import json, struct, sys
with open(sys.argv[1], "r+b") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    t = json.loads(f.read(n))["model.layers.1.self_attn.o_proj.weight"]
    f.seek(8 + n + t["data_offsets"][0] + 2 * 100)
    f.write(b"\xc0\x7f")  # bf16 NaN
PY
expect_error "tensor model.layers.1.self_attn.o_proj.weight holds NaN or Inf" "$bin" generate --model "$work/nan" --tokens 1
expect_error "o_proj.weight holds NaN" "$bin" logits --model "$work/nan" --tokens 1 --out "$work/o.npy"
mkdir -p "$work/dircfg" && cp "$m"/*.json "$m"/*.safetensors "$work/dircfg/" && rm "$work/dircfg/config.json" && mkdir "$work/dircfg/config.json"
expect_error "config.json is not a regular file" "$bin" generate --model "$work/dircfg" --tokens 1
mkdir -p "$work/fifo" && cp "$m"/*.json "$work/fifo/" && mkfifo "$work/fifo/model.safetensors"
expect_error "model.safetensors is not a regular file" timeout 20 "$bin" generate --model "$work/fifo" --tokens 1

# Numeric flags: finite and in range, else status 2 naming the flag (checked before the model loads).
expect_usage "--kv-cache-gb must be a finite number" "$bin" serve --model "$m" --kv-cache-gb inf
expect_usage "--kv-cache-gb must be" "$bin" serve --model "$m" --kv-cache-gb 0
expect_usage "--max-body-mb must be" "$bin" serve --model "$m" --max-body-mb -1
expect_usage "--max-body-mb must be a finite number" "$bin" serve --model "$m" --max-body-mb nan
expect_usage "--max-model-len must be" "$bin" serve --model "$m" --max-model-len -5
expect_usage "--max-running-requests must be" "$bin" serve --model "$m" --max-running-requests 0
expect_usage "--port must be" "$bin" serve --model "$m" --port 70000
expect_usage "--drain-timeout must be a finite number" "$bin" serve --model "$m" --drain-timeout inf
expect_usage "--temperature must be a finite number" "$bin" generate --model "$m" --tokens 1 --temperature nan
expect_usage "--max-new-tokens must be" "$bin" generate --model "$m" --tokens 1 --max-new-tokens 9223372036854775807
expect_usage "--max-shard-mb must be" "$bin" make-model --preset tiny-v3 --out "$work/x" --max-shard-mb -1

# Kernel path (kernels/cpu_features.h): an unknown name, and a path no x86-64 or aarch64 CPU has both of.
expect_error "not a kernel path" env DSINFER_ISA=sse9 "$bin" logits --model "$m" --tokens 1 --out "$work/o.npy"
case "$(uname -m)" in
  x86_64) foreign=neon ;;
  *) foreign=avx2 ;;
esac
expect_error "cannot run" env DSINFER_ISA=$foreign "$bin" generate --model "$m" --tokens 1
version=$("$bin" --version)
if [[ "$version" == *"kernel path: "* && "$version" == *"generic"* ]]; then passes=$((passes + 1)); else
  echo "FAIL: dsinfer --version names no kernel path: [$version]"; fails=$((fails + 1)); fi
version=$(DSINFER_ISA=generic "$bin" --version)
if [[ "$version" == *"kernel path: generic"* ]]; then passes=$((passes + 1)); else
  echo "FAIL: DSINFER_ISA=generic not honoured: [$version]"; fails=$((fails + 1)); fi

# Token and flag problems.
expect_error "outside the vocabulary" "$bin" logits --model "$m" --tokens 5,129280 --out "$work/o.npy"
expect_error "not a token id" "$bin" logits --model "$m" --tokens "" --out "$work/o.npy"
expect_error "not a token id" "$bin" logits --model "$m" --tokens 1,,2 --out "$work/o.npy"
expect_error "not a token id" "$bin" generate --model "$m" --tokens -3
expect_error "cannot write --out" "$bin" logits --model "$m" --tokens 1 --out /nonexistent-dir/o.npy
expect_error "unknown flag --bogus" "$bin" logits --model "$m" --tokens 1 --out "$work/o.npy" --bogus 3
expect_error "--tokens is required" "$bin" logits --model "$m" --out "$work/o.npy"
expect_error "--precision" "$bin" logits --model "$m" --tokens 1 --out "$work/o.npy" --precision fp64
expect_error "--kv-cache-dtype" "$bin" logits --model "$m" --tokens 1 --out "$work/o.npy" --kv-cache-dtype int4
expect_error "FP8 KV cache" "$bin" logits --model "$m" --tokens 1 --out "$work/o.npy" --kv-cache-dtype fp8 --precision fp32
expect_error "--step-from" "$bin" logits --model "$m" --tokens 1,2 --out "$work/o.npy" --step-from 5
expect_error "--max-new-tokens" "$bin" generate --model "$m" --tokens 1 --max-new-tokens 0
expect_error "must be an integer" "$bin" generate --model "$m" --tokens 1 --max-new-tokens many
expect_error "exactly one of" "$bin" generate --model "$m"
# Speculative decoding's flags.
expect_error "--speculative must be none or mtp" "$bin" generate --model "$m" --tokens 1 --speculative eagle
expect_error "--draft-tokens needs --speculative mtp" "$bin" generate --model "$m" --tokens 1 --draft-tokens 2
expect_usage "--draft-tokens" "$bin" generate --model "$m" --tokens 1 --speculative mtp --draft-tokens 9
expect_error "unknown preset" "$bin" make-model --preset huge --out "$work/x"
expect_error "unknown command" "$bin" frobnicate

# And the good path still works after all that.
if ! "$bin" logits --model "$m" --tokens 1,2,3 --out "$work/ok.npy" 2>/dev/null; then
  echo "FAIL: a valid logits call failed"; fails=$((fails + 1))
else
  passes=$((passes + 1))
fi
echo "cli_errors: $passes passed, $fails failed"
[ "$fails" -eq 0 ]
