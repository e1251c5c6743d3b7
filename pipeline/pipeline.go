// Package pipeline turns a Source into an ordered stream of hashed entries.
//
// Run lists the source once, hashes objects with a bounded pool of workers
// (one goroutine per worker, never one per object), and delivers results to
// a single consumer in strictly increasing key order through a window of
// fixed size, in batches. Memory is bounded by Workers read buffers plus
// Window results, whatever the size of the dataset, so a consumer that
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
	"time"

	"github.com/zeebo/blake3"
	"golang.org/x/sync/errgroup"

	"github.com/lakeproof/lakeproof"
)

// Options tune Run. The zero value is valid.
type Options struct {
	// Workers is the number of objects hashed concurrently; 0 means
	// runtime.NumCPU().
	Workers int
	// Window is the number of listed objects that may be in flight between
	// the listing and the consumer (waiting to be hashed or re-ordered); 0
	// means 256 per worker, at least 16384: enough for a fast listing to
	// run on while the consumer works in bursts (the index writer flushes
	// and the predecessor is decoded a row group at a time, tens of
	// milliseconds each). Of these, at most max(4, 2×Workers) batches of
	// up to 128 objects may hold objects to hash. It bounds memory, not
	// correctness.
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
	Reused atomic.Int64 // objects whose digest came from Options.Reuse
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
		window = max(16384, 256*workers)
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

	// Objects travel in batches: the listing fills a batch, the consumer
	// decides reuse and hands the rest to the workers one object at a time,
	// then waits for the whole batch and emits it in order. A batch
	// costs a few channel operations whatever its length, so that a re-index
	// where nothing is read does not pay a hand-off per object, and the
	// listing goroutine does nothing but list.
	batchLen := min(maxBatch, max(1, window/8))
	nbatch := (window + batchLen - 1) / batchLen
	free := make(chan *batch, nbatch)
	for range nbatch {
		free <- &batch{res: make([]Result, 0, batchLen), done: make(chan struct{}, 1)}
	}
	listed := make(chan *batch, nbatch)
	jobs := make(chan job, workers)

	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { // lister: the listing, in order
		defer close(listed)
		var (
			b        *batch
			prev     string
			first    = true
			bytes    int64
			started  time.Time
			handOver = func() error {
				select {
				case listed <- b:
				case <-ctx.Done():
					return ctx.Err()
				}
				b = nil
				return nil
			}
		)
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
			if b == nil {
				select {
				case b = <-free:
				default:
					select {
					case b = <-free:
					case <-ctx.Done():
						return ctx.Err()
					}
				}
				bytes, started = 0, time.Now()
			}
			r := Result{Object: obj, Err: oerr}
			if oerr != nil && r.Key == "" {
				r.Key = oerr.Key
			}
			b.res = append(b.res, r)
			bytes += max(obj.Size, 0)
			// A batch also leaves when it holds enough content to keep the
			// workers busy, or has waited for a slow listing long enough
			// (checked every 8 objects: reading the clock per object would
			// cost the listing 1-2%).
			if len(b.res) == cap(b.res) || bytes >= batchBytes || len(b.res)%8 == 0 && time.Since(started) > batchAge {
				if err := handOver(); err != nil {
					return err
				}
			}
		}
		if b != nil && len(b.res) > 0 {
			if err := handOver(); err != nil {
				return err
			}
		}
		return ctx.Err()
	})

	for range workers {
		g.Go(func() error {
			w := &worker{src: src, buf: make([]byte, bufSize), h: blake3.New(), large: large, workers: workers}
			for j := range jobs {
				r := &j.b.res[j.i]
				r.Digest, r.Err = w.hash(ctx, &r.Object)
				if r.Err == nil {
					prog.Files.Add(1)
					prog.Bytes.Add(r.Size)
				}
				j.b.release()
			}
			return nil
		})
	}

	// The consumer dispatches batches (reuse decisions, hashing jobs) and
	// emits them, both in listing order. Doing both on one goroutine keeps
	// the work that is not the listing's on one core when nothing is hashed
	// (an unchanged re-index): Go does not prioritise goroutines, and a
	// third busy one would take turns with the listing. It is a small state
	// machine so that a batch is emitted as soon as it is complete, even
	// while the workers are too busy to take the next job.
	//
	// Only maxHashing batches with objects to hash may be waiting at once:
	// the whole window is for runs of reused digests, while objects hashed
	// ahead of an unfinished one (a large object early in the listing)
	// reach the consumer (the resume journal) only when it is done, so
	// they are kept to a few batches.
	maxHashing := max(4, 2*workers)
	g.Go(func() error {
		defer close(jobs)
		var (
			q       = make([]*batch, 0, nbatch) // dispatched or dispatching, not yet emitted
			in      = listed
			cur     *batch // the batch being dispatched (the last of q), or nil
			next    int    // its next object to decide
			send    chan<- job
			j       job // the job waiting for a worker when send is not nil
			hashing int // batches of q with objects to hash
		)
		// advance decides cur's objects from next on until one must be
		// hashed (then offered to the workers through send) or cur ends.
		advance := func() {
			for ; next < len(cur.res); next++ {
				r := &cur.res[next]
				if r.Err != nil {
					continue
				}
				if opts.Reuse != nil {
					if d, ok := opts.Reuse(r.Object); ok {
						r.Digest, r.Reused = d, true
						continue
					}
				}
				if !cur.hashing {
					cur.hashing = true
					hashing++
				}
				cur.left.Add(1)
				j = job{cur, next}
				select {
				case jobs <- j: // a worker is free
				default:
					next++
					send = jobs
					return
				}
			}
			cur.release() // every object decided
			cur = nil
		}
		for in != nil || len(q) > 0 {
			var front chan struct{}
			if len(q) > 0 && q[0] != cur {
				front = q[0].done
			}
			recv := in
			if cur != nil || hashing >= maxHashing {
				recv = nil // one batch dispatched at a time, and few hashed ahead
			}
			select {
			case <-front:
				b := q[0]
				q = append(q[:0], q[1:]...)
				if b.hashing {
					b.hashing = false
					hashing--
				}
				reused := int64(0)
				for i := range b.res {
					if b.res[i].Err != nil {
						prog.Errors.Add(1)
					}
					if b.res[i].Reused {
						reused++
					}
					if err := emit(b.res[i]); err != nil {
						return err
					}
				}
				prog.Reused.Add(reused) // once per batch: it is on the hot path of a re-index
				clear(b.res)
				b.res = b.res[:0]
				free <- b
			case send <- j:
				send = nil
				advance()
			case b, ok := <-recv:
				if !ok {
					in = nil
					continue
				}
				b.left.Store(1) // the consumer's hold until every object is decided
				q = append(q, b)
				cur, next = b, 0
				advance()
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	})
	return g.Wait()
}

const (
	maxBatch   = 128                  // objects per batch
	batchBytes = 16 << 20             // content that makes a batch leave early
	batchAge   = 2 * time.Millisecond // how long a batch waits for a slow listing
)

// batch is a run of listed objects. left counts the holds on it (one per
// object being hashed, one for the consumer until it has decided every
// object); the last release signals
// done, after which the consumer owns every Result.
type batch struct {
	res     []Result
	left    atomic.Int32
	done    chan struct{}
	hashing bool // some objects were handed to the workers (consumer only)
}

func (b *batch) release() {
	if b.left.Add(-1) == 0 {
		b.done <- struct{}{}
	}
}

// job is one object of a batch to hash.
type job struct {
	b *batch
	i int
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
