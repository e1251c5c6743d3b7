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
	return func(yield func(pipeline.Object, error) bool) {
		if err := ctx.Err(); err != nil {
			yield(pipeline.Object{}, fmt.Errorf("listing %s: %w", s.uri, err))
			return
		}
		root, err := s.readDir(s.rootPath, "", true)
		if err != nil {
			yield(pipeline.Object{}, fmt.Errorf("listing %s: cannot read the dataset root: %w", s.uri, err))
			return
		}
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
			if visited++; visited%ctxCheckEvery == 0 {
				if err := ctx.Err(); err != nil {
					yield(pipeline.Object{}, fmt.Errorf("listing %s: %w", s.uri, err))
					return
				}
			}
			key := top.prefix + e.name
			path := join(top.path, e.name)
			var oerr *pipeline.ObjectError
			switch {
			case e.err != nil:
				oerr = s.statError(key, path, e)
			case e.kind == kindFile:
				if err := lakeproof.CheckKey(key); err != nil {
					oerr = &pipeline.ObjectError{Key: key, Op: "key", Err: fmt.Errorf(
						"file %q cannot be indexed: %w", path, err)}
					break
				}
				if key <= last && last != "" {
					// Unreachable unless the filesystem returns a name twice
					// in one directory, which readDir guards against.
					yield(pipeline.Object{}, fmt.Errorf("listing %s: internal error: key %q listed after %q", s.uri, key, last))
					return
				}
				last = key
				if !yield(pipeline.Object{Key: key, Size: e.size, ModTime: (&fileStat{mtime: e.mtime}).modTime()}, nil) {
					return
				}
			case e.kind == kindDir:
				f, err := s.enter(stack, key, path, e)
				if err != nil {
					oerr = err
				}
				if f != nil {
					stack = append(stack, f)
				}
			case e.kind == kindSymlink:
				oerr = &pipeline.ObjectError{Key: key, Op: "stat", Err: fmt.Errorf(
					"%w: %q is a symbolic link; lakeproof does not follow links unless --follow-symlinks is given",
					pipeline.ErrUnsupported, path)}
			default:
				what := e.kind.String()
				if e.link {
					what = "symbolic link to a " + what
				}
				oerr = &pipeline.ObjectError{Key: key, Op: "stat", Err: fmt.Errorf(
					"%w: %q is a %s; only regular files can be indexed", pipeline.ErrUnsupported, path, what)}
			}
			if oerr != nil && !yield(pipeline.Object{}, oerr) {
				return
			}
		}
	}
}

// statError reports an entry that could not be stat-ed.
func (s *Source) statError(key, path string, e *entry) *pipeline.ObjectError {
	err := e.err
	switch {
	case errors.Is(err, fs.ErrNotExist) && e.link:
		err = fmt.Errorf("%q is a broken symbolic link: %w", path, err)
	case errors.Is(err, fs.ErrNotExist):
		err = fmt.Errorf("%w: %q was removed while the dataset was being listed: %w", pipeline.ErrNotFound, path, err)
	}
	return &pipeline.ObjectError{Key: key, Op: "stat", Err: err}
}

// enter reads the directory e, at key and path, below the frames on stack.
// It returns the frame to push, if any, and the error to yield before the
// directory's entries, if any: an invalid directory name, a link loop or a
// directory that cannot be read (in part or at all). Errors are keyed with
// the directory's key and a trailing '/', which sorts before the keys of its
// entries.
func (s *Source) enter(stack []*frame, key, path string, e *entry) (*frame, *pipeline.ObjectError) {
	dirKey := key + "/"
	if err := lakeproof.CheckKey(key); err != nil {
		return nil, &pipeline.ObjectError{Key: dirKey, Op: "key", Err: fmt.Errorf(
			"directory %q cannot be indexed, nothing below it is listed; rename it: %w", path, err)}
	}
	f, err := s.readDir(path, dirKey, e.link)
	if f == nil {
		if errors.Is(err, fs.ErrNotExist) {
			err = fmt.Errorf("%w: directory %q was removed while the dataset was being listed: %w", pipeline.ErrNotFound, path, err)
		} else {
			err = fmt.Errorf("cannot read directory %q: %w", path, err)
		}
		return nil, &pipeline.ObjectError{Key: dirKey, Op: "list", Err: err}
	}
	for _, anc := range stack {
		if sameFile(anc.id, f.id) {
			ancKey := strings.TrimSuffix(anc.prefix, "/")
			if ancKey == "" {
				ancKey = "the dataset root"
			} else {
				ancKey = fmt.Sprintf("%q", ancKey)
			}
			return nil, &pipeline.ObjectError{Key: dirKey, Op: "list", Err: fmt.Errorf(
				"%q leads back to its own ancestor %s (a symbolic link loop); it is not walked", path, ancKey)}
		}
	}
	if err != nil {
		return f, &pipeline.ObjectError{Key: dirKey, Op: "list", Err: fmt.Errorf(
			"cannot read all of directory %q, only the entries read before the error are listed: %w", path, err)}
	}
	return f, nil
}

// readDir opens the directory at path and reads, stats and sorts its
// entries. follow says whether path itself may be a symbolic link. It
// returns a nil frame if the directory cannot be opened, and a frame with
// the entries read so far and an error if reading fails part way.
func (s *Source) readDir(path, prefix string, follow bool) (*frame, error) {
	d, err := openDir(path, follow || s.opts.FollowSymlinks)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	st, err := fstat(d)
	if err != nil {
		return nil, err
	}
	f := &frame{path: path, prefix: prefix, id: st.id}
	var readErr error
	for {
		des, err := d.ReadDir(readDirBatch)
		for _, de := range des {
			e := entry{name: de.Name(), kind: kindOf(de.Type())}
			switch e.kind {
			case kindFile:
				e.stat(d, path)
			case kindSymlink:
				if s.opts.FollowSymlinks {
					e.link = true
					e.stat(d, path)
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
	return f, readErr
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
