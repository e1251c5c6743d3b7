package anchor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/lakeproof/lakeproof"
	"github.com/lakeproof/lakeproof/index"
	"github.com/lakeproof/lakeproof/trail"
)

// Options configure Anchor.
type Options struct {
	// Client is a gateway client logged in as the writer, with its signing
	// key set (entries are signed client-side). Required.
	Client *trail.Client
	// Gateway is recorded in the receipt (informational); default
	// Client.BaseURL.
	Gateway string
	// Channel is the channel address. Required.
	Channel string
	// Dataset names the dataset; default: the index directory's base name
	// without its extension.
	Dataset string
	// Tool is the payload's tool field, e.g. "lakeproof v0.3.0". Required.
	Tool string
	// GatewayKey, if set, is the gateway's note verifier key: the
	// checkpoint's signature and origin are then checked before the
	// receipt is stored. Without it they are checked only by verify.
	GatewayKey string
	// Wait bounds how long Anchor waits for a checkpoint that covers the
	// new entry (default 30 s).
	Wait time.Duration
	// Now is the entry's log.created time (default time.Now).
	Now func() time.Time
}

// DatasetName is the default dataset name of an index directory: its base
// name without the extension ("/idx/sales-2026-11.idx" → "sales-2026-11").
func DatasetName(indexDir string) string {
	b := filepath.Base(filepath.Clean(indexDir))
	if e := filepath.Ext(b); e != "" && e != b {
		b = strings.TrimSuffix(b, e)
	}
	return b
}

// PayloadOf returns the anchor payload of the local index directory dir.
// Partial (shard) indexes cannot be anchored.
func PayloadOf(ctx context.Context, dir, dataset, tool string) (Payload, error) {
	digest, sum, err := index.SummaryDigest(ctx, index.LocalDir(dir))
	if err != nil {
		return Payload{}, err
	}
	if sum.Shard != nil {
		return Payload{}, fmt.Errorf("index %s is one shard of a sharded run; anchor the merged index ('lakeproof merge')", dir)
	}
	if dataset == "" {
		dataset = DatasetName(dir)
	}
	return Payload{Dataset: dataset, Source: sum.Source, Root: sum.Root, TreeSize: sum.Files, Files: sum.Files,
		Bytes: sum.Bytes, IndexDigest: digest, Tool: tool}, nil
}

// Anchor writes the anchor entry of the local index directory indexDir to
// o.Channel, signed by o.Client's key; waits for a channel checkpoint that
// covers it, fetches the entry's inclusion proof, verifies both and stores
// the receipt in indexDir (SaveReceipt). It refuses to write a second
// anchor of the same index to a channel (ErrAnchored). If the entry was
// written but the receipt could not be made, the error says so and names
// the entry's index: `lakeproof anchor --entry N` finishes the receipt
// without writing another entry (Resume).
func Anchor(ctx context.Context, indexDir string, o Options) (Receipt, error) {
	if o.Client == nil || o.Client.Key == nil {
		return Receipt{}, errors.New("anchor: a client with the writer's signing key is required")
	}
	if !trail.ValidAddress(o.Channel) {
		return Receipt{}, fmt.Errorf("anchor: %q is not a channel address (80 hex digits, ':', 24 hex digits)", o.Channel)
	}
	if _, err := os.Lstat(filepath.Join(indexDir, ReceiptName(o.Channel))); !errors.Is(err, os.ErrNotExist) {
		if err == nil {
			return Receipt{}, fmt.Errorf("%w: %s has %s", ErrAnchored, indexDir, ReceiptName(o.Channel))
		}
		return Receipt{}, fmt.Errorf("anchor %s: %w", indexDir, err)
	}
	p, err := PayloadOf(ctx, indexDir, o.Dataset, o.Tool)
	if err != nil {
		return Receipt{}, err
	}
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	l := trail.Log{Type: Type, Created: now().UTC().Format(time.RFC3339), PublicPayload: p.Marshal()}
	d, err := o.Client.Write(ctx, o.Channel, l)
	if err != nil {
		return Receipt{}, fmt.Errorf("write anchor of %s to channel %s: %w", indexDir, o.Channel, err)
	}
	r, err := Resume(ctx, indexDir, d.Index, o)
	if err != nil {
		return Receipt{}, fmt.Errorf("%w: entry %d of channel %s: %w (finish with: lakeproof anchor --index %s --channel %s --entry %d)",
			ErrIncomplete, d.Index, o.Channel, err, indexDir, o.Channel, d.Index)
	}
	return r, nil
}

// Resume makes and stores the receipt of an anchor entry already written
// at entryIndex of o.Channel: it fetches the entry, checks that it anchors
// exactly the index in indexDir and is signed by o.Client's identity,
// then proceeds as Anchor does.
func Resume(ctx context.Context, indexDir string, entryIndex int64, o Options) (Receipt, error) {
	want, err := PayloadOf(ctx, indexDir, o.Dataset, o.Tool)
	if err != nil {
		return Receipt{}, err
	}
	leaf, err := o.Client.LogEntry(ctx, o.Channel, entryIndex)
	if err != nil {
		return Receipt{}, fmt.Errorf("fetch entry %d of %s: %w", entryIndex, o.Channel, err)
	}
	e, got, err := ParsePayload(leaf)
	if err != nil {
		return Receipt{}, fmt.Errorf("entry %d of %s: %w", entryIndex, o.Channel, err)
	}
	if e.Statement.Writer != o.Client.ID || e.Statement.ChannelAddress != o.Channel {
		return Receipt{}, fmt.Errorf("entry %d of %s was written by %s to %s, not by %s", entryIndex, o.Channel,
			e.Statement.Writer, e.Statement.ChannelAddress, o.Client.ID)
	}
	if got.Root != want.Root || got.TreeSize != want.TreeSize || got.IndexDigest != want.IndexDigest {
		return Receipt{}, fmt.Errorf("%w: entry %d of %s anchors root %s (index digest %s), the index %s has root %s (index digest %s)",
			ErrPayloadMismatch, entryIndex, o.Channel, got.Root, got.IndexDigest, indexDir, want.Root, want.IndexDigest)
	}
	r, err := Fetch(ctx, o.Client, o.Channel, entryIndex, leaf, o.GatewayKey, o.Wait)
	if err != nil {
		return Receipt{}, err
	}
	r.Gateway = o.Gateway
	if r.Gateway == "" {
		r.Gateway = o.Client.BaseURL
	}
	trust := Trust{Writers: []string{o.Client.ID}}
	if o.GatewayKey != "" {
		trust.Gateways = []string{o.GatewayKey}
	}
	if _, err := verifyAnchored(r.Anchored(), want.Root, want.TreeSize, trust, o.GatewayKey == ""); err != nil {
		return Receipt{}, err
	}
	if err := SaveReceipt(indexDir, r); err != nil {
		return Receipt{}, err
	}
	return r, nil
}

// Fetch waits (at most wait, default 30 s) for a checkpoint of channel
// that covers entry index, fetches the entry's inclusion proof in it and
// checks it against leaf, the entry's verbatim bytes. With gatewayKey set
// the checkpoint's signature and origin are checked too.
func Fetch(ctx context.Context, c *trail.Client, channel string, index int64, leaf []byte, gatewayKey string, wait time.Duration) (Receipt, error) {
	if wait <= 0 {
		wait = 30 * time.Second
	}
	var v note.Verifier
	if gatewayKey != "" {
		var err error
		if v, err = note.NewVerifier(gatewayKey); err != nil {
			return Receipt{}, fmt.Errorf("gateway verifier key %q: %w", gatewayKey, err)
		}
	}
	deadline := time.Now().Add(wait)
	delay := 50 * time.Millisecond
	for {
		cpNote, err := c.Checkpoint(ctx, channel)
		if err != nil && trail.StatusOf(err) != 404 {
			return Receipt{}, fmt.Errorf("fetch checkpoint of %s: %w", channel, err)
		}
		if err == nil {
			origin, size, root, err := lakeproof.CheckpointBody(cpNote)
			if err != nil {
				return Receipt{}, fmt.Errorf("checkpoint of %s from the gateway: %w", channel, err)
			}
			if v != nil {
				cp, err := trail.ParseCheckpoint(cpNote, trail.Origin(v.Name(), channel), v)
				if err != nil {
					return Receipt{}, fmt.Errorf("%w: checkpoint of %s from the gateway: %w", ErrCheckpointSignature, channel, err)
				}
				origin, size, root = cp.Origin, cp.Size, cp.Hash
			}
			if size > index {
				path, err := c.InclusionProof(ctx, channel, index, size)
				if err != nil {
					return Receipt{}, fmt.Errorf("fetch inclusion proof of entry %d of %s at size %d: %w", index, channel, size, err)
				}
				lp := lakeproof.LogProof{Index: index, Path: path, Checkpoint: cpNote, Origin: origin, Size: size, Root: root}
				if want := lakeproof.InclusionProofLen(uint64(index), uint64(size)); len(path) != want {
					return Receipt{}, fmt.Errorf("%w: the gateway sent %d hashes, want %d", ErrEntryInclusion, len(path), want)
				}
				if err := verifyInclusion(lp, leaf); err != nil {
					return Receipt{}, err
				}
				return Receipt{Channel: channel, Index: index, Entry: leaf, Checkpoint: cpNote, Proof: path}, nil
			}
		}
		if time.Now().After(deadline) {
			return Receipt{}, fmt.Errorf("no checkpoint of %s covers entry %d after %s", channel, index, wait)
		}
		select {
		case <-ctx.Done():
			return Receipt{}, ctx.Err()
		case <-time.After(delay):
		}
		delay = min(2*delay, time.Second)
	}
}

// ErrIncomplete: Anchor wrote the entry but could not make or store its
// receipt; the error names the entry, for Resume.
var ErrIncomplete = errors.New("anchor entry written, receipt not stored")

// ErrNoAnchor: the channel has no valid anchor of the dataset.
var ErrNoAnchor = errors.New("no anchor found")
