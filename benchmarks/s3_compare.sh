#!/usr/bin/env bash
# s3_compare.sh: time `lakeproof index s3://…` on a local versitygw next to
# the server's raw GET ceiling (benchmarks/s3get), `rclone hashsum blake3
# --download` and `s5cmd cp` to /dev/null, on the same data. Best of N runs.
#
#   benchmarks/s3_compare.sh [--work DIR] [--runs N]
#
# The data is benchmarks/gen's small/ tree (20,000 objects of 4-256 KiB,
# ~1.15 GiB; made by benchmarks/compare.sh --no-big), uploaded once per run into a
# fresh posix-backend versitygw ($(go env GOPATH)/bin/versitygw, see
# internal/s3test) on 127.0.0.1. rclone (>= 1.6x, built with `go install
# github.com/rclone/rclone@v1.76.0`) and s5cmd (`go install
# github.com/peak/s5cmd/v2@latest`) are used when found on PATH or in
# $(go env GOPATH)/bin and skipped otherwise. Not part of CI.
set -euo pipefail

WORK=/tmp/lakeproof-bench
RUNS=3
while [ $# -gt 0 ]; do
  case "$1" in
    --work) WORK=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
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
  && go build -o "$WORK/bin/s3get" ./benchmarks/s3get)
if [ ! -d "$WORK/small" ]; then
  echo "s3_compare.sh: $WORK/small missing; generate it first with benchmarks/compare.sh --no-big" >&2
  exit 1
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

say "uploading $WORK/small to s3://bench/small"
"$WORK/bin/s3get" mb bench
t0=$(date +%s.%N)
"$WORK/bin/s3get" put -j 32 "$WORK/small" s3://bench/small
say "upload took $(echo "$(date +%s.%N) - $t0" | bc) s"

# best RUNS wall seconds of a command
best() {
  local b=
  for _ in $(seq "$RUNS"); do
    local s e t
    s=$(date +%s.%N); "$@" >/dev/null 2>"$SRV/err" || { cat "$SRV/err" >&2; echo FAILED; return; }; e=$(date +%s.%N)
    t=$(echo "$e - $s" | bc)
    if [ -z "$b" ] || [ "$(echo "$t < $b" | bc)" = 1 ]; then b=$t; fi
  done
  printf '%.2f' "$b"
}

lp() { rm -rf "$WORK/out/s3idx"; "$WORK/bin/lakeproof" index --quiet --s3-path-style "$@" s3://bench/small --out "$WORK/out/s3idx"; }

printf '%-52s %8s\n' "command (best of $RUNS)" "seconds"
for j in 32 64; do
  printf '%-52s %8s\n' "raw GET ceiling: s3get get -j $j" "$(best "$WORK/bin/s3get" get -j $j s3://bench/small)"
done
printf '%-52s %8s\n' "lakeproof index s3://bench/small" "$(best lp)"
for w in 32 64; do
  printf '%-52s %8s\n' "lakeproof index --workers $w s3://bench/small" "$(best lp --workers $w)"
done
if command -v s5cmd >/dev/null; then
  printf '%-52s %8s\n' "s5cmd cp 's3://bench/small/*' (to tmpfs)" \
    "$(best bash -c "rm -rf /dev/shm/s5out; s5cmd --endpoint-url $AWS_ENDPOINT_URL cp 's3://bench/small/*' /dev/shm/s5out/; rm -rf /dev/shm/s5out")"
else
  say "s5cmd not found: skipped"
fi
if command -v rclone >/dev/null && rclone hashsum 2>&1 | grep -qi blake3; then
  export RCLONE_CONFIG_B_TYPE=s3 RCLONE_CONFIG_B_PROVIDER=Other RCLONE_CONFIG_B_ENDPOINT=$AWS_ENDPOINT_URL \
    RCLONE_CONFIG_B_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID RCLONE_CONFIG_B_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY RCLONE_CONFIG_B_FORCE_PATH_STYLE=true
  printf '%-52s %8s\n' "rclone hashsum blake3 --download --checkers 32" "$(best rclone hashsum blake3 --download --checkers 32 B:bench/small)"
else
  say "rclone with blake3 not found: skipped"
fi
