package trail

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Sentinel errors of channel-log verification (checkpoints and proofs).
var (
	// ErrCheckpoint: a checkpoint that is malformed, not signed by the
	// expected key, or of another log (origin mismatch).
	ErrCheckpoint = errors.New("invalid checkpoint")
	// ErrInconsistent: two checkpoints of one log that cannot both be
	// true (a split view or a rewritten history).
	ErrInconsistent = errors.New("inconsistent checkpoints")
	// ErrProof: an inclusion proof that does not prove the entry is in the
	// checkpoint's tree.
	ErrProof = errors.New("proof does not verify")
)

// TileHeight is the height of the channel logs' hash tiles (C2SP
// tlog-tiles: 256 hashes per full tile).
const TileHeight = 8

// MaxLogEntry is the largest entry a channel accepts: C2SP tlog-tiles
// entry bundles prefix each entry with a big-endian uint16 length.
const MaxLogEntry = 65535

// Origin is the checkpoint origin line of a channel's log on the gateway
// whose note key is named logName.
func Origin(logName, addr string) string { return logName + "/channel/" + addr }

// Checkpoint is a parsed, signature-checked channel checkpoint
// (c2sp.org/tlog-checkpoint).
type Checkpoint struct {
	Origin string
	Size   int64
	Hash   tlog.Hash // RFC 6962 SHA-256 root of the first Size entries
	Note   []byte    // the signed note, verbatim
}

// ParseCheckpoint opens a signed checkpoint note: it must carry a valid
// signature by v (other signatures, e.g. of witnesses, are ignored), its
// body must be a C2SP checkpoint in canonical form (decimal size without
// leading zeros, a 32-byte root hash; non-empty extension lines are
// allowed) and, if
// origin is not "", its origin line must equal origin. Every failure wraps
// ErrCheckpoint.
func ParseCheckpoint(signed []byte, origin string, v note.Verifier) (Checkpoint, error) {
	if v == nil {
		return Checkpoint{}, fmt.Errorf("%w: no verifier key given", ErrCheckpoint)
	}
	n, err := note.Open(signed, note.VerifierList(v))
	if err != nil {
		return Checkpoint{}, fmt.Errorf("%w: signature of %s: %w", ErrCheckpoint, v.Name(), err)
	}
	var cp log.Checkpoint
	rest, err := cp.Unmarshal([]byte(n.Text))
	if err != nil {
		return Checkpoint{}, fmt.Errorf("%w: body: %w", ErrCheckpoint, err)
	}
	if len(cp.Hash) != tlog.HashSize {
		return Checkpoint{}, fmt.Errorf("%w: root hash has %d bytes, want %d", ErrCheckpoint, len(cp.Hash), tlog.HashSize)
	}
	if cp.Size > math.MaxInt64 {
		return Checkpoint{}, fmt.Errorf("%w: tree size %d too large", ErrCheckpoint, cp.Size)
	}
	// C2SP tlog-checkpoint: extension lines are non-empty.
	if len(rest) > 0 && (rest[0] == '\n' || bytes.Contains(rest, []byte("\n\n"))) {
		return Checkpoint{}, fmt.Errorf("%w: empty extension line", ErrCheckpoint)
	}
	if canon := append(cp.Marshal(), rest...); !bytes.Equal(canon, []byte(n.Text)) {
		return Checkpoint{}, fmt.Errorf("%w: body is not in canonical form", ErrCheckpoint)
	}
	if origin != "" && cp.Origin != origin {
		return Checkpoint{}, fmt.Errorf("%w: origin %q, want %q (a checkpoint of another log)", ErrCheckpoint, cp.Origin, origin)
	}
	if strings.ContainsAny(cp.Origin, "\r") {
		return Checkpoint{}, fmt.Errorf("%w: origin contains a carriage return", ErrCheckpoint)
	}
	return Checkpoint{Origin: cp.Origin, Size: int64(cp.Size), Hash: tlog.Hash(cp.Hash), Note: append([]byte(nil), signed...)}, nil
}

// checkpointBody is the unsigned C2SP checkpoint text.
func checkpointBody(origin string, size int64, h tlog.Hash) []byte {
	return log.Checkpoint{Origin: origin, Size: uint64(size), Hash: h[:]}.Marshal()
}

// VerifyInclusion checks that leaf (an entry's verbatim bytes) is entry
// index of the tree cp commits to, given the RFC 6962 audit path proof
// (as served by GET …/proof/inclusion). Failures wrap ErrProof.
func VerifyInclusion(cp Checkpoint, index int64, leaf []byte, proof []tlog.Hash) error {
	if index < 0 || index >= cp.Size {
		return fmt.Errorf("%w: entry %d is not in a tree of size %d", ErrProof, index, cp.Size)
	}
	if err := tlog.CheckRecord(tlog.RecordProof(proof), cp.Size, cp.Hash, index, tlog.RecordHash(leaf)); err != nil {
		return fmt.Errorf("%w: entry %d in %s at size %d: %w", ErrProof, index, cp.Origin, cp.Size, err)
	}
	return nil
}

// VerifyConsistency checks that newer's tree extends older's (RFC 6962
// consistency proof, as served by GET …/proof/consistency). Checkpoints of
// different origins wrap ErrCheckpoint; everything else that fails wraps
// ErrInconsistent: a reader holding older must not trust newer (the log
// was rewritten, forked, or the gateway sent a wrong proof — a reader
// cannot tell these apart and must treat them alike).
func VerifyConsistency(older, newer Checkpoint, proof []tlog.Hash) error {
	if older.Origin != newer.Origin {
		return fmt.Errorf("%w: origins differ: %q and %q", ErrCheckpoint, older.Origin, newer.Origin)
	}
	switch {
	case older.Size < 0 || newer.Size < 0:
		return fmt.Errorf("%w: negative tree size", ErrInconsistent)
	case older.Size > newer.Size:
		return fmt.Errorf("%w: %s shrank from size %d to %d", ErrInconsistent, older.Origin, older.Size, newer.Size)
	case older.Size == newer.Size:
		if older.Hash != newer.Hash {
			return fmt.Errorf("%w: %s has two different roots at size %d", ErrInconsistent, older.Origin, older.Size)
		}
		if len(proof) != 0 {
			return fmt.Errorf("%w: non-empty proof between equal sizes", ErrInconsistent)
		}
		return nil
	case older.Size == 0:
		if older.Hash != emptyTreeHash {
			return fmt.Errorf("%w: %s: wrong root for the empty tree", ErrInconsistent, older.Origin)
		}
		if len(proof) != 0 {
			return fmt.Errorf("%w: non-empty proof from the empty tree", ErrInconsistent)
		}
		return nil
	}
	if err := tlog.CheckTree(tlog.TreeProof(proof), newer.Size, newer.Hash, older.Size, older.Hash); err != nil {
		return fmt.Errorf("%w: %s size %d does not extend size %d: %w", ErrInconsistent, older.Origin, newer.Size, older.Size, err)
	}
	return nil
}

// emptyTreeHash is the RFC 6962 root of the empty tree, SHA-256("").
var emptyTreeHash = func() tlog.Hash {
	h, _ := tlog.TreeHash(0, nil)
	return h
}()
