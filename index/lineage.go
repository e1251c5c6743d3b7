package index

import (
	"errors"
	"fmt"
	"math/bits"

	"github.com/lakeproof/lakeproof"
)

// Previous is the "previous" field of summary.json: the index version an
// incremental re-index reused digests from.
type Previous struct {
	// Path is where the predecessor was read from, as given to the tool.
	Path string `json:"path"`
	// Root is the predecessor's dataset root.
	Root lakeproof.Hash `json:"root"`
	// IndexDigest is BLAKE3 of the predecessor's summary.json bytes: it
	// commits to every file of the predecessor.
	IndexDigest lakeproof.Hash `json:"index_digest"`
}

// Shard is the "shard" field of summary.json: this index holds only the
// entries whose keys are in [Start, End) of a run split into Count shards.
// An empty End means "to the end of the key space"; shard 0 has Start "".
type Shard struct {
	Index int    `json:"index"` // 0-based
	Count int    `json:"count"`
	Start string `json:"start"`
	End   string `json:"end"`
	// Plan is the BLAKE3 of the split points every shard of the run used;
	// shards of one run have the same plan.
	Plan lakeproof.Hash `json:"plan"`
	// Compact, if set, is the compact range of the shard's own entries
	// (docs/FORMAT.md §8.2); merge checks the shard's rows against it.
	Compact *Compact `json:"compact,omitempty"`
}

// Compact is a compact range (transparency-dev/merkle/compact, RFC 6962
// shape, lakeproof.Hasher) over leaves [0, Size) of a tree: the roots of
// its perfect subtrees, left to right, one per bit set in Size. The root of
// those leaves follows from Hashes alone.
type Compact struct {
	Size   uint64           `json:"size"`
	Hashes []lakeproof.Hash `json:"hashes"`
}

// Validate checks the fields of a shard description.
func (s *Shard) Validate() error {
	switch {
	case s.Count < 1:
		return fmt.Errorf("shard count %d: must be at least 1", s.Count)
	case s.Index < 0 || s.Index >= s.Count:
		return fmt.Errorf("shard index %d out of range [0, %d)", s.Index, s.Count)
	case s.Index == 0 && s.Start != "":
		return errors.New("shard 0 must start at the beginning of the key space")
	case s.Index == s.Count-1 && s.End != "":
		return errors.New("the last shard must end at the end of the key space")
	case s.End != "" && s.End <= s.Start:
		return fmt.Errorf("shard range [%q, %q) is empty or reversed", s.Start, s.End)
	case s.Compact != nil && len(s.Compact.Hashes) != bits.OnesCount64(s.Compact.Size):
		return fmt.Errorf("shard compact range of size %d has %d hashes, want %d", s.Compact.Size, len(s.Compact.Hashes), bits.OnesCount64(s.Compact.Size))
	}
	return nil
}

// Contains reports whether key is in the shard's range.
func (s *Shard) Contains(key string) bool {
	return key >= s.Start && (s.End == "" || key < s.End)
}
