package anchor

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/lakeproof/lakeproof"
	"github.com/lakeproof/lakeproof/internal/durable"
)

// ReceiptFormat is the "format" of an anchor receipt file.
const ReceiptFormat = "lakeproof/anchor-receipt/v1"

// maxReceipt bounds the size of a receipt file.
const maxReceipt = 1 << 20

// Receipt is the proof that an index was anchored: the channel entry at
// Index of Channel (Entry, its verbatim leaf bytes), a signed checkpoint of
// the channel (Checkpoint, a verbatim signed note) and the SHA-256
// inclusion path of the entry in that checkpoint. Gateway is where it was
// fetched (informational).
type Receipt struct {
	Channel    string
	Index      int64
	Entry      []byte
	Checkpoint []byte
	Proof      []tlog.Hash
	Gateway    string
}

type receiptJSON struct {
	Format  string `json:"format"`
	Gateway string `json:"gateway,omitempty"`
	lakeproof.Anchored
}

// Anchored returns the anchor level of a two-level bundle.
func (r Receipt) Anchored() lakeproof.Anchored {
	p := lakeproof.LogProof{Index: r.Index, Path: r.Proof, Checkpoint: r.Checkpoint}
	return lakeproof.Anchored{Channel: r.Channel, Entry: string(r.Entry), Proof: string(p.Marshal())}
}

// FromAnchored is the inverse of Receipt.Anchored; it checks a's shape.
func FromAnchored(a lakeproof.Anchored, gateway string) (Receipt, error) {
	p, err := a.Parse()
	if err != nil {
		return Receipt{}, err
	}
	return Receipt{Channel: a.Channel, Index: p.Index, Entry: []byte(a.Entry), Checkpoint: p.Checkpoint, Proof: p.Path, Gateway: gateway}, nil
}

// Marshal returns the receipt file's bytes: indented JSON with a final newline.
func (r Receipt) Marshal() []byte {
	b, err := json.MarshalIndent(receiptJSON{Format: ReceiptFormat, Gateway: r.Gateway, Anchored: r.Anchored()}, "", "  ")
	if err != nil {
		panic("anchor: cannot marshal receipt: " + err.Error())
	}
	return append(b, '\n')
}

// ParseReceipt decodes a receipt file strictly (unknown fields, trailing
// data, a wrong format, a malformed anchor are errors wrapping
// lakeproof.ErrMalformedBundle). It checks no signature.
func ParseReceipt(data []byte) (Receipt, error) {
	if len(data) > maxReceipt {
		return Receipt{}, fmt.Errorf("%w: receipt larger than %d bytes", lakeproof.ErrMalformedBundle, maxReceipt)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var j receiptJSON
	if err := dec.Decode(&j); err != nil {
		return Receipt{}, fmt.Errorf("%w: receipt: %v", lakeproof.ErrMalformedBundle, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Receipt{}, fmt.Errorf("%w: receipt: trailing data", lakeproof.ErrMalformedBundle)
	}
	if j.Format != ReceiptFormat {
		return Receipt{}, fmt.Errorf("%w: receipt format is %q, want %q", lakeproof.ErrMalformedBundle, j.Format, ReceiptFormat)
	}
	return FromAnchored(j.Anchored, j.Gateway)
}

// ReceiptName is the file name, inside an index directory, of the receipt
// for channel: "anchor-" + the first 16 characters of the address + ".json".
func ReceiptName(channel string) string {
	short := channel
	if len(short) > 16 {
		short = short[:16]
	}
	short = strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' {
			return r
		}
		return '_'
	}, short)
	return "anchor-" + short + ".json"
}

// ReadReceipts returns the receipts stored in the index directory dir,
// in file-name order. A receipt file that does not parse is an error.
func ReadReceipts(dir string) ([]Receipt, error) {
	names, err := filepath.Glob(filepath.Join(dir, "anchor-*.json"))
	if err != nil {
		return nil, err
	}
	var out []Receipt
	for _, n := range names {
		b, err := readBounded(n, maxReceipt)
		if err != nil {
			return nil, fmt.Errorf("read anchor receipt: %w", err)
		}
		r, err := ParseReceipt(b)
		if err != nil {
			return nil, fmt.Errorf("anchor receipt %s: %w", n, err)
		}
		out = append(out, r)
	}
	return out, nil
}

// readBounded reads at most limit+1 bytes of the file at path (an index
// directory may come from someone else: its files are untrusted input), so
// ParseReceipt reports a file that is too large without reading it all.
func readBounded(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, limit+1))
}

// ReceiptFor returns the receipt of channel in dir; with channel "" the
// only receipt there. It returns an error wrapping os.ErrNotExist when
// there is none.
func ReceiptFor(dir, channel string) (Receipt, error) {
	rs, err := ReadReceipts(dir)
	if err != nil {
		return Receipt{}, err
	}
	var match []Receipt
	for _, r := range rs {
		if channel == "" || r.Channel == channel {
			match = append(match, r)
		}
	}
	switch {
	case len(match) == 0 && channel == "":
		return Receipt{}, fmt.Errorf("index %s has no anchor receipt (run lakeproof anchor): %w", dir, os.ErrNotExist)
	case len(match) == 0:
		return Receipt{}, fmt.Errorf("index %s has no anchor receipt for channel %s: %w", dir, channel, os.ErrNotExist)
	case len(match) > 1:
		return Receipt{}, fmt.Errorf("index %s is anchored to %d channels; choose one with --channel", dir, len(match))
	}
	return match[0], nil
}

// SaveReceipt stores r in the index directory dir as ReceiptName(r.Channel),
// crash-consistently and without replacing anything: it writes and fsyncs
// a temporary file, hard-links it to the final name (which fails if that
// exists: ErrAnchored), removes the temporary name and fsyncs dir.
func SaveReceipt(dir string, r Receipt) error {
	final := filepath.Join(dir, ReceiptName(r.Channel))
	err := durable.WriteFile(final, r.Marshal(), 0o644, false)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%w: %s exists", ErrAnchored, final)
	}
	if err != nil {
		return fmt.Errorf("save anchor receipt: %w", err)
	}
	return nil
}
