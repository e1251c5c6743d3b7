package local

import (
	"context"
	"fmt"
	"iter"
	"path/filepath"
	"strings"
	"time"

	"github.com/lakeproof/lakeproof"
	"github.com/lakeproof/lakeproof/pipeline"
)

// testHookOpenDir, if set (by tests), is called with the path of every
// directory the walk opens.
var testHookOpenDir func(path string)

// ObjectsRange is Objects restricted to the keys k with start ≤ k and, when
// end is not "", k < end, in the same order and with the same per-object
// errors (an error is in the range when its key is). It costs a listing of
// the range only: the walk descends straight to start, without opening any
// directory whose keys all sort before start (it still reads and stats the
// entries of each directory on the path to start), and stops at the first
// entry at or after end. Shards of a run use it to list only their range.
func (s *Source) ObjectsRange(ctx context.Context, start, end string) iter.Seq2[pipeline.Object, error] {
	return s.walk(ctx, start, end)
}

// sortKey is the key of e in a directory whose entries have keys prefix+name,
// with a '/' appended for a directory: every key below the directory sorts
// at or after it, and before the sortKey of the next entry.
func (e *entry) sortKey(prefix string) string {
	if e.kind == kindDir && e.err == nil {
		return prefix + e.name + "/"
	}
	return prefix + e.name
}

// skipBelow advances f past the entries whose keys, and for a directory the
// keys of everything below it, all sort before start. Entries are in key
// order (compareEntries), so they are a prefix of f.entries.
func (f *frame) skipBelow(start string) {
	for start != "" && f.next < len(f.entries) {
		e := &f.entries[f.next]
		k := e.sortKey(f.prefix)
		if k >= start || (strings.HasSuffix(k, "/") && strings.HasPrefix(start, k)) {
			return // e is at or after start, or start is below directory e
		}
		f.next++
	}
}

// Children lists the entries directly in the directory dir of the dataset
// (a key ending in '/', or "" for the root), in key order: a regular file
// with its size and modification time, a directory as a key ending in '/'
// (size 0), anything Objects would report as an error by its key (size 0).
// It is one directory read, for planning shards without listing the whole
// dataset.
func (s *Source) Children(ctx context.Context, dir string) iter.Seq2[pipeline.Object, error] {
	return func(yield func(pipeline.Object, error) bool) {
		if dir != "" && (!strings.HasSuffix(dir, "/") || lakeproof.CheckKey(strings.TrimSuffix(dir, "/")) != nil) {
			yield(pipeline.Object{}, fmt.Errorf("list %s: %q is not a directory key", s.uri, dir))
			return
		}
		path := filepath.Join(s.rootPath, filepath.FromSlash(dir))
		f, d, err := s.openFrame(path, dir, dir == "" || s.opts.FollowSymlinks)
		if err == nil {
			err = s.readEntries(ctx, d, f)
			d.Close()
		}
		if err != nil {
			yield(pipeline.Object{}, fmt.Errorf("list %s: directory %q: %w", s.uri, dir, err))
			return
		}
		for i := range f.entries {
			e := &f.entries[i]
			c := pipeline.Object{Key: e.sortKey(dir)}
			if e.kind == kindFile && e.err == nil {
				c.Size, c.ModTime = e.size, time.Unix(0, e.mtime).UTC()
			}
			if !yield(c, nil) {
				return
			}
		}
	}
}
