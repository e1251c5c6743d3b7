package index

import (
	"io/fs"
	"os"
)

// renameCheck is the portable fallback of renameNoReplace: it refuses an
// existing destination, then renames. Between the check and the rename
// another process could create new; on Linux renameat2 closes that window.
// rename(2) of a directory onto an existing non-empty directory fails, so
// a complete index (never empty) is not replaced even then.
func renameCheck(old, new string) error {
	if _, err := os.Lstat(new); err == nil {
		return &os.LinkError{Op: "rename", Old: old, New: new, Err: fs.ErrExist}
	}
	return os.Rename(old, new)
}
