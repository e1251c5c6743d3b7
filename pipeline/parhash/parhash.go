// Package parhash computes lakeproof file digests: BLAKE3-256 of an object's
// content, byte-identical to the output of the b3sum tool.
//
// It offers three entry points:
//
//   - [Sum] hashes size bytes of an [io.ReaderAt] with up to Options.Workers
//     goroutines, each hashing whole BLAKE3 subtrees read into its own pooled
//     buffer; the subtree chaining values are then combined with parent nodes
//     exactly as BLAKE3 does. This is what makes one large object fast.
//   - [SumReader] streams an [io.Reader] to EOF on one goroutine with
//     github.com/zeebo/blake3, the fastest single-thread implementation
//     measured on the project machine (AMD EPYC, AVX2, no AVX-512).
//   - [SumObject] picks one of the two for an object of known size, reading
//     exactly that many bytes.
//
// Subtrees are hashed with the 8-way AVX2 kernel of github.com/zeebo/blake3,
// copied into internal/avx2 because that module does not export it, where the
// processor has AVX2; elsewhere with lukechampine.com/blake3/guts (AVX-512
// or portable Go). The parents above the units and the root use guts. Why not guts
// everywhere: its AVX2 code loads message words with gather instructions,
// which made it 1.5 to 2 times slower per core than zeebo's on the project
// machine (benchmarks/RESULTS.md).
//
// # Invariants
//
//   - Every function returns the same 32 bytes as b3sum for the same bytes,
//     whatever Options say: Options only change speed and memory.
//   - A digest is never returned together with an error, and never for fewer
//     bytes than asked: a source that ends early yields an error wrapping
//     [io.ErrUnexpectedEOF].
//   - Sum and SumObject read exactly size bytes and never look past them:
//     detecting that an object grew is the Source's job (pipeline.ErrChanged).
//   - Goroutines are bounded by Options.Workers per call and have all exited
//     when Sum returns, including after an error or a cancelled ctx.
//   - Memory per Sum call: Workers buffers of SubtreeSize bytes (from the
//     pool) and Workers*SubtreeSize/32 bytes of chaining values, whatever
//     the object size.
//
// # The BLAKE3 tree
//
// BLAKE3 splits its input into 1024-byte chunks (an empty input is one empty
// chunk) and hashes them as the leaves of a left-balanced binary tree: a node
// over n > 1 chunks has a left child over the largest power of two strictly
// less than n chunks and a right child over the rest. Chunk i is compressed
// with counter i, parents with counter 0 and the PARENT flag, and the single
// topmost node with the ROOT flag. Cutting the input into units of 2^k chunks
// (k fixed), every full unit and the final partial unit are nodes of that
// tree, and the tree above them is the left-balanced tree over the units.
// Sum hashes units in parallel and merges their chaining values in order with
// a stack of at most 64 entries, as an incremental BLAKE3 hasher does with
// chunks, keeping the last unit's node uncompressed so that it can take the
// ROOT flag when it is the only one.
package parhash

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"runtime"
	"sync"

	"github.com/lakeproof/lakeproof/pipeline/parhash/internal/avx2"
	zeebo "github.com/zeebo/blake3"
	"lukechampine.com/blake3/guts"
)

// ChunkSize is the BLAKE3 chunk size in bytes.
const ChunkSize = guts.ChunkSize

// DefaultSubtreeSize is the number of bytes each worker of Sum reads and
// hashes at a time when Options.SubtreeSize is zero. On the project machine
// (AMD EPYC, 512 KiB of L2 cache per core) 64 KiB to 1 MiB cost the same CPU
// time per byte and 4 MiB cost 25% more (benchmarks/RESULTS.md); 256 KiB keeps
// a worker's buffer in its L2 cache between the read and the hashing.
const DefaultSubtreeSize = 256 << 10

// MaxSubtreeSize bounds Options.SubtreeSize (and so each pooled buffer).
const MaxSubtreeSize = 1 << 30

// groupSize is the number of bytes guts.CompressBuffer hashes in one SIMD call.
const groupSize = guts.MaxSIMD * guts.ChunkSize

// Options tune Sum and SumObject. The zero value is valid.
type Options struct {
	// Workers is the maximum number of goroutines hashing one object.
	// Zero or negative means runtime.GOMAXPROCS(0). With 1, Sum runs on the
	// calling goroutine.
	Workers int

	// SubtreeSize is how many bytes one worker reads and hashes at a time:
	// a power of two, at least ChunkSize and at most MaxSubtreeSize.
	// Zero means DefaultSubtreeSize.
	SubtreeSize int

	// Pool supplies the read buffers. For Sum its Size must be at least
	// the subtree size; for SumObject's streaming path it is the read size
	// (SumObject's parallel path ignores a pool that is too small). Nil
	// means a package-level pool of DefaultSubtreeSize buffers, or a new
	// pool per call when SubtreeSize differs from the default.
	Pool *BufferPool
}

// ErrBadOptions is wrapped by the error Sum returns for invalid Options or a
// negative size.
var ErrBadOptions = errors.New("parhash: invalid options")

var defaultPool = NewBufferPool(DefaultSubtreeSize)

func (o Options) resolve() (workers, unit int, pool *BufferPool, err error) {
	workers = o.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	unit = o.SubtreeSize
	if unit == 0 {
		unit = DefaultSubtreeSize
	}
	if unit < ChunkSize || unit > MaxSubtreeSize || bits.OnesCount(uint(unit)) != 1 {
		return 0, 0, nil, fmt.Errorf("%w: SubtreeSize %d is not a power of two in [%d, %d]",
			ErrBadOptions, unit, ChunkSize, MaxSubtreeSize)
	}
	pool = o.Pool
	switch {
	case pool == nil && unit == DefaultSubtreeSize:
		pool = defaultPool
	case pool == nil:
		pool = NewBufferPool(unit)
	case pool.Size() < unit:
		return 0, 0, nil, fmt.Errorf("%w: Pool buffers of %d bytes are smaller than SubtreeSize %d",
			ErrBadOptions, pool.Size(), unit)
	}
	return workers, unit, pool, nil
}

// Sum returns the BLAKE3-256 digest of the first size bytes of r, reading
// them with r.ReadAt in units of opts.SubtreeSize bytes on up to opts.Workers
// goroutines. r must be safe for concurrent ReadAt calls (an *os.File is).
//
// If r yields fewer than size bytes, Sum returns an error wrapping
// io.ErrUnexpectedEOF; any other read error is returned wrapped, with the
// offset. If ctx is cancelled, Sum stops handing out units and returns an
// error wrapping ctx.Err(). Bytes past size are never read.
func Sum(ctx context.Context, r io.ReaderAt, size int64, opts Options) ([32]byte, error) {
	workers, unit, pool, err := opts.resolve()
	if err != nil {
		return [32]byte{}, err
	}
	if size < 0 {
		return [32]byte{}, fmt.Errorf("%w: negative size %d", ErrBadOptions, size)
	}
	units := (size + int64(unit) - 1) / int64(unit)
	if units == 0 {
		units = 1 // the empty input is one empty chunk
	}
	if int64(workers) > units {
		workers = int(units)
	}
	if err := ctx.Err(); err != nil {
		return [32]byte{}, fmt.Errorf("hash: %w", err)
	}
	if units == 1 {
		buf := pool.Get()
		defer pool.Put(buf)
		if err := readFull(r, buf[:size], 0); err != nil {
			return [32]byte{}, err
		}
		return zeebo.Sum256(buf[:size]), nil
	}

	var m merger
	if workers == 1 {
		buf := pool.Get()
		defer pool.Put(buf)
		var scratch [][8]uint32
		for i := int64(0); i < units; i++ {
			if err := ctx.Err(); err != nil {
				return [32]byte{}, fmt.Errorf("hash: %w", err)
			}
			n, err := hashUnit(r, buf, i, unit, size, &scratch)
			if err != nil {
				return [32]byte{}, err
			}
			m.add(n, i == units-1)
		}
		return m.root(), nil
	}
	return sumParallel(ctx, r, size, units, workers, unit, pool)
}

type unitResult struct {
	idx  int64
	node guts.Node
	err  error
}

func sumParallel(ctx context.Context, r io.ReaderAt, size, units int64, workers, unit int, pool *BufferPool) ([32]byte, error) {
	ctx, cancel := context.WithCancel(ctx)

	// At most window units are dispatched and not yet merged, so neither
	// channel ever blocks its sender, and out-of-order results wait in ring.
	window := 2 * workers
	jobs := make(chan int64, window)
	results := make(chan unitResult, window)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := pool.Get()
			defer pool.Put(buf)
			var scratch [][8]uint32
			for idx := range jobs {
				if err := ctx.Err(); err != nil {
					results <- unitResult{idx: idx, err: fmt.Errorf("hash: %w", err)}
					continue
				}
				n, err := hashUnit(r, buf, idx, unit, size, &scratch)
				results <- unitResult{idx: idx, node: n, err: err}
			}
		}()
	}
	defer func() {
		cancel() // workers skip the jobs still queued
		close(jobs)
		wg.Wait()
	}()

	ring := make([]unitResult, window)
	ready := make([]bool, window)
	var m merger
	next, merged := int64(0), int64(0)
	for merged < units {
		for next < units && next < merged+int64(window) {
			jobs <- next
			next++
		}
		select {
		case res := <-results:
			if res.err != nil {
				return [32]byte{}, res.err
			}
			slot := res.idx % int64(window)
			ring[slot], ready[slot] = res, true
			for merged < units && ready[merged%int64(window)] {
				slot := merged % int64(window)
				m.add(ring[slot].node, merged == units-1)
				ready[slot] = false
				merged++
			}
		case <-ctx.Done():
			return [32]byte{}, fmt.Errorf("hash: %w", ctx.Err())
		}
	}
	return m.root(), nil
}

// hashUnit reads unit idx of an object of the given size into buf and
// returns its (non-root) BLAKE3 subtree node.
func hashUnit(r io.ReaderAt, buf []byte, idx int64, unit int, size int64, scratch *[][8]uint32) (guts.Node, error) {
	off := idx * int64(unit)
	n := int64(unit)
	if size-off < n {
		n = size - off
	}
	p := buf[:n]
	if err := readFull(r, p, off); err != nil {
		return guts.Node{}, err
	}
	return subtreeNode(p, uint64(off)/ChunkSize, scratch), nil
}

// readFull fills p from r at off.
func readFull(r io.ReaderAt, p []byte, off int64) error {
	if len(p) == 0 {
		return nil
	}
	n, err := r.ReadAt(p, off)
	if n == len(p) {
		return nil // ReadAt may report io.EOF along with the last byte
	}
	if err == nil || errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("read %d bytes at offset %d: got %d: %w", len(p), off, n, err)
}

// subtreeNode returns the BLAKE3 node (not yet compressed, without the ROOT
// flag) of the subtree over the chunks of p, the first of which has chunk
// counter counter. p must start on a chunk boundary and, unless it ends the
// input, hold a power-of-two number of whole chunks. scratch is reused
// between calls of one goroutine.
func subtreeNode(p []byte, counter uint64, scratch *[][8]uint32) guts.Node {
	if avx2.Available {
		return subtreeNodeAVX2(p, counter, scratch)
	}
	return subtreeNodeGuts(p, counter)
}

// subtreeNodeAVX2 hashes 8 whole chunks at a time with the AVX2 kernel,
// then reduces the chunk chaining values level by level, 8 parents at a
// time. Pairing adjacent nodes from the left and carrying an odd last node
// up unchanged builds exactly BLAKE3's left-balanced tree.
func subtreeNodeAVX2(p []byte, counter uint64, scratch *[][8]uint32) guts.Node {
	chunks := (len(p) + ChunkSize - 1) / ChunkSize
	if chunks <= 1 {
		return guts.CompressChunk(p, &guts.IV, counter, 0)
	}
	if cap(*scratch) < chunks {
		*scratch = make([][8]uint32, chunks)
	}
	cvs := (*scratch)[:chunks]
	var out, left, right [64]uint32
	var chain [8]uint32
	i := 0
	for ; (i+8)*ChunkSize <= len(p); i += 8 {
		avx2.HashF((*[8 * ChunkSize]byte)(p[i*ChunkSize:]), 8*ChunkSize, counter+uint64(i), 0, &guts.IV, &out, &chain)
		for c := range 8 {
			for j := range 8 {
				cvs[i+c][j] = out[c+8*j]
			}
		}
	}
	for ; i < chunks; i++ {
		end := min((i+1)*ChunkSize, len(p))
		cvs[i] = guts.ChainingValue(guts.CompressChunk(p[i*ChunkSize:end], &guts.IV, counter+uint64(i), 0))
	}
	for len(cvs) > 2 {
		pairs := len(cvs) / 2
		for b := 0; b < pairs; b += 8 {
			n := min(8, pairs-b)
			for c := range n {
				for j := range 8 {
					left[c+8*j] = cvs[2*(b+c)][j]
					right[c+8*j] = cvs[2*(b+c)+1][j]
				}
			}
			avx2.HashP(&left, &right, guts.FlagParent, &guts.IV, &out, n)
			for c := range n { // cvs[b+c] was read above: safe to overwrite
				for j := range 8 {
					cvs[b+c][j] = out[c+8*j]
				}
			}
		}
		if len(cvs)%2 == 1 {
			cvs[pairs] = cvs[len(cvs)-1]
			cvs = cvs[:pairs+1]
		} else {
			cvs = cvs[:pairs]
		}
	}
	return guts.ParentNode(cvs[0], cvs[1], &guts.IV, 0)
}

// subtreeNodeGuts is subtreeNode with lukechampine.com/blake3/guts, which
// uses AVX-512 or AVX2 (with gathers) where present and portable Go
// elsewhere: 16 chunks per CompressBuffer call, merged with a stack.
func subtreeNodeGuts(p []byte, counter uint64) guts.Node {
	var stack [64][8]uint32
	var groups uint64
	for len(p) > groupSize { // keep the last group: it becomes the returned node
		n := guts.CompressBuffer((*[groupSize]byte)(p), groupSize, &guts.IV, counter+groups*guts.MaxSIMD, 0)
		cv := guts.ChainingValue(n)
		i := 0
		for ; groups&(1<<i) != 0; i++ {
			cv = guts.ChainingValue(guts.ParentNode(stack[i], cv, &guts.IV, 0))
		}
		stack[i] = cv
		groups++
		p = p[groupSize:]
	}
	var n guts.Node
	if len(p) == groupSize {
		n = guts.CompressBuffer((*[groupSize]byte)(p), groupSize, &guts.IV, counter+groups*guts.MaxSIMD, 0)
	} else {
		// CompressBuffer reads a whole group; give it a zero-padded copy.
		var last [groupSize]byte
		copy(last[:], p)
		n = guts.CompressBuffer(&last, len(p), &guts.IV, counter+groups*guts.MaxSIMD, 0)
	}
	for i := bits.TrailingZeros64(groups); i < bits.Len64(groups); i++ {
		if groups&(1<<i) != 0 {
			n = guts.ParentNode(stack[i], guts.ChainingValue(n), &guts.IV, 0)
		}
	}
	return n
}

// merger combines the nodes of consecutive equal-size units, given in order,
// into the BLAKE3 root, as lukechampine.com/blake3's Hasher does with chunks.
type merger struct {
	stack [64][8]uint32
	count uint64 // units pushed; bit i set means stack[i] holds a subtree of 2^i units
	last  guts.Node
}

// add records the node of the next unit; last says whether it ends the input.
// The last unit is kept as a node so that it can be the root if it is alone.
func (m *merger) add(n guts.Node, last bool) {
	if last {
		m.last = n
		return
	}
	cv := guts.ChainingValue(n)
	i := 0
	for ; m.count&(1<<i) != 0; i++ {
		cv = guts.ChainingValue(guts.ParentNode(m.stack[i], cv, &guts.IV, 0))
	}
	m.stack[i] = cv
	m.count++
}

// root returns the digest; add must have been called with last set.
func (m *merger) root() [32]byte {
	n := m.last
	for i := bits.TrailingZeros64(m.count); i < bits.Len64(m.count); i++ {
		if m.count&(1<<i) != 0 {
			n = guts.ParentNode(m.stack[i], guts.ChainingValue(n), &guts.IV, 0)
		}
	}
	n.Flags |= guts.FlagRoot
	out := guts.WordsToBytes(guts.CompressNode(n))
	return [32]byte(out[:32])
}

// SumReader returns the BLAKE3-256 digest of everything r yields until
// io.EOF and the number of bytes hashed, reading into buf (a 256 KiB buffer
// is allocated when buf is empty). It hashes on the calling goroutine with
// github.com/zeebo/blake3, the fastest single-thread implementation measured
// here. On a read error it returns the error and no digest.
func SumReader(r io.Reader, buf []byte) ([32]byte, int64, error) {
	if len(buf) == 0 {
		buf = make([]byte, 256<<10)
	}
	h := zeebo.New()
	var total int64
	for {
		n, err := r.Read(buf)
		if n > 0 {
			h.Write(buf[:n])
			total += int64(n)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return [32]byte{}, total, fmt.Errorf("read after %d bytes: %w", total, err)
		}
	}
	var out [32]byte
	h.Sum(out[:0])
	return out, total, nil
}

// ParallelThreshold is the smallest size for which SumObject hashes an
// io.ReaderAt with more than one worker. It is a heuristic, not a measured
// optimum: a pipeline already hashes one object per core, so splitting
// small objects only adds reads and channel operations; 4 MiB is 16 units
// of DefaultSubtreeSize.
const ParallelThreshold = 4 << 20

// SumObject returns the BLAKE3-256 digest of exactly size bytes read from r,
// the content of one listed object. If r implements io.ReaderAt, size is at
// least ParallelThreshold and opts allow more than one worker, it calls Sum;
// otherwise it streams r on the calling goroutine through a buffer from
// opts.Pool. It fails with an error wrapping io.ErrUnexpectedEOF if r ends
// before size bytes, and never reads past size.
func SumObject(ctx context.Context, r io.Reader, size int64, opts Options) ([32]byte, error) {
	if size < 0 {
		return [32]byte{}, fmt.Errorf("%w: negative size %d", ErrBadOptions, size)
	}
	workers := opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	if ra, ok := r.(io.ReaderAt); ok && workers > 1 && size >= ParallelThreshold {
		unit := opts.SubtreeSize
		if unit == 0 {
			unit = DefaultSubtreeSize
		}
		if opts.Pool != nil && opts.Pool.Size() < unit {
			opts.Pool = nil // a streaming-size pool: let Sum use subtree-size buffers
		}
		return Sum(ctx, ra, size, opts)
	}
	pool := opts.Pool
	if pool == nil {
		pool = defaultPool
	}
	buf := pool.Get()
	defer pool.Put(buf)
	if size <= int64(len(buf)) {
		if _, err := io.ReadFull(r, buf[:size]); err != nil {
			return [32]byte{}, shortRead(0, size, err)
		}
		return zeebo.Sum256(buf[:size]), nil
	}
	h := zeebo.New()
	var done int64
	for done < size {
		if err := ctx.Err(); err != nil {
			return [32]byte{}, fmt.Errorf("hash: %w", err)
		}
		p := buf
		if rest := size - done; rest < int64(len(p)) {
			p = p[:rest]
		}
		n, err := io.ReadFull(r, p)
		if err != nil {
			return [32]byte{}, shortRead(done+int64(n), size, err)
		}
		h.Write(p)
		done += int64(n)
	}
	var out [32]byte
	h.Sum(out[:0])
	return out, nil
}

func shortRead(got, want int64, err error) error {
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("read %d bytes: failed after %d: %w", want, got, err)
}

// BufferPool hands out byte slices of one fixed size, reused through a
// sync.Pool so that a pipeline hashing millions of objects allocates a
// handful of buffers. It is safe for concurrent use.
type BufferPool struct {
	size int
	p    sync.Pool
}

// NewBufferPool returns a pool of size-byte buffers. It panics if size < 1.
func NewBufferPool(size int) *BufferPool {
	if size < 1 {
		panic("parhash: NewBufferPool size < 1")
	}
	bp := &BufferPool{size: size}
	bp.p.New = func() any { b := make([]byte, size); return &b }
	return bp
}

// Size returns the length of the buffers the pool hands out.
func (bp *BufferPool) Size() int { return bp.size }

// Get returns a buffer of length Size. Its content is unspecified.
func (bp *BufferPool) Get() []byte { return *bp.p.Get().(*[]byte) }

// Put returns a buffer obtained from Get. Buffers of another capacity are
// dropped. The caller must not use b afterwards.
func (bp *BufferPool) Put(b []byte) {
	if cap(b) != bp.size {
		return
	}
	b = b[:bp.size]
	bp.p.Put(&b)
}
