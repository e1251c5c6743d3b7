#!/usr/bin/env bash
# cputime.sh N COMMAND [ARGS...]: run COMMAND N times under /usr/bin/time
# (stdout discarded) and print the best wall-clock seconds and the best
# user+system CPU seconds. On a machine shared with other work, CPU seconds
# are the steadier figure. Used for the big-file rows of RESULTS.md.
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 N COMMAND [ARGS...]" >&2; exit 2; }
n=$1; shift
best_wall=; best_cpu=
for _ in $(seq "$n"); do
  out=$( { /usr/bin/time -f '%e %U %S' "$@" >/dev/null; } 2>&1 | tail -1)
  read -r wall user sys <<<"$out"
  cpu=$(awk -v u="$user" -v s="$sys" 'BEGIN {printf "%.2f", u + s}')
  if [ -z "$best_wall" ] || awk -v a="$wall" -v b="$best_wall" 'BEGIN {exit !(a < b)}'; then best_wall=$wall; fi
  if [ -z "$best_cpu" ] || awk -v a="$cpu" -v b="$best_cpu" 'BEGIN {exit !(a < b)}'; then best_cpu=$cpu; fi
done
printf 'wall %5.2f  cpu %5.2f  %s\n' "$best_wall" "$best_cpu" "$*"
