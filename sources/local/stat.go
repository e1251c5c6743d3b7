package local

import (
	"io/fs"
	"time"
)

// kind is the type of a directory entry, as far as the listing cares.
type kind uint8

const (
	kindOther kind = iota
	kindFile
	kindDir
	kindSymlink
	kindFIFO
	kindSocket
	kindDevice
	kindCharDevice
)

// kindOf maps the type bits of an fs.FileMode to a kind.
func kindOf(m fs.FileMode) kind {
	switch t := m.Type(); {
	case t == 0:
		return kindFile
	case t&fs.ModeDir != 0:
		return kindDir
	case t&fs.ModeSymlink != 0:
		return kindSymlink
	case t&fs.ModeNamedPipe != 0:
		return kindFIFO
	case t&fs.ModeSocket != 0:
		return kindSocket
	case t&fs.ModeCharDevice != 0:
		return kindCharDevice
	case t&fs.ModeDevice != 0:
		return kindDevice
	}
	return kindOther
}

// String names k for error messages ("… is a named pipe (FIFO)").
func (k kind) String() string {
	switch k {
	case kindFile:
		return "regular file"
	case kindDir:
		return "directory"
	case kindSymlink:
		return "symbolic link"
	case kindFIFO:
		return "named pipe (FIFO)"
	case kindSocket:
		return "socket"
	case kindDevice:
		return "block device"
	case kindCharDevice:
		return "character device"
	}
	return "special file of unknown type"
}

// fileStat is what the source needs to know about one file or directory.
type fileStat struct {
	kind  kind
	size  int64
	mtime int64  // modification time, Unix nanoseconds
	ctime int64  // inode change time, Unix nanoseconds; 0 where the platform does not report it
	id    fileID // identity of the inode, see sameFile
}

// fmtTime formats Unix nanoseconds for error messages.
func fmtTime(ns int64) string { return time.Unix(0, ns).UTC().Format(time.RFC3339Nano) }
