package local

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/lakeproof/lakeproof"
	"github.com/lakeproof/lakeproof/pipeline"
)

// readDirBatch is how many entries are read from a directory at a time; the
// whole directory is still held, sorted, until the walk leaves it.
const readDirBatch = 1024

// ctxCheckEvery is how often, in entries, the listing polls ctx.
const ctxCheckEvery = 256

// entry is one entry of a directory being walked.
type entry struct {
	name  string
	kind  kind  // after following a link, if links are followed
	link  bool  // reached through a symbolic link (FollowSymlinks only)
	size  int64 // regular files only
	mtime int64 // regular files only, Unix nanoseconds
	err   error // stat failed: the entry is reported, not walked
}

// compareEntries orders the entries of one directory so that walking them
// in that order yields keys in bytewise order: by name, with a '/' appended
// to the name of a directory (every key below directory d starts with
// "d/"). Names contain no '/', so two distinct names never compare equal.
func compareEntries(a, b entry) int {
	n := min(len(a.name), len(b.name))
	if c := strings.Compare(a.name[:n], b.name[:n]); c != 0 {
		return c
	}
	return cmp.Compare(a.byteAt(n), b.byteAt(n))
}

// byteAt returns byte i of the entry's sort name (its name, plus '/' for a
// directory), or -1 past its end.
func (e *entry) byteAt(i int) int {
	switch {
	case i < len(e.name):
		return int(e.name[i])
	case i == len(e.name) && e.kind == kindDir:
		return '/'
	}
	return -1
}

// frame is a directory on the walk's current path.
type frame struct {
	path    string // filesystem path of the directory
	prefix  string // key prefix of its entries: "" for the root, else "a/b/"
	id      fileID // for symbolic link loop detection
	entries []entry
	next    int // index of the next entry to visit
}

// Objects yields the regular files under the root in strictly increasing
// bytewise order of key, as pipeline.Source requires; see the package
// documentation for the order, the memory bound and the errors yielded.
//
// The sequence ends early, with an error wrapping ctx.Err() as its last pair,
// when ctx is done, and with an error naming the root if the root cannot be
// read. Objects must not be called concurrently with itself.
func (s *Source) Objects(ctx context.Context) iter.Seq2[pipeline.Object, error] {
	return s.walk(ctx, "", "")
}

// walk is Objects restricted to the keys in [start, end) (end "" = no end;
// see ObjectsRange): subtrees entirely below start are neither opened nor
// read, and the walk stops at the first key at or after end.
func (s *Source) walk(ctx context.Context, start, end string) iter.Seq2[pipeline.Object, error] {
	return func(yield func(pipeline.Object, error) bool) {
		fatal := func(err error) { yield(pipeline.Object{}, fmt.Errorf("listing %s: %w", s.uri, err)) }
		if err := ctx.Err(); err != nil {
			fatal(err)
			return
		}
		root, d, err := s.openFrame(s.rootPath, "", true)
		if err == nil {
			err = s.readEntries(ctx, d, root)
			d.Close()
		}
		if err != nil {
			if ctx.Err() == nil {
				err = fmt.Errorf("cannot read the dataset root: %w", err)
			}
			fatal(err)
			return
		}
		root.skipBelow(start)
		stack := []*frame{root}
		var last string // the last key yielded, to check the order
		var visited int
		for len(stack) > 0 {
			top := stack[len(stack)-1]
			if top.next == len(top.entries) {
				stack[len(stack)-1] = nil
				stack = stack[:len(stack)-1]
				continue
			}
			e := &top.entries[top.next]
			top.next++
			if end != "" && e.sortKey(top.prefix) >= end {
				return
			}
			if visited++; visited%ctxCheckEvery == 0 {
				if err := ctx.Err(); err != nil {
					fatal(err)
					return
				}
			}
			key := top.prefix + e.name
			var oerr *pipeline.ObjectError
			switch {
			case e.err != nil:
				oerr = statError(key, join(top.path, e.name), e)
			case e.kind == kindFile:
				if err := lakeproof.CheckKey(key); err != nil {
					oerr = &pipeline.ObjectError{Key: key, Op: "key", Err: fmt.Errorf(
						"file %q cannot be indexed: %w%s", join(top.path, e.name), err, lengthHint(key))}
					break
				}
				if key <= last {
					// Unreachable unless the filesystem returns a name twice
					// in one directory, which readEntries guards against.
					fatal(fmt.Errorf("internal error: key %q listed after %q", key, last))
					return
				}
				last = key
				if !yield(pipeline.Object{Key: key, Size: e.size, ModTime: time.Unix(0, e.mtime).UTC()}, nil) {
					return
				}
			case e.kind == kindDir:
				f, dirErr, err := s.enter(ctx, stack, key, join(top.path, e.name), e)
				if err != nil {
					fatal(err)
					return
				}
				if f != nil {
					f.skipBelow(start)
					stack = append(stack, f)
				}
				oerr = dirErr
			case e.kind == kindSymlink:
				oerr = &pipeline.ObjectError{Key: key, Op: "stat", Err: fmt.Errorf(
					"%w: %q is a symbolic link; lakeproof does not follow links unless --follow-symlinks is given",
					pipeline.ErrUnsupported, join(top.path, e.name))}
			default:
				what := e.kind.String()
				if e.link {
					what = "symbolic link to a " + what
				}
				oerr = &pipeline.ObjectError{Key: key, Op: "stat", Err: fmt.Errorf(
					"%w: %q is a %s; only regular files can be indexed", pipeline.ErrUnsupported, join(top.path, e.name), what)}
			}
			if oerr != nil && !yield(pipeline.Object{}, oerr) {
				return
			}
		}
	}
}

// statError reports an entry that could not be stat-ed.
func statError(key, path string, e *entry) *pipeline.ObjectError {
	err := e.err
	switch {
	case errors.Is(err, fs.ErrNotExist) && e.link:
		err = fmt.Errorf("%q is a broken symbolic link: %w", path, err)
	case errors.Is(err, fs.ErrNotExist):
		err = fmt.Errorf("%w: %q was removed while the dataset was being listed: %w", pipeline.ErrNotFound, path, err)
	}
	return &pipeline.ObjectError{Key: key, Op: "stat", Err: err}
}

// lengthHint says what to do about a key that is too long.
func lengthHint(key string) string {
	if len(key) > lakeproof.MaxKeyLen {
		return "; shorten its path by renaming it or a directory above it"
	}
	return ""
}

// enter opens and reads the directory e, at key and path, below the frames
// on stack. It returns the frame to push, if any; the error to yield before
// the directory's entries, if any (an invalid directory name, a directory
// loop, a directory that cannot be read in part or at all), keyed with the
// directory's key and a trailing '/', which sorts before the keys of its
// entries; and a fatal error if ctx is done.
func (s *Source) enter(ctx context.Context, stack []*frame, key, path string, e *entry) (*frame, *pipeline.ObjectError, error) {
	dirKey := key + "/"
	if err := lakeproof.CheckKey(key); err != nil {
		return nil, &pipeline.ObjectError{Key: dirKey, Op: "key", Err: fmt.Errorf(
			"directory %q cannot be indexed, nothing below it is listed: %w%s", path, err, lengthHint(key))}, nil
	}
	f, d, err := s.openFrame(path, dirKey, e.link)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			err = fmt.Errorf("%w: directory %q was removed while the dataset was being listed: %w", pipeline.ErrNotFound, path, err)
		} else {
			err = fmt.Errorf("cannot read directory %q: %w", path, err)
		}
		return nil, &pipeline.ObjectError{Key: dirKey, Op: "list", Err: err}, nil
	}
	defer d.Close()
	for _, anc := range stack {
		if sameFile(anc.id, f.id) {
			ancKey := strings.TrimSuffix(anc.prefix, "/")
			if ancKey == "" {
				ancKey = "the dataset root"
			} else {
				ancKey = fmt.Sprintf("%q", ancKey)
			}
			return nil, &pipeline.ObjectError{Key: dirKey, Op: "list", Err: fmt.Errorf(
				"%q leads back to its own ancestor %s (a directory loop); it is not walked", path, ancKey)}, nil
		}
	}
	if err := s.readEntries(ctx, d, f); err != nil {
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		return f, &pipeline.ObjectError{Key: dirKey, Op: "list", Err: fmt.Errorf(
			"cannot read all of directory %q, only the entries read before the error are listed: %w", path, err)}, nil
	}
	return f, nil, nil
}

// openFrame opens the directory at path, whose entries have keys starting
// with prefix, and returns its frame, without entries yet, and the open
// directory. follow says whether path itself may be a symbolic link.
func (s *Source) openFrame(path, prefix string, follow bool) (*frame, *os.File, error) {
	if testHookOpenDir != nil {
		testHookOpenDir(path)
	}
	d, err := openDir(path, follow || s.opts.FollowSymlinks)
	if err != nil {
		return nil, nil, err
	}
	st, err := fstat(d)
	if err != nil {
		d.Close()
		return nil, nil, err
	}
	return &frame{path: path, prefix: prefix, id: st.id}, d, nil
}

// readEntries reads, stats and sorts the entries of the open directory d
// into f. If reading fails part way, f keeps the entries read so far and the
// error is returned; if ctx is done, ctx.Err() is returned.
func (s *Source) readEntries(ctx context.Context, d *os.File, f *frame) error {
	var readErr error
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		des, err := d.ReadDir(readDirBatch)
		for _, de := range des {
			e := entry{name: de.Name(), kind: kindOf(de.Type())}
			switch e.kind {
			case kindFile:
				e.stat(d, f.path)
			case kindSymlink:
				if s.opts.FollowSymlinks {
					e.link = true
					e.stat(d, f.path)
				}
			}
			f.entries = append(f.entries, e)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			readErr = err
			break
		}
	}
	slices.SortFunc(f.entries, compareEntries)
	// A directory read while entries are renamed in it may return a name
	// twice; keep one, or the same key would be listed twice.
	f.entries = slices.CompactFunc(f.entries, func(a, b entry) bool { return a.name == b.name })
	f.entries = slices.Clip(f.entries)
	return readErr
}

// stat fills in e's kind, size and mtime from a stat of the entry in the
// open directory d at dirPath, following it if it is a link to be followed.
func (e *entry) stat(d *os.File, dirPath string) {
	st, err := statAt(d, dirPath, e.name, e.link)
	if err != nil {
		e.err = err
		return
	}
	e.kind, e.size, e.mtime = st.kind, st.size, st.mtime
}

// join returns the path of name in directory dir.
func join(dir, name string) string {
	if strings.HasSuffix(dir, string(os.PathSeparator)) {
		return dir + name
	}
	return dir + string(os.PathSeparator) + name
}
