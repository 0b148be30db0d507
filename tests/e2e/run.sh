#!/usr/bin/env bash
# Usage: run.sh DSINFER_BIN WORKDIR [serve|router] — prepares the model and the SDK, then runs the
# Node test against `dsinfer serve`, or `dsinfer router` in front of a prefill and a decode instance.
set -euo pipefail
bin=$(realpath "$1")
work=$2
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$work"
if [ ! -f "$work/model/config.json" ]; then
  rm -rf "$work/model.tmp"
  "$bin" make-model --preset tiny-v3 --out "$work/model.tmp" --seed 1 >/dev/null
  mv "$work/model.tmp" "$work/model"
fi
if [ ! -f "$work/node_modules/openai/package.json" ]; then
  (cd "$work" && [ -f package.json ] || echo '{"private":true}' > package.json)
  npm install --prefix "$work" --no-audit --no-fund --loglevel=error openai@4.95.0 >/dev/null
fi
# The test imports `openai` from the work dir's node_modules.
cp "$here/openai_sdk_test.mjs" "$work/openai_sdk_test.mjs"
exec node "$work/openai_sdk_test.mjs" "$bin" "$work/model" "${3:-serve}"
