// Package benchmarks holds lakeproof's Go benchmarks of hashing
// (hash_bench_test.go) and the comparison script compare.sh, which times
// `lakeproof index` against b3sum, hashdeep and rclone on generated datasets.
// See README.md for how to run them and RESULTS.md for the figures measured.
package benchmarks
