package trail

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// StatementVersion is the value of Statement.V for the entry encoding
// described in docs/GATEWAY.md ("What an entry signature covers"). A
// different encoding must use a different version string.
const StatementVersion = "lakeproof.trail.entry/v1"

// ErrBadSignature reports an entry whose signature does not verify for its
// signer, or whose signer is neither the writer nor a trusted gateway.
var ErrBadSignature = errors.New("entry signature does not verify")

// ErrBadEntry reports entry bytes that are not a canonical signed entry.
var ErrBadEntry = errors.New("malformed entry")

// Log is the IS ChannelLog (the body of a channel write): every field is
// optional. JSON null is the same as absent.
type Log struct {
	Type          string          `json:"type,omitempty"`
	Created       string          `json:"created,omitempty"`
	Metadata      json.RawMessage `json:"metadata,omitempty"`
	PublicPayload json.RawMessage `json:"publicPayload,omitempty"`
	Payload       json.RawMessage `json:"payload,omitempty"`
}

// normalize turns JSON nulls into absent fields so that a log and its
// re-serialization by a client that writes nulls sign the same bytes.
func (l *Log) normalize() {
	for _, p := range []*json.RawMessage{&l.Metadata, &l.PublicPayload, &l.Payload} {
		if t := bytes.TrimSpace(*p); len(t) == 0 || string(t) == "null" {
			*p = nil
		}
	}
}

// CreatedTime parses Created (RFC 3339). The zero time means absent.
func (l Log) CreatedTime() (time.Time, error) {
	if l.Created == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, l.Created)
	if err != nil {
		return time.Time{}, fmt.Errorf("log.created %q is not an RFC 3339 date-time: %w", l.Created, err)
	}
	return t, nil
}

// Statement is what an entry signature covers: the channel, the writer's
// DID, an optional nonce that makes otherwise identical writes distinct,
// and the log. The signed bytes are the RFC 8785 canonical JSON of the
// statement (Canonicalize), with no prefix.
type Statement struct {
	V              string `json:"v"`
	ChannelAddress string `json:"channelAddress"`
	Writer         string `json:"writer"`
	Nonce          string `json:"nonce,omitempty"`
	Log            Log    `json:"log"`
}

// SigningInput returns the exact bytes an entry signature is made over.
func (s Statement) SigningInput() ([]byte, error) {
	s.Log.normalize()
	b, err := CanonicalValue(s)
	if err != nil {
		return nil, fmt.Errorf("encode statement for channel %s: %w", s.ChannelAddress, err)
	}
	return b, nil
}

// SignedEntry is one channel entry: the statement, the DID that signed it
// (the writer itself, or the gateway for clients that only hold a JWT) and
// the hex Ed25519 signature over Statement.SigningInput. Its canonical JSON
// (Leaf) is what the store keeps, byte for byte; the RFC 6962 leaf hash of
// an entry is SHA-256(0x00 || Leaf).
type SignedEntry struct {
	Statement Statement `json:"statement"`
	Signer    string    `json:"signer"`
	Signature string    `json:"signature"`
}

// Sign signs st with priv; the signer is the did:key of priv's public key.
func Sign(st Statement, priv ed25519.PrivateKey) (SignedEntry, error) {
	st.Log.normalize()
	msg, err := st.SigningInput()
	if err != nil {
		return SignedEntry{}, err
	}
	return SignedEntry{
		Statement: st,
		Signer:    DIDFromPublicKey(priv.Public().(ed25519.PublicKey)),
		Signature: hex.EncodeToString(ed25519.Sign(priv, msg)),
	}, nil
}

// Verify checks the signature. A signer other than the writer is accepted
// only when it is one of gateways (the DIDs of gateways trusted to sign for
// JWT-only clients).
func (e SignedEntry) Verify(gateways ...string) error {
	if e.Statement.V != StatementVersion {
		return fmt.Errorf("%w: unknown statement version %q", ErrBadEntry, e.Statement.V)
	}
	if e.Signer != e.Statement.Writer {
		ok := false
		for _, g := range gateways {
			ok = ok || g == e.Signer
		}
		if !ok {
			return fmt.Errorf("%w: signer %s is neither the writer %s nor a trusted gateway", ErrBadSignature, e.Signer, e.Statement.Writer)
		}
	}
	pub, err := ParseDID(e.Signer)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadSignature, err)
	}
	sig, err := ParseSignature(e.Signature)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadSignature, err)
	}
	msg, err := e.Statement.SigningInput()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadSignature, err)
	}
	if !ed25519.Verify(pub, msg, sig) {
		return fmt.Errorf("%w: for signer %s", ErrBadSignature, e.Signer)
	}
	return nil
}

// ParseSignature decodes a signature written as exactly 128 hex digits.
func ParseSignature(s string) ([]byte, error) {
	if len(s) != 2*ed25519.SignatureSize {
		return nil, fmt.Errorf("signature: want %d hex digits, have %d", 2*ed25519.SignatureSize, len(s))
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("signature: %w", err)
	}
	return b, nil
}

// Leaf returns the canonical bytes of the entry.
func (e SignedEntry) Leaf() ([]byte, error) {
	msg, err := e.Statement.SigningInput()
	if err != nil {
		return nil, fmt.Errorf("encode entry: %w", err)
	}
	return LeafFromSigningInput(msg, e.Signer, e.Signature)
}

// LeafFromSigningInput assembles the canonical entry bytes from the
// statement's signing input: RFC 8785 orders the members "signature" <
// "signer" < "statement", so the leaf is
// {"signature":S,"signer":D,"statement":<signing input>}.
func LeafFromSigningInput(msg []byte, signer, signature string) ([]byte, error) {
	var b bytes.Buffer
	b.Grow(len(msg) + len(signer) + len(signature) + 48)
	b.WriteString(`{"signature":`)
	if err := appendCanonicalString(&b, signature); err != nil {
		return nil, fmt.Errorf("encode entry signature: %w", err)
	}
	b.WriteString(`,"signer":`)
	if err := appendCanonicalString(&b, signer); err != nil {
		return nil, fmt.Errorf("encode entry signer: %w", err)
	}
	b.WriteString(`,"statement":`)
	b.Write(msg)
	b.WriteByte('}')
	return b.Bytes(), nil
}

// ParseLeaf decodes entry bytes and checks they are in canonical form, so
// that one entry has exactly one byte encoding (and one leaf hash). It does
// not verify the signature.
func ParseLeaf(leaf []byte) (SignedEntry, error) {
	var e SignedEntry
	dec := json.NewDecoder(bytes.NewReader(leaf))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		return SignedEntry{}, fmt.Errorf("%w: %w", ErrBadEntry, err)
	}
	again, err := e.Leaf()
	if err != nil {
		return SignedEntry{}, fmt.Errorf("%w: %w", ErrBadEntry, err)
	}
	if !bytes.Equal(again, leaf) {
		return SignedEntry{}, fmt.Errorf("%w: not in canonical form", ErrBadEntry)
	}
	return e, nil
}

// LeafHash is the RFC 6962 leaf hash SHA-256(0x00 || leaf).
func LeafHash(leaf []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte{0})
	h.Write(leaf)
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// MessageID is the 24-hex message part of an entry link: the first 12 bytes
// of its leaf hash.
func MessageID(leafHash [32]byte) string { return hex.EncodeToString(leafHash[:12]) }

// Link returns the IS-style link of an entry: the channel id (the first 80
// hex digits of the channel address), ':', and MessageID.
func Link(channelAddress string, leafHash [32]byte) string {
	return channelAddress[:80] + ":" + MessageID(leafHash)
}
