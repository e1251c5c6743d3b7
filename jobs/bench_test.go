package jobs

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/lakeproof/lakeproof"
	"github.com/lakeproof/lakeproof/index"
)

func benchN(def int) int {
	if v, err := strconv.Atoi(os.Getenv("LAKEPROOF_BENCH_FILES")); err == nil && v > 0 {
		return v
	}
	return def
}

// BenchmarkReindexUnchanged compares an incremental re-index of an
// unchanged local dataset (and one with 1% changed) with a bare listing of
// it. LAKEPROOF_BENCH_FILES sets the number of files (default 20,000; the
// issue's figure is for 1,000,000).
func BenchmarkReindexUnchanged(b *testing.B) {
	n := benchN(20000)
	tmp := b.TempDir()
	lake := filepath.Join(tmp, "lake")
	for i := range n {
		p := filepath.Join(lake, fmt.Sprintf("d%03d/f%07d", i%1000, i))
		if i%1000 == i {
			os.MkdirAll(filepath.Dir(p), 0o755)
		}
		if err := os.WriteFile(p, content(i, 64+i%512), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	ctx := context.Background()
	if _, err := Index(ctx, openLocal(b, lake), IndexOptions{Out: filepath.Join(tmp, "v0")}); err != nil {
		b.Fatal(err)
	}
	var list, inc, inc1 time.Duration
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		cnt := 0
		for _, err := range openLocal(b, lake).Objects(ctx) {
			if err != nil {
				b.Fatal(err)
			}
			cnt++
		}
		list += time.Since(t0)
		t0 = time.Now()
		res, err := Index(ctx, openLocal(b, lake), IndexOptions{Out: filepath.Join(tmp, fmt.Sprintf("v%d", i+1)), Previous: filepath.Join(tmp, "v0")})
		if err != nil || res.Rehashed != 0 {
			b.Fatal(err, res.Rehashed)
		}
		inc += time.Since(t0)
	}
	// 1% changed: touch every 100th file.
	later := time.Now().Add(time.Hour)
	for i := 0; i < n; i += 100 {
		os.Chtimes(filepath.Join(lake, fmt.Sprintf("d%03d/f%07d", i%1000, i)), later, later)
	}
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		res, err := Index(ctx, openLocal(b, lake), IndexOptions{Out: filepath.Join(tmp, fmt.Sprintf("w%d", i)), Previous: filepath.Join(tmp, "v0")})
		if err != nil || res.Rehashed != uint64((n+99)/100) {
			b.Fatal(err, res.Rehashed)
		}
		inc1 += time.Since(t0)
	}
	b.ReportMetric(float64(n), "files")
	b.ReportMetric(list.Seconds()/float64(b.N), "list-s")
	b.ReportMetric(inc.Seconds()/float64(b.N), "unchanged-s")
	b.ReportMetric(inc1.Seconds()/float64(b.N), "1pct-changed-s")
	b.ReportMetric(inc.Seconds()/list.Seconds(), "unchanged/list")
}

// BenchmarkMerge merges 8 shard indexes of LAKEPROOF_BENCH_FILES entries
// in total (default 200,000; the figure is for 1,000,000).
func BenchmarkMerge(b *testing.B) {
	n := benchN(200000)
	tmp := b.TempDir()
	ctx := context.Background()
	const shards = 8
	key := func(i int) string { return fmt.Sprintf("part-%03d/object-%09d.parquet", i%997, i) }
	// Keys sorted: generate in sorted order by construction.
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("k/%09d/%s", i, key(i))
	}
	var splits []string
	for s := 1; s < shards; s++ {
		splits = append(splits, keys[s*n/shards])
	}
	plan := Plan{Count: shards, Splits: splits}
	var dirs []string
	for s := range shards {
		sh, _ := plan.Shard(s)
		dir := filepath.Join(tmp, fmt.Sprintf("shard-%d", s))
		w, err := index.Create(dir, index.Meta{Source: "s3://bench/lake/", Tool: "bench", Shard: sh})
		if err != nil {
			b.Fatal(err)
		}
		for i := s * n / shards; i < (s+1)*n/shards; i++ {
			if err := w.Add(index.Entry{Key: keys[i], Size: int64(i), ModTime: time.Unix(int64(i), 0), Digest: lakeproof.Hash{byte(i), byte(i >> 8)}}); err != nil {
				b.Fatal(err)
			}
		}
		sh.Compact = w.Range()
		if _, err := w.Commit(ctx); err != nil {
			b.Fatal(err)
		}
		dirs = append(dirs, dir)
	}
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		if _, err := Merge(ctx, dirs, filepath.Join(tmp, fmt.Sprintf("merged-%d", i)), "bench"); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric((cpuTime()-cpu0).Seconds()/float64(b.N), "cpu-s/op")
	b.ReportMetric(float64(n), "entries")
}
