package pipeline_test

import (
	"context"
	"io"
	"sync"
	"testing"

	"github.com/zeebo/blake3"

	"github.com/lakeproof/lakeproof"
	"github.com/lakeproof/lakeproof/pipeline"
)

// Options.Reuse: objects it accepts are not opened and carry its digest
// with Reused set; it is called once per listed object, in listing order;
// the others are hashed as usual.
func TestReuse(t *testing.T) {
	fs := &fakeSource{n: 300}
	src := &openCounter{fakeSource: fs, opened: map[string]bool{}}
	marker := lakeproof.Hash{0xaa}
	var (
		mu     sync.Mutex
		called []string
	)
	var prog pipeline.Progress
	res, err := collect(t, src, pipeline.Options{Workers: 3, Progress: &prog, Reuse: func(o pipeline.Object) (lakeproof.Hash, bool) {
		mu.Lock()
		called = append(called, o.Key)
		mu.Unlock()
		var i int
		for _, c := range o.ETag {
			i = i*10 + int(c-'0')
		}
		return marker, i%3 == 0
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 300 || len(called) != 300 {
		t.Fatalf("%d results, reuse called %d times", len(res), len(called))
	}
	if r, f := prog.Reused.Load(), prog.Files.Load(); r != 100 || f != 200 {
		t.Fatalf("progress: %d reused, %d hashed; want 100 and 200", r, f)
	}
	for i, r := range res {
		if called[i] != r.Key || r.Key != fs.key(i) {
			t.Fatalf("result %d: key %q, reuse called with %q", i, r.Key, called[i])
		}
		want := lakeproof.Hash(blake3.Sum256(fs.data(i)))
		if i%3 == 0 {
			want = marker
		}
		if r.Digest != want || r.Reused != (i%3 == 0) || r.Err != nil {
			t.Fatalf("result %d: %+v", i, r)
		}
		if src.opened[r.Key] == r.Reused {
			t.Fatalf("result %d: reused %v, opened %v", i, r.Reused, src.opened[r.Key])
		}
	}
}

type openCounter struct {
	*fakeSource
	mu     sync.Mutex
	opened map[string]bool
}

func (c *openCounter) Open(ctx context.Context, o pipeline.Object) (io.ReadCloser, error) {
	c.mu.Lock()
	c.opened[o.Key] = true
	c.mu.Unlock()
	return c.fakeSource.Open(ctx, o)
}
