package jobs

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/zeebo/blake3"

	"github.com/lakeproof/lakeproof"
	"github.com/lakeproof/lakeproof/index"
	"github.com/lakeproof/lakeproof/pipeline"
	s3src "github.com/lakeproof/lakeproof/sources/s3"
)

func benchN(def int) int {
	if v, err := strconv.Atoi(os.Getenv("LAKEPROOF_BENCH_FILES")); err == nil && v > 0 {
		return v
	}
	return def
}

// BenchmarkReindexUnchanged compares an incremental re-index of an
// unchanged local dataset (and one with 1% changed) with a bare listing of
// it, alternating the runs so that load changes hit both. The dataset is
// LAKEPROOF_BENCH_LAKE (an existing tree, e.g. the 1,000,000 tiny files of
// benchmarks/compare.sh --tiny; it is only read: the 1% are changed in a
// copy of the predecessor) or a generated one of LAKEPROOF_BENCH_FILES files (default 20,000).
// Reported: list-s, unchanged-s, 1pct-changed-s, hash-changed-s (reading and
// hashing the changed files alone, one core), and the ratios unchanged/list
// and 1pct/(list+hash) — the targets are ≤ 1.2 for both.
func BenchmarkReindexUnchanged(b *testing.B) {
	tmp := b.TempDir()
	lake := os.Getenv("LAKEPROOF_BENCH_LAKE")
	if lake == "" {
		n := benchN(20000)
		lake = filepath.Join(tmp, "lake")
		for i := range n {
			p := filepath.Join(lake, fmt.Sprintf("d%03d/f%07d", i%1000, i))
			if i%1000 == i {
				os.MkdirAll(filepath.Dir(p), 0o755)
			}
			if err := os.WriteFile(p, content(i, 64+i%512), 0o644); err != nil {
				b.Fatal(err)
			}
		}
	}
	ctx := context.Background()
	v0, err := Index(ctx, openLocal(b, lake), IndexOptions{Out: filepath.Join(tmp, "v0")})
	if err != nil {
		b.Fatal(err)
	}
	n := int(v0.Files)
	list := func() time.Duration {
		t0 := time.Now()
		cnt := 0
		for _, err := range openLocal(b, lake).Objects(ctx) {
			if err != nil {
				b.Fatal(err)
			}
			cnt++
		}
		if cnt != n {
			b.Fatalf("listed %d of %d", cnt, n)
		}
		return time.Since(t0)
	}
	var lists, inc, inc1, hash, listCPU, incCPU time.Duration
	runs := 0
	reindex := func(name, prev string, rehashed int) time.Duration {
		t0 := time.Now()
		res, err := Index(ctx, openLocal(b, lake), IndexOptions{Out: filepath.Join(tmp, name), Previous: filepath.Join(tmp, prev)})
		if err != nil || res.Rehashed != uint64(rehashed) {
			b.Fatal(err, res.Rehashed)
		}
		d := time.Since(t0)
		os.RemoveAll(filepath.Join(tmp, name))
		return d
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c0 := cpuTime()
		lists += list()
		c1 := cpuTime()
		inc += reindex(fmt.Sprintf("v%d", i+1), "v0", 0)
		listCPU += c1 - c0
		incCPU += cpuTime() - c1
		runs++
	}
	// 1% changed, without touching the dataset (it may be shared): a
	// predecessor v0m whose every 100th entry has another mtime (same
	// leaves, so the same root), so that 1% of the objects have changed
	// metadata and are re-hashed.
	var changed []string
	w, err := index.Create(filepath.Join(tmp, "v0m"), index.Meta{Source: v0.Source, Tool: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	ix, err := index.Open(ctx, filepath.Join(tmp, "v0"))
	if err != nil {
		b.Fatal(err)
	}
	i := 0
	for e, err := range ix.Entries(ctx, "") {
		if err != nil {
			b.Fatal(err)
		}
		if i%100 == 0 {
			e.ModTime = e.ModTime.Add(-time.Hour)
			changed = append(changed, filepath.Join(lake, filepath.FromSlash(e.Key)))
		}
		if err := w.Add(e); err != nil {
			b.Fatal(err)
		}
		i++
	}
	ix.Close()
	if _, err := w.Commit(ctx); err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 1<<20)
	var lists1 time.Duration
	for i := 0; i < b.N; i++ {
		lists1 += list()
		inc1 += reindex(fmt.Sprintf("w%d", i), "v0m", len(changed))
		t0 := time.Now()
		for _, p := range changed {
			f, err := os.Open(p)
			if err != nil {
				b.Fatal(err)
			}
			h := blake3.New()
			if _, err := io.CopyBuffer(h, f, buf); err != nil {
				b.Fatal(err)
			}
			f.Close()
		}
		hash += time.Since(t0)
	}
	b.StopTimer()
	per := func(d time.Duration) float64 { return d.Seconds() / float64(b.N) }
	b.ReportMetric(float64(n), "files")
	b.ReportMetric(per(lists), "list-s")
	b.ReportMetric(per(inc), "unchanged-s")
	b.ReportMetric(per(inc1), "1pct-changed-s")
	b.ReportMetric(per(hash), "hash-changed-s")
	b.ReportMetric(per(listCPU), "list-cpu-s")
	b.ReportMetric(per(incCPU), "unchanged-cpu-s")
	b.ReportMetric(inc.Seconds()/lists.Seconds(), "unchanged/list")
	b.ReportMetric(inc1.Seconds()/(lists1.Seconds()+hash.Seconds()), "1pct/(list+hash)")
}

// BenchmarkReindexS3 is BenchmarkReindexUnchanged on S3 (unchanged only):
// LAKEPROOF_BENCH_S3=s3://BUCKET/PREFIX, with the SDK's default
// configuration (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, …; path-style
// addressing). benchmarks/reindex.sh loads 100,000 objects into a local
// versitygw and runs it. Reported: list-s (a bare listing with the
// driver's default parallel listing), unchanged-s, unchanged/list.
func BenchmarkReindexS3(b *testing.B) {
	uri := os.Getenv("LAKEPROOF_BENCH_S3")
	if uri == "" {
		b.Skip("LAKEPROOF_BENCH_S3 not set")
	}
	ctx := context.Background()
	open := func() pipeline.Source {
		src, err := s3src.New(ctx, uri, s3src.Options{PathStyle: true})
		if err != nil {
			b.Fatal(err)
		}
		return src
	}
	tmp := b.TempDir()
	v0, err := Index(ctx, open(), IndexOptions{Out: filepath.Join(tmp, "v0"), Workers: 32})
	if err != nil {
		b.Fatal(err)
	}
	var list, inc, listCPU, incCPU time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0, c0 := time.Now(), cpuTime()
		cnt := 0
		for _, err := range open().Objects(ctx) {
			if err != nil {
				b.Fatal(err)
			}
			cnt++
		}
		list += time.Since(t0)
		listCPU += cpuTime() - c0
		if cnt != int(v0.Files) {
			b.Fatalf("listed %d of %d", cnt, v0.Files)
		}
		t0, c0 = time.Now(), cpuTime()
		out := filepath.Join(tmp, fmt.Sprintf("v%d", i+1))
		res, err := Index(ctx, open(), IndexOptions{Out: out, Previous: filepath.Join(tmp, "v0"), Workers: 32})
		if err != nil || res.Rehashed != 0 {
			b.Fatal(err, res.Rehashed)
		}
		inc += time.Since(t0)
		incCPU += cpuTime() - c0
		os.RemoveAll(out)
	}
	b.StopTimer()
	b.ReportMetric(listCPU.Seconds()/float64(b.N), "list-cpu-s")
	b.ReportMetric(incCPU.Seconds()/float64(b.N), "unchanged-cpu-s")
	b.ReportMetric(float64(v0.Files), "files")
	b.ReportMetric(list.Seconds()/float64(b.N), "list-s")
	b.ReportMetric(inc.Seconds()/float64(b.N), "unchanged-s")
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
