// Package avx2 holds the 8-way AVX2 BLAKE3 kernels of github.com/zeebo/blake3
// v0.2.4 (internal/alg/hash/hash_avx2, released into the public domain under
// CC0 1.0, see LICENSE), copied here because that module does not export
// them and parhash needs chunk and parent chaining values, which no public
// API of either Go BLAKE3 module computes at this speed on AMD processors:
// lukechampine.com/blake3/guts loads its AVX2 message words with VPGATHERDD,
// which AMD cores execute slowly; on the project machine it hashed 1.5 to 2
// times fewer bytes per CPU-second than these kernels, which use loads and
// shuffles (benchmarks/RESULTS.md).
//
// hash_amd64.s is the upstream impl_amd64.s byte for byte (sha256
// c8bdf92229efa56f47d6887b8035ac6e551083c56a5fc2ebf787260d61a82e70) with
// only a build constraint line added. The tests in this package and in parhash
// check every output against lukechampine.com/blake3/guts, the official
// BLAKE3 test vectors and the b3sum binary.
//
// Layout: a [64]uint32 chain vector holds 8 chaining values transposed,
// word j of value i at index i+8*j.
package avx2

// Available reports whether HashF and HashP may be called: the processor
// and OS support AVX2 and the package was built for amd64 without the
// purego tag.
var Available = available()
