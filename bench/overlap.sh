#!/usr/bin/env bash
# Rollouts beside training (`rl.rollout_lag`): one rollout worker and one train worker, one per core
# (taskset), RL iterations per second with rollout_lag 0 against rollout_lag 1 at the same config,
# the two alternated round by round on the same machine.
#   bash bench/overlap.sh [ROUNDS]
#   RLAIF_BIN=.build-tests/release/rlaif bash bench/overlap.sh 2
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-2}
[ "$(nproc)" -ge 2 ] || { echo "overlap: needs 2 cores" >&2; exit 1; }
command -v taskset >/dev/null || { echo "overlap: needs taskset (util-linux)" >&2; exit 1; }
bin=${RLAIF_BIN:-.build/release/rlaif}
[ -n "${RLAIF_BIN:-}" ] || swift build -c release >/dev/null
work=$(mktemp -d)
trap 'pkill -P $$ 2>/dev/null || true; rm -rf "$work"' EXIT

# The default model and RL batch; short earlier phases, no evaluation during RL.
overrides=(--set sft.epochs=1 --set preferences.pairs=512 --set reward_model.epochs=1 --set rl.iterations=30
    --set evaluation.prompts=64 --set evaluation.every_iterations=0 --set checkpoint.every_steps=0)

run() {  # run LAG ROUND: a coordinator, a rollout worker on core 0, a train worker on core 1
    local lag=$1 round=$2 port=$((21000 + RANDOM % 20000))
    local dir="$work/lag$lag-r$round"
    "$bin" coordinator cluster.yaml --run-dir "$dir" --quiet --wait-for 2 \
        --set "coordinator.bind=tcp://127.0.0.1:$port" --set "rl.rollout_lag=$lag" "${overrides[@]}" \
        >"$work/c-$lag-$round.log" 2>&1 &
    local coordinator=$!
    local roles=(rollout train)
    for i in 0 1; do
        taskset -c "$i" "$bin" worker --connect "tcp://127.0.0.1:$port" --threads 1 --name "bench-$i" \
            --role "${roles[$i]}" >"$work/w-$lag-$round-$i.log" 2>&1 &
    done
    wait "$coordinator" || { cat "$work/c-$lag-$round.log" >&2; exit 1; }
    echo "$dir"
}

results=()
for ((r = 1; r <= rounds; r++)); do
    for lag in 0 1; do results+=("$lag $(run "$lag" "$r")"); done
done

python3 - "${results[@]}" <<'PY'
import json, sys, statistics
rates, checks = {}, {}
for arg in sys.argv[1:]:
    lag, path = arg.split(" ", 1)
    t = [e["t"] for e in map(json.loads, open(path + "/metrics.jsonl"))
         if e["event"] == "metrics" and e["phase"] == "rl"]
    rates.setdefault(lag, []).append((len(t) - 1) / (t[-1] - t[0]))
    summary = json.load(open(path + "/summary.json"))
    checks.setdefault(lag, set()).add(summary.get("weights_checksum", "?"))
zero, one = statistics.median(rates["0"]), statistics.median(rates["1"])
print("| rollout_lag | RL iterations/s | vs lag 0 |")
print("| --- | --- | --- |")
print(f"| 0 | {zero:.2f} | 1.00x |")
print(f"| 1 | {one:.2f} | {one / zero:.2f}x |")
print(f"(median of {len(rates['0'])} alternated rounds each; 1 rollout + 1 train worker, one core each)")
for lag, c in sorted(checks.items()):
    print(f"lag {lag}: weights checksum {' '.join(sorted(c))} ({'same' if len(c) == 1 else 'DIFFERENT'} every round)")
PY
