package jobs

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/transparency-dev/merkle/compact"
	"github.com/zeebo/blake3"

	"github.com/lakeproof/lakeproof"
	"github.com/lakeproof/lakeproof/index"
	"github.com/lakeproof/lakeproof/pipeline"
)

// ErrShard means a shard specification or a set of shards to merge is wrong.
var ErrShard = errors.New("bad shards")

// ShardEnv are the environment variables that give the shard index when
// --shard is given as "N" or "/N" only: a Kubernetes Indexed Job's
// completion index, then an AWS Batch array index.
var ShardEnv = []string{"JOB_COMPLETION_INDEX", "AWS_BATCH_JOB_ARRAY_INDEX"}

// ParseShard parses "I/N" (0 ≤ I < N). With "N" or "/N", I is read from
// the first variable of ShardEnv that is set (getenv is os.Getenv in
// production).
func ParseShard(spec string, getenv func(string) string) (i, n int, err error) {
	is, ns, ok := strings.Cut(spec, "/")
	if !ok {
		is, ns = "", spec
	}
	n, err = strconv.Atoi(ns)
	if err != nil || n < 1 {
		return 0, 0, fmt.Errorf("%w: --shard %q: want I/N with N ≥ 1", ErrShard, spec)
	}
	if is == "" {
		for _, v := range ShardEnv {
			if is = getenv(v); is != "" {
				break
			}
		}
		if is == "" {
			return 0, 0, fmt.Errorf("%w: --shard %q gives no index and none of %s is set", ErrShard, spec, strings.Join(ShardEnv, ", "))
		}
	}
	i, err = strconv.Atoi(is)
	if err != nil || i < 0 || i >= n {
		return 0, 0, fmt.Errorf("%w: shard index %q out of range [0, %d)", ErrShard, is, n)
	}
	return i, n, nil
}

// objectWeight is the cost of an object in the balance: its bytes plus a
// per-object overhead, so that shards of many small files are balanced too.
const objectWeight = 64 << 10

// Plan holds the split keys of a sharded run: shard i covers
// [Splits[i-1], Splits[i]) with "" at both ends.
type Plan struct {
	Count  int
	Splits []string // Count-1 keys, strictly increasing
}

// Hash identifies the plan; every shard of a run records it.
func (p Plan) Hash() lakeproof.Hash {
	h := blake3.New()
	fmt.Fprintf(h, "lakeproof/plan/v1\n%d\n", p.Count)
	for _, s := range p.Splits {
		fmt.Fprintf(h, "%d:%s\n", len(s), s)
	}
	return lakeproof.Hash(h.Sum(nil))
}

// Shard returns shard i of the plan.
func (p Plan) Shard(i int) (*index.Shard, error) {
	if i < 0 || i >= p.Count {
		return nil, fmt.Errorf("%w: shard index %d out of range [0, %d)", ErrShard, i, p.Count)
	}
	s := &index.Shard{Index: i, Count: p.Count, Plan: p.Hash()}
	if i > 0 {
		s.Start = p.Splits[i-1]
	}
	if i < p.Count-1 {
		s.End = p.Splits[i]
	}
	return s, nil
}

// splitter picks split keys from a stream of (key, weight) in key order,
// given the total weight.
type splitter struct {
	n          int
	total, acc uint64
	splits     []string
	last       string
}

func (s *splitter) add(key string, w uint64) {
	// Shard k starts at the first key whose cumulative weight before it
	// reaches k/n of the total.
	for len(s.splits) < s.n-1 && s.acc >= s.total*uint64(len(s.splits)+1)/uint64(s.n) {
		if len(s.splits) > 0 && s.splits[len(s.splits)-1] == key {
			break
		}
		if key == "" || (len(s.splits) == 0 && s.acc == 0) {
			break
		}
		s.splits = append(s.splits, key)
	}
	s.acc += w
	s.last = key
}

// finish pads the plan when there are fewer distinct boundaries than
// shards: the remaining shards get empty-range-free ranges at the end of
// the key space (keys after the last one seen), which are valid and
// simply hold nothing today.
func (s *splitter) finish() Plan {
	for len(s.splits) < s.n-1 {
		base := s.last
		if len(s.splits) > 0 {
			base = max(base, s.splits[len(s.splits)-1])
		}
		s.splits = append(s.splits, base+"\x7f")
	}
	return Plan{Count: s.n, Splits: s.splits}
}

// PlanFromIndex splits the key space into n ranges balanced by bytes (plus
// a per-object overhead) using the entries of a previous index: no listing
// of the source is needed, and every shard computes the same plan from the
// same index.
func PlanFromIndex(ctx context.Context, prev string, n int) (Plan, error) {
	if _, err := os.Stat(prev); err != nil {
		return Plan{}, fmt.Errorf("open index: %w", err)
	}
	return PlanFromIndexDir(ctx, index.LocalDir(prev), n)
}

// PlanFromIndexDir is PlanFromIndex for an index read from d (local or S3).
func PlanFromIndexDir(ctx context.Context, d index.Dir, n int) (Plan, error) {
	if n < 1 {
		return Plan{}, fmt.Errorf("%w: count %d", ErrShard, n)
	}
	ix, err := index.OpenDir(ctx, d)
	if err != nil {
		return Plan{}, err
	}
	defer ix.Close()
	sum := ix.Summary()
	sp := &splitter{n: n, total: sum.Bytes + sum.Files*objectWeight}
	for e, err := range ix.Entries(ctx, "") {
		if err != nil {
			return Plan{}, err
		}
		sp.add(e.Key, uint64(e.Size)+objectWeight)
	}
	return sp.finish(), nil
}

// PlanFromSource plans n shards of src without a predecessor. When src can
// list one directory level (ChildLister: local directories, S3 delimited
// listings), the plan comes from a few such listings (planFromChildren:
// cheap, balanced by bytes for a flat dataset of up to 100,000 objects and
// by number of directories otherwise). Else, or when the top levels are too
// large, it splits by a metadata-only listing of src (two listings: one for
// the total, one for the split keys). Shards that plan while the source
// changes may disagree; merge then refuses them (plan hashes differ).
func PlanFromSource(ctx context.Context, src pipeline.Source, n int) (Plan, error) {
	if n < 1 {
		return Plan{}, fmt.Errorf("%w: count %d", ErrShard, n)
	}
	if n == 1 {
		return Plan{Count: 1}, nil
	}
	cl, ok := src.(ChildLister)
	if f, filtered := src.(filterSource); filtered {
		// Directories are weighed whole, whatever the globs select.
		cl, ok = f.Source.(ChildLister)
	}
	if ok {
		p, ok, err := planFromChildren(ctx, cl, n)
		if err != nil || ok {
			return p, err
		}
	}
	var total uint64
	for o, err := range src.Objects(ctx) {
		if err != nil {
			var oe *pipeline.ObjectError
			if errors.As(err, &oe) {
				continue
			}
			return Plan{}, err
		}
		total += uint64(o.Size) + objectWeight
	}
	sp := &splitter{n: n, total: total}
	for o, err := range src.Objects(ctx) {
		if err != nil {
			var oe *pipeline.ObjectError
			if errors.As(err, &oe) {
				continue
			}
			return Plan{}, err
		}
		sp.add(o.Key, uint64(o.Size)+objectWeight)
	}
	return sp.finish(), nil
}

// Merge combines the shard indexes of one run into the complete index at
// out. It refuses shards of different runs, plans or sources, and missing,
// duplicated or overlapping shards, naming them. Each shard's rows are
// checked against its own root while they are copied; the result is the
// index (and root) a single run over the same content gives.
func Merge(ctx context.Context, dirs []string, out, tool string) (index.Summary, error) {
	ds := make([]index.Dir, len(dirs))
	for i, d := range dirs {
		if _, err := os.Stat(d); err != nil {
			return index.Summary{}, fmt.Errorf("merge: shard %s: %w", d, err)
		}
		ds[i] = index.LocalDir(d)
	}
	return MergeDirs(ctx, ds, out, tool)
}

// MergeDirs is Merge for shard indexes read from index.Dir locations (local
// directories or S3 prefixes); out is a local directory.
func MergeDirs(ctx context.Context, dirs []index.Dir, out, tool string) (index.Summary, error) {
	var none index.Summary
	if len(dirs) == 0 {
		return none, fmt.Errorf("%w: no shard given", ErrShard)
	}
	type shard struct {
		dir string
		d   index.Dir
		ix  *index.Index
		sum index.Summary
	}
	var (
		count int
		first *shard
	)
	byIndex := map[int]*shard{}
	defer func() {
		for _, s := range byIndex {
			s.ix.Close()
		}
	}()
	for _, dd := range dirs {
		d := dd.String()
		ix, err := index.OpenDir(ctx, dd)
		if err != nil {
			return none, fmt.Errorf("merge: shard %s: %w", d, err)
		}
		sum := ix.Summary()
		sh := sum.Shard
		if sh == nil {
			ix.Close()
			return none, fmt.Errorf("%w: %s is not a shard index (no \"shard\" in its summary.json)", ErrShard, d)
		}
		if err := sh.Validate(); err != nil {
			ix.Close()
			return none, fmt.Errorf("%w: %s: %v", ErrShard, d, err)
		}
		s := &shard{d, dd, ix, sum}
		if first == nil {
			first, count = s, sh.Count
		}
		switch {
		case sh.Count != count:
			ix.Close()
			return none, fmt.Errorf("%w: %s is shard %d of %d, %s is of %d", ErrShard, d, sh.Index, sh.Count, first.dir, count)
		case sh.Plan != first.sum.Shard.Plan:
			ix.Close()
			return none, fmt.Errorf("%w: %s and %s were planned differently (another run, or the source changed while the shards planned)", ErrShard, d, first.dir)
		case sum.Source != first.sum.Source:
			ix.Close()
			return none, fmt.Errorf("%w: %s indexes %s, %s indexes %s", ErrShard, d, sum.Source, first.dir, first.sum.Source)
		case !samePrevious(sum.Previous, first.sum.Previous):
			ix.Close()
			return none, fmt.Errorf("%w: %s and %s have different predecessors", ErrShard, d, first.dir)
		}
		if o := byIndex[sh.Index]; o != nil {
			ix.Close()
			return none, fmt.Errorf("%w: shard %d/%d given twice: %s and %s", ErrShard, sh.Index, count, o.dir, d)
		}
		byIndex[sh.Index] = s
	}
	var missing []string
	for i := range count {
		if byIndex[i] == nil {
			missing = append(missing, strconv.Itoa(i))
		}
	}
	if len(missing) > 0 {
		return none, fmt.Errorf("%w: missing shard(s) %s of %d", ErrShard, strings.Join(missing, ", "), count)
	}
	for i := 1; i < count; i++ {
		a, b := byIndex[i-1], byIndex[i]
		if a.sum.Shard.End != b.sum.Shard.Start {
			return none, fmt.Errorf("%w: %s ends at %q but %s starts at %q (overlap or gap)", ErrShard, a.dir, a.sum.Shard.End, b.dir, b.sum.Shard.Start)
		}
	}
	w, err := index.Create(out, index.Meta{Source: first.sum.Source, Tool: tool, Previous: first.sum.Previous})
	if err != nil {
		return none, err
	}
	defer w.Abort()
	// A reader goroutine decodes and checks the shards while this one
	// encodes the merged index: the two halves of the work overlap.
	type batch struct {
		es  []index.Entry
		err error
		s   *shard // set on the shard's last batch, after its root check
	}
	rctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait() // after cancel (defers run last-in first-out), before the shards are closed
	defer cancel()
	batches := make(chan batch, 4)
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(batches)
		send := func(b batch) bool {
			select {
			case batches <- b:
				return true
			case <-rctx.Done():
				return false
			}
		}
		rf := compact.RangeFactory{Hash: lakeproof.Hasher.HashChildren}
		for i := range count {
			s := byIndex[i]
			tree := rf.NewEmptyRange(0)
			buf := make([]index.Entry, 0, index.RowGroupRows)
			for e, err := range s.ix.Entries(rctx, "") {
				if err != nil {
					send(batch{err: fmt.Errorf("merge: shard %s: %w", s.dir, err)})
					return
				}
				if !s.sum.Shard.Contains(e.Key) {
					send(batch{err: fmt.Errorf("%w: %s holds key %q outside its range", ErrShard, s.dir, e.Key)})
					return
				}
				leaf := lakeproof.LeafHash(e.Key, uint64(e.Size), e.Digest)
				if err := tree.Append(leaf[:], nil); err != nil {
					send(batch{err: err})
					return
				}
				buf = append(buf, e)
				if len(buf) == cap(buf) {
					if !send(batch{es: buf}) {
						return
					}
					buf = make([]index.Entry, 0, index.RowGroupRows)
				}
			}
			root := lakeproof.EmptyRoot
			if tree.End() > 0 {
				h, err := tree.GetRootHash(nil)
				if err != nil {
					send(batch{err: err})
					return
				}
				root = lakeproof.Hash(h)
			}
			if root != s.sum.Root || tree.End() != s.sum.Files {
				send(batch{err: fmt.Errorf("merge: shard %s: %w: rows give root %s, summary.json says %s", s.dir, index.ErrCorrupt, root, s.sum.Root)})
				return
			}
			if c := s.sum.Shard.Compact; c != nil && !sameCompact(c, tree) {
				send(batch{err: fmt.Errorf("merge: shard %s: %w: its rows do not give the compact range in summary.json", s.dir, index.ErrCorrupt)})
				return
			}
			if !send(batch{es: buf, s: s}) {
				return
			}
		}
	}()
	done := 0
	for b := range batches {
		if b.err != nil {
			return none, b.err
		}
		for _, e := range b.es {
			if err := w.Add(e); err != nil {
				return none, fmt.Errorf("merge: %w", err)
			}
		}
		if b.s != nil {
			done++
			if b.s.sum.Errors > 0 {
				if err := copyErrors(ctx, b.s.d, w); err != nil {
					return none, fmt.Errorf("merge: shard %s: %w", b.s.dir, err)
				}
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return none, err
	}
	if done != count {
		return none, fmt.Errorf("merge: internal error: %d of %d shards copied", done, count)
	}
	return w.Commit(ctx)
}

// sameRange reports whether two shard descriptions are the same shard of
// the same plan (their compact ranges aside).
func sameRange(a, b *index.Shard) bool {
	return a.Index == b.Index && a.Count == b.Count && a.Start == b.Start && a.End == b.End && a.Plan == b.Plan
}

// sameCompact reports whether c is the compact range r.
func sameCompact(c *index.Compact, r *compact.Range) bool {
	hs := r.Hashes()
	if r.Begin() != 0 || c.Size != r.End() || len(c.Hashes) != len(hs) {
		return false
	}
	for i, h := range hs {
		if lakeproof.Hash(h) != c.Hashes[i] {
			return false
		}
	}
	return true
}

func samePrevious(a, b *index.Previous) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Root == b.Root && a.IndexDigest == b.IndexDigest
}

func copyErrors(ctx context.Context, d index.Dir, w *index.Writer) error {
	f, err := d.Open(ctx, index.ErrorsFile)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(io.NewSectionReader(f, 0, f.Size()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var oe index.ObjectError
		if err := json.Unmarshal(sc.Bytes(), &oe); err != nil {
			return fmt.Errorf("%s: %w", index.ErrorsFile, err)
		}
		if err := w.AddError(oe); err != nil {
			return err
		}
	}
	return sc.Err()
}
