package jobs

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/compact"

	"github.com/lakeproof/lakeproof"
	"github.com/lakeproof/lakeproof/index"
	"github.com/lakeproof/lakeproof/pipeline"
	"github.com/lakeproof/lakeproof/sources/local"
)

// makeLake creates n files of deterministic content and sizes in nested
// folders under dir and returns their keys.
func makeLake(t testing.TB, dir string, n int) []string {
	t.Helper()
	var keys []string
	for i := range n {
		key := fmt.Sprintf("d%02d/f%05d.bin", i%7, i)
		writeFile(t, filepath.Join(dir, key), content(i, (i*37)%3000))
		keys = append(keys, key)
	}
	return keys
}

func content(seed, size int) []byte {
	b := make([]byte, size)
	x := uint32(seed*2654435761 + 1)
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}

func writeFile(t testing.TB, path string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// bitRot rewrites a file's content keeping its size and modification time.
func bitRot(t testing.TB, path string) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) == 0 {
		t.Fatalf("bitRot: %s is empty", path)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, st.ModTime(), st.ModTime()); err != nil {
		t.Fatal(err)
	}
}

// touchLater sets a file's mtime into the future so metadata shows a change.
func touchLater(t testing.TB, path string) {
	t.Helper()
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(path, later, later); err != nil {
		t.Fatal(err)
	}
}

func openLocal(t testing.TB, dir string) pipeline.Source {
	t.Helper()
	src, err := local.New(dir, local.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	return src
}

// fullIndex indexes dir from scratch into out and returns the result.
func fullIndex(t testing.TB, dir, out string) *IndexResult {
	t.Helper()
	res, err := Index(context.Background(), openLocal(t, dir), IndexOptions{Out: out, Tool: "test", Workers: 3})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func entries(t testing.TB, dir string) []index.Entry {
	t.Helper()
	ix, err := index.Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	if err := ix.Check(context.Background()); err != nil {
		t.Fatalf("index %s does not check: %v", dir, err)
	}
	var out []index.Entry
	for e, err := range ix.Entries(context.Background(), "") {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

func rootOf(t testing.TB, dir string) lakeproof.Hash {
	t.Helper()
	ix, err := index.Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	return ix.Summary().Root
}

func newRange() *compact.Range {
	rf := compact.RangeFactory{Hash: lakeproof.Hasher.HashChildren}
	return rf.NewEmptyRange(0)
}
