package local_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lakeproof/lakeproof/pipeline"
	"github.com/lakeproof/lakeproof/sources/local"
)

// readAll opens obj, reads it to the end and closes it, failing the test on
// any error.
func readAll(t *testing.T, src *local.Source, obj pipeline.Object) string {
	t.Helper()
	rc, err := src.Open(context.Background(), obj)
	if err != nil {
		t.Fatalf("Open(%q): %v", obj.Key, err)
	}
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %q: %v", obj.Key, err)
	}
	if err := rc.Close(); err != nil {
		t.Fatalf("Close(%q): %v", obj.Key, err)
	}
	return string(b)
}

// listOne lists dir, which must hold a regular file with key, and returns
// the Source and that file's object.
func listOne(t *testing.T, dir, key string) (*local.Source, pipeline.Object) {
	t.Helper()
	src := newSource(t, dir, local.Options{})
	return src, list(t, src).object(t, key)
}

func TestOpenRead(t *testing.T) {
	content := strings.Repeat("0123456789abcdef", 40000) // 640000 bytes: above the fadvise threshold
	dir := t.TempDir()
	makeTree(t, dir, map[string]string{"big": content, "empty": "", "d/small": "hi"})
	src := newSource(t, dir, local.Options{})
	l := list(t, src)
	for _, key := range []string{"big", "empty", "d/small"} {
		want, _ := os.ReadFile(filepath.Join(dir, key))
		if got := readAll(t, src, l.object(t, key)); got != string(want) {
			t.Errorf("%q: read %d bytes, want %d", key, len(got), len(want))
		}
	}

	// ReadAt, concurrently, in chunks that do not divide the size.
	obj := l.object(t, "big")
	rc, err := src.Open(context.Background(), obj)
	if err != nil {
		t.Fatal(err)
	}
	ra, ok := rc.(io.ReaderAt)
	if !ok {
		t.Fatalf("reader %T does not implement io.ReaderAt", rc)
	}
	got := make([]byte, len(content))
	const chunk = 100003
	var wg sync.WaitGroup
	for off := 0; off < len(content); off += chunk {
		wg.Go(func() {
			end := min(off+chunk, len(content))
			n, err := ra.ReadAt(got[off:end], int64(off))
			if n != end-off || (err != nil && !(err == io.EOF && end == len(content))) {
				t.Errorf("ReadAt(%d, %d) = %d, %v", end-off, off, n, err)
			}
		})
	}
	wg.Wait()
	if !bytes.Equal(got, []byte(content)) {
		t.Error("ReadAt chunks differ from the content")
	}
	// ReadAt across and past the listed end.
	buf := make([]byte, 10)
	if n, err := ra.ReadAt(buf, obj.Size-3); n != 3 || err != io.EOF || string(buf[:3]) != "def" {
		t.Errorf("ReadAt across the end = %d, %v, %q; want 3, EOF, \"def\"", n, err, buf[:n])
	}
	if n, err := ra.ReadAt(buf, obj.Size); n != 0 || err != io.EOF {
		t.Errorf("ReadAt at the end = %d, %v; want 0, EOF", n, err)
	}
	if _, err := ra.ReadAt(buf, -1); err == nil {
		t.Error("ReadAt at a negative offset succeeded")
	}
	if err := rc.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := rc.Close(); err != nil {
		t.Errorf("second Close: %v, want the first result again", err)
	}
}

// TestOpenChanged covers files changed between listing and Open, and between
// Open and Close.
func TestOpenChanged(t *testing.T) {
	const content = "the original content"
	past := time.Date(2020, 1, 2, 3, 4, 5, 6000, time.UTC)
	for _, tc := range []struct {
		name string
		// before runs between listing and Open; during between Open and Close.
		before, during func(t *testing.T, path string)
		wantOpen       error // sentinel Open's error must wrap; nil for success
		wantRead       error // sentinel the read error must wrap; nil for success
		wantClose      error // sentinel Close's error must wrap; nil for success
		closeMsg       string
	}{
		{name: "unchanged"},
		{
			name:     "grown before open",
			before:   func(t *testing.T, p string) { appendTo(t, p, "more") },
			wantOpen: pipeline.ErrChanged,
		},
		{
			name:     "mtime changed before open",
			before:   func(t *testing.T, p string) { chtimes(t, p, past) },
			wantOpen: pipeline.ErrChanged,
		},
		{
			name:     "deleted before open",
			before:   func(t *testing.T, p string) { remove(t, p) },
			wantOpen: pipeline.ErrNotFound,
		},
		{
			name:      "grows while read",
			during:    func(t *testing.T, p string) { appendTo(t, p, "appended while hashing") },
			wantClose: pipeline.ErrChanged,
			closeMsg:  "size went from 20 to 42",
		},
		{
			name:      "mtime changes while read",
			during:    func(t *testing.T, p string) { chtimes(t, p, past) },
			wantClose: pipeline.ErrChanged,
			closeMsg:  "modification time went from",
		},
		{
			name:      "truncated while read",
			during:    func(t *testing.T, p string) { truncate(t, p, 5) },
			wantRead:  pipeline.ErrChanged,
			wantClose: pipeline.ErrChanged,
		},
		{
			name:      "deleted while read",
			during:    func(t *testing.T, p string) { remove(t, p) },
			wantClose: pipeline.ErrChanged,
			closeMsg:  "it was removed",
		},
		{
			name: "replaced while read",
			during: func(t *testing.T, p string) {
				fi, err := os.Stat(p)
				if err != nil {
					t.Fatal(err)
				}
				other := p + ".new"
				if err := os.WriteFile(other, []byte(strings.ToUpper(content)), 0o644); err != nil {
					t.Fatal(err)
				}
				chtimes(t, other, fi.ModTime())
				if err := os.Rename(other, p); err != nil {
					t.Fatal(err)
				}
			},
			wantClose: pipeline.ErrChanged,
			closeMsg:  "replaced by another regular file",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			makeTree(t, dir, map[string]string{"f": content})
			path := filepath.Join(dir, "f")
			src, obj := listOne(t, dir, "f")
			if tc.before != nil {
				tc.before(t, path)
			}
			rc, err := src.Open(context.Background(), obj)
			if tc.wantOpen != nil {
				checkErr(t, "Open", err, tc.wantOpen, "")
				if rc != nil {
					t.Error("Open returned a reader with its error")
				}
				return
			}
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if tc.during != nil {
				tc.during(t, path)
			}
			b, err := io.ReadAll(rc)
			if tc.wantRead != nil {
				checkErr(t, "read", err, tc.wantRead, "")
			} else if err != nil {
				t.Errorf("read: %v", err)
			} else if string(b) != content {
				// A file that grew still yields exactly the listed bytes.
				t.Errorf("read %q, want exactly the listed %q", b, content)
			}
			err = rc.Close()
			if tc.wantClose != nil {
				checkErr(t, "Close", err, tc.wantClose, tc.closeMsg)
			} else if err != nil {
				t.Errorf("Close: %v", err)
			}
		})
	}
}

// checkErr checks that err wraps want and names the file f by its path.
func checkErr(t *testing.T, what string, err, want error, msg string) {
	t.Helper()
	switch {
	case err == nil:
		t.Errorf("%s succeeded, want an error wrapping %v", what, want)
	case !errors.Is(err, want):
		t.Errorf("%s: %v, want an error wrapping %v", what, err, want)
	case !strings.Contains(err.Error(), string(filepath.Separator)+`f"`):
		t.Errorf("%s: %q does not name the file's path", what, err)
	case !strings.Contains(err.Error(), msg):
		t.Errorf("%s: %q, want it to say %q", what, err, msg)
	}
}

func appendTo(t *testing.T, path, s string) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func chtimes(t *testing.T, path string, mtime time.Time) {
	if err := os.Chtimes(path, mtime, mtime); err != nil {
		t.Fatal(err)
	}
}

func remove(t *testing.T, path string) {
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
}

func truncate(t *testing.T, path string, size int64) {
	if err := os.Truncate(path, size); err != nil {
		t.Fatal(err)
	}
}

func TestOpenSymlinkSwappedIn(t *testing.T) {
	dir := t.TempDir()
	makeTree(t, dir, map[string]string{"f": "content", "other": "CONTENT"})
	src, obj := listOne(t, dir, "f")
	// Replace f by a link to a file with the same size and mtime: only the
	// refusal to follow links catches it.
	chtimes(t, filepath.Join(dir, "other"), obj.ModTime)
	remove(t, filepath.Join(dir, "f"))
	if err := os.Symlink("other", filepath.Join(dir, "f")); err != nil {
		t.Fatal(err)
	}
	rc, err := src.Open(context.Background(), obj)
	if err == nil {
		rc.Close()
	}
	checkErr(t, "Open", err, pipeline.ErrChanged, "symbolic link")
}

func TestOpenBadKey(t *testing.T) {
	dir := t.TempDir()
	makeTree(t, dir, map[string]string{"f": "x"})
	src := newSource(t, dir, local.Options{FollowSymlinks: true})
	for _, key := range []string{"../f", "/etc/passwd", "", "a//b", "./f"} {
		if rc, err := src.Open(context.Background(), pipeline.Object{Key: key, Size: 1}); err == nil {
			rc.Close()
			t.Errorf("Open(%q) succeeded", key)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := src.Open(ctx, pipeline.Object{Key: "f", Size: 1}); !errors.Is(err, context.Canceled) {
		t.Errorf("Open with a cancelled context: %v", err)
	}
	src.Close()
	if _, err := src.Open(context.Background(), pipeline.Object{Key: "f", Size: 1}); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Open after Close: %v, want os.ErrClosed", err)
	}
}

// TestOpenConcurrent opens and reads many files at once (run with -race).
func TestOpenConcurrent(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{}
	for i := range 64 {
		files[string(rune('a'+i%26))+"/"+strings.Repeat("x", i+1)] = strings.Repeat("y", i*1000)
	}
	makeTree(t, dir, files)
	src := newSource(t, dir, local.Options{})
	l := list(t, src)
	var wg sync.WaitGroup
	for _, it := range l {
		wg.Go(func() {
			rc, err := src.Open(context.Background(), it.obj)
			if err != nil {
				t.Error(err)
				return
			}
			n, err := io.Copy(io.Discard, rc)
			if err != nil || n != it.obj.Size {
				t.Errorf("%q: read %d, %v; want %d", it.obj.Key, n, err, it.obj.Size)
			}
			if err := rc.Close(); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
}
