// Command s3list times the S3 source driver's listing alone: it iterates
// sources/s3's Source.Objects over a prefix, counts the objects and reports
// keys per second and the process's peak resident memory (getrusage
// ru_maxrss), to check that listing a million keys stays within a bounded
// memory (issue 3: under 200 MiB).
//
//	s3list [-list-conc N] [-want N] s3://BUCKET/PREFIX
//
// The endpoint and credentials come from the SDK's default configuration
// (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, …); path-style addressing is used.
// It prints one line: keys, seconds, keys/s, peak RSS and the largest Go
// heap in use seen (sampled every 100 ms). Exit 1 when the listing fails or
// -want is set and the count differs. Not part of CI.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/lakeproof/lakeproof/sources/s3"
)

func main() {
	conc := flag.Int("list-conc", 0, "Options.ListConcurrency (0: the driver's default)")
	want := flag.Int64("want", -1, "expected number of keys (-1: no check)")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: s3list [-list-conc N] [-want N] s3://BUCKET/PREFIX")
		os.Exit(2)
	}
	if err := run(flag.Arg(0), *conc, *want); err != nil {
		fmt.Fprintln(os.Stderr, "s3list:", err)
		os.Exit(1)
	}
}

func run(uri string, conc int, want int64) error {
	ctx := context.Background()
	src, err := s3.New(ctx, uri, s3.Options{PathStyle: true, ListConcurrency: conc})
	if err != nil {
		return err
	}
	var maxHeap atomic.Uint64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { // sample the Go heap in use
		defer close(done)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > maxHeap.Load() {
				maxHeap.Store(ms.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	start := time.Now()
	var n int64
	for _, err := range src.Objects(ctx) {
		if err != nil {
			close(stop)
			return fmt.Errorf("after %d keys: %w", n, err)
		}
		n++
	}
	secs := time.Since(start).Seconds()
	close(stop)
	<-done
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return fmt.Errorf("getrusage: %w", err)
	}
	fmt.Printf("keys=%d seconds=%.2f keys/s=%.0f maxrss=%.1fMiB maxheap=%.1fMiB list-conc=%d\n",
		n, secs, float64(n)/secs, float64(ru.Maxrss)/1024, float64(maxHeap.Load())/(1<<20), conc)
	if want >= 0 && n != want {
		return fmt.Errorf("listed %d keys, want %d", n, want)
	}
	return nil
}
