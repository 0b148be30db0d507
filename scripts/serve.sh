#!/usr/bin/env bash
# The main job: `dsinfer serve` on the default model (the trained demo model, assets/demo-model),
# with the URL and curl examples printed first. Usage: scripts/serve.sh [MODEL_DIR] [extra serve flags]
# HOST and PORT override 127.0.0.1:8000.
set -euo pipefail
dir=${1:-assets/demo-model}
shift || true
host=${HOST:-127.0.0.1}
port=${PORT:-8000}
name=$(basename "$(realpath "$dir")")
cat <<MSG
dsinfer: serving $dir as model '$name' at http://$host:$port (OpenAI-compatible; Ctrl-C drains and stops)
  try:  curl http://$host:$port/v1/completions -H 'Content-Type: application/json' \\
          -d '{"model": "$name", "prompt": "The jury said", "max_tokens": 32, "temperature": 0}'
        curl http://$host:$port/v1/chat/completions -H 'Content-Type: application/json' \\
          -d '{"model": "$name", "messages": [{"role": "user", "content": "Tell me about the city."}], "max_tokens": 32}'
        curl http://$host:$port/metrics
MSG
exec ./build/dsinfer serve --model "$dir" --host "$host" --port "$port" --served-model-name "$name" "$@"
