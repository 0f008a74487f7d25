#!/usr/bin/env bash
# Ring all-reduce bus bandwidth beside OpenMPI's MPI_Allreduce, in one run on this machine:
#   bash bench/allreduce_vs_mpi.sh [repeats] [rounds]
# Installs openmpi-bin and libopenmpi-dev with apt when missing, builds bench/mpi_allreduce.c and
# rlaif-bench (release), then, for 2 and 4 ranks and 1/4/16/64 MB of float32 gradients, measures
# rlaif's ring over tcp loopback and over ipc:// (in frames, and with slices through shared memory,
# read when their location comes through the socket or as the doorbell shows them:
# --shared-memory off/located/on), MPI forced to TCP (--mca btl tcp,self) and MPI
# with its default shared-memory transport. Bus bandwidth = 2(n-1)/n * bytes / time, for the best
# and the median of the repeats.
#
# The rounds alternate rlaif and MPI (on a shared machine, load changes from minute to minute),
# and the summary gives, per size, MPI's best time over rlaif's in each round and their median:
# above 1 means rlaif is faster.
set -euo pipefail
cd "$(dirname "$0")/.."
repeats="${1:-9}"
rounds="${2:-3}"

missing=()
for p in openmpi-bin libopenmpi-dev; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
    sudo_cmd=()
    [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get update
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y "${missing[@]}"
fi

build="$(mktemp -d)"
trap 'rm -rf "$build"' EXIT
mpicc -O2 -o "$build/mpi_allreduce" bench/mpi_allreduce.c
# RLAIF_BENCH: an rlaif-bench already built (e.g. .build-tests/release/rlaif-bench).
bench=${RLAIF_BENCH:-.build/release/rlaif-bench}
[ -n "${RLAIF_BENCH:-}" ] || swift build -c release --product rlaif-bench >/dev/null

mpirun_flags=(--oversubscribe)
[ "$(id -u)" -ne 0 ] || mpirun_flags+=(--allow-run-as-root)

# Each rlaif rank is a process, as each MPI rank is; the columns are the same for both:
# ranks, MB, best ms, bus GB/s, median ms, bus GB/s (rlaif adds CPU and rounding columns).
run() {  # run LABEL COMMAND…: prints the output and keeps its table rows, labelled, for the summary
    local label="$1"
    shift
    echo "== $label"
    "$@" | tee "$build/out"
    # rlaif's rows start with its shared-memory mode (on/located/off), which joins the label.
    awk -v label="$label" -v round="$round" '
        $1 ~ /^(on|located|off)$/ && NF >= 7 { print label "-" $1, round, $2, $3, $4 }
        $1 ~ /^[0-9]+$/ && NF >= 6 { print label, round, $1, $2, $3 }' "$build/out" >>"$build/rows"
}
for round in $(seq "$rounds"); do
    echo "######## round $round of $rounds"
    run "rlaif-tcp" "$bench" allreduce --repeats "$repeats" --shared-memory off
    for n in 2 4; do
        run "mpi-tcp" mpirun "${mpirun_flags[@]}" -np "$n" --mca btl tcp,self --mca btl_tcp_if_include lo \
            "$build/mpi_allreduce" "$repeats"
    done
    run "rlaif-ipc" "$bench" allreduce --repeats "$repeats" --transport ipc --shared-memory off --shared-memory located \
        --shared-memory on
    for n in 2 4; do
        run "mpi-shm" mpirun "${mpirun_flags[@]}" -np "$n" "$build/mpi_allreduce" "$repeats"
    done
done

echo
echo "######## MPI best ms / rlaif best ms, per round, and the median over rounds (> 1: rlaif faster)"
summary() {  # summary RLAIF_LABEL MPI_LABEL
    awk -v ours="$1" -v theirs="$2" '
        { best[$1 " " $2 " " $3 " " $4] = $5; if (!($3 " " $4 in seen)) { seen[$3 " " $4] = 1; keys[++k] = $3 " " $4 } }
        $2 > rounds { rounds = $2 }
        END {
            printf "%s vs %s\n ranks   MB   per round                       median\n", ours, theirs
            for (i = 1; i <= k; i++) {
                n = 0; line = ""
                for (r = 1; r <= rounds; r++) {
                    a = best[ours " " r " " keys[i]]; b = best[theirs " " r " " keys[i]]
                    if (a > 0 && b > 0) { ratio[++n] = b / a; line = line sprintf(" %5.2f", b / a) }
                }
                if (n == 0) continue
                for (x = 1; x <= n; x++) for (y = x + 1; y <= n; y++) if (ratio[y] < ratio[x]) { t = ratio[x]; ratio[x] = ratio[y]; ratio[y] = t }
                median = n % 2 ? ratio[(n + 1) / 2] : (ratio[n / 2] + ratio[n / 2 + 1]) / 2
                split(keys[i], kv, " ")
                printf "%6d %4d  %-30s %6.2f\n", kv[1], kv[2], line, median
            }
        }' "$build/rows"
}
summary rlaif-tcp-off mpi-tcp
summary rlaif-ipc-off mpi-tcp
summary rlaif-ipc-off mpi-shm
summary rlaif-ipc-located mpi-shm
summary rlaif-ipc-on mpi-shm
