package index

import (
	"context"
	"fmt"
	"iter"

	"github.com/zeebo/blake3"

	"github.com/lakeproof/lakeproof"
)

// EntriesFrom yields the entries whose keys are >= start, in key order,
// reading from the first row group that can hold start (from the footer
// statistics). An empty start yields all entries. Errors are as in Entries.
func (ix *Index) EntriesFrom(ctx context.Context, start string) iter.Seq2[Entry, error] {
	return func(yield func(Entry, error) bool) {
		first := 0
		if start != "" && ix.fences != nil {
			first = max(ix.groupFor(start), 0)
		}
		var prev string
		for rg := first; rg < ix.pf.NumRowGroups(); rg++ {
			es, err := ix.readGroup(ctx, rg)
			if err != nil {
				yield(Entry{}, err)
				return
			}
			if rg > first && len(es) > 0 && es[0].Key <= prev {
				yield(Entry{}, fmt.Errorf("%w: %s: row group %d: keys out of order", ErrCorrupt, ix.dir, rg))
				return
			}
			for _, e := range es {
				prev = e.Key
				if e.Key < start {
					continue
				}
				if !yield(e, nil) {
					return
				}
			}
		}
	}
}

// SummaryDigest reads summary.json of the index at path and returns its
// BLAKE3 (the index digest of docs/FORMAT.md §8) with the parsed summary.
func SummaryDigest(ctx context.Context, d Dir) (lakeproof.Hash, Summary, error) {
	f, err := d.Open(ctx, SummaryFile)
	if err != nil {
		return lakeproof.Hash{}, Summary{}, fmt.Errorf("read %s/%s: %w", d, SummaryFile, err)
	}
	defer f.Close()
	if f.Size() > maxSummarySize {
		return lakeproof.Hash{}, Summary{}, fmt.Errorf("%w: %s: %s too large", ErrCorrupt, d, SummaryFile)
	}
	raw := make([]byte, f.Size())
	if _, err := f.ReadAt(raw, 0); err != nil {
		return lakeproof.Hash{}, Summary{}, fmt.Errorf("read %s/%s: %w", d, SummaryFile, err)
	}
	s, err := ParseSummary(raw)
	if err != nil {
		return lakeproof.Hash{}, s, fmt.Errorf("%w: %s: %w", ErrCorrupt, d, err)
	}
	return lakeproof.Hash(blake3.Sum256(raw)), s, nil
}
