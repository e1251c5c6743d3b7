package jobs

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"

	"github.com/transparency-dev/merkle/compact"

	"github.com/lakeproof/lakeproof"
	"github.com/lakeproof/lakeproof/index"
	"github.com/lakeproof/lakeproof/pipeline"
)

// Status is the outcome of one key in an audit.
type Status string

// Audit statuses.
const (
	Matched Status = "matched" // same key, size and digest
	Changed Status = "changed" // same key, other size or digest
	Missing Status = "missing" // in the index, not in the source
	Extra   Status = "extra"   // in the source, not in the index
	Moved   Status = "moved"   // a missing key's content found under an extra key
	Failed  Status = "error"   // the object could not be read
)

// Item is one key that did not match. For Moved, Key is the new key and
// From the key the index had.
type Item struct {
	Status    Status         `json:"status"`
	Key       string         `json:"key"`
	From      string         `json:"from,omitempty"`
	Size      int64          `json:"size,omitempty"`
	Digest    lakeproof.Hash `json:"digest,omitzero"`
	OldSize   int64          `json:"old_size,omitempty"`
	OldDigest lakeproof.Hash `json:"old_digest,omitzero"`
	Error     string         `json:"error,omitempty"`
}

// AuditOptions tune Audit.
type AuditOptions struct {
	Workers int
	// MaxPending bounds the unmatched missing and extra keys held in memory
	// to pair them as moved; 0 means DefaultMaxPending. Beyond it, further
	// unmatched keys are reported as missing or extra at once, without
	// being paired, and AuditReport.MovedTruncated is set.
	MaxPending int
	// OnItem, if not nil, receives every non-matching key. Changed and
	// error items come in key order during the run; missing, extra and
	// moved items may come later (pairing needs the whole listing).
	OnItem func(Item) error
	// Progress, if not nil, is updated by the hashing pipeline.
	Progress *pipeline.Progress
}

// DefaultMaxPending is the default AuditOptions.MaxPending: about 100 MB
// of keys and digests.
const DefaultMaxPending = 1 << 20

// AuditReport counts the outcome of an audit.
type AuditReport struct {
	Source         string         `json:"source"`
	IndexRoot      lakeproof.Hash `json:"index_root"`
	CurrentRoot    lakeproof.Hash `json:"current_root"` // root of what was read; zero when errors occurred
	Matched        uint64         `json:"matched"`
	Changed        uint64         `json:"changed"`
	Missing        uint64         `json:"missing"`
	Extra          uint64         `json:"extra"`
	Moved          uint64         `json:"moved"`
	Errors         uint64         `json:"errors"`
	Bytes          uint64         `json:"bytes"`
	MovedTruncated bool           `json:"moved_truncated,omitempty"`
}

// Clean reports whether the source matches the index exactly.
func (r *AuditReport) Clean() bool {
	return r.Changed == 0 && r.Missing == 0 && r.Extra == 0 && r.Moved == 0 && r.Errors == 0
}

// AppendOnlyViolated reports whether an object of the index changed or
// disappeared (a move removes the old key, so it counts).
func (r *AuditReport) AppendOnlyViolated() bool {
	return r.Changed > 0 || r.Missing > 0 || r.Moved > 0
}

// ErrAppendOnly is wrapped by the errors of runs that find an append-only
// dataset's previous objects changed or gone.
var ErrAppendOnly = errors.New("append-only dataset: objects of the previous version changed or disappeared")

// Audit hashes every object of src and compares it with the entries of ix,
// merge-joining the two key-ordered streams. Memory is bounded by the
// pipeline window plus opts.MaxPending pending keys.
func Audit(ctx context.Context, src pipeline.Source, ix *index.Index, opts AuditOptions) (*AuditReport, error) {
	rep := &AuditReport{Source: src.URI(), IndexRoot: ix.Summary().Root}
	max := opts.MaxPending
	if max <= 0 {
		max = DefaultMaxPending
	}
	emit := opts.OnItem
	if emit == nil {
		emit = func(Item) error { return nil }
	}
	mv := &mover{max: max, missing: map[lakeproof.Hash][]Item{}, extra: map[lakeproof.Hash][]Item{}, rep: rep, emit: emit}

	next, stop := iter.Pull2(ix.Entries(ctx, ""))
	defer stop()
	var (
		prev    index.Entry
		hasPrev bool
		prevErr error
	)
	advance := func() {
		var e index.Entry
		var err error
		e, err, hasPrev = next()
		if hasPrev && err != nil {
			prevErr, hasPrev = err, false
		}
		prev = e
	}
	advance()

	rf := compact.RangeFactory{Hash: lakeproof.Hasher.HashChildren}
	tree := rf.NewEmptyRange(0)

	err := pipeline.Run(ctx, src, pipeline.Options{Workers: opts.Workers, Progress: opts.Progress}, func(r pipeline.Result) error {
		for hasPrev && prev.Key < r.Key {
			if err := mv.addMissing(prev); err != nil {
				return err
			}
			advance()
		}
		if prevErr != nil {
			return prevErr
		}
		same := hasPrev && prev.Key == r.Key
		if r.Err != nil {
			rep.Errors++
			if same {
				advance()
			}
			return emit(Item{Status: Failed, Key: r.Key, Error: r.Err.Error()})
		}
		leaf := lakeproof.LeafHash(r.Key, uint64(r.Size), r.Digest)
		if err := tree.Append(leaf[:], nil); err != nil {
			return err
		}
		rep.Bytes += uint64(r.Size)
		if !same {
			return mv.addExtra(Item{Status: Extra, Key: r.Key, Size: r.Size, Digest: r.Digest})
		}
		old := prev
		advance()
		if old.Size == r.Size && old.Digest == r.Digest {
			rep.Matched++
			return nil
		}
		rep.Changed++
		return emit(Item{Status: Changed, Key: r.Key, Size: r.Size, Digest: r.Digest, OldSize: old.Size, OldDigest: old.Digest})
	})
	if err != nil {
		return rep, fmt.Errorf("audit %s: %w", src.URI(), err)
	}
	for hasPrev {
		if err := mv.addMissing(prev); err != nil {
			return rep, err
		}
		advance()
	}
	if prevErr != nil {
		return rep, fmt.Errorf("audit %s: read index: %w", src.URI(), prevErr)
	}
	if err := mv.flush(); err != nil {
		return rep, err
	}
	if rep.Errors == 0 {
		rep.CurrentRoot = lakeproof.EmptyRoot
		if tree.End() > 0 {
			r, err := tree.GetRootHash(nil)
			if err != nil {
				return rep, err
			}
			rep.CurrentRoot = lakeproof.Hash(r)
		}
	}
	return rep, nil
}

// mover pairs missing and extra keys with the same digest as moves. It
// holds at most max unpaired items.
type mover struct {
	max            int
	n              int
	missing, extra map[lakeproof.Hash][]Item
	rep            *AuditReport
	emit           func(Item) error
}

func (m *mover) addMissing(e index.Entry) error {
	it := Item{Status: Missing, Key: e.Key, OldSize: e.Size, OldDigest: e.Digest}
	if q := m.extra[e.Digest]; len(q) > 0 {
		x := q[0]
		m.pop(m.extra, e.Digest)
		m.rep.Moved++
		return m.emit(Item{Status: Moved, Key: x.Key, From: e.Key, Size: x.Size, Digest: x.Digest})
	}
	return m.hold(m.missing, e.Digest, it, &m.rep.Missing)
}

func (m *mover) addExtra(it Item) error {
	if q := m.missing[it.Digest]; len(q) > 0 {
		o := q[0]
		m.pop(m.missing, it.Digest)
		m.rep.Moved++
		return m.emit(Item{Status: Moved, Key: it.Key, From: o.Key, Size: it.Size, Digest: it.Digest})
	}
	return m.hold(m.extra, it.Digest, it, &m.rep.Extra)
}

func (m *mover) hold(q map[lakeproof.Hash][]Item, d lakeproof.Hash, it Item, count *uint64) error {
	if m.n >= m.max {
		m.rep.MovedTruncated = true
		*count++
		return m.emit(it)
	}
	q[d] = append(q[d], it)
	m.n++
	return nil
}

func (m *mover) pop(q map[lakeproof.Hash][]Item, d lakeproof.Hash) {
	if len(q[d]) == 1 {
		delete(q, d)
	} else {
		q[d] = q[d][1:]
	}
	m.n--
}

// flush reports the unpaired items, in key order.
func (m *mover) flush() error {
	var rest []Item
	for _, q := range []map[lakeproof.Hash][]Item{m.missing, m.extra} {
		for _, items := range q {
			rest = append(rest, items...)
		}
	}
	slices.SortFunc(rest, func(a, b Item) int {
		if a.Key < b.Key {
			return -1
		} else if a.Key > b.Key {
			return 1
		}
		return 0
	})
	for _, it := range rest {
		if it.Status == Missing {
			m.rep.Missing++
		} else {
			m.rep.Extra++
		}
		if err := m.emit(it); err != nil {
			return err
		}
	}
	m.missing, m.extra, m.n = nil, nil, 0
	return nil
}
