#!/usr/bin/env bash
# reindex.sh: issue 6 (batch jobs) benchmarks — incremental re-index against
# a bare listing, locally and on S3, and the merge of 1,000,000 shard entries.
#
#   benchmarks/reindex.sh [--lake DIR] [--s3-objects N] [--runs N] [--skip-s3]
#
#   --lake DIR        local dataset (default /tmp/lakeproof-bench/tiny, the
#                     1,000,000 tiny files of `benchmarks/compare.sh --tiny`,
#                     generated with benchmarks/gen if missing). Only read.
#   --s3-objects N    objects uploaded to a fresh local versitygw (default
#                     100000: the first N/1000 directories of the lake)
#   --runs N          iterations of each benchmark (-benchtime Nx, default 3);
#                     every iteration runs the listing and the re-index back
#                     to back, so load changes hit both
#
# Runs the Go benchmarks BenchmarkReindexUnchanged and BenchmarkReindexS3
# (jobs/bench_test.go) and BenchmarkMerge with 1,000,000 entries, printing
# the load average before and after each. Targets (issue 6, part 7):
# unchanged/list ≤ 1.2, 1pct/(list+hash) ≤ 1.2, merge < 10 s. Not part of CI.
set -euo pipefail

LAKE=/tmp/lakeproof-bench/tiny
S3N=100000
RUNS=3
DO_S3=1
while [ $# -gt 0 ]; do
  case "$1" in
    --lake) LAKE=$2; shift 2 ;;
    --s3-objects) S3N=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    --skip-s3) DO_S3=0; shift ;;
    -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "reindex.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
REPO=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d /tmp/lakeproof-reindex.XXXXXX)
GOBIN=$(go env GOPATH)/bin
export PATH="$PATH:$GOBIN"
SRV_PID=
cleanup() {
  [ -n "$SRV_PID" ] && { kill "$SRV_PID" 2>/dev/null; wait "$SRV_PID" 2>/dev/null || true; }
  rm -rf "$WORK"
}
trap cleanup EXIT
say() { printf '== %s\n' "$*" >&2; }

say "building the jobs benchmarks, gen, s3get"
(cd "$REPO" && go test -c -o "$WORK/jobs.test" ./jobs/ && go build -o "$WORK/gen" ./benchmarks/gen \
  && go build -o "$WORK/s3get" ./benchmarks/s3get)
if [ ! -d "$LAKE" ]; then
  say "generating $LAKE (1,000,000 files of 0-512 bytes; takes a while)"
  "$WORK/gen" -out "$LAKE" -files 1000000 -min 0 -max 512 -per-dir 1000 -seed 3 >&2
fi
bench() { # NAME ENV... : one Go benchmark, with the load average around it
  local name=$1; shift
  echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
  (cd "$WORK" && env "$@" TMPDIR="$WORK" ./jobs.test -test.run '^$' -test.bench "^$name\$" -test.benchtime "${RUNS}x") | grep -E '^Benchmark'
  echo "load after:  $(cut -d' ' -f1-3 /proc/loadavg)"
}

say "local: $LAKE"
bench BenchmarkReindexUnchanged LAKEPROOF_BENCH_LAKE="$LAKE"

if [ "$DO_S3" = 1 ]; then
  say "S3: $S3N objects on a local versitygw"
  mkdir -p "$WORK/s3root"
  PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=benchsecret AWS_REGION=us-east-1
  export AWS_ENDPOINT_URL=http://127.0.0.1:$PORT
  unset AWS_CA_BUNDLE AWS_PROFILE AWS_ENDPOINT_URL_S3
  versitygw --access "$AWS_ACCESS_KEY_ID" --secret "$AWS_SECRET_ACCESS_KEY" --port "127.0.0.1:$PORT" \
    --region us-east-1 --quiet posix "$WORK/s3root" >"$WORK/versitygw.log" 2>&1 &
  SRV_PID=$!
  for _ in $(seq 100); do (echo >/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.1; done
  "$WORK/s3get" mb bench
  t0=$(date +%s.%N)
  # The first S3N/1000 directories of the lake (1,000 files each).
  for d in $(ls "$LAKE" | sort | head -n $((S3N / 1000))); do
    "$WORK/s3get" put -j 32 "$LAKE/$d" "s3://bench/tiny/$d" >/dev/null
  done
  say "upload took $(echo "$(date +%s.%N) - $t0" | bc) s"
  bench BenchmarkReindexS3 LAKEPROOF_BENCH_S3=s3://bench/tiny/
fi

say "merge of 1,000,000 entries in 8 shards"
bench BenchmarkMerge LAKEPROOF_BENCH_FILES=1000000
