#!/usr/bin/env bash
# Ring all-reduce bus bandwidth beside OpenMPI's MPI_Allreduce, in one run on this machine:
#   bash bench/allreduce_vs_mpi.sh [repeats]
# Installs openmpi-bin and libopenmpi-dev with apt when missing, builds bench/mpi_allreduce.c and
# rlaif-bench (release), then prints, for 2 and 4 ranks and 1/4/16/64 MB of float32 gradients:
# rlaif's ring over tcp loopback and over ipc://, MPI forced to TCP (--mca btl tcp,self), MPI with
# its default shared-memory transport. Bus bandwidth = 2(n-1)/n * bytes / time, for the best and the median of the repeats.
set -euo pipefail
cd "$(dirname "$0")/.."
repeats="${1:-9}"

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
swift build -c release --product rlaif-bench >/dev/null

mpirun_flags=(--oversubscribe)
[ "$(id -u)" -ne 0 ] || mpirun_flags+=(--allow-run-as-root)

# Each rlaif rank is a process, as each MPI rank is; the columns are the same for both:
# ranks, MB, best ms, bus GB/s, median ms, bus GB/s.
echo "== rlaif ring all-reduce, tcp loopback"
.build/release/rlaif-bench allreduce --repeats "$repeats"
for n in 2 4; do
    echo "== MPI_Allreduce over TCP, $n ranks"
    mpirun "${mpirun_flags[@]}" -np "$n" --mca btl tcp,self --mca btl_tcp_if_include lo "$build/mpi_allreduce" "$repeats"
done
echo "== rlaif ring all-reduce, ipc:// (Unix sockets, for workers on one host)"
.build/release/rlaif-bench allreduce --repeats "$repeats" --transport ipc
for n in 2 4; do
    echo "== MPI_Allreduce, default transport (shared memory), $n ranks"
    mpirun "${mpirun_flags[@]}" -np "$n" "$build/mpi_allreduce" "$repeats"
done
