#!/usr/bin/env bash
# The default model of `make serve` is the trained demo model shipped in assets/demo-model
# (tools/train_demo/). For any other MODEL=DIR that holds no model yet, this makes a random
# tiny-v3 checkpoint there (with the DeepSeek-V3 tokenizer). Usage: scripts/default_model.sh DIR
set -euo pipefail
dir=${1:-assets/demo-model}
if [ -f "$dir/config.json" ] && [ -f "$dir/tokenizer.json" ]; then
  exit 0
fi
./build/dsinfer make-model --preset tiny-v3 --out "$dir" --seed 1
