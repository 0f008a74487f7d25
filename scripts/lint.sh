#!/usr/bin/env bash
# Style and size checks: swift-format (the toolchain's, .swift-format at the root) in strict mode
# over Sources, Tests and Benchmarks, then the size limits (tools/check_sizes.py).
set -euo pipefail
cd "$(dirname "$0")/.."
swift format lint --strict --recursive Sources Tests Benchmarks
python3 tools/check_sizes.py
echo "lint: clean"
