#!/usr/bin/env bash
# Installs every dependency dsinfer needs, from Debian packages only.
# Idempotent: when everything is present it only checks, quietly, and returns in a second.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git
  libgtest-dev libgmock-dev libbenchmark-dev
  nlohmann-json3-dev libpcre2-dev libcpp-httplib-dev zlib1g-dev
  python3 python3-numpy python3-torch python3-jinja2
  libopenblas0-pthread  # torch's matrix products: Debian's torch calls the system BLAS, and the reference BLAS is 10x slower
  gnuplot-nox
  libopenmpi-dev openmpi-bin  # expert parallelism: mpirun launches the ranks (docs/parallel.md)
  libucx-dev  # KV transfer between prefill and decode instances (docs/serving.md)
  liburing-dev  # the KV disk tier's reads (docs/serving.md)
  time  # /usr/bin/time -v: peak RSS figures in docs/benchmarks.md
  clang libclang-rt-14-dev llvm  # libFuzzer targets (make test-fuzz): clang, its libFuzzer, llvm-symbolizer
)
# Node.js is only a test-time dependency (reference tokenizer, OpenAI SDK client). A machine may
# already carry a newer Node.js that bundles npm (NodeSource); Debian's npm conflicts with it.
command -v node >/dev/null 2>&1 || packages+=(nodejs)
command -v npm >/dev/null 2>&1 || packages+=(npm)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
