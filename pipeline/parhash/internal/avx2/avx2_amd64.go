//go:build amd64 && !purego

package avx2

import "github.com/klauspost/cpuid/v2"

func available() bool { return cpuid.CPU.Supports(cpuid.AVX2) }

// HashF compresses up to 8 chunks of input (length bytes; the chunks have
// counters counter, counter+1, ...) with flags and key, and stores their
// chaining values in out, transposed. Only whole chunks give a valid value in
// out; for a final partial chunk, chain receives the chaining value that
// enters its last block. Callers here pass length 8192.
//
//go:noescape
func HashF(input *[8192]byte, length, counter uint64, flags uint32, key *[8]uint32, out *[64]uint32, chain *[8]uint32)

// HashP compresses n (2 <= n <= 8) parent nodes whose children are column i
// of left and of right, with flags (which must include the PARENT flag) and
// key, and stores their chaining values in column i of out.
//
//go:noescape
func HashP(left, right *[64]uint32, flags uint32, key *[8]uint32, out *[64]uint32, n int)
