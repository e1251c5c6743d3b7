package local_test

import (
	"context"
	"errors"
	"io"
	"os"
	"testing"
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
