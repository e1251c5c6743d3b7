//go:build linux

package local

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/lakeproof/lakeproof/pipeline"
)

// fileID identifies an inode: (device, inode number).
type fileID struct{ dev, ino uint64 }

// pathStatIsFstat says that a stat by path that finds the inode of an open
// file reports the same attributes as an fstat of it (see reader.Close).
const pathStatIsFstat = true

// sameFile reports whether a and b are the same inode.
func sameFile(a, b fileID) bool { return a == b }

func fromStatT(st *unix.Stat_t) fileStat {
	k := kindOther
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		k = kindFile
	case unix.S_IFDIR:
		k = kindDir
	case unix.S_IFLNK:
		k = kindSymlink
	case unix.S_IFIFO:
		k = kindFIFO
	case unix.S_IFSOCK:
		k = kindSocket
	case unix.S_IFBLK:
		k = kindDevice
	case unix.S_IFCHR:
		k = kindCharDevice
	}
	return fileStat{
		kind:  k,
		size:  st.Size,
		mtime: st.Mtim.Nano(),
		ctime: st.Ctim.Nano(),
		id:    fileID{dev: uint64(st.Dev), ino: uint64(st.Ino)}, // not uint64 on every architecture
	}
}

// ignoringEINTR retries f while it fails with EINTR, as package os does for
// the system calls it makes.
func ignoringEINTR(f func() error) error {
	for {
		if err := f(); err != unix.EINTR {
			return err
		}
	}
}

// statAt stats name in the open directory dir (dirPath is its path, for
// error messages), following a final symbolic link only if follow is set. It is one
// fstatat(2) relative to the directory's descriptor, so the kernel does not
// resolve the whole path again for every file.
func statAt(dir *os.File, dirPath, name string, follow bool) (fileStat, error) {
	flags := unix.AT_SYMLINK_NOFOLLOW
	if follow {
		flags = 0
	}
	var st unix.Stat_t
	fd := int(dir.Fd())
	err := ignoringEINTR(func() error { return unix.Fstatat(fd, name, &st, flags) })
	runtime.KeepAlive(dir)
	if err != nil {
		return fileStat{}, &os.PathError{Op: "stat", Path: filepath.Join(dirPath, name), Err: err}
	}
	return fromStatT(&st), nil
}

// fstat stats the open file f.
func fstat(f *os.File) (fileStat, error) {
	var st unix.Stat_t
	fd := int(f.Fd())
	err := ignoringEINTR(func() error { return unix.Fstat(fd, &st) })
	runtime.KeepAlive(f)
	if err != nil {
		return fileStat{}, &os.PathError{Op: "fstat", Path: f.Name(), Err: err}
	}
	return fromStatT(&st), nil
}

// statPath stats path, following a final symbolic link only if follow is set.
func statPath(path string, follow bool) (fileStat, error) {
	flags := unix.AT_SYMLINK_NOFOLLOW
	if follow {
		flags = 0
	}
	var st unix.Stat_t
	err := ignoringEINTR(func() error { return unix.Fstatat(unix.AT_FDCWD, path, &st, flags) })
	if err != nil {
		return fileStat{}, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	return fromStatT(&st), nil
}

// openDir opens the directory at path for listing. Unless follow is set, it
// fails (with ELOOP) if path's last component is a symbolic link, so a
// directory swapped for a link after its parent was read is not followed.
func openDir(path string, follow bool) (*os.File, error) {
	flags := os.O_RDONLY | unix.O_DIRECTORY
	if !follow {
		flags |= unix.O_NOFOLLOW
	}
	f, err := os.OpenFile(path, flags, 0)
	if err != nil && !follow && errors.Is(err, unix.ELOOP) {
		err = fmt.Errorf("%q was replaced by a symbolic link while the dataset was being listed: %w", path, err)
	}
	return f, err
}

// openat2OK reports whether openat2(2) with RESOLVE_NO_SYMLINKS works here
// (Linux 5.6 and later, and not filtered out by a seccomp policy).
var openat2OK = sync.OnceValue(func() bool {
	fd, err := unix.Openat2(unix.AT_FDCWD, "/", &unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_CLOEXEC | unix.O_DIRECTORY,
		Resolve: unix.RESOLVE_NO_SYMLINKS,
	})
	if err != nil {
		return false
	}
	unix.Close(fd)
	return true
})

// handle is an open file: its raw descriptor. Open reads through the
// descriptor directly rather than wrapping it in an *os.File, which would
// cost an fcntl(2) per file to query its flags, and, for a descriptor in
// non-blocking mode, registering it with the runtime's poller and removing
// it again on close.
type handle int

// openFile opens the file with the given key under the dataset root for
// reading, and returns it with its fstat and its path (for messages).
//
// Unless links are followed it uses openat2(2) relative to the root's
// descriptor with RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS, so that neither the
// file nor any directory on its path can have been swapped for a symbolic
// link since listing; where openat2 is unavailable it falls back to
// O_NOFOLLOW, which protects the last component only. The file is opened
// with O_NONBLOCK so that a file replaced by a FIFO cannot block the open,
// and fstat-ed at once: anything but a regular file is refused. The flag is
// left set: regular files ignore it, so clearing it would cost two more
// system calls per file (handle.read clears it should a filesystem ever
// return EAGAIN for a regular file).
func (s *Source) openFile(key string) (handle, fileStat, string, error) {
	root := s.rootFD
	defer runtime.KeepAlive(s.rootDir) // keep root open while it is used
	flags := unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NONBLOCK | unix.O_NOCTTY
	var fd int
	var err error
	for {
		switch {
		case s.opts.FollowSymlinks:
			fd, err = unix.Openat(root, key, flags, 0)
		case openat2OK():
			how := unix.OpenHow{
				Flags:   uint64(flags | unix.O_NOFOLLOW),
				Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS,
			}
			fd, err = unix.Openat2(root, key, &how)
		default:
			fd, err = unix.Openat(root, key, flags|unix.O_NOFOLLOW, 0)
		}
		if err != unix.EINTR {
			break
		}
	}
	// The key passed lakeproof.CheckKey in Open: it is already clean, and
	// Clean would only cost time.
	path := join(s.rootPath, key)
	if err != nil {
		return -1, fileStat{}, path, s.openErr(path, err)
	}
	h := handle(fd)
	fst, err := h.stat(path)
	if err != nil {
		unix.Close(fd)
		return -1, fileStat{}, path, err
	}
	if fst.kind != kindFile {
		unix.Close(fd)
		return -1, fileStat{}, path, fmt.Errorf("%w: %q is now a %s, it was listed as a regular file", pipeline.ErrChanged, path, fst.kind)
	}
	return h, fst, path, nil
}

// maxRW is the most one read(2) is asked for, as in package os.
const maxRW = 1 << 30

// read reads from the current offset into p, returning io.EOF at the end of
// the file. path names the file in errors.
func (h handle) read(p []byte, path string) (int, error) {
	if len(p) > maxRW {
		p = p[:maxRW]
	}
	for {
		n, err := unix.Read(int(h), p)
		switch {
		case err == nil && n == 0 && len(p) > 0:
			return 0, io.EOF
		case err == nil:
			return n, nil
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN && h.setBlocking():
			continue
		}
		return 0, &os.PathError{Op: "read", Path: path, Err: err}
	}
}

// readAt reads len(p) bytes at offset off, fewer only at the end of the
// file, where it returns io.EOF, like io.ReaderAt.
func (h handle) readAt(p []byte, off int64, path string) (int, error) {
	done := 0
	for done < len(p) {
		q := p[done:]
		if len(q) > maxRW {
			q = q[:maxRW]
		}
		n, err := unix.Pread(int(h), q, off+int64(done))
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN && h.setBlocking():
			continue
		case err != nil:
			return done, &os.PathError{Op: "read", Path: path, Err: err}
		case n == 0:
			return done, io.EOF
		}
		done += n
	}
	return done, nil
}

// setBlocking clears O_NONBLOCK, for a filesystem that returns EAGAIN for
// a regular file, and reports whether it did (the read is then retried).
func (h handle) setBlocking() bool {
	flags, err := unix.FcntlInt(uintptr(h), unix.F_GETFL, 0)
	if err != nil || flags&unix.O_NONBLOCK == 0 {
		return false
	}
	return unix.SetNonblock(int(h), false) == nil
}

// stat fstats the file; path names it in errors.
func (h handle) stat(path string) (fileStat, error) {
	var st unix.Stat_t
	for {
		err := unix.Fstat(int(h), &st)
		if err == nil {
			return fromStatT(&st), nil
		}
		if err != unix.EINTR {
			return fileStat{}, &os.PathError{Op: "fstat", Path: path, Err: err}
		}
	}
}

// close closes the file. Like package os, it does not retry on EINTR: the
// descriptor is released either way on Linux.
func (h handle) close(path string) error {
	if err := unix.Close(int(h)); err != nil {
		return &os.PathError{Op: "close", Path: path, Err: err}
	}
	return nil
}

// openErr classifies an error from opening path.
func (s *Source) openErr(path string, err error) error {
	switch {
	case errors.Is(err, unix.ENOENT), errors.Is(err, unix.ENOTDIR):
		return fmt.Errorf("%w: %q was removed after it was listed: %w", pipeline.ErrNotFound, path, err)
	case !s.opts.FollowSymlinks && (errors.Is(err, unix.ELOOP) || errors.Is(err, unix.EXDEV)):
		return fmt.Errorf("%w: %q or a directory on its path was replaced by a symbolic link after it was listed (%w); links are followed only with --follow-symlinks",
			pipeline.ErrChanged, path, err)
	}
	return fmt.Errorf("open %q: %w", path, err)
}

// fadviseSequential tells the kernel that h will be read sequentially, which
// doubles its readahead window. It is only a hint: errors are ignored.
func fadviseSequential(h handle) {
	_ = unix.Fadvise(int(h), 0, 0, unix.FADV_SEQUENTIAL)
}
