#!/usr/bin/env bash
# Installs what the aarch64 cross build and its qemu-user test run need (make build-aarch64,
# make test-aarch64), from Debian packages only: the cross compiler, qemu-user, and the target's
# libraries through Debian multiarch (arm64). Kept apart from setup.sh so `make test` stays fast
# and the host is not given a foreign architecture unless someone asks for the aarch64 build.
# Idempotent: when everything is present it only checks, quietly, and returns in a second.
set -euo pipefail

# Host tools (amd64). nlohmann-json is header only (Architecture: all): the host copy serves the
# target. qemu-user-static gives qemu-aarch64-static and registers binfmt handlers where binfmt
# is available; the build calls qemu explicitly, so it does not rely on them.
host_packages=(
  g++-aarch64-linux-gnu binutils-aarch64-linux-gnu qemu-user-static
  cmake ninja-build pkg-config nlohmann-json3-dev
)
# Target libraries (arm64): PCRE2 (tokenizer), cpp-httplib (serve layer) and what its ABI
# defines pull in, GoogleTest/GMock. libstdc++/libc come with the cross compiler's
# libc6-dev-arm64-cross; the :arm64 libc6 below is the loader qemu -L finds the shared libraries
# through.
target_packages=(
  libc6:arm64 libstdc++6:arm64
  libpcre2-dev:arm64 libcpp-httplib-dev:arm64
  libgtest-dev:arm64 libgmock-dev:arm64
)

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

missing=()
for p in "${host_packages[@]}" "${target_packages[@]}"; do
  installed "$p" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "setup_aarch64: installing ${missing[*]}"
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  $SUDO dpkg --add-architecture arm64
fi
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
