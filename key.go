package lakeproof

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// ErrInvalidKey is matched (with errors.Is) by every error CheckKey returns.
var ErrInvalidKey = errors.New("invalid key")

// KeyError describes why a key is not a valid dataset key.
type KeyError struct {
	Key    string // the offending key, possibly not valid UTF-8
	Reason string
}

func (e *KeyError) Error() string {
	return fmt.Sprintf("invalid key %q: %s", e.Key, e.Reason)
}

// Is reports whether target is ErrInvalidKey.
func (e *KeyError) Is(target error) bool { return target == ErrInvalidKey }

// CheckKey reports whether key is a valid dataset key. A key is the path of a
// file relative to the dataset root. It is valid when it
//
//   - is 1 to MaxKeyLen bytes of valid UTF-8;
//   - contains no C0 control character (U+0000–U+001F) and no U+007F, so
//     that every line-oriented manifest (b3sum, CSV, logs) can carry it;
//   - is made of '/'-separated segments none of which is empty, "." or "..",
//     so it has no leading, trailing or doubled '/'.
//
// Any other byte sequence is allowed, including spaces, '\\', '%', '+' and
// any Unicode letter. Keys are compared as byte strings; no Unicode
// normalization is applied.
func CheckKey(key string) error {
	bad := func(reason string) error { return &KeyError{Key: key, Reason: reason} }
	switch {
	case key == "":
		return bad("empty key")
	case len(key) > MaxKeyLen:
		return bad(fmt.Sprintf("longer than %d bytes", MaxKeyLen))
	case !utf8.ValidString(key):
		return bad("not valid UTF-8; rename the file")
	}
	for i := 0; i < len(key); i++ {
		if c := key[i]; c < 0x20 || c == 0x7f {
			return bad(fmt.Sprintf("contains control character %#02x at byte %d; rename the file", c, i))
		}
	}
	for seg := range strings.SplitSeq(key, "/") {
		switch seg {
		case "":
			return bad("empty path segment (leading, trailing or doubled '/')")
		case ".", "..":
			return bad(fmt.Sprintf("path segment %q is not allowed", seg))
		}
	}
	return nil
}
