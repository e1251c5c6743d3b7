//go:build !unix

package jobs

import "errors"

// ErrBusy means another run holds the destination's lock.
var ErrBusy = errors.New("another run is writing this index destination")

// lockDest is a no-op where flock is not available.
func lockDest(string) (func(), error) { return func() {}, nil }
