package lakeproof

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/mod/sumdb/tlog"
)

// BundleFormatAnchored is the "format" of a two-level proof bundle: a
// version 1 bundle plus an "anchor" object that links the dataset root to
// a signed entry of an audit-trail channel and that entry to a signed
// channel checkpoint (docs/FORMAT.md §12).
const BundleFormatAnchored = "lakeproof/proof/v2"

// LogProofHeader is the first line of a c2sp.org/tlog-proof proof.
const LogProofHeader = "c2sp.org/tlog-proof@v1"

// MaxEntrySize bounds the bytes of one channel entry (the C2SP tlog-tiles
// entry-bundle limit, which the gateway enforces at write).
const MaxEntrySize = 65535

// Anchored is the anchor level of a two-level bundle and of an anchor
// receipt: the channel, the verbatim channel entry (the UTF-8 bytes of
// Entry are the log leaf) and the c2sp.org/tlog-proof of that entry
// (index, SHA-256 inclusion path and signed checkpoint).
type Anchored struct {
	Channel string `json:"channel"`
	Entry   string `json:"entry"`
	Proof   string `json:"proof"`
}

// LogProof is a parsed c2sp.org/tlog-proof. Origin, Size and Root come
// from the checkpoint's body and are not authenticated until the
// checkpoint's signature is checked.
type LogProof struct {
	Extra      []byte
	Index      int64
	Path       []tlog.Hash
	Checkpoint []byte // the signed note, verbatim
	Origin     string
	Size       int64
	Root       tlog.Hash
}

// Marshal encodes p as a c2sp.org/tlog-proof (p.Checkpoint verbatim).
func (p LogProof) Marshal() []byte {
	var b bytes.Buffer
	b.WriteString(LogProofHeader + "\n")
	if len(p.Extra) > 0 {
		b.WriteString("extra " + base64.StdEncoding.EncodeToString(p.Extra) + "\n")
	}
	fmt.Fprintf(&b, "index %d\n", p.Index)
	for _, h := range p.Path {
		b.WriteString(base64.StdEncoding.EncodeToString(h[:]) + "\n")
	}
	b.WriteString("\n")
	b.Write(p.Checkpoint)
	return b.Bytes()
}

// ParseLogProof parses a c2sp.org/tlog-proof strictly: the header line, an
// optional "extra" line, "index N" (decimal, no leading zeros), one
// canonical base64 SHA-256 hash per line, an empty line and a checkpoint
// (CheckpointBody). The index must be below the checkpoint's size and the
// path must have exactly the RFC 6962 length for (index, size). Errors
// wrap ErrMalformedBundle. It checks no signature.
func ParseLogProof(text []byte) (LogProof, error) {
	bad := func(format string, args ...any) (LogProof, error) {
		return LogProof{}, fmt.Errorf("%w: tlog-proof: %s", ErrMalformedBundle, fmt.Sprintf(format, args...))
	}
	var p LogProof
	rest := text
	line := func() (string, bool) {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			return "", false
		}
		l := string(rest[:i])
		rest = rest[i+1:]
		return l, true
	}
	l, ok := line()
	if !ok || l != LogProofHeader {
		return bad("first line must be %q", LogProofHeader)
	}
	if l, ok = line(); !ok {
		return bad("missing index line")
	}
	if e, found := strings.CutPrefix(l, "extra "); found {
		x, err := decodeB64(e)
		if err != nil || len(x) == 0 {
			return bad("extra line is not non-empty canonical base64")
		}
		p.Extra = x
		if l, ok = line(); !ok {
			return bad("missing index line")
		}
	}
	idx, found := strings.CutPrefix(l, "index ")
	if !found {
		return bad("line %q: want \"index N\"", truncate(l))
	}
	n, err := parseDecimal(idx)
	if err != nil {
		return bad("index: %v", err)
	}
	p.Index = n
	for {
		if l, ok = line(); !ok {
			return bad("missing the empty line before the checkpoint")
		}
		if l == "" {
			break
		}
		h, err := decodeB64(l)
		if err != nil || len(h) != tlog.HashSize {
			return bad("inclusion path line %d is not a canonical base64 SHA-256 hash", len(p.Path)+1)
		}
		if len(p.Path) == 64 {
			return bad("inclusion path longer than 64 hashes")
		}
		p.Path = append(p.Path, tlog.Hash(h))
	}
	p.Checkpoint = rest
	p.Origin, p.Size, p.Root, err = CheckpointBody(rest)
	if err != nil {
		return LogProof{}, err
	}
	if p.Index >= p.Size {
		return bad("index %d is not below the checkpoint's tree size %d", p.Index, p.Size)
	}
	if want := InclusionProofLen(uint64(p.Index), uint64(p.Size)); len(p.Path) != want {
		return bad("inclusion path has %d hashes, want %d for entry %d of %d", len(p.Path), want, p.Index, p.Size)
	}
	return p, nil
}

// CheckpointBody parses the unauthenticated body of a c2sp.org/tlog-checkpoint
// signed note: the text up to the last "\n\n" is the body, whose first three
// lines are the origin (non-empty), the tree size (decimal, no leading zeros)
// and the root hash (canonical base64 of 32 bytes); extension lines may
// follow. After the body come one or more signature lines ("— name sig"),
// each ending in "\n". Errors wrap ErrMalformedBundle.
func CheckpointBody(note []byte) (origin string, size int64, root tlog.Hash, err error) {
	bad := func(format string, args ...any) (string, int64, tlog.Hash, error) {
		return "", 0, tlog.Hash{}, fmt.Errorf("%w: checkpoint: %s", ErrMalformedBundle, fmt.Sprintf(format, args...))
	}
	if !utf8.Valid(note) {
		return bad("not UTF-8")
	}
	split := bytes.LastIndex(note, []byte("\n\n"))
	if split < 0 {
		return bad("no empty line between the body and the signatures")
	}
	body, sigs := note[:split+1], note[split+2:]
	if len(sigs) == 0 || sigs[len(sigs)-1] != '\n' {
		return bad("no signature lines, or the last one does not end in a newline")
	}
	for _, s := range strings.Split(string(sigs[:len(sigs)-1]), "\n") {
		if !strings.HasPrefix(s, "— ") {
			return bad("signature line %q does not start with \"— \"", truncate(s))
		}
	}
	lines := strings.Split(string(body[:len(body)-1]), "\n")
	if len(lines) < 3 {
		return bad("body has %d lines, want at least origin, size and root hash", len(lines))
	}
	for i, l := range lines {
		if l == "" {
			return bad("body line %d is empty", i+1)
		}
	}
	if size, err = parseDecimal(lines[1]); err != nil {
		return bad("tree size: %v", err)
	}
	h, err := decodeB64(lines[2])
	if err != nil || len(h) != tlog.HashSize {
		return bad("root hash %q is not canonical base64 of 32 bytes", truncate(lines[2]))
	}
	return lines[0], size, tlog.Hash(h), nil
}

func decodeB64(s string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, err
	}
	if base64.StdEncoding.EncodeToString(b) != s {
		return nil, fmt.Errorf("not canonical base64")
	}
	return b, nil
}

func parseDecimal(s string) (int64, error) {
	if s == "" || len(s) > 1 && s[0] == '0' || strings.TrimLeft(s, "0123456789") != "" {
		return 0, fmt.Errorf("%q is not a decimal number without leading zeros", truncate(s))
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is out of range", truncate(s))
	}
	return n, nil
}

func truncate(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

// Parse checks the shape of a: a non-empty channel of printable ASCII, an
// entry of 1 to MaxEntrySize bytes and a well-formed tlog-proof, which it
// returns. Errors wrap ErrMalformedBundle. It checks no signature.
func (a Anchored) Parse() (LogProof, error) {
	bad := func(format string, args ...any) (LogProof, error) {
		return LogProof{}, fmt.Errorf("%w: anchor: %s", ErrMalformedBundle, fmt.Sprintf(format, args...))
	}
	if a.Channel == "" || len(a.Channel) > 256 || strings.IndexFunc(a.Channel, func(r rune) bool { return r <= ' ' || r > '~' }) >= 0 {
		return bad("channel %q is not a channel address", truncate(a.Channel))
	}
	if len(a.Entry) == 0 || len(a.Entry) > MaxEntrySize {
		return bad("entry has %d bytes, want 1 to %d", len(a.Entry), MaxEntrySize)
	}
	return ParseLogProof([]byte(a.Proof))
}
