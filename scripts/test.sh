#!/usr/bin/env bash
# Sets up (if needed) and runs the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Serial: the engine-latency tests measure gaps in a heartbeat, which parallel CPU-bound tests
# on a 2-core machine would distort.
swift test -c release -Xswiftc -enable-testing --scratch-path .build-tests --skip-build --no-parallel "$@"
