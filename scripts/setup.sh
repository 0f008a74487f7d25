#!/usr/bin/env bash
# Installs what a fresh Debian 12 machine lacks for rlaif, then builds.
#   scripts/setup.sh            the tests' build: optimized, with testing enabled, in .build-tests
#   scripts/setup.sh --release  release build (what runs and benchmarks use)
set -euo pipefail
cd "$(dirname "$0")/.."

# libcurl4 carries Foundation's HTTP client (the openai labeler); python3 runs the tests'
# stand-in labeler server and labeler script (standard library only).
packages=(libzmq3-dev libopenblas-dev pkg-config libcurl4 python3)
missing=()
for p in "${packages[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    sudo_cmd=()
    [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get update
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y "${missing[@]}"
fi

command -v swift >/dev/null || { echo "setup: swift not found; install Swift 6 (https://swift.org/install) and retry" >&2; exit 1; }

if [ "${1:-}" = "--release" ]; then
    swift build -c release
else
    # Optimized: the tests train real models (a debug build ran the suite in 249 s, this one in
    # 52 s); its own folder, so it does not rebuild the plain release build's objects.
    swift build -c release --build-tests -Xswiftc -enable-testing --scratch-path .build-tests
fi
