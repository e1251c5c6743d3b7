package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"time"
)

// Object is one listed object of a dataset.
type Object struct {
	// Key is the dataset key (see lakeproof.CheckKey): the path relative to
	// the dataset root, '/'-separated.
	Key string
	// Size is the content length in bytes as listed.
	Size int64
	// ModTime is the modification time as listed (local mtime, S3 LastModified).
	ModTime time.Time
	// ETag is the provider's entity tag, without quotes; empty for local files.
	ETag string
	// VersionID is the provider's object version, if the store has versioning.
	VersionID string
	// Checksum is a provider checksum as "ALGORITHM:base64" (for example
	// "CRC64NVME:..."), when the provider reports one; empty otherwise.
	Checksum string
}

// Source is a dataset: a set of objects with keys, listed in canonical order.
// Drivers live in sources/<name>; each exports little more than New.
type Source interface {
	// URI names the dataset, e.g. "file:///data/lake" or "s3://bucket/prefix/".
	// It is recorded in the index.
	URI() string

	// Objects yields every object of the dataset exactly once, in strictly
	// increasing bytewise order of Key, without holding the whole listing
	// in memory.
	//
	// A problem with one object (a special file, an unreadable directory, a
	// key that fails lakeproof.CheckKey) is yielded as a non-nil error of type
	// *ObjectError, in key order where the key is known, and the sequence
	// goes on. Any other error ends the sequence: it is the last pair yielded.
	// Objects may be called more than once, also concurrently (the CLI runs
	// a second listing to estimate the total for its progress bar); each
	// call is an independent listing.
	Objects(ctx context.Context) iter.Seq2[Object, error]

	// Open opens obj, as listed by Objects, for reading its content. It is
	// safe for concurrent use. The returned reader yields exactly obj.Size
	// bytes or fails; it may also implement io.ReaderAt for parallel reads.
	// Close reports an error wrapping ErrChanged if the object was modified,
	// replaced or removed between listing and Close: content read from a
	// changed object must never be trusted. Open returns an error wrapping
	// ErrNotFound if the object disappeared since listing.
	Open(ctx context.Context, obj Object) (io.ReadCloser, error)
}

// Sentinel errors for decisions. Drivers wrap them; callers use errors.Is.
var (
	// ErrChanged means an object changed while it was being read.
	ErrChanged = errors.New("object changed while being read")
	// ErrNotFound means an object disappeared after it was listed.
	ErrNotFound = errors.New("object not found")
	// ErrUnsupported means an object of a kind lakeproof cannot hash
	// (device, socket, FIFO, symlink when links are not followed).
	ErrUnsupported = errors.New("unsupported object type")
)

// ObjectError is a problem with one object. The run goes on so that every
// such problem is reported, but the index is only published if the caller
// asked to skip errors, in which case the errors are recorded in it.
type ObjectError struct {
	Key string // the dataset key, or the best available path when the key is invalid
	Op  string // what was being done: "list", "stat", "open", "read", "key"
	Err error
}

func (e *ObjectError) Error() string { return fmt.Sprintf("%s %q: %v", e.Op, e.Key, e.Err) }
func (e *ObjectError) Unwrap() error { return e.Err }
