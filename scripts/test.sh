#!/usr/bin/env bash
# Sets up (if needed) and runs the whole test suite.
#   bash scripts/test.sh                 every test, in two shards at once
#   bash scripts/test.sh --filter NAME   the tests matching NAME, through swift test, one at a time
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ $# -gt 0 ]; then
    exec swift test -c release -Xswiftc -enable-testing --scratch-path .build-tests --skip-build --no-parallel "$@"
fi

# Each shard runs its tests one at a time: the engine-latency tests measure gaps in a heartbeat,
# which other tests in the same process (sharing its small cooperative pool) would distort. The
# two shards run at once, each its own process: the suites below start coordinators, workers and
# Slurm and leave a core idle while they wait on them (docs/PERFORMANCE.md, Test suite).
processes='^ClusterTests\.(SlurmTests|WorkerKillTests|ClusterRunTests|TelemetryRunTests|RoleRunTests|ResumeTests|KeyedLaunchTests)/'
bin=.build-tests/release/rlaifPackageTests.xctest
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
started=$SECONDS
"$bin" --testing-library swift-testing --no-parallel --filter "$processes" >"$logs/processes.log" 2>&1 &
first=$!
"$bin" --testing-library swift-testing --no-parallel --skip "$processes" >"$logs/rest.log" 2>&1 &
second=$!
status=0
wait "$first" || status=1
wait "$second" || status=1
for shard in processes rest; do
    echo "=== shard: $shard"
    cat "$logs/$shard.log"
done
echo "=== both shards: $((SECONDS - started)) s, $([ "$status" -eq 0 ] && echo passed || echo FAILED)"
exit "$status"
