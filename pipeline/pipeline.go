// Package pipeline turns a Source into an ordered stream of hashed entries.
//
// Run lists the source once, hashes objects with a bounded pool of workers
// (one goroutine per worker, never one per object), and delivers results to
// a single consumer in strictly increasing key order through a reorder
// window of fixed size. Memory is bounded by Workers read buffers plus
// Window result slots, whatever the size of the dataset, so a consumer that
// streams (the index writer does) keeps the whole run flat in memory.
//
// Invariants:
//   - every listed object reaches the consumer exactly once, as a digest or
//     as an *ObjectError; nothing is dropped;
//   - results reach the consumer in the order the source listed them, and
//     Run fails if that order is not strictly increasing bytewise;
//   - a digest is only ever reported for content read in full, of exactly the
//     listed size, from an object that did not change while it was read.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync/atomic"

	"github.com/zeebo/blake3"
	"golang.org/x/sync/errgroup"

	"github.com/lakeproof/lakeproof"
)

// Options tune Run. The zero value is valid.
type Options struct {
	// Workers is the number of objects hashed concurrently; 0 means
	// runtime.NumCPU().
	Workers int
	// Window is the number of results that may wait to be re-ordered; 0
	// means 64 per worker. It bounds memory, not correctness.
	Window int
	// BufferSize is the size of each worker's read buffer; 0 means 256 KiB.
	BufferSize int
	// LargeObject is the size from which an object whose reader implements
	// io.ReaderAt is hashed by several workers at once; 0 means 64 MiB,
	// negative disables it.
	LargeObject int64
	// Progress, if not nil, is updated as objects complete.
	Progress *Progress
	// Reuse, if not nil, is called for every listed object, in listing
	// order, from a single goroutine (so it may merge-join the listing with
	// another sorted stream). When it returns ok, the object is not read:
	// its Result carries the returned digest with Reused set. The caller is
	// responsible for the digest's provenance (see pipeline/reuse.go).
	Reuse func(Object) (digest lakeproof.Hash, ok bool)
}

// Progress counts completed work. Its fields are updated atomically by Run
// and may be read at any time from other goroutines.
type Progress struct {
	Files  atomic.Int64 // objects hashed
	Bytes  atomic.Int64 // bytes hashed
	Errors atomic.Int64 // objects that failed
}

// Result is the outcome for one listed object, in key order.
type Result struct {
	Object
	// Digest is BLAKE3-256 of the content; valid only when Err is nil.
	Digest lakeproof.Hash
	// Err is non-nil when the object could not be hashed; the object is
	// then not part of the dataset tree.
	Err *ObjectError
	// Reused is true when Digest came from Options.Reuse, not from reading
	// the content in this run.
	Reused bool
}

// ErrOrder is returned by Run when a source lists keys out of strictly
// increasing bytewise order (a duplicate included).
var ErrOrder = errors.New("source listed keys out of order")

// Run lists src and hashes every object, calling emit once per listed
// object, in listing order, from one goroutine. It returns the first error
// of the listing, of emit, or of ctx; per-object problems are not errors
// of Run but Results with Err set. When Run returns, all its goroutines
// have exited.
func Run(ctx context.Context, src Source, opts Options, emit func(Result) error) error {
	workers := opts.Workers
	if workers <= 0 {
		workers = runtime.NumCPU()
	}
	window := opts.Window
	if window <= 0 {
		window = 64 * workers
	}
	window = max(window, workers)
	bufSize := opts.BufferSize
	if bufSize <= 0 {
		bufSize = 256 << 10
	}
	large := opts.LargeObject
	if large == 0 {
		large = 64 << 20
	}
	prog := opts.Progress
	if prog == nil {
		prog = new(Progress)
	}

	g, ctx := errgroup.WithContext(ctx)
	// The slots form a fixed ring: free -> (producer) -> pending and jobs
	// -> (worker) -> done -> (consumer) -> free.
	free := make(chan *slot, window)
	for range window {
		free <- &slot{done: make(chan struct{}, 1)}
	}
	pending := make(chan *slot, window)
	jobs := make(chan *slot, workers)

	g.Go(func() error { // producer: the listing, in order
		defer close(pending)
		defer close(jobs)
		prev, first := "", true
		for obj, err := range src.Objects(ctx) {
			var oerr *ObjectError
			if err != nil && !errors.As(err, &oerr) {
				return fmt.Errorf("list %s: %w", src.URI(), err)
			}
			if err == nil {
				if !first && obj.Key <= prev {
					return fmt.Errorf("%w: %q listed after %q", ErrOrder, obj.Key, prev)
				}
				prev, first = obj.Key, false
			}
			// Each channel operation first tries without blocking: a
			// non-blocking single-case select is much cheaper than a
			// two-case one, and with reused digests (an unchanged
			// re-index) this loop runs a million times without hashing.
			var s *slot
			select {
			case s = <-free:
			default:
				select {
				case s = <-free:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			s.res = Result{Object: obj, Err: oerr}
			if oerr != nil && s.res.Key == "" {
				s.res.Key = oerr.Key
			}
			select {
			case pending <- s:
			default:
				select {
				case pending <- s:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			if oerr != nil {
				s.done <- struct{}{}
				continue
			}
			if opts.Reuse != nil {
				if d, ok := opts.Reuse(obj); ok {
					s.res.Digest, s.res.Reused = d, true
					s.done <- struct{}{}
					continue
				}
			}
			select {
			case jobs <- s:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return ctx.Err()
	})

	for range workers {
		g.Go(func() error {
			w := &worker{src: src, buf: make([]byte, bufSize), h: blake3.New(), large: large, workers: workers}
			for s := range jobs {
				s.res.Digest, s.res.Err = w.hash(ctx, &s.res.Object)
				if s.res.Err == nil {
					prog.Files.Add(1)
					prog.Bytes.Add(s.res.Size)
				}
				s.done <- struct{}{}
			}
			return nil
		})
	}

	g.Go(func() error { // consumer: re-ordered results
		for s := range pending {
			select {
			case <-s.done:
			default:
				select {
				case <-s.done:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			if s.res.Err != nil {
				prog.Errors.Add(1)
			}
			if err := emit(s.res); err != nil {
				return err
			}
			s.res = Result{}
			free <- s
		}
		return nil
	})
	return g.Wait()
}

type slot struct {
	res  Result
	done chan struct{}
}

type worker struct {
	src     Source
	buf     []byte
	h       *blake3.Hasher
	large   int64
	workers int
}

// checksummer is implemented by readers that learn a provider checksum
// while reading (S3 returns x-amz-checksum-* with the GET).
type checksummer interface{ Checksum() string }

// hash reads obj in full and returns its digest, or the reason it cannot.
// It fills obj.Checksum from the reader when the listing had none.
func (w *worker) hash(ctx context.Context, obj *Object) (lakeproof.Hash, *ObjectError) {
	fail := func(op string, err error) (lakeproof.Hash, *ObjectError) {
		return lakeproof.Hash{}, &ObjectError{Key: obj.Key, Op: op, Err: err}
	}
	rc, err := w.src.Open(ctx, *obj)
	if err != nil {
		if ctx.Err() != nil {
			return fail("open", ctx.Err())
		}
		return fail("open", err)
	}
	var (
		digest lakeproof.Hash
		n      int64
	)
	if ra, ok := rc.(io.ReaderAt); ok && w.large > 0 && obj.Size >= w.large && w.workers > 1 {
		digest, err = hashLarge(ctx, ra, obj.Size, w.workers)
		n = obj.Size
	} else {
		digest, n, err = w.stream(ctx, rc, obj.Size)
	}
	cerr := rc.Close()
	switch {
	case err != nil:
		return fail("read", err)
	case cerr != nil:
		return fail("read", cerr)
	case n != obj.Size:
		return fail("read", fmt.Errorf("%w: listed with %d bytes, read %d", ErrChanged, obj.Size, n))
	}
	if cs, ok := rc.(checksummer); ok && obj.Checksum == "" {
		obj.Checksum = cs.Checksum()
	}
	return digest, nil
}

// stream hashes r sequentially, reading at most limit+1 bytes so that an
// object longer than listed is detected without reading it all.
func (w *worker) stream(ctx context.Context, r io.Reader, limit int64) (lakeproof.Hash, int64, error) {
	w.h.Reset()
	lr := io.LimitReader(r, limit+1)
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return lakeproof.Hash{}, n, err
		}
		m, err := lr.Read(w.buf)
		if m > 0 {
			w.h.Write(w.buf[:m])
			n += int64(m)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return lakeproof.Hash{}, n, err
		}
	}
	var d lakeproof.Hash
	w.h.Sum(d[:0])
	return d, n, nil
}
