#!/usr/bin/env bash
# s3_compare.sh: time `lakeproof index s3://…` on a local versitygw next to
# the server's raw GET ceiling (benchmarks/s3get), `rclone hashsum blake3
# --download` and `s5cmd cp`, on the same data, side by side: every round
# runs each command once in turn (alternating, so load changes on a shared
# machine hit all of them alike), and the best of N rounds is reported with
# every round's time and the load average before each round.
#
#   benchmarks/s3_compare.sh [--work DIR] [--runs N] [--big] [--no-small]
#
#   --big       also the big set: 8 objects of 256 MiB (2 GiB), made with
#               benchmarks/gen into DIR/big8 on first use
#   --no-small  skip the small set
#
# The small set is benchmarks/gen's small/ tree (20,000 objects of 4-256
# KiB, ~1.15 GiB; made by benchmarks/compare.sh --no-big). Each set is
# uploaded once into a fresh posix-backend versitygw ($(go env
# GOPATH)/bin/versitygw, see internal/s3test) on 127.0.0.1. rclone (>= 1.6x,
# built with `go install github.com/rclone/rclone@v1.76.0`) and s5cmd (`go
# install github.com/peak/s5cmd/v2@latest`) are used when found on PATH or in
# $(go env GOPATH)/bin and skipped otherwise. Not part of CI.
set -euo pipefail

WORK=/tmp/lakeproof-bench
RUNS=3
DO_BIG=0
DO_SMALL=1
while [ $# -gt 0 ]; do
  case "$1" in
    --work) WORK=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    --big) DO_BIG=1; shift ;;
    --no-small) DO_SMALL=0; shift ;;
    -h|--help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "s3_compare.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
REPO=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$WORK/bin" "$WORK/out"
WORK=$(cd "$WORK" && pwd)
GOBIN=$(go env GOPATH)/bin
export PATH="$PATH:$GOBIN"
say() { printf '== %s\n' "$*" >&2; }

say "building lakeproof, s3get, gen"
(cd "$REPO" && go build -o "$WORK/bin/lakeproof" ./cmd/lakeproof \
  && go build -o "$WORK/bin/s3get" ./benchmarks/s3get \
  && go build -o "$WORK/bin/gen" ./benchmarks/gen)
if [ "$DO_SMALL" = 1 ] && [ ! -d "$WORK/small" ]; then
  echo "s3_compare.sh: $WORK/small missing; generate it first with benchmarks/compare.sh --no-big" >&2
  exit 1
fi
if [ "$DO_BIG" = 1 ] && [ ! -f "$WORK/big8.done" ]; then
  say "generating $WORK/big8 (8 x 256 MiB)"
  rm -rf "$WORK/big8"
  "$WORK/bin/gen" -out "$WORK/big8" -files 8 -min 268435456 -max 268435456 -per-dir 8 -seed 3 >&2
  touch "$WORK/big8.done"
fi

# ---- server ----------------------------------------------------------------
SRV=$(mktemp -d /tmp/lakeproof-s3bench.XXXXXX)
mkdir "$SRV/root"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=benchsecret AWS_REGION=us-east-1
export AWS_ENDPOINT_URL=http://127.0.0.1:$PORT
unset AWS_CA_BUNDLE AWS_PROFILE
versitygw --access "$AWS_ACCESS_KEY_ID" --secret "$AWS_SECRET_ACCESS_KEY" --port "127.0.0.1:$PORT" \
  --region us-east-1 --quiet --keep-alive posix "$SRV/root" >"$SRV/log" 2>&1 &
GW=$!
trap 'kill $GW 2>/dev/null; wait $GW 2>/dev/null; rm -rf "$SRV"' EXIT
for _ in $(seq 100); do (echo >/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.1; done
"$WORK/bin/s3get" mb bench

HAVE_RCLONE=0
if command -v rclone >/dev/null && rclone hashsum 2>&1 | grep -qi blake3; then
  HAVE_RCLONE=1
  export RCLONE_CONFIG_B_TYPE=s3 RCLONE_CONFIG_B_PROVIDER=Other RCLONE_CONFIG_B_ENDPOINT=$AWS_ENDPOINT_URL \
    RCLONE_CONFIG_B_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID RCLONE_CONFIG_B_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY RCLONE_CONFIG_B_FORCE_PATH_STYLE=true
else
  say "rclone with blake3 not found: skipped"
fi
command -v s5cmd >/dev/null || say "s5cmd not found: skipped"

lp() { # lakeproof index of s3://bench/$SET with extra flags
  rm -rf "$WORK/out/s3idx"
  "$WORK/bin/lakeproof" index --quiet --s3-path-style "$@" "s3://bench/$SET" --out "$WORK/out/s3idx"
}
s5() { rm -rf /dev/shm/s5out; s5cmd --endpoint-url "$AWS_ENDPOINT_URL" cp "s3://bench/$SET/*" /dev/shm/s5out/; rm -rf /dev/shm/s5out; }

# compare SET JOBS: upload $WORK/SET, then RUNS rounds of every command in turn.
compare() {
  SET=$1
  local jobs=$2
  say "uploading $WORK/$SET to s3://bench/$SET"
  local t0
  t0=$(date +%s.%N)
  "$WORK/bin/s3get" put -j 32 "$WORK/$SET" "s3://bench/$SET"
  say "upload took $(echo "$(date +%s.%N) - $t0" | bc) s"
  local names=() cmds=()
  add() { names+=("$1"); cmds+=("$2"); }
  for j in $jobs; do add "raw GET ceiling: s3get get -j $j" "$WORK/bin/s3get get -j $j s3://bench/$SET"; done
  add "lakeproof index (default workers)" "lp"
  add "lakeproof index --workers 64" "lp --workers 64"
  [ "$HAVE_RCLONE" = 1 ] && add "rclone hashsum blake3 --download --checkers 32" "rclone hashsum blake3 --download --checkers 32 B:bench/$SET"
  command -v s5cmd >/dev/null && add "s5cmd cp (to tmpfs)" "s5"
  local -a best runs
  local loads=""
  for r in $(seq "$RUNS"); do
    loads="$loads r$r:$(cut -d' ' -f1 /proc/loadavg)"
    for i in "${!cmds[@]}"; do
      local s e t
      s=$(date +%s.%N)
      if ! eval "${cmds[$i]}" >/dev/null 2>"$SRV/err"; then cat "$SRV/err" >&2; t=FAILED; else
        e=$(date +%s.%N); t=$(printf '%.2f' "$(echo "$e - $s" | bc)"); fi
      runs[$i]="${runs[$i]:-} $t"
      if [ "$t" != FAILED ] && { [ -z "${best[$i]:-}" ] || [ "$(echo "$t < ${best[$i]}" | bc)" = 1 ]; }; then best[$i]=$t; fi
    done
  done
  loads="$loads end:$(cut -d' ' -f1 /proc/loadavg)"
  printf '\n%s: best of %s alternating rounds; 1-min load average before each round:%s\n' "$SET" "$RUNS" "$loads"
  printf '%-50s %8s   %s\n' "command" "best s" "every round"
  for i in "${!cmds[@]}"; do printf '%-50s %8s  %s\n' "${names[$i]}" "${best[$i]:-FAILED}" "${runs[$i]}"; done
}

[ "$DO_SMALL" = 1 ] && compare small "32 64"
[ "$DO_BIG" = 1 ] && compare big8 "8"
exit 0
