// Package lakeproof defines the byte formats every other lakeproof package
// agrees on: dataset keys, file digests, Merkle leaves, the dataset tree and
// the one-file proof bundle. Everything here is pure: no I/O, no clocks, no
// goroutines. docs/FORMAT.md is the normative description; the doc comments
// here repeat the exact bytes next to the code that produces them, and the
// golden vectors in testdata/ pin them.
//
// # Invariants
//
//   - A file digest is BLAKE3-256 of the file content, byte-identical to b3sum.
//   - A leaf is LeafHash(key, size, digest) = BLAKE3(0x00 || LeafData(key, size, digest)).
//   - An interior node is BLAKE3(0x01 || left || right).
//   - The dataset root is the RFC 6962 Merkle tree hash over the leaves in
//     strictly increasing bytewise order of keys; the empty dataset's root is
//     BLAKE3 of the empty string.
package lakeproof

import (
	"encoding/hex"
	"fmt"

	"github.com/transparency-dev/merkle"
	"github.com/zeebo/blake3"
)

// HashSize is the size in bytes of every hash in lakeproof's formats.
const HashSize = 32

// Hash is a BLAKE3-256 output: a file digest, a leaf hash, a node hash or a root.
type Hash [HashSize]byte

// String returns the lowercase hex encoding of h.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// MarshalText encodes h as lowercase hex.
func (h Hash) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// UnmarshalText decodes exactly 64 hex digits (either case).
func (h *Hash) UnmarshalText(b []byte) error {
	p, err := ParseHash(string(b))
	if err != nil {
		return err
	}
	*h = p
	return nil
}

// ParseHash decodes a hash written as exactly 64 hex digits.
func ParseHash(s string) (Hash, error) {
	var h Hash
	if len(s) != 2*HashSize {
		return h, fmt.Errorf("malformed hash %q: want %d hex digits, have %d", abbrev(s), 2*HashSize, len(s))
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return h, fmt.Errorf("malformed hash %q: %w", abbrev(s), err)
	}
	return h, nil
}

func abbrev(s string) string {
	if len(s) > 80 {
		return s[:77] + "..."
	}
	return s
}

// Domain-separation prefixes of RFC 6962, section 2.1.
const (
	leafPrefix = 0x00
	nodePrefix = 0x01
)

// LeafVersion is the first byte of LeafData. A different leaf encoding must
// use a different version byte.
const LeafVersion = 0x01

// MaxKeyLen is the longest key, in bytes, that lakeproof accepts. It matches
// the S3 limit on object key length.
const MaxKeyLen = 1024

// LeafData returns the leaf encoding of one dataset entry:
//
//	0x01                      leaf version (1 byte)
//	uint16 big-endian len(key) (2 bytes)
//	key                       (len(key) bytes, UTF-8, see CheckKey)
//	uint64 big-endian size    (8 bytes)
//	digest                    (32 bytes, BLAKE3-256 of the content)
//
// The encoding is injective: the key length prefix makes the split between
// key and size unambiguous. LeafData panics if key is longer than MaxKeyLen;
// callers validate keys with CheckKey first.
func LeafData(key string, size uint64, digest Hash) []byte {
	b := make([]byte, 0, 1+2+len(key)+8+HashSize)
	return appendLeafData(b, key, size, digest)
}

func appendLeafData(b []byte, key string, size uint64, digest Hash) []byte {
	if len(key) > MaxKeyLen {
		panic("lakeproof: key longer than MaxKeyLen in LeafData")
	}
	b = append(b, LeafVersion, byte(len(key)>>8), byte(len(key)))
	b = append(b, key...)
	b = append(b, byte(size>>56), byte(size>>48), byte(size>>40), byte(size>>32),
		byte(size>>24), byte(size>>16), byte(size>>8), byte(size))
	return append(b, digest[:]...)
}

// LeafHash returns BLAKE3(0x00 || LeafData(key, size, digest)).
func LeafHash(key string, size uint64, digest Hash) Hash {
	var buf [1 + 1 + 2 + MaxKeyLen + 8 + HashSize]byte
	b := append(buf[:0], leafPrefix)
	b = appendLeafData(b, key, size, digest)
	return Hash(blake3.Sum256(b))
}

// NodeHash returns BLAKE3(0x01 || left || right).
func NodeHash(left, right Hash) Hash {
	var b [1 + 2*HashSize]byte
	b[0] = nodePrefix
	copy(b[1:], left[:])
	copy(b[1+HashSize:], right[:])
	return Hash(blake3.Sum256(b[:]))
}

// EmptyRoot is the root of the empty dataset: BLAKE3 of the empty string,
// af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262.
var EmptyRoot = Hash(blake3.Sum256(nil))

// Hasher is the merkle.LogHasher of the dataset tree (RFC 6962 with BLAKE3).
// HashLeaf expects LeafData bytes.
var Hasher merkle.LogHasher = treeHasher{}

type treeHasher struct{}

func (treeHasher) EmptyRoot() []byte { return EmptyRoot[:] }
func (treeHasher) Size() int         { return HashSize }
func (treeHasher) HashLeaf(leaf []byte) []byte {
	h := blake3.New()
	h.Write([]byte{leafPrefix})
	h.Write(leaf)
	return h.Sum(nil)
}
func (treeHasher) HashChildren(l, r []byte) []byte {
	if len(l) == HashSize && len(r) == HashSize {
		h := NodeHash(Hash(l), Hash(r))
		return h[:]
	}
	h := blake3.New()
	h.Write([]byte{nodePrefix})
	h.Write(l)
	h.Write(r)
	return h.Sum(nil)
}
