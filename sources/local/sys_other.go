//go:build !linux

package local

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/lakeproof/lakeproof/pipeline"
)

// This file is the portable fallback built everywhere but Linux, the target
// platform. It uses only package os: path-based stats, no ctime check, and
// symbolic links swapped in after listing are detected by an lstat after the
// open rather than refused by the open itself.

// fileID identifies a file through the os.FileInfo it was stat-ed as.
type fileID struct{ fi os.FileInfo }

// pathStatIsFstat says that a stat by path that finds the inode of an open
// file reports the same attributes as an fstat of it (see reader.Close).
const pathStatIsFstat = false

// sameFile reports whether a and b are the same file.
func sameFile(a, b fileID) bool { return a.fi != nil && b.fi != nil && os.SameFile(a.fi, b.fi) }

func fromInfo(fi os.FileInfo) fileStat {
	return fileStat{
		kind:  kindOf(fi.Mode()),
		size:  fi.Size(),
		mtime: fi.ModTime().UnixNano(),
		id:    fileID{fi},
	}
}

func statPath(path string, follow bool) (fileStat, error) {
	stat := os.Lstat
	if follow {
		stat = os.Stat
	}
	fi, err := stat(path)
	if err != nil {
		return fileStat{}, err
	}
	return fromInfo(fi), nil
}

func statAt(_ *os.File, dirPath, name string, follow bool) (fileStat, error) {
	return statPath(filepath.Join(dirPath, name), follow)
}

func fstat(f *os.File) (fileStat, error) {
	fi, err := f.Stat()
	if err != nil {
		return fileStat{}, err
	}
	return fromInfo(fi), nil
}

func openDir(path string, follow bool) (*os.File, error) {
	f, err := os.Open(path)
	if err != nil || follow {
		return f, err
	}
	if st, err := statPath(path, false); err != nil || st.kind != kindDir {
		f.Close()
		if err == nil {
			err = fmt.Errorf("%q is now a %s", path, st.kind)
		}
		return nil, err
	}
	return f, nil
}

// handle is an open file.
type handle struct{ f *os.File }

func (s *Source) openFile(key string) (handle, fileStat, string, error) {
	path := filepath.Join(s.rootPath, filepath.FromSlash(key))
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return handle{}, fileStat{}, path, fmt.Errorf("%w: %q was removed after it was listed: %w", pipeline.ErrNotFound, path, err)
		}
		return handle{}, fileStat{}, path, fmt.Errorf("open %q: %w", path, err)
	}
	st, err := fstat(f)
	if err != nil {
		f.Close()
		return handle{}, fileStat{}, path, fmt.Errorf("fstat %q: %w", path, err)
	}
	if st.kind != kindFile {
		f.Close()
		return handle{}, fileStat{}, path, fmt.Errorf("%w: %q is now a %s, it was listed as a regular file", pipeline.ErrChanged, path, st.kind)
	}
	if !s.opts.FollowSymlinks {
		if lst, err := statPath(path, false); err == nil && lst.kind == kindSymlink {
			f.Close()
			return handle{}, fileStat{}, path, fmt.Errorf("%w: %q was replaced by a symbolic link after it was listed; links are followed only with --follow-symlinks", pipeline.ErrChanged, path)
		}
	}
	return handle{f}, st, path, nil
}

func (h handle) read(p []byte, _ string) (int, error)              { return h.f.Read(p) }
func (h handle) readAt(p []byte, off int64, _ string) (int, error) { return h.f.ReadAt(p, off) }
func (h handle) stat(_ string) (fileStat, error)                   { return fstat(h.f) }
func (h handle) close(_ string) error                              { return h.f.Close() }

func fadviseSequential(handle) {}
