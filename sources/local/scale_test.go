package local_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lakeproof/lakeproof/pipeline"
	"github.com/lakeproof/lakeproof/sources/local"
)

// fastTempDir returns a temporary directory on tmpfs (/dev/shm) if there is
// one, removed at the end of the test. Creating an empty file costs about
// 35 µs there and up to several milliseconds on the ext4 disk of a busy CI
// machine, which matters for trees of 100,000 files; the listing code is the
// same on every filesystem. ok is false if there is no tmpfs.
//
// LAKEPROOF_BENCH_DIR, if set, names the directory to use instead (to
// measure on a given filesystem).
func fastTempDir(tb testing.TB) (dir string, ok bool) {
	parent := os.Getenv("LAKEPROOF_BENCH_DIR")
	if parent == "" {
		parent = "/dev/shm"
	}
	if fi, err := os.Stat(parent); err != nil || !fi.IsDir() {
		return tb.TempDir(), false
	}
	dir, err := os.MkdirTemp(parent, "lakeproof-local-test-*")
	if err != nil {
		return tb.TempDir(), false
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	return dir, true
}

// makeFlatTree creates dirs directories of perDir empty files each, using
// a few goroutines.
func makeFlatTree(tb testing.TB, root string, dirs, perDir int) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	errs := make(chan error, 1)
	for d := range dirs {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			dir := filepath.Join(root, fmt.Sprintf("part=%05d", d))
			if err := os.Mkdir(dir, 0o755); err != nil {
				select {
				case errs <- err:
				default:
				}
				return
			}
			for f := range perDir {
				fh, err := os.Create(filepath.Join(dir, fmt.Sprintf("file-%06d.parquet", f)))
				if err == nil {
					err = fh.Close()
				}
				if err != nil {
					select {
					case errs <- err:
					default:
					}
					return
				}
			}
		})
	}
	wg.Wait()
	select {
	case err := <-errs:
		tb.Fatal(err)
	default:
	}
}

// TestListingMemoryIsBounded lists 200,000 files in 200 directories of
// 1,000 and checks that the live heap never grows by more than a small
// multiple of one directory's entries (about 70 KB here). Holding the
// listing, or even just the keys, would take over 8 MB.
func TestListingMemoryIsBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("creates 200,000 files; skipped with -short")
	}
	const dirs, perDir = 200, 1000
	const bound = 2 << 20
	root, ok := fastTempDir(t)
	if !ok {
		t.Skip("no tmpfs at /dev/shm: creating 200,000 files on this filesystem may take many minutes (set LAKEPROOF_BENCH_DIR to force a directory)")
	}
	start := time.Now()
	makeFlatTree(t, root, dirs, perDir)
	t.Logf("created %d files in %v", dirs*perDir, time.Since(start))
	src := newSource(t, root, local.Options{})

	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	var peak uint64
	var n int
	start = time.Now()
	for _, err := range src.Objects(context.Background()) {
		if err != nil {
			t.Fatal(err)
		}
		if n++; n%10_000 == 0 {
			runtime.GC()
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > base {
				peak = max(peak, ms.HeapAlloc-base)
			}
		}
	}
	t.Logf("listed %d files in %v; peak live heap growth %d bytes (bound %d)", n, time.Since(start), peak, bound)
	if n != dirs*perDir {
		t.Fatalf("listed %d files, want %d", n, dirs*perDir)
	}
	if peak > bound {
		t.Errorf("live heap grew by %d bytes while listing %d files in directories of %d; want at most %d: the listing is not streaming",
			peak, n, perDir, bound)
	}
}

// BenchmarkObjects lists 100,000 empty files in 100 directories of 1,000,
// from the page cache, and reports files per second.
//
//	go test -run '^$' -bench Objects -benchtime 5x ./sources/local/
//	LAKEPROOF_BENCH_DIR=/tmp go test -run '^$' -bench Objects -benchtime 5x ./sources/local/   # on disk
func BenchmarkObjects(b *testing.B) {
	const dirs, perDir = 100, 1000
	root, _ := fastTempDir(b)
	makeFlatTree(b, root, dirs, perDir)
	src := newSource(b, root, local.Options{})
	ctx := context.Background()
	var files int
	for b.Loop() {
		for _, err := range src.Objects(ctx) {
			if err != nil {
				b.Fatal(err)
			}
			files++
		}
	}
	if files != b.N*dirs*perDir {
		b.Fatalf("listed %d files in %d runs, want %d each", files, b.N, dirs*perDir)
	}
	b.ReportMetric(float64(files)/b.Elapsed().Seconds(), "files/s")
}

// BenchmarkOpenReadClose measures the per-file cost of Open, reading and
// Close (with its checks) on 1,000 files of 4 KiB, against os.ReadFile on
// the same files as a baseline.
func BenchmarkOpenReadClose(b *testing.B) {
	root, _ := fastTempDir(b)
	files := map[string]string{}
	for i := range 1000 {
		files[fmt.Sprintf("d%d/f%04d", i%10, i)] = strings.Repeat("x", 4096)
	}
	makeTree(b, root, files)
	src := newSource(b, root, local.Options{})
	var objs []pipeline.Object
	for obj, err := range src.Objects(context.Background()) {
		if err != nil {
			b.Fatal(err)
		}
		objs = append(objs, obj)
	}
	buf := make([]byte, 64<<10)
	b.Run("source", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for _, obj := range objs {
				rc, err := src.Open(context.Background(), obj)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{rc}, buf); err != nil {
					b.Fatal(err)
				}
				if err := rc.Close(); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(b.N*len(objs))/b.Elapsed().Seconds(), "files/s")
	})
	b.Run("os.ReadFile", func(b *testing.B) {
		for b.Loop() {
			for _, obj := range objs {
				if _, err := os.ReadFile(filepath.Join(root, obj.Key)); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(b.N*len(objs))/b.Elapsed().Seconds(), "files/s")
	})
}
