#!/usr/bin/env bash
# Sets up (if needed), builds in release mode and runs the main job on cluster.yaml.
#   scripts/launch.sh [extra rlaif launch arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --release
exec .build/release/rlaif launch cluster.yaml "$@"
