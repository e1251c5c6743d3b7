package lakeproof

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"strings"

	"github.com/transparency-dev/merkle/proof"
)

// BundleFormat is the value of the "format" field of a version 1 proof bundle.
const BundleFormat = "lakeproof/proof/v1"

// MaxBundleSize bounds the size of a proof bundle accepted by ParseBundle.
const MaxBundleSize = 1 << 20

// Bundle is a self-contained proof that one file, under one key, is part
// of a dataset with a given root. Its JSON encoding is documented in
// docs/FORMAT.md ("Proof bundle"); field order and names are stable.
type Bundle struct {
	Format    string       `json:"format"`
	Key       string       `json:"key"`
	Size      uint64       `json:"size"`
	Digest    Hash         `json:"digest"`
	LeafIndex uint64       `json:"leaf_index"`
	TreeSize  uint64       `json:"tree_size"`
	Inclusion []Hash       `json:"inclusion"`
	Root      Hash         `json:"root"`
	Dataset   *DatasetInfo `json:"dataset,omitempty"`
	// Anchor is present exactly in BundleFormatAnchored bundles.
	Anchor *Anchored `json:"anchor,omitempty"`
}

// DatasetInfo is informational context carried in a bundle. It is not
// covered by the proof: only Root is.
type DatasetInfo struct {
	Source  string `json:"source,omitempty"`
	Created string `json:"created,omitempty"`
	Tool    string `json:"tool,omitempty"`
}

// Verification failures. VerifyBundle and ParseBundle return errors that
// match exactly one of them with errors.Is, so callers can say which check
// failed.
var (
	ErrMalformedBundle = errors.New("malformed proof bundle")
	ErrContentMismatch = errors.New("content does not match the proof")
	ErrProofMismatch   = errors.New("inclusion proof does not lead to the root")
)

// ParseBundle decodes and validates a version 1 (BundleFormat) or two-level
// (BundleFormatAnchored) bundle. It is strict: unknown fields, trailing
// data, a wrong format string, an invalid key, an out-of-range leaf index,
// an inclusion path of the wrong length for (leaf_index, tree_size), an
// "anchor" in a version 1 bundle or its absence in a two-level one, and an
// anchor whose entry or tlog-proof is malformed (ParseLogProof) are all
// errors wrapping ErrMalformedBundle. It checks no proof or signature.
func ParseBundle(data []byte) (*Bundle, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrMalformedBundle, fmt.Sprintf(format, args...))
	}
	if len(data) > MaxBundleSize {
		return nil, bad("larger than %d bytes", MaxBundleSize)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var b Bundle
	if err := dec.Decode(&b); err != nil {
		return nil, bad("%v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, bad("trailing data after the JSON object")
	}
	switch {
	case b.Format == BundleFormat && b.Anchor != nil:
		return nil, bad("format %q has no anchor field (a two-level bundle is %q)", BundleFormat, BundleFormatAnchored)
	case b.Format == BundleFormatAnchored && b.Anchor == nil:
		return nil, bad("format %q requires the anchor field", BundleFormatAnchored)
	case b.Format != BundleFormat && b.Format != BundleFormatAnchored:
		return nil, bad("format is %q, want %q or %q", b.Format, BundleFormat, BundleFormatAnchored)
	}
	if err := checkLowerHex(data); err != nil {
		return nil, bad("%v", err)
	}
	if err := CheckKey(b.Key); err != nil {
		return nil, bad("%v", err)
	}
	if b.TreeSize == 0 || b.LeafIndex >= b.TreeSize {
		return nil, bad("leaf_index %d out of range for tree_size %d", b.LeafIndex, b.TreeSize)
	}
	if want := InclusionProofLen(b.LeafIndex, b.TreeSize); len(b.Inclusion) != want {
		return nil, bad("inclusion path has %d hashes, want %d for leaf %d of %d", len(b.Inclusion), want, b.LeafIndex, b.TreeSize)
	}
	if b.Anchor != nil {
		if _, err := b.Anchor.Parse(); err != nil {
			return nil, err
		}
	}
	return &b, nil
}

// checkLowerHex checks that the hashes of a bundle are spelled as §1 of
// docs/FORMAT.md says, 64 lowercase hex digits (Hash accepts upper case
// too), so a bundle has one spelling and independent verifiers that
// compare hex strings agree with this one.
func checkLowerHex(data []byte) error {
	var raw struct {
		Digest    string   `json:"digest"`
		Root      string   `json:"root"`
		Inclusion []string `json:"inclusion"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return err
	}
	for i, h := range append([]string{raw.Digest, raw.Root}, raw.Inclusion...) {
		if h != strings.ToLower(h) {
			what := [...]string{"digest", "root"}
			name := "inclusion hash"
			if i < 2 {
				name = what[i]
			}
			return fmt.Errorf("%s %q: hashes are written in lowercase hex", name, abbrev(h))
		}
	}
	return nil
}

// Marshal returns the canonical indented JSON encoding of b, with a final newline.
func (b *Bundle) Marshal() []byte {
	out, err := json.MarshalIndent(b, "", "  ")
	if err != nil {
		panic("lakeproof: cannot marshal bundle: " + err.Error())
	}
	return append(out, '\n')
}

// VerifyProof checks that the bundle's leaf (key, size, digest) is at
// LeafIndex in a tree of TreeSize leaves with root Root.
func (b *Bundle) VerifyProof() error {
	leaf := LeafHash(b.Key, b.Size, b.Digest)
	path := make([][]byte, len(b.Inclusion))
	for i := range b.Inclusion {
		path[i] = b.Inclusion[i][:]
	}
	got, err := proof.RootFromInclusionProof(Hasher, b.LeafIndex, b.TreeSize, leaf[:], path)
	if err != nil {
		return fmt.Errorf("%w: key %q, leaf %d of %d: %v", ErrProofMismatch, b.Key, b.LeafIndex, b.TreeSize, err)
	}
	if Hash(got) != b.Root {
		return fmt.Errorf("%w: key %q, leaf %d of %d, root %s: the inclusion path leads to %s instead",
			ErrProofMismatch, b.Key, b.LeafIndex, b.TreeSize, b.Root, Hash(got))
	}
	return nil
}

// VerifyContent checks a file's measured size and digest against the bundle.
func (b *Bundle) VerifyContent(size uint64, digest Hash) error {
	switch {
	case size != b.Size:
		return fmt.Errorf("%w: key %q: size is %d bytes, the proof says %d", ErrContentMismatch, b.Key, size, b.Size)
	case digest != b.Digest:
		return fmt.Errorf("%w: key %q: BLAKE3 is %s, the proof says %s", ErrContentMismatch, b.Key, digest, b.Digest)
	}
	return nil
}

// InclusionProofLen is the number of hashes in the RFC 6962 inclusion
// proof of leaf index in a tree of size leaves (index < size): the
// bit length of index XOR (size-1), plus the number of one bits of index
// above that length.
func InclusionProofLen(index, size uint64) int {
	inner := bits.Len64(index ^ (size - 1))
	return inner + bits.OnesCount64(index>>uint(inner))
}
