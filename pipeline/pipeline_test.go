package pipeline_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"math/rand/v2"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zeebo/blake3"

	"github.com/lakeproof/lakeproof"
	"github.com/lakeproof/lakeproof/pipeline"
)

// fakeSource is a hand-written in-memory source. The real drivers have
// their own tests against real file systems and S3; this one exists to
// inject what real ones rarely do on demand: out-of-order listings, slow
// objects, short reads, and millions of objects without disk.
type fakeSource struct {
	n       int
	keys    func(i int) string
	content func(i int) []byte
	listErr map[int]error // per-object listing errors (ObjectError) or a fatal one
	delay   func(i int) time.Duration
	short   map[string]bool // objects whose reader returns fewer bytes than listed
	openErr map[string]error
	opened  chan string
}

func (f *fakeSource) URI() string { return "fake://" }

func (f *fakeSource) key(i int) string {
	if f.keys != nil {
		return f.keys(i)
	}
	return fmt.Sprintf("obj/%09d", i)
}

func (f *fakeSource) data(i int) []byte {
	if f.content != nil {
		return f.content(i)
	}
	return []byte(f.key(i))
}

func (f *fakeSource) Objects(ctx context.Context) iter.Seq2[pipeline.Object, error] {
	return func(yield func(pipeline.Object, error) bool) {
		for i := range f.n {
			if ctx.Err() != nil {
				yield(pipeline.Object{}, ctx.Err())
				return
			}
			if err := f.listErr[i]; err != nil {
				if !yield(pipeline.Object{}, err) {
					return
				}
				continue
			}
			if !yield(pipeline.Object{Key: f.key(i), Size: int64(len(f.data(i))), ETag: fmt.Sprint(i)}, nil) {
				return
			}
		}
	}
}

func (f *fakeSource) Open(ctx context.Context, obj pipeline.Object) (io.ReadCloser, error) {
	if err := f.openErr[obj.Key]; err != nil {
		return nil, err
	}
	var i int
	fmt.Sscan(obj.ETag, &i)
	if f.delay != nil {
		time.Sleep(f.delay(i))
	}
	d := f.data(i)
	if f.short[obj.Key] {
		d = d[:len(d)/2]
	}
	return io.NopCloser(bytes.NewReader(d)), nil
}

func collect(t *testing.T, src pipeline.Source, opts pipeline.Options) ([]pipeline.Result, error) {
	t.Helper()
	var out []pipeline.Result
	err := pipeline.Run(context.Background(), src, opts, func(r pipeline.Result) error {
		out = append(out, r)
		return nil
	})
	return out, err
}

func TestOrderAndDigests(t *testing.T) {
	src := &fakeSource{
		n:       500,
		content: func(i int) []byte { return bytes.Repeat([]byte{byte(i)}, i*37) },
		delay:   func(i int) time.Duration { return time.Duration(rand.IntN(300)) * time.Microsecond },
	}
	for _, opts := range []pipeline.Options{{}, {Workers: 1}, {Workers: 7, Window: 3}, {Workers: 4, BufferSize: 13}} {
		res, err := collect(t, src, opts)
		if err != nil {
			t.Fatal(err)
		}
		if len(res) != src.n {
			t.Fatalf("%d results, want %d", len(res), src.n)
		}
		for i, r := range res {
			if r.Err != nil || r.Key != src.key(i) || r.Digest != lakeproof.Hash(blake3.Sum256(src.content(i))) {
				t.Fatalf("opts %+v: result %d = %+v", opts, i, r)
			}
		}
	}
}

func TestLargeObjectPath(t *testing.T) {
	data := make([]byte, 3<<20+123)
	for i := range data {
		data[i] = byte(i * 7)
	}
	src := &fakeSource{n: 3, content: func(i int) []byte { return data[:len(data)-i] }}
	res, err := collect(t, src, pipeline.Options{Workers: 2, LargeObject: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r.Err != nil || r.Digest != lakeproof.Hash(blake3.Sum256(data[:len(data)-i])) {
			t.Fatalf("result %d = %+v", i, r)
		}
	}
}

func TestObjectErrorsPassThrough(t *testing.T) {
	src := &fakeSource{
		n:       10,
		listErr: map[int]error{3: &pipeline.ObjectError{Key: "obj/000000003", Op: "key", Err: errors.New("bad name")}},
		short:   map[string]bool{"obj/000000005": true},
		openErr: map[string]error{"obj/000000007": fmt.Errorf("gone: %w", pipeline.ErrNotFound)},
	}
	var prog pipeline.Progress
	res, err := collect(t, src, pipeline.Options{Workers: 3, Progress: &prog})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 10 {
		t.Fatalf("%d results, want 10: nothing may be dropped", len(res))
	}
	for i, r := range res {
		failed := r.Err != nil
		if want := i == 3 || i == 5 || i == 7; failed != want {
			t.Errorf("result %d: err %v", i, r.Err)
		}
	}
	if !errors.Is(res[5].Err, pipeline.ErrChanged) || res[5].Err.Key != "obj/000000005" {
		t.Errorf("short read: %v, want ErrChanged naming the key", res[5].Err)
	}
	if !errors.Is(res[7].Err, pipeline.ErrNotFound) {
		t.Errorf("open error: %v", res[7].Err)
	}
	if prog.Files.Load() != 7 || prog.Errors.Load() != 3 {
		t.Errorf("progress files=%d errors=%d", prog.Files.Load(), prog.Errors.Load())
	}
}

func TestRefusesBadOrder(t *testing.T) {
	for name, keys := range map[string]func(int) string{
		"duplicate": func(i int) string { return fmt.Sprint("k", min(i, 5)) },
		"backwards": func(i int) string { return fmt.Sprint("k", 9-i) },
	} {
		_, err := collect(t, &fakeSource{n: 10, keys: keys}, pipeline.Options{Workers: 2})
		if !errors.Is(err, pipeline.ErrOrder) {
			t.Errorf("%s: %v, want ErrOrder", name, err)
		}
	}
}

func TestFatalListingError(t *testing.T) {
	boom := errors.New("listing failed")
	_, err := collect(t, &fakeSource{n: 100, listErr: map[int]error{50: boom}}, pipeline.Options{})
	if !errors.Is(err, boom) {
		t.Fatalf("got %v", err)
	}
}

func TestCancelStopsEverything(t *testing.T) {
	before := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	err := pipeline.Run(ctx, &fakeSource{n: 1 << 30}, pipeline.Options{Workers: 4}, func(r pipeline.Result) error {
		if n++; n == 1000 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
	emitErr := errors.New("sink full")
	err = pipeline.Run(context.Background(), &fakeSource{n: 1 << 30}, pipeline.Options{}, func(pipeline.Result) error { return emitErr })
	if !errors.Is(err, emitErr) {
		t.Fatalf("got %v", err)
	}
	time.Sleep(50 * time.Millisecond)
	if after := runtime.NumGoroutine(); after > before+1 {
		t.Fatalf("%d goroutines before, %d after: Run leaked", before, after)
	}
}

// TestFlatMemory hashes a million objects and checks that the heap does not
// grow with the number of objects.
func TestFlatMemory(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("slow, and meaningless under the race detector (.ci/run runs it without -race)")
	}
	measure := func(n int) uint64 {
		var peak uint64
		i := 0
		runtime.GC()
		err := pipeline.Run(context.Background(), &fakeSource{n: n}, pipeline.Options{Workers: 2}, func(pipeline.Result) error {
			if i++; i%50_000 == 0 {
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				peak = max(peak, ms.HeapInuse)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return peak
	}
	small, big := measure(100_000), measure(1_000_000)
	t.Logf("heap in use: %d KiB at 100k objects, %d KiB at 1M", small>>10, big>>10)
	if big > small+8<<20 {
		t.Fatalf("heap grew from %d to %d bytes between 100k and 1M objects", small, big)
	}
}

// slowListing lists n objects, sleeping between them, and records when it
// has listed them all.
type slowListing struct {
	*fakeSource
	pause time.Duration
	ended atomic.Bool
}

func (s *slowListing) Objects(ctx context.Context) iter.Seq2[pipeline.Object, error] {
	return func(yield func(pipeline.Object, error) bool) {
		for o, err := range s.fakeSource.Objects(ctx) {
			time.Sleep(s.pause)
			if !yield(o, err) {
				return
			}
		}
		s.ended.Store(true)
	}
}

// Objects of a slow listing are hashed and emitted while it goes on: a
// batch (up to 128 objects) does not wait to be full.
func TestSlowListingFlows(t *testing.T) {
	src := &slowListing{fakeSource: &fakeSource{n: 100}, pause: time.Millisecond}
	first := true
	err := pipeline.Run(context.Background(), src, pipeline.Options{}, func(r pipeline.Result) error {
		if first && src.ended.Load() {
			t.Errorf("first result %s emitted only after the listing ended", r.Key)
		}
		first = false
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Objects hashed ahead of a slow one reach the consumer (the resume
// journal) only after it, so only a few batches of them may wait: the
// large window is for reused digests, not for hashing far ahead.
func TestHashedAheadBounded(t *testing.T) {
	var opened atomic.Int64
	src := &fakeSource{n: 20000, delay: func(i int) time.Duration {
		opened.Add(1)
		if i == 0 {
			return 300 * time.Millisecond
		}
		return 0
	}}
	atFirst := int64(-1)
	err := pipeline.Run(context.Background(), src, pipeline.Options{Workers: 2}, func(r pipeline.Result) error {
		if atFirst < 0 {
			atFirst = opened.Load()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// 4 batches of at most 128 objects with 2 workers; far below the window.
	if atFirst > 600 {
		t.Fatalf("%d objects opened before the first result was emitted", atFirst)
	}
}
