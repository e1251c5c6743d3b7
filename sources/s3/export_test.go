package s3

import "time"

// SetFastBackoff shortens every backoff and the read timeout, for tests
// that inject permanent faults and stalls. Call it from TestMain only.
func SetFastBackoff() {
	sdkBackoffBase = time.Millisecond
	resumeBackoffBase = time.Millisecond
	readTimeout = 2 * time.Second
}
