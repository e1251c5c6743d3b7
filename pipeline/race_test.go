//go:build race

package pipeline_test

// raceEnabled: the race detector multiplies memory and time, so memory
// measurements are skipped under it (.ci/run runs them without -race).
const raceEnabled = true
