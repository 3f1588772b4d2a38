#!/bin/sh
# mpi_scaling.sh — 1 versus 2 worker ranks on CPU-bound work.
# Replays a synthetic capture (fixed seed) through the frame-sum worker with
# every frame summed `repeat` times, under `mpirun -n 3` (one worker rank)
# and `mpirun -n 4` (two), checks that both wrote the same sums, and prints
# the wall times and the scaling ratio. usage: bench/mpi_scaling.sh [build dir]
set -eu
b=$(cd "${1:-build}" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
"$b/weir" synth -o cap.cbors --frames 400 --shape 256x256 --seed 7 --filename raw/s.h5 >/dev/null
root=""; [ "$(id -u)" = 0 ] && root=--allow-run-as-root
# The time is the run's own wall time as weir reports it (from the start of
# the roles to the end of the slowest rank), without mpirun's start-up.
run() {
  n=$1; out=$2
  mpirun $root --oversubscribe -n "$n" "$b/weir" replay -w "$b/examples/frame_sum_worker.so" \
    -r "$b/examples/tutorial_reducer.so" -f cap.cbors --param repeat=1000 --output-dir "$out" \
    2>&1 | sed -n 's/^  wall \([0-9.]*\) s.*/\1/p'
}
t1=$(run 3 one); t2=$(run 4 two)
h5dump -d sum one/s_processed.h5 > one.txt; h5dump -d sum two/s_processed.h5 > two.txt
sed -i 's/one\/s_processed/X/' one.txt; sed -i 's/two\/s_processed/X/' two.txt
cmp -s one.txt two.txt || { echo "CHECK FAILED: the two runs wrote different sums"; exit 1; }
printf '1 worker rank:  %.2f s\n2 worker ranks: %.2f s\nscaling: %.2fx\n' "$t1" "$t2" "$(echo "$t1 / $t2" | bc -l)"
