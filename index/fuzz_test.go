package index_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/lakeproof/lakeproof/index"
)

func FuzzParseSummary(f *testing.F) {
	dir := filepath.Join(f.TempDir(), "x.idx")
	writeIndex(f, dir, sortedEntries(3))
	raw, _ := os.ReadFile(filepath.Join(dir, index.SummaryFile))
	f.Add(raw)
	f.Add([]byte(`{"format":"lakeproof/index/v1"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		index.ParseSummary(data) // must not panic
	})
}

// FuzzIndexFiles replaces the Parquet file or a tree level of a valid index
// with fuzzed bytes: opening, proving, listing and checking must fail with
// ErrCorrupt or succeed with proofs that verify, never panic.
func FuzzIndexFiles(f *testing.F) {
	clean := filepath.Join(f.TempDir(), "clean.idx")
	es := sortedEntries(20)
	writeIndex(f, clean, es)
	pq, _ := os.ReadFile(filepath.Join(clean, index.ParquetFile))
	tree, _ := os.ReadFile(filepath.Join(clean, "tree-00.bin"))
	f.Add(uint8(0), pq)
	f.Add(uint8(1), tree)
	f.Add(uint8(0), pq[:len(pq)-5])
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		dir := filepath.Join(t.TempDir(), "x.idx")
		os.CopyFS(dir, os.DirFS(clean))
		name := index.ParquetFile
		if which%2 == 1 {
			name = "tree-00.bin"
		}
		p := filepath.Join(dir, name)
		os.Chmod(p, 0o644)
		os.WriteFile(p, data, 0o644)
		ix, err := index.Open(ctx, dir)
		if err != nil {
			if !errors.Is(err, index.ErrCorrupt) {
				t.Fatalf("Open: %v", err)
			}
			return
		}
		defer ix.Close()
		for _, e := range es[:5] {
			if b, err := ix.Prove(ctx, e.Key); err == nil {
				if b.VerifyProof() != nil {
					t.Fatal("bundle from a fuzzed index does not verify")
				}
			} else if !errors.Is(err, index.ErrCorrupt) && !errors.Is(err, index.ErrKeyNotFound) {
				t.Fatalf("Prove: %v", err)
			}
		}
		for _, err := range ix.Entries(ctx, "") {
			if err != nil && !errors.Is(err, index.ErrCorrupt) {
				t.Fatalf("Entries: %v", err)
			}
		}
		ix.Check(ctx)
	})
}
