package trail

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"strings"

	"github.com/mr-tron/base58"
)

// ErrBadDID reports a string that is not a did:key Ed25519 identifier.
var ErrBadDID = errors.New("not a did:key Ed25519 identifier")

// multicodecEd25519Pub is the varint multicodec prefix of an Ed25519
// public key (0xed, as unsigned varint 0xed 0x01).
var multicodecEd25519Pub = []byte{0xed, 0x01}

// maxDIDLen bounds the input ParseDID looks at; a did:key Ed25519 DID is 56 bytes.
const maxDIDLen = 128

// DIDFromPublicKey returns the did:key identifier of an Ed25519 public key:
// "did:key:z" + base58btc(0xed 0x01 || pub) (W3C did:key method, multibase 'z').
func DIDFromPublicKey(pub ed25519.PublicKey) string {
	b := make([]byte, 0, 2+ed25519.PublicKeySize)
	b = append(b, multicodecEd25519Pub...)
	b = append(b, pub...)
	return "did:key:z" + Base58Encode(b)
}

// ParseDID returns the Ed25519 public key named by a did:key identifier. A
// fragment ("#…") is not accepted: the caller strips verification-method
// fragments itself. Any other DID method is rejected with ErrBadDID.
func ParseDID(did string) (ed25519.PublicKey, error) {
	if len(did) > maxDIDLen {
		return nil, fmt.Errorf("parse DID: %w: too long", ErrBadDID)
	}
	rest, ok := strings.CutPrefix(did, "did:key:z")
	if !ok {
		return nil, fmt.Errorf("parse DID %q: %w", did, ErrBadDID)
	}
	raw, err := Base58Decode(rest)
	if err != nil {
		return nil, fmt.Errorf("parse DID %q: %w: %w", did, ErrBadDID, err)
	}
	if len(raw) != 2+ed25519.PublicKeySize || raw[0] != multicodecEd25519Pub[0] || raw[1] != multicodecEd25519Pub[1] {
		return nil, fmt.Errorf("parse DID %q: %w: not an Ed25519 multikey", did, ErrBadDID)
	}
	// Re-encode to reject non-canonical spellings (leading '1's etc.).
	pub := ed25519.PublicKey(raw[2:])
	if DIDFromPublicKey(pub) != did {
		return nil, fmt.Errorf("parse DID %q: %w: non-canonical encoding", did, ErrBadDID)
	}
	return pub, nil
}

// Base58Encode encodes b with the Bitcoin base58 alphabet (as used by
// multibase 'z', IOTA key encodings and did:key).
func Base58Encode(b []byte) string { return base58.Encode(b) }

// maxBase58Len bounds Base58Decode's input (base58 decoding is quadratic);
// every value lakeproof decodes is far shorter.
const maxBase58Len = 256

// Base58Decode decodes a Bitcoin-alphabet base58 string. Empty input is an
// error.
func Base58Decode(s string) ([]byte, error) {
	if len(s) > maxBase58Len {
		return nil, errors.New("base58: input too long")
	}
	b, err := base58.Decode(s)
	if err != nil {
		return nil, fmt.Errorf("base58: %w", err)
	}
	return b, nil
}

// KeyFromSeed decodes a base58 Ed25519 seed (the "secret" of an IS key pair
// and of a lakeproof key file) into a private key.
func KeyFromSeed(seed58 string) (ed25519.PrivateKey, error) {
	seed, err := Base58Decode(seed58)
	if err != nil {
		return nil, fmt.Errorf("decode key seed: %w", err)
	}
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("decode key seed: want %d bytes, have %d", ed25519.SeedSize, len(seed))
	}
	return ed25519.NewKeyFromSeed(seed), nil
}
