package local_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/lakeproof/lakeproof/pipeline"
)

// TestReadAfterClose checks that a closed reader fails instead of reading
// through a descriptor number the process may have reused.
func TestReadAfterClose(t *testing.T) {
	dir := t.TempDir()
	makeTree(t, dir, map[string]string{"f": "hello"})
	src, obj := listOne(t, dir, "f")
	rc, err := src.Open(context.Background(), obj)
	if err != nil {
		t.Fatal(err)
	}
	if err := rc.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := rc.Read(make([]byte, 5)); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Read after Close: %v, want os.ErrClosed", err)
	}
	if _, err := rc.(io.ReaderAt).ReadAt(make([]byte, 5), 0); !errors.Is(err, os.ErrClosed) {
		t.Errorf("ReadAt after Close: %v, want os.ErrClosed", err)
	}
}

// TestDirectoryReplacedWhileRead renames the directory holding a file while
// the file is read and puts an identical copy (same content, size and
// modification time) at the old path. The file read is untouched, inode
// change time included, so only Close's check by path can see that the key
// now names another file; it must report the change.
func TestDirectoryReplacedWhileRead(t *testing.T) {
	const content = "the original content"
	dir := t.TempDir()
	makeTree(t, dir, map[string]string{"d/f": content})
	src, obj := listOne(t, dir, "d/f")
	rc, err := src.Open(context.Background(), obj)
	if err != nil {
		t.Fatal(err)
	}
	d := filepath.Join(dir, "d")
	if err := os.Rename(d, d+".old"); err != nil {
		t.Fatal(err)
	}
	makeTree(t, dir, map[string]string{"d/f": content})
	chtimes(t, filepath.Join(d, "f"), obj.ModTime)
	if b, err := io.ReadAll(rc); err != nil || string(b) != content {
		t.Fatalf("read %q, %v; want %q", b, err, content)
	}
	checkErr(t, "Close", rc.Close(), pipeline.ErrChanged, "replaced by another regular file")
}
