package index_test

import (
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/lakeproof/lakeproof/index"
)

// bigIndex builds (once per test binary) an index of 1,000,000 entries.
var bigIndex = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "lakeproof-bench-")
	if err != nil {
		return "", err
	}
	p := filepath.Join(dir, "big.idx")
	w, err := index.Create(p, index.Meta{Source: "bench", Tool: "bench"})
	if err != nil {
		return "", err
	}
	for _, e := range sortedEntries(1_000_000) {
		if err := w.Add(e); err != nil {
			return "", err
		}
	}
	_, err = w.Commit(ctx)
	return p, err
})

// BenchmarkProve1M measures open + lookup + proof for one key of a
// 1,000,000-entry index, as `lakeproof prove` does (minus process start).
func BenchmarkProve1M(b *testing.B) {
	p, err := bigIndex()
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(filepath.Dir(p))
	keys := sortedEntries(1_000_000)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		ix, err := index.Open(ctx, p)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := ix.Prove(ctx, keys[(i*7919)%len(keys)].Key); err != nil {
			b.Fatal(err)
		}
		ix.Close()
	}
}

// BenchmarkWrite measures the index writer alone (Parquet + tree levels).
func BenchmarkWrite(b *testing.B) {
	es := sortedEntries(100_000)
	b.ResetTimer()
	for b.Loop() {
		dir := filepath.Join(b.TempDir(), "x.idx")
		w, err := index.Create(dir, index.Meta{})
		if err != nil {
			b.Fatal(err)
		}
		for _, e := range es {
			w.Add(e)
		}
		if _, err := w.Commit(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(es))*float64(b.N)/b.Elapsed().Seconds(), "entries/s")
}
