package jobs

import (
	"context"
	"errors"
	"iter"
	"runtime"
	"testing"
	"time"
)

func ints(n, failAt int, err error) iter.Seq2[int, error] {
	return func(yield func(int, error) bool) {
		for i := range n {
			if i == failAt {
				yield(0, err)
				return
			}
			if !yield(i, nil) {
				return
			}
		}
	}
}

// readAhead yields what its sequence yields, in order, ends with its
// error, and leaves no goroutine behind when its consumer stops early or
// the context ends.
func TestReadAhead(t *testing.T) {
	boom := errors.New("boom")
	before := runtime.NumGoroutine()
	for _, tc := range []struct {
		name            string
		n, failAt, stop int
		cancel          bool
		want            int // values seen
		err             error
	}{
		{name: "empty", n: 0, failAt: -1, stop: -1},
		{name: "all", n: 10_000, failAt: -1, stop: -1, want: 10_000},
		{name: "exact batches", n: 8192, failAt: -1, stop: -1, want: 8192},
		{name: "error", n: 10_000, failAt: 9_000, stop: -1, want: 9_000, err: boom},
		{name: "error first", n: 10, failAt: 0, stop: -1, err: boom},
		{name: "stop early", n: 100_000, failAt: -1, stop: 5, want: 5},
		{name: "cancelled", n: 1 << 30, failAt: -1, stop: -1, cancel: true, err: context.Canceled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			seen, next := 0, 0
			var gotErr error
			for v, err := range readAhead(ctx, ints(tc.n, tc.failAt, boom)) {
				if err != nil {
					gotErr = err
					break
				}
				if v != next {
					t.Fatalf("got %d, want %d", v, next)
				}
				next++
				if seen++; seen == tc.stop {
					break
				}
				if tc.cancel && seen == 1000 {
					cancel()
				}
			}
			if tc.cancel {
				if !errors.Is(gotErr, context.Canceled) {
					t.Fatalf("after cancel: %v", gotErr)
				}
				return
			}
			if seen != tc.want || !errors.Is(gotErr, tc.err) || (tc.err == nil) != (gotErr == nil) {
				t.Fatalf("saw %d values and %v, want %d and %v", seen, gotErr, tc.want, tc.err)
			}
		})
	}
	time.Sleep(20 * time.Millisecond)
	if after := runtime.NumGoroutine(); after > before {
		t.Fatalf("%d goroutines before, %d after", before, after)
	}
}
