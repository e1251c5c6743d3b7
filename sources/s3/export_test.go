package s3

import "time"

// SetFastBackoff shortens every backoff, for tests that inject permanent
// faults. Call it from TestMain only.
func SetFastBackoff() {
	sdkBackoffBase = time.Millisecond
	resumeBackoffBase = time.Millisecond
}
