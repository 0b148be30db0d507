#!/usr/bin/env bash
# The main job on the default model. Until the serving layer lands this is a generation run.
set -euo pipefail
dir=${1:-models/default}
echo "dsinfer: generating on $dir (the HTTP server arrives with the serving layer)"
./build/dsinfer generate --model "$dir" --tokens 0,1234,5678 --max-new-tokens 16 --json
