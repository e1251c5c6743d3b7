// Package anchor links a lakeproof dataset index to an audit-trail channel
// and verifies that link offline.
//
// An anchor is a channel entry (trail.SignedEntry) whose log has type
// Type and whose publicPayload is a Payload: the dataset's name, source,
// root, tree size, file and byte counts, index digest (BLAKE3 of the
// index's summary.json) and the tool version. It is signed with the
// writer's own Ed25519 key, never by the gateway, so that it verifies
// without trusting the gateway.
//
// Anchor writes such an entry, waits for a signed channel checkpoint that
// covers it, checks the entry's SHA-256 inclusion in that checkpoint and
// stores a Receipt in the index directory (anchor-<channel prefix>.json,
// created without replacing anything: an index is anchored at most once
// per channel). A two-level proof bundle (lakeproof.BundleFormatAnchored)
// carries the receipt's material; Verify checks it, link by link, with
// errors that name the link that failed (the Err* sentinels).
//
// docs/FORMAT.md §12 is the normative description of the entry, the
// receipt, the bundle and the order of the checks.
package anchor

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/lakeproof/lakeproof"
	"github.com/lakeproof/lakeproof/trail"
)

// Type is the log type of an anchor entry.
const Type = "lakeproof.anchor/v1"

// Payload is the publicPayload of an anchor entry. All fields are
// required; Root and TreeSize must equal those of the dataset proved.
type Payload struct {
	Dataset     string         `json:"dataset"`
	Source      string         `json:"source"`
	Root        lakeproof.Hash `json:"root"`
	TreeSize    uint64         `json:"treeSize"`
	Files       uint64         `json:"files"`
	Bytes       uint64         `json:"bytes"`
	IndexDigest lakeproof.Hash `json:"indexDigest"`
	Tool        string         `json:"tool"`
}

// The links of an anchored proof. Verify, ParsePayload and Anchor return
// errors that match one of them with errors.Is.
var (
	// ErrEntry: the anchor entry is not a canonical signed channel entry
	// of type Type with a well-formed payload.
	ErrEntry = errors.New("anchor entry is malformed")
	// ErrEntrySignature: the entry's signature does not verify, or it is
	// not signed by its writer.
	ErrEntrySignature = errors.New("anchor entry signature does not verify")
	// ErrWriterNotTrusted: the entry's writer is not a trusted writer DID.
	ErrWriterNotTrusted = errors.New("anchor writer is not trusted")
	// ErrPayloadMismatch: the payload's root or tree size differs from the
	// dataset's.
	ErrPayloadMismatch = errors.New("anchor payload does not match the dataset")
	// ErrCheckpointSignature: the checkpoint is not signed by a trusted
	// gateway key.
	ErrCheckpointSignature = errors.New("checkpoint signature does not verify with a trusted gateway key")
	// ErrOriginMismatch: the checkpoint's origin, or the entry's channel,
	// is not the bundle's channel of the signing gateway.
	ErrOriginMismatch = errors.New("checkpoint or entry is for another channel")
	// ErrEntryInclusion: the inclusion proof does not lead from the entry
	// to the checkpoint's root.
	ErrEntryInclusion = errors.New("anchor entry is not included in the checkpoint")
	// ErrNewerThanGateway: the bundle's checkpoint is larger than the
	// gateway's latest checkpoint.
	ErrNewerThanGateway = errors.New("bundle checkpoint is newer than the gateway's latest")
	// ErrInconsistent: the gateway's latest checkpoint is not an extension
	// of the bundle's (rewritten history or a split view).
	ErrInconsistent = errors.New("gateway's checkpoint is inconsistent with the bundle's")
	// ErrAnchored: the index already has a receipt for the channel.
	ErrAnchored = errors.New("index already anchored to this channel")
)

// maxPayload bounds the publicPayload of an anchor.
const maxPayload = 16 << 10

// Marshal returns the JSON of p, the publicPayload of an anchor entry.
func (p Payload) Marshal() json.RawMessage {
	b, err := json.Marshal(p)
	if err != nil {
		panic("anchor: cannot marshal payload: " + err.Error())
	}
	return b
}

// ParsePayload decodes the verbatim leaf of an anchor entry: it must be a
// canonical signed entry (trail.ParseLeaf) of log type Type whose log has
// only type, created (RFC 3339) and a publicPayload that decodes strictly
// into a Payload with every field present (else ErrEntry); then its
// signature must verify and its signer be its writer: gateway-signed
// entries are not anchors (else ErrEntrySignature).
func ParsePayload(leaf []byte) (trail.SignedEntry, Payload, error) {
	if len(leaf) == 0 || len(leaf) > lakeproof.MaxEntrySize {
		return trail.SignedEntry{}, Payload{}, fmt.Errorf("%w: %d bytes, want 1 to %d", ErrEntry, len(leaf), lakeproof.MaxEntrySize)
	}
	e, err := trail.ParseLeaf(leaf)
	if err != nil {
		return e, Payload{}, fmt.Errorf("%w: %w", ErrEntry, err)
	}
	if e.Statement.V != trail.StatementVersion {
		return e, Payload{}, fmt.Errorf("%w: statement version %q, want %q", ErrEntry, e.Statement.V, trail.StatementVersion)
	}
	if e.Statement.Log.Type != Type {
		return e, Payload{}, fmt.Errorf("%w: log type is %q, want %q", ErrEntry, e.Statement.Log.Type, Type)
	}
	if e.Statement.Log.Metadata != nil || e.Statement.Log.Payload != nil {
		return e, Payload{}, fmt.Errorf("%w: an anchor's log has only type, created and publicPayload", ErrEntry)
	}
	if _, err := time.Parse(time.RFC3339Nano, e.Statement.Log.Created); err != nil {
		return e, Payload{}, fmt.Errorf("%w: log.created %q is not an RFC 3339 time", ErrEntry, e.Statement.Log.Created)
	}
	raw := e.Statement.Log.PublicPayload
	if len(raw) > maxPayload {
		return e, Payload{}, fmt.Errorf("%w: publicPayload larger than %d bytes", ErrEntry, maxPayload)
	}
	// Every field is required: decode into pointers to see absent ones.
	var q struct {
		Dataset     *string         `json:"dataset"`
		Source      *string         `json:"source"`
		Root        *lakeproof.Hash `json:"root"`
		TreeSize    *uint64         `json:"treeSize"`
		Files       *uint64         `json:"files"`
		Bytes       *uint64         `json:"bytes"`
		IndexDigest *lakeproof.Hash `json:"indexDigest"`
		Tool        *string         `json:"tool"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&q); err != nil {
		return e, Payload{}, fmt.Errorf("%w: publicPayload: %v", ErrEntry, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return e, Payload{}, fmt.Errorf("%w: publicPayload: trailing data", ErrEntry)
	}
	if q.Dataset == nil || q.Source == nil || q.Root == nil || q.TreeSize == nil || q.Files == nil ||
		q.Bytes == nil || q.IndexDigest == nil || q.Tool == nil {
		return e, Payload{}, fmt.Errorf("%w: publicPayload lacks one of dataset, source, root, treeSize, files, bytes, indexDigest, tool", ErrEntry)
	}
	var hex struct {
		Root        string `json:"root"`
		IndexDigest string `json:"indexDigest"`
	}
	if err := json.Unmarshal(raw, &hex); err != nil || hex.Root != q.Root.String() || hex.IndexDigest != q.IndexDigest.String() {
		return e, Payload{}, fmt.Errorf("%w: publicPayload: root and indexDigest must be 64 lowercase hex digits", ErrEntry)
	}
	if *q.Dataset == "" {
		return e, Payload{}, fmt.Errorf("%w: publicPayload: empty dataset name", ErrEntry)
	}
	// The signature last, so that a malformed entry is reported as such
	// (docs/FORMAT.md §12.6 order).
	if err := e.Verify(); err != nil {
		return e, Payload{}, fmt.Errorf("%w: writer %s: %w", ErrEntrySignature, e.Statement.Writer, err)
	}
	return e, Payload{Dataset: *q.Dataset, Source: *q.Source, Root: *q.Root, TreeSize: *q.TreeSize, Files: *q.Files,
		Bytes: *q.Bytes, IndexDigest: *q.IndexDigest, Tool: *q.Tool}, nil
}
