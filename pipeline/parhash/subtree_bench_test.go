package parhash

import (
	"syscall"
	"testing"
	"time"

	"github.com/lakeproof/lakeproof/pipeline/parhash/internal/avx2"
)

// BenchmarkSubtree compares the two subtree hashers on one goroutine, on
// data already in memory: the AVX2 kernel copied from github.com/zeebo/blake3
// and lukechampine.com/blake3/guts. It reports wall-clock MB/s and
// cpu-MB/s (bytes per second of process CPU time, less sensitive to other
// load on a shared machine). Run it with -cpu 1.
func BenchmarkSubtree(b *testing.B) {
	for _, size := range []int{64 << 10, 256 << 10, 1 << 20} {
		in := randomInput(1, size)
		name := map[int]string{64 << 10: "64KiB", 256 << 10: "256KiB", 1 << 20: "1MiB"}[size]
		b.Run("guts/"+name, func(b *testing.B) {
			benchLoop(b, size, func() { subtreeNodeGuts(in, 0) })
		})
		b.Run("avx2/"+name, func(b *testing.B) {
			if !avx2.Available {
				b.Skip("no AVX2")
			}
			var scratch [][8]uint32
			benchLoop(b, size, func() { subtreeNodeAVX2(in, 0, &scratch) })
		})
	}
}

func benchLoop(b *testing.B, size int, f func()) {
	var ru syscall.Rusage
	cpu := func() time.Duration {
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			b.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	b.SetBytes(int64(size))
	start := cpu()
	for b.Loop() {
		f()
	}
	if d := cpu() - start; d > 0 {
		b.ReportMetric(float64(size)*float64(b.N)/d.Seconds()/1e6, "cpu-MB/s")
	}
}
