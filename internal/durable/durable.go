// Package durable writes small files crash-consistently. After a crash, a
// file written by WriteFile is either absent, or complete with its old
// content, or complete with its new content; it is never partial.
package durable

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// WriteFile writes data to path. It first writes a temporary file in the
// same directory, sets it to perm and fsyncs it. It then publishes it and
// fsyncs the directory.
//
// With replace, the temporary file is renamed over path, so an existing
// file is replaced atomically. Without replace, it is hard-linked to path.
// If path exists, that fails with an error wrapping fs.ErrExist and
// nothing is overwritten. The directory must exist.
func WriteFile(path string, data []byte, perm fs.FileMode, replace bool) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after a link, or a failure; a no-op after a rename
	_, werr := f.Write(data)
	merr := f.Chmod(perm)
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, merr, serr, cerr); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if replace {
		err = os.Rename(tmp, path)
	} else {
		err = os.Link(tmp, path)
	}
	if err != nil {
		return fmt.Errorf("publish %s: %w", path, err)
	}
	return SyncDir(dir)
}

// SyncDir fsyncs a directory, so that creating, removing or renaming its
// entries is durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("fsync directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync directory %s: %w", dir, err)
	}
	return nil
}
