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
