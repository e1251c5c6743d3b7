package trail

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/gowebpki/jcs"
)

// ErrBadJSON reports JSON that cannot be canonicalized: malformed, a
// duplicate object key, invalid UTF-8 or an ill-formed \u escape, a number
// outside IEEE 754 double range, or absurdly deep nesting.
var ErrBadJSON = errors.New("JSON value cannot be canonicalized")

// Canonicalize returns the RFC 8785 (JSON Canonicalization Scheme) encoding
// of one JSON value (github.com/gowebpki/jcs): object members sorted by the
// UTF-16 code units of their names, no insignificant whitespace, strings
// with only the mandatory escapes, numbers in the ECMAScript shortest
// round-trip form. Two JSON texts that denote the same value canonicalize
// to the same bytes, so a signature over the canonical bytes survives
// re-serialization by any JSON library. Every failure wraps ErrBadJSON.
func Canonicalize(data []byte) ([]byte, error) {
	if !utf8.Valid(data) {
		return nil, fmt.Errorf("%w: invalid UTF-8", ErrBadJSON)
	}
	out, err := jcs.Transform(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadJSON, err)
	}
	return out, nil
}

// CanonicalValue canonicalizes a Go value by marshaling it with
// encoding/json first.
func CanonicalValue(v any) ([]byte, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("canonicalize: %w", err)
	}
	return Canonicalize(raw)
}

// appendCanonicalString appends s as an RFC 8785 JSON string. Printable
// ASCII other than '"' and '\' (every DID and hex signature) is written as
// is; anything else goes through Canonicalize.
func appendCanonicalString(b *bytes.Buffer, s string) error {
	plain := true
	for i := 0; i < len(s) && plain; i++ {
		c := s[i]
		plain = c >= 0x20 && c < 0x7f && c != '"' && c != '\\'
	}
	if plain {
		b.WriteByte('"')
		b.WriteString(s)
		b.WriteByte('"')
		return nil
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%w: invalid UTF-8 in string", ErrBadJSON)
	}
	raw, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadJSON, err)
	}
	c, err := Canonicalize(raw)
	if err != nil {
		return err
	}
	b.Write(c)
	return nil
}
