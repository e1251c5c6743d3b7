package local_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lakeproof/lakeproof"
	"github.com/lakeproof/lakeproof/pipeline"
	"github.com/lakeproof/lakeproof/sources/local"
)

func TestNew(t *testing.T) {
	dir := t.TempDir()
	makeTree(t, dir, map[string]string{"lake/x": "x", "file": "f"})
	if err := os.Symlink("lake", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("nowhere", filepath.Join(dir, "dangling")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, root string
		wantErr    string // "" for success
	}{
		{"directory", filepath.Join(dir, "lake"), ""},
		{"symlink to directory", filepath.Join(dir, "link"), ""},
		{"nonexistent", filepath.Join(dir, "missing"), "does not exist"},
		{"file", filepath.Join(dir, "file"), "is not a directory"},
		{"dangling symlink", filepath.Join(dir, "dangling"), "does not exist"},
		{"empty path", "", "empty path"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src, err := local.New(tc.root, local.Options{})
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("New(%q): %v", tc.root, err)
				}
				defer src.Close()
				if got := list(t, src).keys(); !slices.Equal(got, []string{"x"}) {
					t.Errorf("keys = %q, want [x]", got)
				}
				return
			}
			if err == nil {
				src.Close()
				t.Fatalf("New(%q) succeeded, want error containing %q", tc.root, tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.wantErr) || (tc.root != "" && !strings.Contains(err.Error(), fmt.Sprintf("%q", tc.root))) {
				t.Errorf("New(%q) = %q, want it to name the path and say %q", tc.root, err, tc.wantErr)
			}
		})
	}
}

func TestURI(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "my lake é")
	makeTree(t, dir, map[string]string{"x": ""})
	src := newSource(t, dir, local.Options{})
	want := "file://" + strings.ReplaceAll(filepath.ToSlash(dir), " ", "%20")
	want = strings.ReplaceAll(want, "é", "%C3%A9")
	if got := src.URI(); got != want {
		t.Errorf("URI() = %q, want %q", got, want)
	}
}

func TestEmptyDir(t *testing.T) {
	src := newSource(t, t.TempDir(), local.Options{})
	if l := list(t, src); len(l) != 0 {
		t.Errorf("empty directory listed %d items: %v", len(l), l)
	}
	dir := t.TempDir()
	makeTree(t, dir, map[string]string{"a/": "", "a/b/c/": "", "d/": ""})
	if l := list(t, newSource(t, dir, local.Options{})); len(l) != 0 {
		t.Errorf("tree of empty directories listed %d items: %v", len(l), l)
	}
}

// TestOrder pins the bytewise order on names where a per-directory walk
// sorted by name would differ.
func TestOrder(t *testing.T) {
	files := map[string]string{
		"a/x": "1", "a/b": "22", "a.txt": "333", "a-b": "", "a b": "", "a+b": "", "a%20b": "",
		"a/b.c/d": "", "ab": "", "z": "", "zero": "", "é": "", "日本/語.txt": "",
		"q/b/x": "", "q/b-c": "", "q/b.d": "", "empty/": "",
	}
	want := []string{
		"a b", "a%20b", "a+b", "a-b", "a.txt", "a/b", "a/b.c/d", "a/x", "ab",
		"q/b-c", "q/b.d", "q/b/x", "z", "zero", "é", "日本/語.txt",
	}
	dir := t.TempDir()
	makeTree(t, dir, files)
	l := list(t, newSource(t, dir, local.Options{}))
	if got := l.keys(); !slices.Equal(got, want) {
		t.Fatalf("keys:\n got %q\nwant %q", got, want)
	}
	if errs := l.errs(); len(errs) != 0 {
		t.Errorf("unexpected errors: %v", errs)
	}
	for _, it := range l {
		fi, err := os.Stat(filepath.Join(dir, filepath.FromSlash(it.obj.Key)))
		if err != nil {
			t.Fatal(err)
		}
		if it.obj.Size != fi.Size() || !it.obj.ModTime.Equal(fi.ModTime()) {
			t.Errorf("%q: size %d mtime %v, want %d %v", it.obj.Key, it.obj.Size, it.obj.ModTime, fi.Size(), fi.ModTime())
		}
		if it.obj.ETag != "" || it.obj.VersionID != "" || it.obj.Checksum != "" {
			t.Errorf("%q: provider fields set: %+v", it.obj.Key, it.obj)
		}
	}
}

// trickyNames are name parts chosen to sort around '/' (0x2F) and to cover
// spaces, bytes that look like escapes, and multi-byte UTF-8.
var trickyNames = []string{
	"a", "a.txt", "a-b", "a b", "a+", "a%2F", "a0", "a.", "a_", "a~", "b", "A", "Z",
	"é", "e\u0301", "日本", "\U0001F600", "+", "%", "-", ".x", "ab", "a\u00a0",
}

// genTree creates a random tree of depth at most depth under dir; the
// reference listing is then computed from the filesystem.
func genTree(t *testing.T, r *rand.Rand, dir string, depth int) {
	n := r.IntN(7)
	for range n {
		name := trickyNames[r.IntN(len(trickyNames))]
		if r.IntN(4) == 0 {
			name += trickyNames[r.IntN(len(trickyNames))]
		}
		p := filepath.Join(dir, name)
		if _, err := os.Lstat(p); err == nil {
			continue
		}
		if depth > 0 && r.IntN(3) == 0 {
			if err := os.Mkdir(p, 0o755); err != nil {
				t.Fatal(err)
			}
			genTree(t, r, p, depth-1)
			continue
		}
		if err := os.WriteFile(p, make([]byte, r.IntN(3)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// naiveKeys is the reference: collect every regular file's key, then sort
// bytewise.
func naiveKeys(t *testing.T, root string) []string {
	var keys []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			rel, err := filepath.Rel(root, p)
			if err != nil {
				return err
			}
			keys = append(keys, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(keys) // string comparison in Go is bytewise
	return keys
}

func TestOrderProperty(t *testing.T) {
	seeds := []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20}
	seeds = append(seeds, uint64(time.Now().UnixNano()))
	var total int
	for _, seed := range seeds {
		r := rand.New(rand.NewPCG(seed, 0))
		dir := t.TempDir()
		for range 3 { // a few passes so that directories get several entries
			genTree(t, r, dir, 4)
		}
		want := naiveKeys(t, dir)
		total += len(want)
		l := list(t, newSource(t, dir, local.Options{}))
		if errs := l.errs(); len(errs) != 0 {
			t.Errorf("seed %d: unexpected errors %v", seed, errs)
		}
		if got := l.keys(); !slices.Equal(got, want) {
			t.Errorf("seed %d: keys differ from the sorted reference\n got %q\nwant %q", seed, got, want)
		}
	}
	if total < 200 {
		t.Errorf("generated trees hold only %d files in all; the generator is too sparse to test anything", total)
	}
}

// TestDeepNesting lists a chain of 200 nested directories with a file on
// each level whose name sorts before and after the subdirectory.
func TestDeepNesting(t *testing.T) {
	dir := t.TempDir()
	p := dir
	for range 200 {
		makeTree(t, p, map[string]string{"d.txt": "x", "d0": "", "d-": ""})
		p = filepath.Join(p, "d")
	}
	makeTree(t, p, map[string]string{"leaf": ""})
	want := naiveKeys(t, dir)
	if len(want) != 601 {
		t.Fatalf("reference lists %d files, want 601", len(want))
	}
	if got := list(t, newSource(t, dir, local.Options{})).keys(); !slices.Equal(got, want) {
		t.Errorf("keys differ from the sorted reference\n got %q\nwant %q", got, want)
	}
}

func TestKeyErrors(t *testing.T) {
	long := func(c string) string { return strings.Repeat(c, 250) }
	deep := long("a") + "/" + long("b") + "/" + long("c") + "/" + long("d") // 1003 bytes
	dir := t.TempDir()
	files := map[string]string{
		"good1":                              "",
		"new\nline":                          "",
		"tab\tname":                          "",
		"bad\xffutf8":                        "",
		"del\x7f":                            "",
		"bad\xfedir/inner":                   "",
		"good2":                              "",
		deep + "/ok":                         "",
		deep + "/" + strings.Repeat("x", 30): "",
		deep + "/" + long("e") + "/below-too-long": "",
		"zz": "",
	}
	makeTree(t, dir, files)
	l := list(t, newSource(t, dir, local.Options{}))
	wantKeys := []string{deep + "/ok", "good1", "good2", "zz"}
	if got := l.keys(); !slices.Equal(got, wantKeys) {
		t.Errorf("keys = %q, want %q", got, wantKeys)
	}
	for _, tc := range []struct{ key, path, reason string }{
		{"new\nline", "new\nline", "control character 0x0a"},
		{"tab\tname", "tab\tname", "control character 0x09"},
		{"del\x7f", "del\x7f", "control character 0x7f"},
		{"bad\xffutf8", "bad\xffutf8", "not valid UTF-8; rename"},
		{"bad\xfedir/", "bad\xfedir", "nothing below it is listed: invalid key \"bad\\xfedir\": not valid UTF-8; rename"},
		{deep + "/" + strings.Repeat("x", 30), deep + "/" + strings.Repeat("x", 30), "longer than 1024 bytes; shorten its path"},
		{deep + "/" + long("e") + "/", deep + "/" + long("e"), "longer than 1024 bytes; shorten its path"},
	} {
		e := l.errFor(t, tc.key)
		msg := e.Error()
		if e.Op != "key" || !errors.Is(e, lakeproof.ErrInvalidKey) {
			t.Errorf("%q: Op %q, Is(ErrInvalidKey)=%v; want key error", tc.key, e.Op, errors.Is(e, lakeproof.ErrInvalidKey))
		}
		if !strings.Contains(msg, fmt.Sprintf("%q", filepath.Join(dir, tc.path))) || !strings.Contains(msg, tc.reason) {
			t.Errorf("%q: message %q should quote the path and say %q", tc.key, msg, tc.reason)
		}
	}
	if n := len(l.errs()); n != 7 {
		t.Errorf("%d errors, want 7: %v", n, l.errs())
	}
}

func TestSymlinks(t *testing.T) {
	dir := t.TempDir()
	makeTree(t, dir, map[string]string{"real/x": "xx", "target.txt": "0123456789", "d/f": ""})
	outside := t.TempDir() // a directory outside the root: with following, its contents are listed too
	makeTree(t, outside, map[string]string{"o": "o"})
	for link, target := range map[string]string{
		"file-link":      "target.txt",
		"dir-link":       "real",
		"d/loop":         "..",
		"d/self":         ".",
		"dangling":       "nowhere",
		"outside":        outside,
		"real/back-link": "../real",
	} {
		if err := os.Symlink(target, filepath.Join(dir, filepath.FromSlash(link))); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("default", func(t *testing.T) {
		l := list(t, newSource(t, dir, local.Options{}))
		if got, want := l.keys(), []string{"d/f", "real/x", "target.txt"}; !slices.Equal(got, want) {
			t.Errorf("keys = %q, want %q", got, want)
		}
		for _, key := range []string{"d/loop", "d/self", "dangling", "dir-link", "file-link", "outside", "real/back-link"} {
			e := l.errFor(t, key)
			if !errors.Is(e, pipeline.ErrUnsupported) || !strings.Contains(e.Error(), "--follow-symlinks") {
				t.Errorf("%q: %v; want ErrUnsupported mentioning --follow-symlinks", key, e)
			}
		}
		if n := len(l.errs()); n != 7 {
			t.Errorf("%d errors, want 7: %v", n, l.errs())
		}
	})

	t.Run("follow", func(t *testing.T) {
		l := list(t, newSource(t, dir, local.Options{FollowSymlinks: true}))
		want := []string{"d/f", "dir-link/x", "file-link", "outside/o", "real/x", "target.txt"}
		if got := l.keys(); !slices.Equal(got, want) {
			t.Errorf("keys = %q, want %q", got, want)
		}
		if obj := l.object(t, "file-link"); obj.Size != 10 {
			t.Errorf("file-link size %d, want the target's 10", obj.Size)
		}
		for _, tc := range []struct{ key, msg string }{
			{"d/loop/", "the dataset root (a directory loop)"},
			{"d/self/", `ancestor "d" (a directory loop)`},
			{"dir-link/back-link/", `ancestor "dir-link" (a directory loop)`},
			{"real/back-link/", `ancestor "real" (a directory loop)`},
			{"dangling", "broken symbolic link"},
		} {
			e := l.errFor(t, tc.key)
			if !strings.Contains(e.Error(), tc.msg) {
				t.Errorf("%q: %q, want it to say %q", tc.key, e, tc.msg)
			}
		}
		if n := len(l.errs()); n != 5 {
			t.Errorf("%d errors, want 5: %v", n, l.errs())
		}
		// Objects reached through links open and read like any other.
		src := newSource(t, dir, local.Options{FollowSymlinks: true})
		if got := readAll(t, src, l.object(t, "file-link")); got != "0123456789" {
			t.Errorf("file-link content %q", got)
		}
	})
}

func TestCancel(t *testing.T) {
	dir, _ := fastTempDir(t)
	makeFlatTree(t, dir, 3, 1000)
	src := newSource(t, dir, local.Options{})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var n int
	var last error
	for _, err := range src.Objects(ctx) {
		if last != nil {
			t.Fatalf("pair yielded after the error %v", last)
		}
		n++
		if n == 10 {
			cancel()
		}
		if err != nil {
			last = err
		}
	}
	if !errors.Is(last, context.Canceled) {
		t.Fatalf("last error = %v, want context.Canceled", last)
	}
	if n > 10+300 {
		t.Errorf("%d pairs yielded after cancel; want the listing to stop promptly", n-10)
	}

	var pairs int
	for _, err := range src.Objects(ctx) { // already cancelled
		pairs++
		if !errors.Is(err, context.Canceled) {
			t.Errorf("got %v, want context.Canceled", err)
		}
	}
	if pairs != 1 {
		t.Errorf("cancelled context: %d pairs, want 1", pairs)
	}
}

func TestEarlyBreak(t *testing.T) {
	dir := t.TempDir()
	makeTree(t, dir, map[string]string{"a/b/c": "", "a/b/d": "", "e": ""})
	src := newSource(t, dir, local.Options{})
	for range src.Objects(context.Background()) {
		break
	}
	// A Source can be listed again after a listing that was stopped early.
	if got := list(t, src).keys(); !slices.Equal(got, []string{"a/b/c", "a/b/d", "e"}) {
		t.Errorf("keys = %q", got)
	}
}
