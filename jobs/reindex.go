package jobs

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/transparency-dev/merkle/compact"
	"github.com/zeebo/blake3"

	"github.com/lakeproof/lakeproof"
	"github.com/lakeproof/lakeproof/index"
	"github.com/lakeproof/lakeproof/pipeline"
)

// ErrPredecessor means the previous index cannot be used: it belongs to
// another dataset, or its rows do not lead to the root of its summary.
var ErrPredecessor = errors.New("previous index unusable")

// ErrObjects means some objects could not be hashed and errors were not
// to be skipped; nothing was published.
var ErrObjects = errors.New("objects could not be hashed")

// IndexOptions describe one (possibly incremental, possibly sharded) index run.
type IndexOptions struct {
	Out        string // index directory to create
	Tool       string // recorded in summary.json
	Workers    int
	SkipErrors bool
	// Previous is the path of the predecessor index; "" for a full run.
	Previous string
	// PreviousDir, if not nil, is the predecessor index read from
	// elsewhere (an index version on S3); it takes precedence over Previous.
	PreviousDir index.Dir
	// VerifySample is the fraction (0..1) of reusable objects re-hashed
	// anyway and compared with the predecessor's digest.
	VerifySample float64
	// RehashAll re-hashes every object (and compares unchanged ones).
	RehashAll bool
	// AppendOnly refuses to publish when an object of the predecessor
	// changed or disappeared.
	AppendOnly bool
	// Shard, if set, restricts the run to one key range.
	Shard *index.Shard
	// Journal, if not "", is the resume journal file (see journal.go).
	Journal string
	// OnError, if not nil, is told of every object that failed.
	OnError  func(*pipeline.ObjectError)
	Progress *pipeline.Progress
}

// MaxListed bounds the keys kept in a report's lists.
const MaxListed = 1000

// IndexResult reports a run.
type IndexResult struct {
	Index         string         `json:"index"`
	Source        string         `json:"source"`
	Root          lakeproof.Hash `json:"root"`
	Files         uint64         `json:"files"`
	Bytes         uint64         `json:"bytes"`
	Errors        uint64         `json:"errors"`
	Rehashed      uint64         `json:"rehashed"`
	Reused        uint64         `json:"reused"`
	RehashedBytes uint64         `json:"rehashed_bytes"`
	ReusedBytes   uint64         `json:"reused_bytes"`
	Resumed       uint64         `json:"resumed,omitempty"` // digests taken from the journal
	// Sampled counts objects re-hashed although their metadata was
	// unchanged (--verify-sample, --rehash-all); Mismatches lists those
	// whose content no longer matches the predecessor's digest.
	Sampled    uint64   `json:"sampled"`
	Mismatches []string `json:"mismatches,omitempty"`
	// Changed and Missing are keys of the predecessor whose content
	// changed or that disappeared (at most MaxListed each; the counts are exact).
	ChangedCount uint64          `json:"changed"`
	MissingCount uint64          `json:"missing"`
	Changed      []string        `json:"changed_keys,omitempty"`
	Missing      []string        `json:"missing_keys,omitempty"`
	Previous     *index.Previous `json:"previous,omitempty"`
	Shard        *index.Shard    `json:"shard,omitempty"`
	Seconds      float64         `json:"seconds"`
	Published    bool            `json:"published"`
}

// reuser merge-joins the listing with the predecessor's entries. reuse is
// called by the pipeline's consumer in listing order, ahead of emission;
// the emit callback pops the matching predecessor entries in the same
// order (both run on the consumer's goroutine).
//
// It also checks that the predecessor's rows lead to its summary's root,
// without a second tree where it can: while every predecessor row read so
// far was reused verbatim as the new row at the same position (treeAligned),
// the predecessor's tree over those rows is the one the index writer
// builds, so r.tree is not maintained. At the first row that is not (split),
// the leaves read since are held in lag until the writer has written split
// leaves (it lags behind reuse by the pipeline's window); r.tree then
// starts from the writer's compact range (treeTracking).
type reuser struct {
	next    func() (prevEntry, error, bool)
	stop    func()
	prev    prevEntry
	has     bool
	err     error
	tree    *compact.Range // predecessor's rows [0, split) from the writer, then every row read
	pbytes  uint64
	mode    treeMode
	aligned uint64           // rows reused verbatim at their own position (treeAligned)
	split   uint64           // aligned when the first other row came (treeWaiting)
	lag     []lakeproof.Hash // treeAligned, treeWaiting: leaves of rows read, not in r.tree, from row aligned or split on
	w       *index.Writer
	written uint64 // leaves added to w
	shard   *index.Shard
	sample  uint64 // threshold on a 64-bit hash; 0 = none
	seed    lakeproof.Hash
	all     bool
	res     *IndexResult
	journal *journalReader

	mu    sync.Mutex
	queue jqueue // predecessor entry of each object passed to reuse, in order
}

type treeMode uint8

const (
	treeAligned treeMode = iota
	treeWaiting
	treeTracking
)

// jqueue is a FIFO of joined in a ring buffer that grows when full; its
// length is bounded by the pipeline's window, so it stops growing early
// and then allocates nothing per object.
type jqueue struct {
	buf     []joined // len is a power of two
	head, n int
}

func (q *jqueue) push(j joined) {
	if q.n == len(q.buf) {
		nb := make([]joined, max(16, 2*len(q.buf)))
		for i := range q.n {
			nb[i] = q.buf[(q.head+i)&(len(q.buf)-1)]
		}
		q.buf, q.head = nb, 0
	}
	q.buf[(q.head+q.n)&(len(q.buf)-1)] = j
	q.n++
}

// front returns the oldest element, if any.
func (q *jqueue) front() (*joined, bool) {
	if q.n == 0 {
		return nil, false
	}
	return &q.buf[q.head], true
}

func (q *jqueue) popFront() joined {
	j := q.buf[q.head]
	q.buf[q.head] = joined{}
	q.head = (q.head + 1) & (len(q.buf) - 1)
	q.n--
	return j
}

type joined struct {
	key     string
	prev    prevEntry
	found   bool // the predecessor has the key
	same    bool // metadata unchanged
	sampled bool // re-hashed although reusable
}

func newReuser(res *IndexResult, shard *index.Shard, all bool) *reuser {
	rf := compact.RangeFactory{Hash: lakeproof.Hasher.HashChildren}
	r := &reuser{res: res, shard: shard, all: all, tree: rf.NewEmptyRange(0)}
	if shard != nil { // the predecessor's rows before the shard are not the writer's
		r.mode = treeTracking
	}
	return r
}

func (r *reuser) advance() {
	e, err, ok := r.next()
	switch {
	case !ok:
		r.has = false
	case err != nil:
		r.err, r.has = err, false
	default:
		r.prev, r.has = e, true
	}
}

// prevEntry is a predecessor row with its leaf hash, computed once by
// prefetch for the predecessor's root check and handed to the writer for
// an unchanged row (index.Writer.AddLeaf) instead of being recomputed.
type prevEntry struct {
	index.Entry
	leaf lakeproof.Hash
}

// prefetch returns the predecessor's entries of the shard's range (all
// without a shard), in order, through next, recomputing its root on the
// way (every row's leaf hash into r.tree or r.lag, see reuser, and its size
// into r.pbytes). stop releases the reader.
//
// On two cores a local predecessor is read on the caller's goroutine (the
// pipeline's consumer): a reader goroutine of its own would be a third busy
// goroutine taking turns with the listing, and an unchanged re-index is
// bounded by the listing (benchmarks/RESULTS.md, issue 6). A remote one
// (S3, read with ranged GETs) is read ahead by a goroutine, so that network
// waits do not stall the consumer, and so is any predecessor when a third
// core is there to do it.
func (r *reuser) prefetch(ctx context.Context, ix *index.Index, remote bool) (next func() (prevEntry, error, bool), stop func()) {
	seq := ix.Entries(ctx, "")
	if remote || runtime.GOMAXPROCS(0) >= 3 {
		seq = readAhead(ctx, seq)
	}
	return r.rows(seq)
}

// readAhead iterates seq in a goroutine of its own, a few batches ahead of
// the consumer of the returned sequence. The goroutine ends when seq does,
// or when the consumer stops early.
func readAhead[T any](ctx context.Context, seq iter.Seq2[T, error]) iter.Seq2[T, error] {
	const batch, ahead = 4096, 4
	type chunk struct {
		vs  []T
		err error
	}
	return func(yield func(T, error) bool) {
		ctx, cancel := context.WithCancel(ctx)
		ch := make(chan chunk, ahead)
		done := make(chan struct{})
		complete := false // set by the reader once seq ended and all was sent
		defer func() { cancel(); <-done }()
		go func() {
			defer close(done)
			defer close(ch)
			send := func(c chunk) bool {
				select {
				case ch <- c:
					return true
				case <-ctx.Done():
					return false
				}
			}
			buf := make([]T, 0, batch)
			for v, err := range seq {
				if err != nil {
					send(chunk{buf, err})
					return
				}
				if buf = append(buf, v); len(buf) == batch {
					if !send(chunk{vs: buf}) {
						return
					}
					buf = make([]T, 0, batch)
				}
			}
			complete = send(chunk{vs: buf})
		}()
		for c := range ch {
			for _, v := range c.vs {
				if !yield(v, nil) {
					return
				}
			}
			if c.err != nil {
				var zero T
				yield(zero, c.err)
				return
			}
		}
		if !complete { // the reader stopped on cancellation (ch closed: complete is final)
			var zero T
			yield(zero, context.Cause(ctx))
		}
	}
}

// rows is prefetch over any sequence of predecessor rows.
func (r *reuser) rows(seq iter.Seq2[index.Entry, error]) (next func() (prevEntry, error, bool), stop func()) {
	pull, stop := iter.Pull2(seq)
	ended := false
	next = func() (prevEntry, error, bool) {
		for !ended {
			e, err, ok := pull()
			if !ok {
				ended = true
				break
			}
			if err != nil {
				ended = true
				return prevEntry{}, fmt.Errorf("read the previous index: %w", err), true
			}
			leaf := lakeproof.LeafHash(e.Key, uint64(e.Size), e.Digest)
			if r.mode == treeTracking {
				if err := r.tree.Append(leaf[:], nil); err != nil {
					ended = true
					return prevEntry{}, err, true
				}
			} else {
				r.lag = append(r.lag, leaf)
			}
			r.pbytes += uint64(e.Size)
			if r.shard != nil && !r.shard.Contains(e.Key) {
				continue
			}
			return prevEntry{e, leaf}, nil, true
		}
		return prevEntry{}, nil, false
	}
	return next, stop
}

func (r *reuser) missing(e prevEntry) {
	r.diverge()
	r.res.MissingCount++
	if len(r.res.Missing) < MaxListed {
		r.res.Missing = append(r.res.Missing, e.Key)
	}
}

// sameMeta is the reuse rule: same size and modification time, the same
// ETag, and the same provider checksum when the listing reports one (a
// stored checksum may come from the GET of the previous run while the
// listing has none; the ETag still changes whenever an object is rewritten).
func sameMeta(o pipeline.Object, e index.Entry) bool {
	return metaMatch(o, pipeline.Object{Size: e.Size, ModTime: e.ModTime, ETag: e.ETag, Checksum: e.Checksum})
}

func metaMatch(listed, stored pipeline.Object) bool {
	return listed.Size == stored.Size && listed.ModTime.Equal(stored.ModTime) && listed.ETag == stored.ETag &&
		(listed.Checksum == "" || listed.Checksum == stored.Checksum)
}

func (r *reuser) sampled(key string) bool {
	if r.sample == 0 {
		return false
	}
	h := blake3.New()
	h.Write(r.seed[:])
	h.Write([]byte(key))
	var b [8]byte
	h.Digest().Read(b[:])
	return binary.BigEndian.Uint64(b[:]) < r.sample
}

func (r *reuser) reuse(o pipeline.Object) (lakeproof.Hash, bool) {
	j := joined{key: o.Key}
	if r.next != nil {
		for r.has && r.prev.Key < o.Key {
			r.missing(r.prev)
			r.advance()
		}
		if r.has && r.prev.Key == o.Key {
			j.prev, j.found, j.same = r.prev, true, sameMeta(o, r.prev.Entry)
			r.advance()
		}
	}
	if r.journal != nil {
		if d, ok := r.journal.lookup(o); ok {
			j.same = false // already hashed in the interrupted run
			r.diverge()
			r.push(j)
			r.res.Resumed++
			return d, true
		}
	}
	if j.same && (r.all || r.sampled(o.Key)) {
		j.sampled = true
	}
	r.push(j)
	if j.same && !j.sampled {
		if r.mode == treeAligned { // the predecessor's row r.aligned, verbatim
			r.aligned++
			r.lag = r.lag[:copy(r.lag, r.lag[1:])]
		}
		return j.prev.Digest, true
	}
	r.diverge()
	return lakeproof.Hash{}, false
}

// diverge ends treeAligned: the predecessor's rows from r.aligned on are
// not (all) the new rows at the same positions.
func (r *reuser) diverge() {
	if r.mode == treeAligned {
		r.mode, r.split = treeWaiting, r.aligned
		r.catchUp()
	}
}

// write adds e, the new row of an object that went through reuse as j, to
// the writer.
func (r *reuser) write(e index.Entry, j joined) error {
	var err error
	if j.found && j.prev.Size == e.Size && j.prev.Digest == e.Digest { // same key, so the same leaf
		err = r.w.AddLeaf(e, j.prev.leaf)
	} else {
		err = r.w.Add(e)
	}
	if err != nil {
		return err
	}
	r.written++
	if r.mode == treeWaiting {
		r.catchUp()
	}
	return nil
}

// catchUp starts r.tree from the writer's range once the writer holds the
// predecessor's first r.split rows.
func (r *reuser) catchUp() {
	if r.mode != treeWaiting || r.written != r.split {
		return
	}
	c := r.w.Range()
	hs := make([][]byte, len(c.Hashes))
	for i := range c.Hashes {
		hs[i] = c.Hashes[i][:]
	}
	rf := compact.RangeFactory{Hash: lakeproof.Hasher.HashChildren}
	t, err := rf.NewRange(0, c.Size, hs)
	for _, l := range r.lag {
		if err == nil {
			err = t.Append(l[:], nil)
		}
	}
	if err != nil && r.err == nil {
		r.err = fmt.Errorf("predecessor tree: %w", err)
	}
	r.tree, r.lag, r.mode = t, nil, treeTracking
}

func (r *reuser) push(j joined) {
	r.mu.Lock()
	r.queue.push(j)
	r.mu.Unlock()
}

// drop removes the queued entry of key, if it is at the head.
func (r *reuser) drop(key string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if f, ok := r.queue.front(); ok && f.key == key {
		r.queue.popFront()
	}
}

func (r *reuser) pop(key string) (joined, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if f, ok := r.queue.front(); !ok || f.key != key {
		return joined{}, fmt.Errorf("internal error: reuse queue out of step at %q", key)
	}
	return r.queue.popFront(), nil
}

// finish drains the predecessor and checks its root.
func (r *reuser) finish(sum index.Summary) error {
	if r.next == nil {
		return nil
	}
	defer r.stop()
	for r.has {
		r.missing(r.prev)
		r.advance()
	}
	if r.err != nil {
		return fmt.Errorf("%w: %v", ErrPredecessor, r.err)
	}
	root, rows := lakeproof.EmptyRoot, uint64(0)
	switch r.mode {
	case treeAligned: // every row is the new row at its position
		if r.written != r.aligned || len(r.lag) != 0 {
			return fmt.Errorf("internal error: %d predecessor rows reused in place, %d written, %d pending", r.aligned, r.written, len(r.lag))
		}
		root, rows = r.w.Root(), r.aligned
	case treeWaiting: // every object was emitted, so the writer holds split leaves
		return fmt.Errorf("internal error: predecessor tree waits for row %d, %d written", r.split, r.written)
	default:
		if rows = r.tree.End(); rows > 0 {
			h, err := r.tree.GetRootHash(nil)
			if err != nil {
				return err
			}
			root = lakeproof.Hash(h)
		}
	}
	if root != sum.Root || rows != sum.Files || r.pbytes != sum.Bytes {
		return fmt.Errorf("%w: its rows give root %s over %d entries, its summary.json says %s over %d: the previous index was altered; re-index with --rehash-all",
			ErrPredecessor, root, rows, sum.Root, sum.Files)
	}
	return nil
}

// Index hashes src into a new index at opts.Out, reusing the digests of
// unchanged objects of opts.Previous. See the package invariants.
func Index(ctx context.Context, src pipeline.Source, opts IndexOptions) (*IndexResult, error) {
	start := time.Now()
	if opts.Shard != nil {
		sh := *opts.Shard // Commit records the shard's compact range in it
		opts.Shard = &sh
	}
	res := &IndexResult{Index: opts.Out, Source: src.URI(), Shard: opts.Shard}
	if opts.VerifySample < 0 || opts.VerifySample > 1 {
		return res, fmt.Errorf("verify sample %g: must be between 0 and 1", opts.VerifySample)
	}
	if index.Exists(opts.Out) {
		return res, fmt.Errorf("%w: %s", index.ErrExists, opts.Out)
	}
	if opts.Shard != nil {
		if err := opts.Shard.Validate(); err != nil {
			return res, err
		}
		src = rangeSource{src, *opts.Shard}
	}
	ru := newReuser(res, opts.Shard, opts.RehashAll)
	var prevSum index.Summary
	prevDir := opts.PreviousDir
	if prevDir == nil && opts.Previous != "" {
		prevDir = index.LocalDir(opts.Previous)
		if _, err := os.Stat(opts.Previous); err != nil {
			return res, fmt.Errorf("%w: %w", ErrPredecessor, err)
		}
	}
	if prevDir != nil {
		opts.Previous = prevDir.String()
		ix, err := index.OpenDir(ctx, prevDir)
		if err != nil {
			return res, fmt.Errorf("%w: %w", ErrPredecessor, err)
		}
		defer ix.Close()
		digest, sum, err := index.SummaryDigest(ctx, prevDir)
		if err != nil {
			return res, fmt.Errorf("%w: %w", ErrPredecessor, err)
		}
		if sum.Root != ix.Summary().Root {
			return res, fmt.Errorf("%w: %s changed while being opened", ErrPredecessor, opts.Previous)
		}
		if sum.Shard != nil {
			return res, fmt.Errorf("%w: %s is a shard of a run, not a complete index (merge the shards first)", ErrPredecessor, opts.Previous)
		}
		if sum.Source != src.URI() {
			return res, fmt.Errorf("%w: %s indexes %s, not %s", ErrPredecessor, opts.Previous, sum.Source, src.URI())
		}
		prevSum = sum
		res.Previous = &index.Previous{Path: opts.Previous, Root: sum.Root, IndexDigest: digest}
		ru.seed = digest
		if opts.VerifySample > 0 {
			ru.sample = uint64(opts.VerifySample * (1 << 64))
			if opts.VerifySample >= 1 {
				ru.all = true
			}
		}
		_, local := prevDir.(index.LocalDir)
		ru.next, ru.stop = ru.prefetch(ctx, ix, !local)
		defer ru.stop() // on every early return; finish also stops it
		ru.advance()
	}
	if opts.Journal != "" {
		jr, err := openJournal(opts.Journal, src.URI(), opts.Shard)
		if err != nil {
			return res, err
		}
		defer jr.close()
		ru.journal = jr
	}
	w, err := index.Create(opts.Out, index.Meta{Source: src.URI(), Tool: opts.Tool, Previous: res.Previous, Shard: opts.Shard})
	if err != nil {
		return res, err
	}
	defer w.Abort()
	ru.w = w
	var jw *journalWriter
	if opts.Journal != "" {
		if jw, err = createJournal(opts.Journal, src.URI(), opts.Shard); err != nil {
			return res, err
		}
		defer jw.close()
	}
	popts := pipeline.Options{Workers: opts.Workers, Progress: opts.Progress, Reuse: ru.reuse}
	err = pipeline.Run(ctx, src, popts, func(r pipeline.Result) error {
		if r.Err != nil {
			ru.drop(r.Key) // an object that failed while being read went through reuse
			res.Errors++
			if opts.OnError != nil {
				opts.OnError(r.Err)
			}
			return w.AddError(index.ObjectError{Key: r.Err.Key, Op: r.Err.Op, Message: r.Err.Err.Error()})
		}
		j, err := ru.pop(r.Key)
		if err != nil {
			return err
		}
		if r.Reused {
			res.Reused++
			res.ReusedBytes += uint64(r.Size)
		} else {
			res.Rehashed++
			res.RehashedBytes += uint64(r.Size)
			if jw != nil {
				if err := jw.add(r.Object, r.Digest); err != nil {
					return err
				}
			}
		}
		if j.sampled {
			res.Sampled++
		}
		if j.found && (j.prev.Digest != r.Digest || j.prev.Size != r.Size) {
			res.ChangedCount++
			if len(res.Changed) < MaxListed {
				res.Changed = append(res.Changed, r.Key)
			}
			if j.sampled && len(res.Mismatches) < MaxListed {
				res.Mismatches = append(res.Mismatches, r.Key)
			}
		}
		e := index.Entry{Key: r.Key, Size: r.Size, ModTime: r.ModTime, Digest: r.Digest, ETag: r.ETag, Checksum: r.Checksum}
		return ru.write(e, j)
	})
	res.Seconds = time.Since(start).Seconds()
	if err != nil {
		return res, fmt.Errorf("index %s: %w (nothing written to %s)", src.URI(), err, opts.Out)
	}
	if err := ru.finish(prevSum); err != nil {
		return res, fmt.Errorf("index %s: %w (nothing written to %s)", src.URI(), err, opts.Out)
	}
	if res.Errors > 0 && !opts.SkipErrors {
		return res, fmt.Errorf("index %s: %w: %d object(s); nothing written to %s", src.URI(), ErrObjects, res.Errors, opts.Out)
	}
	if opts.AppendOnly && (res.ChangedCount > 0 || res.MissingCount > 0) {
		return res, fmt.Errorf("index %s: %w: %d changed, %d missing; nothing written to %s",
			src.URI(), ErrAppendOnly, res.ChangedCount, res.MissingCount, opts.Out)
	}
	if opts.Shard != nil {
		opts.Shard.Compact = w.Range() // recorded by Commit (Meta.Shard is opts.Shard)
	}
	sum, err := w.Commit(ctx)
	if err != nil {
		return res, fmt.Errorf("index %s: %w (nothing written to %s)", src.URI(), err, opts.Out)
	}
	if jw != nil {
		jw.remove()
	}
	res.Root, res.Files, res.Bytes, res.Published = sum.Root, sum.Files, sum.Bytes, true
	res.Seconds = time.Since(start).Seconds()
	return res, nil
}

// rangeSource lists only the keys of one shard: with the source's
// ObjectsRange when it has one (no listing outside the range), else by
// filtering its listing, which stops at the shard's end.
type rangeSource struct {
	pipeline.Source
	shard index.Shard
}

func (s rangeSource) Objects(ctx context.Context) iter.Seq2[pipeline.Object, error] {
	return listRange(ctx, s.Source, s.shard.Start, s.shard.End)
}

var _ io.Closer = (*journalWriter)(nil)
