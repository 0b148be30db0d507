#!/usr/bin/env bash
# Makes the embedded default model (a random tiny-v3 checkpoint with the DeepSeek-V3 tokenizer)
# unless it is already there. Usage: scripts/default_model.sh DIR
set -euo pipefail
dir=${1:-models/default}
if [ -f "$dir/config.json" ] && [ -f "$dir/tokenizer.json" ]; then
  exit 0
fi
./build/dsinfer make-model --preset tiny-v3 --out "$dir" --seed 1
