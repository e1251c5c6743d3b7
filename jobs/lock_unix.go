//go:build unix

package jobs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// ErrBusy means another run holds the destination's lock.
var ErrBusy = errors.New("another run is writing this index destination")

// lockDest takes an exclusive, non-blocking flock on DEST/.lock for the
// duration of a run (released by the returned function, or by the kernel
// when the process dies, so a kill -9 never leaves it held).
func lockDest(dest string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(dest, ".lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", dest, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s (.lock is held)", ErrBusy, dest)
		}
		return nil, fmt.Errorf("lock %s: %w", dest, err)
	}
	return func() { f.Close() }, nil
}
