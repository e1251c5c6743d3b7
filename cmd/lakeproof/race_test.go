//go:build race

package main

// raceEnabled is true when the tests run under the race detector, which
// makes the Parquet reader about ten times slower; exhaustive sweeps sample.
const raceEnabled = true
