#!/usr/bin/env bash
# compare.sh: time `lakeproof index` side by side with b3sum, hashdeep and
# rclone on deterministic datasets, warm page cache, best of N runs.
#
#   benchmarks/compare.sh [--work DIR] [--runs N] [--no-small] [--no-big]
#                         [--tiny] [--no-install]
#
#   --work DIR    where datasets, binaries and outputs go (default /tmp/lakeproof-bench)
#   --runs N      timed runs per command, the best is reported (default 3)
#   --no-small    skip the 20,000-file dataset
#   --no-big      skip the 2 GiB file
#   --tiny        also measure peak RSS of `lakeproof index` on 1,000,000
#                 tiny files (generating them takes a few minutes)
#   --no-install  do not apt-get install missing tools (hyperfine, hashdeep,
#                 rclone, b3sum, time); commands whose tool is missing are skipped
#
# Datasets (benchmarks/gen, see its doc): small/ = 20,000 files of 4-256 KiB,
# log-uniform sizes, ~1.15 GiB; big/ = one 2 GiB file; tiny/ = 1,000,000
# files of 0-512 bytes. They are generated once and reused (a DIR.done marker
# records the gen flags). Run from anywhere inside the repository; it is not
# part of CI. Figures go in benchmarks/RESULTS.md.
set -euo pipefail

WORK=/tmp/lakeproof-bench
RUNS=3
DO_SMALL=1
DO_BIG=1
DO_TINY=0
INSTALL=1
while [ $# -gt 0 ]; do
  case "$1" in
    --work) WORK=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    --no-small) DO_SMALL=0; shift ;;
    --no-big) DO_BIG=0; shift ;;
    --tiny) DO_TINY=1; shift ;;
    --no-install) INSTALL=0; shift ;;
    -h|--help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "compare.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

REPO=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$WORK/bin" "$WORK/out"
WORK=$(cd "$WORK" && pwd)
export LC_ALL=C

say() { printf '== %s\n' "$*" >&2; }

# ---- tools ------------------------------------------------------------------
declare -A PKG=([hyperfine]=hyperfine [hashdeep]=hashdeep [rclone]=rclone [b3sum]=b3sum [/usr/bin/time]=time)
missing=()
for tool in "${!PKG[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("${PKG[$tool]}")
done
if [ ${#missing[@]} -gt 0 ] && [ "$INSTALL" = 1 ]; then
  say "installing ${missing[*]}"
  if [ "$(id -u)" = 0 ]; then sudo=; else sudo=sudo; fi
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
have() { command -v "$1" >/dev/null 2>&1; }
have hyperfine || { echo "compare.sh: hyperfine is required (apt-get install hyperfine)" >&2; exit 1; }

# Debian's rclone (1.60) has no blake3; use it when present, else sha1.
RCLONE_HASH=sha1
if have rclone && rclone hashsum 2>&1 | grep -qw blake3; then RCLONE_HASH=blake3; fi

# ---- binaries ---------------------------------------------------------------
say "building in $WORK/bin"
(cd "$REPO" && go build -o "$WORK/bin/gen" ./benchmarks/gen && go build -o "$WORK/bin/parb3sum" ./benchmarks/parb3sum)
HAVE_INDEX=0
if (cd "$REPO" && go build -o "$WORK/bin/lakeproof" ./cmd/lakeproof) \
  && "$WORK/bin/lakeproof" index --help >/dev/null 2>&1; then
  HAVE_INDEX=1
else
  say "lakeproof has no working 'index' command yet: timing the other tools only"
fi
LP=$WORK/bin/lakeproof

# ---- datasets ---------------------------------------------------------------
# gen_once NAME GEN-FLAGS...: create $WORK/NAME unless a matching marker exists.
gen_once() {
  local name=$1; shift
  local dir=$WORK/$name marker=$WORK/$name.done
  if [ -f "$marker" ] && [ "$(cat "$marker")" = "$*" ]; then return; fi
  rm -rf "$dir" "$marker"
  say "generating $dir ($*)"
  "$WORK/bin/gen" -out "$dir" "$@" >&2
  echo "$*" >"$marker"
}
[ "$DO_SMALL" = 1 ] && gen_once small -files 20000 -min 4096 -max 262144 -per-dir 100 -seed 1
[ "$DO_BIG" = 1 ] && gen_once big -files 1 -min 2147483648 -max 2147483648 -seed 2
[ "$DO_TINY" = 1 ] && gen_once tiny -files 1000000 -min 0 -max 512 -per-dir 1000 -seed 3

warm() { find "$1" -type f -print0 | xargs -0 cat >/dev/null; }

# ---- timing -----------------------------------------------------------------
# bench LABEL PREPARE COMMAND: best-of-$RUNS wall seconds after one warm-up run,
# appended to $RESULTS as "LABEL<TAB>SECONDS<TAB>COMMAND".
RESULTS=
bench() {
  local label=$1 prepare=$2 cmd=$3 csv
  csv=$(mktemp)
  say "$label: $cmd"
  if hyperfine --style none --warmup 1 --runs "$RUNS" --prepare "${prepare:-true}" \
      --export-csv "$csv" "$cmd" >/dev/null 2>"$csv.err"; then
    # columns: command,mean,stddev,median,user,system,min,max
    printf '%s\t%s\t%s\t%s\n' "$label" "$(awk -F, 'NR==2 {print $7}' "$csv")" "$cmd" \
      "$(awk -F, 'NR==2 {printf "%.3f", $5 + $6}' "$csv")" >>"$RESULTS"
  else
    say "$label FAILED: $(tail -3 "$csv.err")"
    printf '%s\t%s\t%s\t%s\n' "$label" "FAILED" "$cmd" "" >>"$RESULTS"
  fi
  rm -f "$csv" "$csv.err"
}

# report TITLE: the table of $RESULTS with ratios to the best b3sum row and
# to the hashdeep row.
report() {
  echo
  echo "### $1 (best of $RUNS, warm page cache, $(nproc) cores)"
  echo
  awk -F'\t' '
    { label[NR]=$1; sec[NR]=$2; cmd[NR]=$3; cpu[NR]=$4
      if ($1 ~ /^b3sum/ && $2 != "FAILED" && (best == "" || $2 < best)) best = $2
      if ($1 ~ /^hashdeep/ && $2 != "FAILED") hd = $2 }
    END {
      f = "| %-40s | %8s | %11s | %13s | %9s |\n"
      printf f, "command", "best s", "/best b3sum", "hashdeep/this", "CPU s"
      printf "|%s|%s|%s|%s|%s|\n", "------------------------------------------", "---------:", "------------:", "--------------:", "----------:"
      for (i = 1; i <= NR; i++) {
        if (sec[i] == "FAILED") { printf f, label[i], "FAILED", "", "", ""; continue }
        r1 = best == "" ? "" : sprintf("%.2fx", sec[i] / best)
        r2 = hd == "" ? "" : sprintf("%.2fx", hd / sec[i])
        printf f, label[i], sprintf("%.3f", sec[i]), r1, r2, cpu[i]
      }
      print ""
      print "CPU s: mean user+system CPU seconds per run (all processes), from hyperfine."
      print ""
      for (i = 1; i <= NR; i++) printf "- %s: `%s`\n", label[i], cmd[i]
    }' "$RESULTS"
}

# verdict LABEL TARGET-EXPR: print a target line computed by awk from $RESULTS.
seconds_of() { awk -F'\t' -v l="$1" '$1 == l {print $2}' "$RESULTS"; }
best_b3sum() { awk -F'\t' '$1 ~ /^b3sum/ && $2 != "FAILED" {if (b == "" || $2 < b) b = $2} END {print b}' "$RESULTS"; }

echo "## compare.sh, $(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -m), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
echo
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg); lakeproof $(cd "$REPO" && git rev-parse --short HEAD 2>/dev/null || echo '?') (+ uncommitted changes if any)"

if [ "$DO_SMALL" = 1 ]; then
  D=$WORK/small
  RESULTS=$(mktemp)
  say "warming page cache: $D"; warm "$D"
  n=$(find "$D" -type f | wc -l); bytes=$(du -sb --apparent-size "$D" | cut -f1)
  [ "$HAVE_INDEX" = 1 ] && bench "lakeproof index" "rm -rf $WORK/out/small.idx" "$LP index $D --out $WORK/out/small.idx"
  have b3sum && bench "b3sum --no-mmap, xargs -P1" "" "find $D -type f -print0 | xargs -0 b3sum --no-mmap >/dev/null"
  have b3sum && bench "b3sum --no-mmap, xargs -P2 -n1000" "" "find $D -type f -print0 | xargs -0 -P2 -n1000 b3sum --no-mmap >/dev/null"
  have b3sum && bench "b3sum (mmap), xargs -P2 -n1000" "" "find $D -type f -print0 | xargs -0 -P2 -n1000 b3sum >/dev/null"
  bench "parb3sum -workers 1, xargs -P2 -n1000" "" "find $D -type f -print0 | xargs -0 -P2 -n1000 $WORK/bin/parb3sum -workers 1 >/dev/null"
  have hashdeep && bench "hashdeep -r -c sha256" "" "hashdeep -r -c sha256 $D >/dev/null"
  have rclone && bench "rclone hashsum $RCLONE_HASH" "" "rclone hashsum $RCLONE_HASH $D >/dev/null"
  report "$n files of 4-256 KiB, $bytes bytes ($WORK/small)"
  if [ "$HAVE_INDEX" = 1 ]; then
    awk -v lp="$(seconds_of 'lakeproof index')" -v b="$(best_b3sum)" -v h="$(seconds_of 'hashdeep -r -c sha256')" 'BEGIN {
      if (lp == "FAILED" || lp == "") { print "\nlakeproof index failed: targets not measured"; exit }
      printf "\ntarget lakeproof <= 0.9x best b3sum: %.2fx %s\n", lp / b, (lp <= 0.9 * b ? "MET" : "NOT MET")
      if (h != "") printf "target lakeproof >= 5x faster than hashdeep: %.2fx %s\n", h / lp, (h >= 5 * lp ? "MET" : "NOT MET") }'
  fi
  rm -f "$RESULTS"
fi

if [ "$DO_BIG" = 1 ]; then
  D=$WORK/big
  F=$(find "$D" -type f | head -1)
  RESULTS=$(mktemp)
  say "warming page cache: $D"; warm "$D"
  [ "$HAVE_INDEX" = 1 ] && bench "lakeproof index" "rm -rf $WORK/out/big.idx" "$LP index $D --out $WORK/out/big.idx"
  have b3sum && bench "b3sum (mmap, multi-threaded)" "" "b3sum $F >/dev/null"
  have b3sum && bench "b3sum --num-threads 1 (mmap)" "" "b3sum --num-threads 1 $F >/dev/null"
  have b3sum && bench "b3sum --no-mmap (one thread)" "" "b3sum --no-mmap $F >/dev/null"
  bench "parb3sum -workers 2 (parhash.Sum)" "" "$WORK/bin/parb3sum -workers 2 $F >/dev/null"
  bench "parb3sum -workers 1 (parhash.Sum)" "" "$WORK/bin/parb3sum -workers 1 $F >/dev/null"
  bench "parb3sum -stream (zeebo/blake3)" "" "$WORK/bin/parb3sum -stream $F >/dev/null"
  have hashdeep && bench "hashdeep -c sha256" "" "hashdeep -c sha256 $F >/dev/null"
  have rclone && bench "rclone hashsum $RCLONE_HASH" "" "rclone hashsum $RCLONE_HASH $D >/dev/null"
  report "one 2 GiB file ($F)"
  mt=$(seconds_of 'b3sum (mmap, multi-threaded)')
  for l in "lakeproof index" "parb3sum -workers 2 (parhash.Sum)"; do
    s=$(seconds_of "$l")
    [ -n "$s" ] && [ -n "$mt" ] && awk -v s="$s" -v mt="$mt" -v l="$l" 'BEGIN {
      if (s == "FAILED" || mt == "FAILED") exit
      printf "target %s within 1.25x of multi-threaded b3sum: %.2fx %s\n", l, s / mt, (s <= 1.25 * mt ? "MET" : "NOT MET") }'
  done
  rm -f "$RESULTS"
fi

if [ "$DO_TINY" = 1 ]; then
  D=$WORK/tiny
  if [ "$HAVE_INDEX" = 1 ] && [ -x /usr/bin/time ]; then
    say "warming page cache: $D"; warm "$D"
    rm -rf "$WORK/out/tiny.idx"
    say "peak RSS: $LP index $D --out $WORK/out/tiny.idx"
    /usr/bin/time -v "$LP" index "$D" --out "$WORK/out/tiny.idx" >/dev/null 2>"$WORK/out/tiny.time" || {
      echo "lakeproof index on tiny/ failed:"; tail -20 "$WORK/out/tiny.time"; exit 1; }
    rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$WORK/out/tiny.time")
    wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$WORK/out/tiny.time")
    echo
    echo "### 1,000,000 tiny files ($D)"
    echo
    echo "- command: \`/usr/bin/time -v $LP index $D --out $WORK/out/tiny.idx\`"
    echo "- peak RSS: $rss KiB ($((rss / 1024)) MiB), wall $wall"
    awk -v r="$rss" 'BEGIN { printf "target peak RSS < 300 MiB: %s\n", (r < 300 * 1024 ? "MET" : "NOT MET") }'
  else
    echo "tiny: skipped (needs lakeproof index and /usr/bin/time)"
  fi
fi

echo
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
