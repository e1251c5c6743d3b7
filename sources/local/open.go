package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"

	"github.com/lakeproof/lakeproof"
	"github.com/lakeproof/lakeproof/pipeline"
)

// fadviseMinSize is the size from which Open advises the kernel of
// sequential reads; below it the whole file fits in the default readahead
// window and the system call would be wasted.
const fadviseMinSize = 256 << 10

// reader is the reader Open returns. Besides io.ReadCloser it implements
// io.ReaderAt, for hashing parts of a large file in parallel. It yields
// exactly the listed size: reads stop there even if the file has grown
// (Close then reports the change), and a file that shrank makes the read
// fail with an error wrapping pipeline.ErrChanged.
//
// Read and Close must not be called concurrently with Read or Close;
// ReadAt may be called concurrently with ReadAt and with Read.
type reader struct {
	h      handle
	path   string
	follow bool
	size   int64  // as listed
	mtime  int64  // as listed, Unix nanoseconds
	ctime  int64  // inode change time from the fstat right after open
	id     fileID // identity of the open file, from that fstat
	off    int64  // offset of the next Read
	closed bool   // set by Close: h may since name another file

	closeOnce sync.Once
	closeErr  error
}

var (
	_ io.ReadCloser = (*reader)(nil)
	_ io.ReaderAt   = (*reader)(nil)
)

// Open opens obj, which must have been listed by Objects, for reading.
//
// It opens the file without following a symbolic link swapped in since the
// listing (unless Options.FollowSymlinks is set; see openFile), and fstats
// the open file: if it is no longer a regular file, or its size or
// modification time differ from the listing, Open fails with an error
// wrapping pipeline.ErrChanged. If the file is gone, the error wraps
// pipeline.ErrNotFound. Errors name the file's path but are not
// *pipeline.ObjectError: the caller knows the key and the operation.
//
// The returned reader yields exactly obj.Size bytes, also implements
// io.ReaderAt (for hashing parts of a large file in parallel), and checks
// the file again on Close; see reader. Open is safe for concurrent use.
func (s *Source) Open(ctx context.Context, obj pipeline.Object) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("open %q: %w", obj.Key, err)
	}
	if s.closed.Load() {
		return nil, fmt.Errorf("open %q: %w", obj.Key, os.ErrClosed)
	}
	if err := lakeproof.CheckKey(obj.Key); err != nil {
		return nil, fmt.Errorf("open: %w", err)
	}
	if obj.Size < 0 {
		return nil, fmt.Errorf("open %q: invalid listed size %d", obj.Key, obj.Size)
	}
	h, st, path, err := s.openFile(obj.Key)
	if err != nil {
		return nil, err
	}
	mtime := obj.ModTime.UnixNano()
	if st.size != obj.Size || st.mtime != mtime {
		h.close(path)
		return nil, fmt.Errorf("%w: %q was listed with size %d and modification time %s, and now has size %d and modification time %s",
			pipeline.ErrChanged, path, obj.Size, fmtTime(mtime), st.size, fmtTime(st.mtime))
	}
	if obj.Size >= fadviseMinSize {
		fadviseSequential(h)
	}
	return &reader{
		h:      h,
		path:   path,
		follow: s.opts.FollowSymlinks,
		size:   obj.Size,
		mtime:  mtime,
		ctime:  st.ctime,
		id:     st.id,
	}, nil
}

func (r *reader) truncated(at int64) error {
	return fmt.Errorf("%w: %q ended at byte %d while being read, it was listed with size %d: %w",
		pipeline.ErrChanged, r.path, at, r.size, io.ErrUnexpectedEOF)
}

// Read reads the next bytes of the file, up to its listed size, then
// returns io.EOF.
func (r *reader) Read(p []byte) (int, error) {
	if r.closed {
		return 0, &os.PathError{Op: "read", Path: r.path, Err: os.ErrClosed}
	}
	if r.off >= r.size {
		return 0, io.EOF
	}
	if rest := r.size - r.off; int64(len(p)) > rest {
		p = p[:rest]
	}
	n, err := r.h.read(p, r.path)
	r.off += int64(n)
	switch {
	case err == io.EOF:
		return n, r.truncated(r.off)
	case err != nil:
		return n, err // an *os.PathError, naming the path
	}
	return n, nil
}

// ReadAt reads len(p) bytes at offset off, which must lie within the listed
// size; like io.ReaderAt, it returns io.EOF with fewer bytes when the listed
// size ends first.
func (r *reader) ReadAt(p []byte, off int64) (int, error) {
	if r.closed {
		return 0, &os.PathError{Op: "read", Path: r.path, Err: os.ErrClosed}
	}
	if off < 0 {
		return 0, fmt.Errorf("read %q: negative offset %d", r.path, off)
	}
	if off >= r.size {
		return 0, io.EOF
	}
	atEnd := false
	if rest := r.size - off; int64(len(p)) > rest {
		p, atEnd = p[:rest], true
	}
	n, err := r.h.readAt(p, off, r.path)
	switch {
	case err == io.EOF:
		return n, r.truncated(off + int64(n))
	case err != nil:
		return n, err
	case atEnd:
		return n, io.EOF
	}
	return n, nil
}

// Close closes the file and reports, with an error wrapping
// pipeline.ErrChanged, whether it changed since it was listed: the path is
// stat-ed again, while the file is still open, to see that it still names
// the same file, and that file's size and modification time are checked
// against the listing and its inode change time against the open (where the
// platform reports it). A file that was appended to, rewritten (even with
// its modification time reset), truncated, replaced or removed is reported.
// Calling Close again returns the same result.
//
// On Linux the stat of the path is also the stat of the open file: while
// the descriptor is open its inode cannot be freed, so no other file can
// have its (device, inode number), and a path that stats with that identity
// names that very inode, whose attributes the stat returns. Elsewhere the
// open file is fstat-ed as well, as stats by path may report attributes
// from a directory entry that lags behind the file (NTFS).
func (r *reader) Close() error {
	r.closeOnce.Do(func() { r.closeErr = r.close() })
	return r.closeErr
}

func (r *reader) close() error {
	// Both stats are taken before the descriptor is closed: see Close.
	pst, pathErr := statPath(r.path, r.follow)
	st, statErr := pst, error(nil)
	if !pathStatIsFstat || pathErr != nil || !sameFile(pst.id, r.id) {
		st, statErr = r.h.stat(r.path)
	}
	closeErr := r.h.close(r.path)
	r.closed = true
	if statErr != nil {
		return errors.Join(statErr, closeErr) // both name the path
	}
	// The checks go from the most to the least specific message: removing
	// or replacing the file also changes its inode change time.
	var problem string
	switch {
	case st.size != r.size:
		problem = fmt.Sprintf("its size went from %d to %d", r.size, st.size)
	case st.mtime != r.mtime:
		problem = fmt.Sprintf("its modification time went from %s to %s", fmtTime(r.mtime), fmtTime(st.mtime))
	case errors.Is(pathErr, fs.ErrNotExist):
		problem = "it was removed"
	case pathErr != nil:
		return fmt.Errorf("stat %q after reading: %w", r.path, pathErr)
	case !sameFile(pst.id, st.id):
		problem = fmt.Sprintf("it was replaced by another %s", pst.kind)
	case st.ctime != r.ctime:
		problem = fmt.Sprintf("its inode change time went from %s to %s (its content or metadata was rewritten)",
			fmtTime(r.ctime), fmtTime(st.ctime))
	}
	if problem != "" {
		return fmt.Errorf("%w: %q changed while being read: %s; its content is not trusted", pipeline.ErrChanged, r.path, problem)
	}
	if closeErr != nil {
		return closeErr // an *os.PathError, naming the path
	}
	return nil
}
