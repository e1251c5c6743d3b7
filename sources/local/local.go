// Package local is the pipeline.Source for a dataset stored as a directory
// tree on the local filesystem.
//
// # Keys and order
//
// The key of a file is its path relative to the dataset root, with '/' as
// the separator. Objects yields the regular files of the tree in strictly
// increasing bytewise order of their keys, the order S3 lists keys in, so that
// a local copy of a dataset and its S3 original give the same Merkle root.
// That is not the order of a per-directory walk sorted by name: "a.txt"
// (0x2E after "a") sorts before "a/b" (0x2F), and "a-b/x" before "a/x". The
// walk therefore sorts each directory's entries by name with a '/' appended
// to the names of directories, and descends into a directory when it reaches
// it in that order.
//
// # Memory
//
// The listing streams. It holds one sorted entry list per directory on the
// path from the root to the current directory, and nothing else, so its
// memory is proportional to the sum of the sizes of those directories (about
// 60 bytes plus the name per entry), never to the number of files in the
// dataset. A single directory of ten million entries needs about 800 MB; a
// tree of ten million files in directories of a thousand needs a few hundred
// kilobytes (TestListingMemoryIsBounded measures it).
//
// # Problems with one file
//
// Nothing is dropped silently. Each of the following is yielded as a
// *pipeline.ObjectError in key order, and the listing goes on:
//
//   - a name that makes an invalid key (lakeproof.CheckKey: newline or other
//     control character, invalid UTF-8, longer than lakeproof.MaxKeyLen); for
//     a directory, one error for the whole directory, whose contents are not
//     listed;
//   - a symbolic link, unless Options.FollowSymlinks is set (wraps
//     pipeline.ErrUnsupported);
//   - a FIFO, socket or device (wraps pipeline.ErrUnsupported);
//   - a directory that cannot be read (the error's key ends in '/') or a
//     symbolic link that leads back to a directory on its own path;
//   - a file or directory removed between reading its parent directory and
//     stat-ing it (wraps pipeline.ErrNotFound).
//
// Files that cannot be read are listed; opening them fails.
//
// # Reading
//
// Open checks that the file still has the size and modification time it was
// listed with, and Close checks again, by path while the file is still open
// (size and modification time against the listing, inode change time against
// the open, identity against the open file), so that a file modified,
// replaced or removed while it was being hashed is reported
// (pipeline.ErrChanged) instead of trusted. See Source.Open and reader.Close.
// Per file, the listing and reading cost six system calls on Linux: a stat
// when listing, then openat2, fstat, read (one per buffer), stat of the
// path, close.
//
// Linux is the target platform; elsewhere the package builds with a portable
// fallback that makes the same checks less strictly (see sys_other.go).
package local

import (
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sync/atomic"

	"github.com/lakeproof/lakeproof/pipeline"
)

// Options configures a Source.
type Options struct {
	// FollowSymlinks makes the listing follow symbolic links: a link to a
	// regular file is listed as a file under the link's key, with the
	// target's size and modification time, and a link to a directory is
	// walked as a directory. A link that leads back to a directory on its
	// own path is reported as an error rather than walked forever. Without
	// it (the default), every symbolic link below the root is reported as an
	// error wrapping pipeline.ErrUnsupported, and Open refuses to go through
	// a symbolic link that was swapped in after listing.
	//
	// The root itself is always followed if it is a symbolic link.
	FollowSymlinks bool
}

// Source is a dataset stored in a local directory. It implements
// pipeline.Source.
type Source struct {
	rootPath string   // absolute, clean
	rootDir  *os.File // the root, open; Open resolves keys relative to it
	rootFD   int      // rootDir's descriptor
	closed   atomic.Bool
	opts     Options
	uri      string
}

var _ pipeline.Source = (*Source)(nil)

// New returns the Source for the directory tree at root. It fails with a
// message naming root if root does not exist, is not a directory or cannot be
// opened. New keeps the root directory open until Close.
func New(root string, opts Options) (*Source, error) {
	if root == "" {
		return nil, errors.New("dataset root: empty path")
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("dataset root %q: %w", root, err)
	}
	fi, err := os.Stat(abs)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("dataset root %q does not exist", root)
	case err != nil:
		return nil, fmt.Errorf("dataset root %q: %w", root, err)
	case !fi.IsDir():
		return nil, fmt.Errorf("dataset root %q is not a directory", root)
	}
	d, err := os.Open(abs)
	if err != nil {
		return nil, fmt.Errorf("dataset root %q cannot be opened: %w", root, err)
	}
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(abs)}
	if u.Path[0] != '/' { // a Windows drive letter
		u.Path = "/" + u.Path
	}
	return &Source{rootPath: abs, rootDir: d, rootFD: int(d.Fd()), opts: opts, uri: u.String()}, nil
}

// URI returns the dataset's file:// URI, with the absolute path of the root.
func (s *Source) URI() string { return s.uri }

// Close closes the root directory that New opened; Open fails afterwards.
// It must not be called while Open is in use; readers returned by Open stay
// usable.
func (s *Source) Close() error {
	s.closed.Store(true)
	return s.rootDir.Close()
}
