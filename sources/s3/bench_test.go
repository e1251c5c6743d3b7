package s3_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/lakeproof/lakeproof/internal/s3test"
	"github.com/lakeproof/lakeproof/pipeline"
	s3src "github.com/lakeproof/lakeproof/sources/s3"
)

// The benchmarks read a tree of LAKEPROOF_BENCH_OBJECTS objects (default
// 2000) of 4–256 KiB from the local versitygw, uploaded once per run:
//
//	go test -run '^$' -bench . -benchtime 3x ./sources/s3
//
// BenchmarkS3/raw-get is the server's ceiling: a plain parallel GET loop
// that reads and discards, no hashing, no checks.
var bench struct {
	once   sync.Once
	bucket string
	keys   []string
	bytes  int64
}

func benchTree(b *testing.B, srv *s3test.Server) {
	bench.once.Do(func() {
		n := 2000
		if v, err := strconv.Atoi(os.Getenv("LAKEPROOF_BENCH_OBJECTS")); err == nil {
			n = v
		}
		bench.bucket = srv.NewBucket(b)
		sem := make(chan struct{}, 16)
		var wg sync.WaitGroup
		var mu sync.Mutex
		for i := range n {
			key := fmt.Sprintf("lake/part=%03d/file-%06d.bin", i%100, i)
			size := 4<<10 + int(uint64(i)*2654435761%(252<<10))
			bench.keys = append(bench.keys, key)
			bench.bytes += int64(size)
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer func() { <-sem; wg.Done() }()
				if _, err := srv.Client.PutObject(context.Background(), putInput(bench.bucket, key, randBytes(uint64(i), size))); err != nil {
					mu.Lock()
					b.Errorf("put: %v", err)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
	})
}

func newSourceErr(uri string, o s3src.Options) (*s3src.Source, error) {
	return s3src.New(context.Background(), uri, o)
}

func BenchmarkS3(b *testing.B) {
	srv := s3test.Get(b)
	benchTree(b, srv)
	ctx := context.Background()
	b.Run("list", func(b *testing.B) {
		src, err := newSourceErr("s3://"+bench.bucket+"/lake", opts(srv, srv.Endpoint))
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			n := 0
			for _, err := range src.Objects(ctx) {
				if err != nil {
					b.Fatal(err)
				}
				n++
			}
			if n != len(bench.keys) {
				b.Fatalf("listed %d", n)
			}
		}
	})
	for _, workers := range []int{2, 8, 32, 64} {
		b.Run(fmt.Sprintf("hash-workers=%d", workers), func(b *testing.B) {
			src, err := newSourceErr("s3://"+bench.bucket+"/lake", opts(srv, srv.Endpoint))
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(bench.bytes)
			for b.Loop() {
				err := pipeline.Run(ctx, src, pipeline.Options{Workers: workers}, func(r pipeline.Result) error {
					if r.Err != nil {
						return r.Err
					}
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("raw-get-workers=32", func(b *testing.B) {
		b.SetBytes(bench.bytes)
		for b.Loop() {
			keys := make(chan string)
			var wg sync.WaitGroup
			for range 32 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					buf := make([]byte, 256<<10)
					for k := range keys {
						out, err := srv.Client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bench.bucket), Key: aws.String(k)})
						if err != nil {
							b.Error(err)
							continue
						}
						io.CopyBuffer(io.Discard, out.Body, buf)
						out.Body.Close()
					}
				}()
			}
			for _, k := range bench.keys {
				keys <- k
			}
			close(keys)
			wg.Wait()
		}
	})
}

// BenchmarkListMany lists LAKEPROOF_BENCH_LIST_KEYS keys (default 100,000),
// written straight into the posix backend's directory, and reports the peak
// Go heap while listing: the listing must stay flat in memory.
func BenchmarkListMany(b *testing.B) {
	srv := s3test.Get(b)
	n := 100_000
	if v, err := strconv.Atoi(os.Getenv("LAKEPROOF_BENCH_LIST_KEYS")); err == nil {
		n = v
	}
	bucket := srv.NewBucket(b)
	for i := range n {
		dir := filepath.Join(srv.Dir, bucket, "t", fmt.Sprintf("d%04d", i/1000))
		if i%1000 == 0 {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				b.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%07d", i)), nil, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	src, err := newSourceErr("s3://"+bucket+"/t", opts(srv, srv.Endpoint))
	if err != nil {
		b.Fatal(err)
	}
	var peak uint64
	for b.Loop() {
		runtime.GC()
		stop := make(chan struct{})
		done := make(chan uint64)
		go func() {
			var m runtime.MemStats
			var p uint64
			t := time.NewTicker(10 * time.Millisecond)
			defer t.Stop()
			for {
				runtime.ReadMemStats(&m)
				p = max(p, m.HeapInuse)
				select {
				case <-stop:
					done <- p
					return
				case <-t.C:
				}
			}
		}()
		count := 0
		for _, err := range src.Objects(context.Background()) {
			if err != nil {
				b.Fatal(err)
			}
			count++
		}
		close(stop)
		peak = max(peak, <-done)
		if count != n {
			b.Fatalf("listed %d keys, want %d", count, n)
		}
	}
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
	b.ReportMetric(float64(n)/(float64(b.Elapsed().Seconds())/float64(b.N)), "keys/s")
}
