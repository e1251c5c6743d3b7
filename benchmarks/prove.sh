#!/usr/bin/env bash
# Whole-process proof latency: `lakeproof prove` for one key of a
# 1,000,000-entry index (target < 50 ms), and `lakeproof verify --proof`.
# Usage: benchmarks/prove.sh [WORKDIR]   (default /tmp/lakeproof-bench)
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-/tmp/lakeproof-bench}
mkdir -p "$work"
go build -o "$work/lakeproof" ./cmd/lakeproof
idx="$work/prove-1m.idx"
[ -e "$idx/summary.json" ] || { rm -rf "$idx"; go run ./benchmarks/mkindex -n 1000000 -out "$idx"; }
du -sh "$idx"
key=k/0000765432
printf 'x' > "$work/dummy"
"$work/lakeproof" prove --index "$idx" "$key" > "$work/proof.json"
runs=30
best=999999; total=0
for i in $(seq $runs); do
  k=$(printf 'k/%010d' $(( (i * 7919 * 31) % 1000000 )))
  s=$(date +%s%N)
  "$work/lakeproof" prove --index "$idx" "$k" > /dev/null
  e=$(( ($(date +%s%N) - s) / 1000 ))
  total=$((total + e)); [ $e -lt $best ] && best=$e
done
echo "prove, 1M-entry index, whole process: best $((best/1000)).$(( (best%1000)/100 )) ms, mean $((total/runs/1000)) ms over $runs keys"
if command -v hyperfine >/dev/null; then
  hyperfine -N --warmup 3 --runs 30 "$work/lakeproof prove --index $idx $key" 2>/dev/null | sed -n 1,3p
fi
