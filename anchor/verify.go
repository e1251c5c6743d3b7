package anchor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/lakeproof/lakeproof"
	"github.com/lakeproof/lakeproof/trail"
)

// Trust is what a verifier trusts: gateway note verifier keys (as printed
// by `lakeproof serve --print-verifier`) and writer DIDs. Its JSON form is
// the trust file of `lakeproof verify --trust` (docs/FORMAT.md §12.5).
type Trust struct {
	Gateways []string `json:"gateways"`
	Writers  []string `json:"writers"`
}

// ParseTrust decodes a trust file strictly and checks every key and DID.
func ParseTrust(data []byte) (Trust, error) {
	var t Trust
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&t); err != nil {
		return Trust{}, fmt.Errorf("trust file: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Trust{}, errors.New("trust file: trailing data after the JSON object")
	}
	if _, err := t.verifiers(); err != nil {
		return Trust{}, err
	}
	for _, w := range t.Writers {
		if _, err := trail.ParseDID(w); err != nil {
			return Trust{}, fmt.Errorf("trust file: writer %q: %w", w, err)
		}
	}
	return t, nil
}

func (t Trust) verifiers() ([]note.Verifier, error) {
	var vs []note.Verifier
	for _, k := range t.Gateways {
		v, err := note.NewVerifier(k)
		if err != nil {
			return nil, fmt.Errorf("gateway verifier key %q: %w", k, err)
		}
		vs = append(vs, v)
	}
	return vs, nil
}

// Verified describes a verified anchor.
type Verified struct {
	Channel  string
	Index    int64 // of the entry in the channel
	Writer   string
	Payload  Payload
	Created  string    // the entry's log.created
	Origin   string    // of the checkpoint
	Size     int64     // of the checkpoint
	Root     tlog.Hash // of the checkpoint
	Gateway  string    // name of the gateway key that signed the checkpoint ("" if not checked)
	LogProof lakeproof.LogProof
}

// Verify checks the anchor level of a two-level bundle b, offline, after
// the dataset level (b.VerifyProof, which it runs first). The checks, in
// order, and the sentinel each failure matches:
//
//  1. dataset proof: the file's leaf leads to b.Root (lakeproof.ErrProofMismatch);
//  2. shape of the anchor and its tlog-proof (lakeproof.ErrMalformedBundle);
//  3. entry: canonical signed entry of type Type with a complete payload (ErrEntry);
//  4. entry signature by its writer (ErrEntrySignature);
//  5. writer trusted: the writer DID is in t.Writers (ErrWriterNotTrusted);
//  6. payload = dataset: payload root and treeSize equal b.Root, b.TreeSize (ErrPayloadMismatch);
//  7. checkpoint signature by a key of t.Gateways (ErrCheckpointSignature);
//  8. channel: the checkpoint origin is trail.Origin(key name, channel) and the
//     entry's statement names the same channel (ErrOriginMismatch);
//  9. entry inclusion: SHA-256 RFC 6962 path from the entry's leaf hash to
//     the checkpoint root (ErrEntryInclusion).
func Verify(b *lakeproof.Bundle, t Trust) (Verified, error) {
	if b.Anchor == nil || b.Format != lakeproof.BundleFormatAnchored {
		return Verified{}, fmt.Errorf("%w: not a two-level bundle (format %q)", lakeproof.ErrMalformedBundle, b.Format)
	}
	if err := b.VerifyProof(); err != nil {
		return Verified{}, err
	}
	if len(t.Gateways) == 0 {
		return Verified{}, errors.New("no trusted gateway key: give the gateway's verifier key")
	}
	if len(t.Writers) == 0 {
		return Verified{}, errors.New("no trusted writer: give the DID of the dataset's writer")
	}
	return verifyAnchored(*b.Anchor, b.Root, b.TreeSize, t, false)
}

// verifyAnchored runs checks 2 to 9 of Verify. With unsigned, the
// checkpoint signature and origin are not checked (for a writer that does
// not know the gateway's key yet): the inclusion is then checked against
// the checkpoint's unauthenticated root.
func verifyAnchored(a lakeproof.Anchored, root lakeproof.Hash, treeSize uint64, t Trust, unsigned bool) (Verified, error) {
	lp, err := a.Parse()
	if err != nil {
		return Verified{}, err
	}
	v := Verified{Channel: a.Channel, Index: lp.Index, Origin: lp.Origin, Size: lp.Size, Root: lp.Root, LogProof: lp}
	e, p, err := ParsePayload([]byte(a.Entry))
	if err != nil {
		return v, err
	}
	v.Writer, v.Payload, v.Created = e.Statement.Writer, p, e.Statement.Log.Created
	if !slices.Contains(t.Writers, v.Writer) {
		return v, fmt.Errorf("%w: the entry is signed by %s; trusted writers: %s", ErrWriterNotTrusted, v.Writer, strings.Join(t.Writers, ", "))
	}
	if p.Root != root || p.TreeSize != treeSize {
		return v, fmt.Errorf("%w: the anchor says root %s of %d leaves, the dataset proof has root %s of %d leaves",
			ErrPayloadMismatch, p.Root, p.TreeSize, root, treeSize)
	}
	if !unsigned {
		vs, err := t.verifiers()
		if err != nil {
			return v, err
		}
		var cp trail.Checkpoint
		var errs []error
		for _, gv := range vs {
			c, err := trail.ParseCheckpoint(lp.Checkpoint, "", gv)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			cp, v.Gateway = c, gv.Name()
			break
		}
		if v.Gateway == "" {
			return v, fmt.Errorf("%w: checkpoint of %q at size %d: %w", ErrCheckpointSignature, lp.Origin, lp.Size, errors.Join(errs...))
		}
		if cp.Size != lp.Size || cp.Hash != lp.Root {
			return v, fmt.Errorf("%w: checkpoint body parsed two ways", lakeproof.ErrMalformedBundle)
		}
		if want := trail.Origin(v.Gateway, a.Channel); cp.Origin != want {
			return v, fmt.Errorf("%w: the checkpoint's origin is %q, want %q", ErrOriginMismatch, cp.Origin, want)
		}
	}
	if e.Statement.ChannelAddress != a.Channel {
		return v, fmt.Errorf("%w: the entry was written to channel %s, the bundle names %s", ErrOriginMismatch, e.Statement.ChannelAddress, a.Channel)
	}
	if err := verifyInclusion(lp, []byte(a.Entry)); err != nil {
		return v, err
	}
	return v, nil
}

func verifyInclusion(lp lakeproof.LogProof, leaf []byte) error {
	lh := trail.LeafHash(leaf)
	path := make([][]byte, len(lp.Path))
	for i := range lp.Path {
		path[i] = lp.Path[i][:]
	}
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, uint64(lp.Index), uint64(lp.Size), lh[:], path, lp.Root[:]); err != nil {
		return fmt.Errorf("%w: entry %d of %d, checkpoint root %x: %v", ErrEntryInclusion, lp.Index, lp.Size, lp.Root[:], err)
	}
	return nil
}

// CheckGateway compares a verified anchor's checkpoint with the newest
// checkpoint of its channel on the gateway c: the gateway's checkpoint
// must be signed by the key that signed the bundle's (with the same
// origin), must not be older than the bundle's (ErrNewerThanGateway) and
// must extend it (RFC 6962 consistency proof, ErrInconsistent). It
// returns the gateway's checkpoint.
func CheckGateway(ctx context.Context, c *trail.Client, v Verified, t Trust) (trail.Checkpoint, error) {
	vs, err := t.verifiers()
	if err != nil {
		return trail.Checkpoint{}, err
	}
	var gv note.Verifier
	for _, x := range vs {
		if x.Name() == v.Gateway {
			gv = x
		}
	}
	if gv == nil {
		return trail.Checkpoint{}, errors.New("check with the gateway: verify the bundle with a trusted gateway key first")
	}
	older, err := trail.ParseCheckpoint(v.LogProof.Checkpoint, v.Origin, gv)
	if err != nil {
		return trail.Checkpoint{}, fmt.Errorf("%w: %w", ErrCheckpointSignature, err)
	}
	raw, err := c.Checkpoint(ctx, v.Channel)
	if err != nil {
		return trail.Checkpoint{}, fmt.Errorf("fetch the latest checkpoint of %s: %w", v.Channel, err)
	}
	newer, err := trail.ParseCheckpoint(raw, v.Origin, gv)
	if err != nil {
		return trail.Checkpoint{}, fmt.Errorf("%w: the gateway's latest checkpoint: %w", ErrCheckpointSignature, err)
	}
	if newer.Size < older.Size {
		return newer, fmt.Errorf("%w: the bundle's checkpoint has size %d, the gateway's latest %d (the gateway rolled back, or the bundle is from another gateway with the same key)",
			ErrNewerThanGateway, older.Size, newer.Size)
	}
	var proof []tlog.Hash
	if newer.Size > older.Size {
		if proof, err = c.ConsistencyProof(ctx, v.Channel, older.Size, newer.Size); err != nil {
			return newer, fmt.Errorf("fetch consistency proof of %s from %d to %d: %w", v.Channel, older.Size, newer.Size, err)
		}
	}
	if err := trail.VerifyConsistency(older, newer, proof); err != nil {
		return newer, fmt.Errorf("%w: %w", ErrInconsistent, err)
	}
	return newer, nil
}
