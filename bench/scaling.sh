#!/usr/bin/env bash
# Data-parallel scaling on the default model: 1 worker against 2 workers, one per core (taskset),
# sequences per second in the SFT and reward-model phases, the two set-ups alternated round by
# round on the same machine.
#   bash bench/scaling.sh [ROUNDS] [RING_BIND]      e.g. bash bench/scaling.sh 3 ipc://*
#   RLAIF_BIN=.build-tests/release/rlaif bash bench/scaling.sh 2
# RING_SHARED_MEMORY=off: ring slices in socket frames only; located: through shared memory, each
# read once its location comes through the socket (default on: read as the doorbell shows it).
# COORDINATOR_PREFIX: a command the coordinator runs under, e.g. "chrt --idle 0".
# COORDINATOR_CORES=workers: the coordinator confined to its workers' cores (1 worker: all on one
# core), so both set-ups use exactly N cores; default: free, as the issue's set-up has it.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-2}
ring=${2:-tcp://127.0.0.1:0}
[ "$(nproc)" -ge 2 ] || { echo "scaling: needs 2 cores" >&2; exit 1; }
command -v taskset >/dev/null || { echo "scaling: needs taskset (util-linux)" >&2; exit 1; }
# RLAIF_BIN: an rlaif binary already built (e.g. .build-tests/release/rlaif) instead of building one.
bin=${RLAIF_BIN:-.build/release/rlaif}
[ -n "${RLAIF_BIN:-}" ] || swift build -c release >/dev/null
work=$(mktemp -d)
trap 'pkill -P $$ 2>/dev/null || true; rm -rf "$work"' EXIT

# The default model and batches; fewer epochs and no RL to keep a round short.
overrides=(--set sft.epochs=2 --set preferences.pairs=2048 --set reward_model.epochs=2 --set rl.iterations=1
    --set evaluation.prompts=64 --set checkpoint.every_steps=0)

run() {  # run N ROUND: a coordinator and N workers pinned to cores 0..N-1; prints the run directory
    local n=$1 round=$2 port=$((21000 + RANDOM % 20000))
    local dir="$work/w$n-r$round"
    local pin=()
    [ "${COORDINATOR_CORES:-free}" = workers ] && pin=(taskset -c "0-$((n - 1))")
    ${COORDINATOR_PREFIX:-} "${pin[@]}" "$bin" coordinator cluster.yaml --run-dir "$dir" --quiet --wait-for "$n" \
        --set "coordinator.bind=tcp://127.0.0.1:$port" "${overrides[@]}" >"$work/c-$n-$round.log" 2>&1 &
    local coordinator=$!
    for ((i = 0; i < n; i++)); do
        taskset -c "$i" "$bin" worker --connect "tcp://127.0.0.1:$port" --threads 1 --name "bench-$i" \
            --ring-bind "$ring" --ring-shared-memory "${RING_SHARED_MEMORY:-on}" --log-level debug >"$dir.worker$i.log" 2>&1 &
    done
    wait "$coordinator" || { cat "$work/c-$n-$round.log" >&2; exit 1; }
    wait
    echo "$dir"
}

results=()
for ((r = 1; r <= rounds; r++)); do
    for n in 1 2; do results+=("$n $(run "$n" "$r")"); done
done

python3 - "${results[@]}" <<'PY'
import json, re, sys, statistics
# Sequences per optimizer step: SFT batch 32 demonstrations; reward model batch 32 pairs (64 sequences).
per_step = {"sft": 32, "reward": 64}
rates = {}
budget = {}  # (phase, workers) -> per-step ms lists: step, compute, straggler, allreduce, update
sft_versions = {}  # run directory -> the versions its SFT steps committed
for arg in sys.argv[1:]:
    n, path = arg.split(" ", 1)
    times = {}
    for line in open(path + "/metrics.jsonl"):
        e = json.loads(line)
        if e["event"] == "metrics" and e["phase"] in per_step:
            first = e["phase"] not in times  # its time comes before t[0], so it is not in the step mean
            times.setdefault(e["phase"], []).append(e["t"])
            if e["phase"] == "sft":
                sft_versions.setdefault(path, set()).add(e["version"])
            parts = budget.setdefault((e["phase"], n), {})
            for key in ("compute", "straggler", "allreduce", "update"):
                if not first:
                    parts.setdefault(key, []).append(1000 * e.get(key + "_seconds", 0))
    for phase, t in times.items():
        rate = (len(t) - 1) * per_step[phase] / (t[-1] - t[0])
        rates.setdefault((phase, n), []).append(rate)
        budget[(phase, n)].setdefault("step", []).append(1000 * (t[-1] - t[0]) / (len(t) - 1))
print("| phase | 1 worker (seq/s) | 2 workers (seq/s) | 2 / 1 |")
print("| --- | --- | --- | --- |")
for phase in per_step:
    one, two = statistics.median(rates[(phase, "1")]), statistics.median(rates[(phase, "2")])
    print(f"| {phase} | {one:.0f} | {two:.0f} | {two / one:.2f}x |")
print(f"(median of {len(rates[('sft', '1')])} alternated rounds each)")
print()
print("Where a step went, ms, means over the rounds (other: messages, the coordinator, the machine):")
print("| phase | workers | step | compute, fastest rank | waiting for the slowest | all-reduce | update | other |")
print("| --- | --- | --- | --- | --- | --- | --- | --- |")
for (phase, n), parts in sorted(budget.items()):
    m = {k: statistics.mean(v) for k, v in parts.items()}
    fastest = m["compute"] - m["straggler"]
    other = m["step"] - m["compute"] - m["allreduce"] - m["update"]
    print(f"| {phase} | {n} | {m['step']:.2f} | {fastest:.2f} | {m['straggler']:.2f} | {m['allreduce']:.2f} | "
          f"{m['update']:.2f} | {other:.2f} |")

# Which core's worker computed longer, from the workers' debug lines (2-worker runs, SFT steps).
line = re.compile(r"step (\d+) rank \d+/2: compute ([0-9.]+) ms")
slower, spread, mean = [0, 0], [], {0: [], 1: []}
for arg in sys.argv[1:]:
    n, path = arg.split(" ", 1)
    if n != "2":
        continue
    sft = sft_versions.get(path, set())
    compute = {}
    for core in (0, 1):  # worker i runs on core i
        for m in line.finditer(open(f"{path}.worker{core}.log").read()):
            if int(m[1]) in sft and int(m[1]) > 1:
                compute.setdefault(int(m[1]), {})[core] = float(m[2])
    for c in compute.values():
        if len(c) == 2:
            slower[c[1] > c[0]] += 1
            spread.append(abs(c[1] - c[0]))
            for core in (0, 1):
                mean[core].append(c[core])
if spread:
    print(f"SFT, 2 workers: the worker on core 0 computed longer in {100 * slower[0] / len(spread):.0f}% of steps; "
          f"compute means {statistics.mean(mean[0]):.2f} (core 0) and {statistics.mean(mean[1]):.2f} ms (core 1); "
          f"median difference {statistics.median(spread):.2f} ms")
PY
