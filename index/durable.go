package index

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/lakeproof/lakeproof/internal/durable"
)

// syncDir fsyncs a directory so that the creation, removal or renaming of
// its entries is durable.
var syncDir = durable.SyncDir

// publishDir makes the complete, fsynced directory tmp visible at dst:
// rename(tmp, dst) without replacing an existing dst, then fsync of the
// parent directory so the rename is durable. If dst exists the result is
// ErrExists and tmp is left for the caller to remove.
func publishDir(tmp, dst string) error {
	if err := syncDir(tmp); err != nil {
		return err
	}
	if err := renameNoReplace(tmp, dst); err != nil {
		if os.IsExist(err) {
			return fmt.Errorf("%w: %s", ErrExists, dst)
		}
		return fmt.Errorf("publish index %s: %w", dst, err)
	}
	return syncDir(filepath.Dir(dst))
}
