#!/usr/bin/env bash
# Tokenizer throughput against Hugging Face's Rust tokenizer in the same run: installs npm
# `tokenizers` 0.23.x under the build tree (never committed), then runs tokenizer_bench with it.
#   bash bench/tokenizer_bench.sh [BUILD_DIR] [extra tokenizer_bench flags]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$root/build}"
shift || true
npm_dir="$build/tokenizer_npm"
mkdir -p "$npm_dir"
if [ ! -f "$npm_dir/node_modules/tokenizers/package.json" ]; then
  [ -f "$npm_dir/package.json" ] || echo '{"private": true}' > "$npm_dir/package.json"
  (cd "$npm_dir" && npm install --no-audit --no-fund --loglevel=error tokenizers@0.23)
fi
exec "$build/bench/tokenizer_bench" --npm-dir "$npm_dir" "$@"
