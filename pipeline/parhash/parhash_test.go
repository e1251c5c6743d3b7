package parhash

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lakeproof/lakeproof/pipeline/parhash/internal/avx2"
	zeebo "github.com/zeebo/blake3"
	"lukechampine.com/blake3/guts"
)

// vectorInput returns the input of the official BLAKE3 test vectors:
// byte i is i % 251.
func vectorInput(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i % 251)
	}
	return b
}

// randomInput returns n deterministic pseudo-random bytes.
func randomInput(seed uint64, n int) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16), byte(seed >> 24)})
	r.Read(b)
	return b
}

// naiveRoot computes BLAKE3-256 straight from the definition of the tree
// (split at the largest power of two strictly below the chunk count), as an
// independent check of the tree shape used by Sum.
func naiveRoot(data []byte) [32]byte {
	chunks := (len(data) + ChunkSize - 1) / ChunkSize
	if chunks == 0 {
		chunks = 1
	}
	var node func(lo, n int) guts.Node
	node = func(lo, n int) guts.Node {
		if n == 1 {
			end := min((lo+1)*ChunkSize, len(data))
			return guts.CompressChunk(data[lo*ChunkSize:end], &guts.IV, uint64(lo), 0)
		}
		left := 1 << (bits.Len(uint(n-1)) - 1)
		return guts.ParentNode(guts.ChainingValue(node(lo, left)), guts.ChainingValue(node(lo+left, n-left)), &guts.IV, 0)
	}
	n := node(0, chunks)
	n.Flags |= guts.FlagRoot
	out := guts.WordsToBytes(guts.CompressNode(n))
	return [32]byte(out[:32])
}

// naiveNode is naiveRoot's tree for a subtree whose first chunk has the
// given counter, without the ROOT flag.
func naiveNode(data []byte, counter uint64) guts.Node {
	chunks := max(1, (len(data)+ChunkSize-1)/ChunkSize)
	var node func(lo, n int) guts.Node
	node = func(lo, n int) guts.Node {
		if n == 1 {
			end := min((lo+1)*ChunkSize, len(data))
			return guts.CompressChunk(data[lo*ChunkSize:end], &guts.IV, counter+uint64(lo), 0)
		}
		left := 1 << (bits.Len(uint(n-1)) - 1)
		return guts.ParentNode(guts.ChainingValue(node(lo, left)), guts.ChainingValue(node(lo+left, n-left)), &guts.IV, 0)
	}
	return node(0, chunks)
}

// TestSubtreeImplementations checks both subtree hashers, on every chunk
// count from 1 to 70 and on larger power-of-two and odd sizes, at chunk
// counters other than zero, against the naive tree.
func TestSubtreeImplementations(t *testing.T) {
	if !avx2.Available {
		t.Log("no AVX2 here: only the guts path is tested")
	}
	var scratch [][8]uint32
	sizes := []int{0, 1, 1023}
	for c := 1; c <= 70; c++ {
		sizes = append(sizes, c*ChunkSize, c*ChunkSize+1, c*ChunkSize+1023)
	}
	sizes = append(sizes, 256<<10, 1<<20, 1<<20-1, 1<<20-1024, 777_777)
	for _, size := range sizes {
		in := randomInput(uint64(size), size)
		for _, counter := range []uint64{0, 1024, 1 << 40} {
			want := naiveNode(in, counter)
			if got := subtreeNodeGuts(in, counter); got != want {
				t.Fatalf("size %d, counter %d: subtreeNodeGuts differs from the naive tree", size, counter)
			}
			if avx2.Available {
				if got := subtreeNodeAVX2(in, counter, &scratch); got != want {
					t.Fatalf("size %d, counter %d: subtreeNodeAVX2 differs from the naive tree", size, counter)
				}
			}
		}
	}
}

func TestOfficialVectors(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var vectors struct {
		Cases []struct {
			InputLen int    `json:"input_len"`
			Hash     string `json:"hash"`
		} `json:"cases"`
	}
	if err := json.Unmarshal(raw, &vectors); err != nil {
		t.Fatal(err)
	}
	if len(vectors.Cases) < 20 {
		t.Fatalf("only %d vectors in testdata/vectors.json", len(vectors.Cases))
	}
	ctx := context.Background()
	for _, c := range vectors.Cases {
		in := vectorInput(c.InputLen)
		check := func(name string, got [32]byte) {
			t.Helper()
			if hex.EncodeToString(got[:]) != c.Hash {
				t.Errorf("len %d, %s: got %x, want %s", c.InputLen, name, got, c.Hash)
			}
		}
		check("naiveRoot", naiveRoot(in))
		for _, unit := range []int{1 << 10, 2 << 10, 16 << 10, 32 << 10, DefaultSubtreeSize} {
			for workers := 1; workers <= 4; workers++ {
				opts := Options{Workers: workers, SubtreeSize: unit}
				got, err := Sum(ctx, bytes.NewReader(in), int64(len(in)), opts)
				if err != nil {
					t.Fatalf("len %d, Sum(%+v): %v", c.InputLen, opts, err)
				}
				check(fmt.Sprintf("Sum(%+v)", opts), got)
			}
		}
		got, n, err := SumReader(bytes.NewReader(in), make([]byte, 100))
		if err != nil || n != int64(len(in)) {
			t.Fatalf("len %d: SumReader = %d, %v", c.InputLen, n, err)
		}
		check("SumReader", got)
		for _, r := range []io.Reader{bytes.NewReader(in), onlyReader{bytes.NewReader(in)}} {
			got, err := SumObject(ctx, r, int64(len(in)), Options{Pool: NewBufferPool(4096)})
			if err != nil {
				t.Fatalf("len %d: SumObject(%T): %v", c.InputLen, r, err)
			}
			check(fmt.Sprintf("SumObject(%T)", r), got)
		}
	}
}

// onlyReader hides every method but Read.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

// testSizes are the sizes of the brief: chunk and SIMD-group boundaries,
// power-of-two unit boundaries and odd sizes.
func testSizes(t *testing.T) []int {
	sizes := []int{0, 1, 1023, 1024, 1025, 2048, 2049, 16 << 10, 16<<10 + 1, 31 << 10,
		64<<10 - 1, 64 << 10, 64<<10 + 1, 100_000, 1<<20 - 1, 1 << 20, 1<<20 + 1,
		3<<20 + 12345, 5_000_003, 7 << 20}
	if !testing.Short() {
		sizes = append(sizes, 100<<20+777)
	}
	return sizes
}

func TestSumSizesWorkers(t *testing.T) {
	ctx := context.Background()
	for _, size := range testSizes(t) {
		in := randomInput(uint64(size), size)
		want := zeebo.Sum256(in)
		if size <= 1<<20 {
			if got := naiveRoot(in); got != want {
				t.Fatalf("size %d: naiveRoot %x, zeebo %x", size, got, want)
			}
		}
		// Every worker count on small sizes; fewer combinations where each
		// costs more (the package runs under -race in CI).
		units := []int{0, 64 << 10, 1 << 10, 4 << 10, 32 << 10}
		workerCounts := []int{1, 2, 3, 4, 5, 6, 7, 8}
		switch {
		case size > 8<<20:
			units, workerCounts = []int{0}, []int{1, 2, 8}
		case size > 1<<20+1:
			units, workerCounts = []int{0, 64 << 10, 4 << 10}, []int{1, 2, 3, 8}
		}
		for _, unit := range units {
			for _, workers := range workerCounts {
				opts := Options{Workers: workers, SubtreeSize: unit}
				got, err := Sum(ctx, bytes.NewReader(in), int64(size), opts)
				if err != nil {
					t.Fatalf("size %d, %+v: %v", size, opts, err)
				}
				if got != want {
					t.Fatalf("size %d, %+v: got %x, want %x", size, opts, got, want)
				}
			}
		}
		got, n, err := SumReader(bytes.NewReader(in), nil)
		if err != nil || n != int64(size) || got != want {
			t.Fatalf("size %d: SumReader = %x, %d, %v; want %x", size, got, n, err, want)
		}
		for _, opts := range []Options{{Workers: 1}, {Workers: 2}, {Workers: 3, SubtreeSize: 64 << 10}} {
			got, err := SumObject(ctx, bytes.NewReader(in), int64(size), opts)
			if err != nil || got != want {
				t.Fatalf("size %d: SumObject(%+v) = %x, %v; want %x", size, opts, got, err, want)
			}
		}
	}
}

// TestB3sumBinary cross-checks digests of temp files against the b3sum tool,
// the definition of "byte-identical to b3sum" in docs/FORMAT.md.
func TestB3sumBinary(t *testing.T) {
	b3sum, err := exec.LookPath("b3sum")
	if err != nil {
		if os.Getenv("LAKEPROOF_REQUIRE_SERVERS") != "" {
			t.Fatal("b3sum not on PATH and LAKEPROOF_REQUIRE_SERVERS is set: apt-get install b3sum (see .ci/setup.d/10-tools.sh)")
		}
		t.Skip("b3sum not on PATH: apt-get install b3sum to cross-check digests against it")
	}
	dir := t.TempDir()
	ctx := context.Background()
	sizes := testSizes(t)
	if !testing.Short() {
		sizes = append(sizes, 100<<20)
	}
	var paths []string
	want := map[string][32]byte{}
	for _, size := range sizes {
		p := filepath.Join(dir, fmt.Sprintf("f%09d", size))
		in := randomInput(uint64(size)+1, size)
		if err := os.WriteFile(p, in, 0o600); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, workers := range []int{1, 2, 5} {
			got, err := Sum(ctx, f, int64(size), Options{Workers: workers})
			if err != nil {
				t.Fatalf("%s: Sum: %v", p, err)
			}
			if prev, ok := want[p]; ok && prev != got {
				t.Fatalf("%s: Sum with %d workers %x differs from %x", p, workers, got, prev)
			}
			want[p] = got
		}
		f.Close()
	}
	out, err := exec.Command(b3sum, append([]string{"--no-names"}, paths...)...).Output()
	if err != nil {
		t.Fatalf("b3sum: %v", err)
	}
	lines := strings.Fields(string(out))
	if len(lines) != len(paths) {
		t.Fatalf("b3sum printed %d digests for %d files:\n%s", len(lines), len(paths), out)
	}
	for i, p := range paths {
		got := want[p]
		if lines[i] != hex.EncodeToString(got[:]) {
			t.Errorf("%s (%d bytes): parhash %x, b3sum %s", filepath.Base(p), sizes[i], got, lines[i])
		}
	}
}

// countingReaderAt counts ReadAt calls and can run a hook on each.
type countingReaderAt struct {
	r     io.ReaderAt
	calls atomic.Int64
	hook  func(call int64)
}

func (c *countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n := c.calls.Add(1)
	if c.hook != nil {
		c.hook(n)
	}
	return c.r.ReadAt(p, off)
}

func TestSumCancel(t *testing.T) {
	in := randomInput(7, 8<<20)
	const unit = 16 << 10 // 512 units

	t.Run("before", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		for _, workers := range []int{1, 4} {
			r := &countingReaderAt{r: bytes.NewReader(in)}
			sum, err := Sum(ctx, r, int64(len(in)), Options{Workers: workers, SubtreeSize: unit})
			if !errors.Is(err, context.Canceled) || sum != ([32]byte{}) {
				t.Fatalf("workers %d: Sum = %x, %v; want context.Canceled and no digest", workers, sum, err)
			}
			if r.calls.Load() != 0 {
				t.Fatalf("workers %d: %d reads after cancellation", workers, r.calls.Load())
			}
		}
	})
	t.Run("during", func(t *testing.T) {
		for _, workers := range []int{1, 2, 4, 8} {
			ctx, cancel := context.WithCancel(context.Background())
			r := &countingReaderAt{r: bytes.NewReader(in)}
			var cancelled atomic.Bool
			var late atomic.Int64 // reads started after cancel returned
			r.hook = func(call int64) {
				if cancelled.Load() {
					late.Add(1)
				}
				if call == 10 {
					cancel()
					cancelled.Store(true)
				}
			}
			sum, err := Sum(ctx, r, int64(len(in)), Options{Workers: workers, SubtreeSize: unit})
			cancel()
			if !errors.Is(err, context.Canceled) || sum != ([32]byte{}) {
				t.Fatalf("workers %d: Sum = %x, %v; want context.Canceled and no digest", workers, sum, err)
			}
			// Workers check ctx before each read, so each of the other
			// workers can start at most one read after the cancellation.
			if n := late.Load(); n > int64(workers-1) {
				t.Fatalf("workers %d: %d reads started after cancellation, want at most %d", workers, n, workers-1)
			}
		}
	})
	t.Run("SumObject", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := SumObject(ctx, onlyReader{bytes.NewReader(in)}, int64(len(in)), Options{Pool: NewBufferPool(64 << 10)})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("SumObject after cancel: %v; want context.Canceled", err)
		}
	})
}

// errReaderAt fails every read at or past off with err.
type errReaderAt struct {
	data []byte
	off  int64
	err  error
}

func (e errReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) <= e.off {
		return copy(p, e.data[off:]), nil
	}
	n := 0
	if off < e.off {
		n = copy(p, e.data[off:e.off])
	}
	return n, e.err
}

func TestSumShortOrFailingReader(t *testing.T) {
	ctx := context.Background()
	errDisk := errors.New("disk on fire")
	for _, size := range []int{1, 1025, 64 << 10, 1<<20 + 1, 5 << 20} {
		in := randomInput(3, size)
		for _, workers := range []int{1, 2, 4} {
			for _, unit := range []int{0, 4 << 10} {
				opts := Options{Workers: workers, SubtreeSize: unit}
				// The reader holds one byte less than the size asked for.
				short := bytes.NewReader(in[:size-1])
				sum, err := Sum(ctx, short, int64(size), opts)
				if !errors.Is(err, io.ErrUnexpectedEOF) || sum != ([32]byte{}) {
					t.Fatalf("size %d, %+v: short reader: Sum = %x, %v; want io.ErrUnexpectedEOF", size, opts, sum, err)
				}
				failing := errReaderAt{data: in, off: int64(size / 2), err: errDisk}
				sum, err = Sum(ctx, failing, int64(size), opts)
				if !errors.Is(err, errDisk) || sum != ([32]byte{}) {
					t.Fatalf("size %d, %+v: failing reader: Sum = %x, %v; want %v", size, opts, sum, err, errDisk)
				}
			}
		}
		for _, r := range []io.Reader{bytes.NewReader(in[:size-1]), onlyReader{bytes.NewReader(in[:size-1])}} {
			sum, err := SumObject(ctx, r, int64(size), Options{Pool: NewBufferPool(64 << 10)})
			if !errors.Is(err, io.ErrUnexpectedEOF) || sum != ([32]byte{}) {
				t.Fatalf("size %d: SumObject(%T) of short reader = %x, %v; want io.ErrUnexpectedEOF", size, r, sum, err)
			}
		}
		sum, n, err := SumReader(io.MultiReader(bytes.NewReader(in), errorReader{errDisk}), nil)
		if !errors.Is(err, errDisk) || sum != ([32]byte{}) || n != int64(size) {
			t.Fatalf("size %d: SumReader = %x, %d, %v; want %v after %d bytes", size, sum, n, err, errDisk, size)
		}
	}
}

// TestSumStopsAfterReadError: once a unit fails, Sum returns and the other
// workers skip the units still queued instead of reading them. Unit 0 fails
// at once and every other read takes 100 ms, so by the time any in-flight
// read ends the failure has been seen: at most one read per worker follows
// the failing one (without the cancellation, the whole window of 2*workers
// units would be read).
func TestSumStopsAfterReadError(t *testing.T) {
	in := randomInput(5, 8<<20)
	errDisk := errors.New("disk on fire")
	const unit = 16 << 10 // 512 units
	for _, workers := range []int{2, 4} {
		r := &countingReaderAt{r: readerAtFunc(func(p []byte, off int64) (int, error) {
			if off == 0 {
				return 0, errDisk
			}
			time.Sleep(100 * time.Millisecond)
			return copy(p, in[off:]), nil
		})}
		_, err := Sum(context.Background(), r, int64(len(in)), Options{Workers: workers, SubtreeSize: unit})
		if !errors.Is(err, errDisk) {
			t.Fatalf("workers %d: %v, want %v", workers, err, errDisk)
		}
		if n := r.calls.Load(); n > int64(1+workers) {
			t.Fatalf("workers %d: %d reads, want at most %d", workers, n, 1+workers)
		}
	}
}

type readerAtFunc func(p []byte, off int64) (int, error)

func (f readerAtFunc) ReadAt(p []byte, off int64) (int, error) { return f(p, off) }

type errorReader struct{ err error }

func (e errorReader) Read([]byte) (int, error) { return 0, e.err }

// TestNeverReadsPastSize: bytes after size must not change the digest nor
// be read (a file that grew is the Source's business).
func TestNeverReadsPastSize(t *testing.T) {
	ctx := context.Background()
	in := randomInput(11, 3<<20)
	size := int64(2<<20 + 5)
	want := zeebo.Sum256(in[:size])
	limit := errReaderAt{data: in, off: size, err: errors.New("read past size")}
	for _, workers := range []int{1, 3} {
		got, err := Sum(ctx, limit, size, Options{Workers: workers, SubtreeSize: 64 << 10})
		if err != nil || got != want {
			t.Fatalf("workers %d: Sum = %x, %v; want %x", workers, got, err, want)
		}
	}
	got, err := SumObject(ctx, onlyReader{bytes.NewReader(in)}, size, Options{Pool: NewBufferPool(1 << 20)})
	if err != nil || got != want {
		t.Fatalf("SumObject = %x, %v; want %x", got, err, want)
	}
}

func TestBadOptions(t *testing.T) {
	ctx := context.Background()
	r := bytes.NewReader(nil)
	for _, opts := range []Options{
		{SubtreeSize: 1000},
		{SubtreeSize: 512},
		{SubtreeSize: 3 << 10},
		{SubtreeSize: 2 << 30},
		{SubtreeSize: 64 << 10, Pool: NewBufferPool(32 << 10)},
	} {
		if _, err := Sum(ctx, r, 0, opts); !errors.Is(err, ErrBadOptions) {
			t.Errorf("Sum(%+v): %v; want ErrBadOptions", opts, err)
		}
	}
	if _, err := Sum(ctx, r, -1, Options{}); !errors.Is(err, ErrBadOptions) {
		t.Errorf("Sum(size -1): %v; want ErrBadOptions", err)
	}
	if _, err := SumObject(ctx, r, -1, Options{}); !errors.Is(err, ErrBadOptions) {
		t.Errorf("SumObject(size -1): %v; want ErrBadOptions", err)
	}
}

func TestBufferPool(t *testing.T) {
	bp := NewBufferPool(4096)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 100 {
				b := bp.Get()
				if len(b) != 4096 {
					t.Errorf("Get returned %d bytes", len(b))
					return
				}
				b[0], b[4095] = byte(g), byte(i)
				bp.Put(b[:10]) // a resliced buffer goes back whole
			}
		}()
	}
	wg.Wait()
	bp.Put(make([]byte, 100)) // foreign buffer: dropped
	if b := bp.Get(); len(b) != 4096 {
		t.Fatalf("Get after a foreign Put returned %d bytes", len(b))
	}
	defer func() {
		if recover() == nil {
			t.Fatal("NewBufferPool(0) did not panic")
		}
	}()
	NewBufferPool(0)
}

// FuzzSum compares Sum, with random sizes, worker counts and subtree sizes,
// against github.com/zeebo/blake3.
func FuzzSum(f *testing.F) {
	f.Add(uint64(1), uint32(0), uint8(1), uint8(0))
	f.Add(uint64(2), uint32(1025), uint8(2), uint8(1))
	f.Add(uint64(3), uint32(1<<20+1), uint8(3), uint8(4))
	f.Add(uint64(4), uint32(5<<20+999), uint8(8), uint8(10))
	f.Fuzz(func(t *testing.T, seed uint64, size uint32, workers, unitShift uint8) {
		size %= 6 << 20
		opts := Options{Workers: int(workers%9) + 1, SubtreeSize: ChunkSize << (unitShift % 12)}
		in := randomInput(seed, int(size))
		want := zeebo.Sum256(in)
		got, err := Sum(context.Background(), bytes.NewReader(in), int64(size), opts)
		if err != nil {
			t.Fatalf("size %d, %+v: %v", size, opts, err)
		}
		if got != want {
			t.Fatalf("size %d, %+v: got %x, want %x", size, opts, got, want)
		}
	})
}
