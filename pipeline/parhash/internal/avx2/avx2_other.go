//go:build !amd64 || purego

package avx2

func available() bool { return false }

// HashF is not available on this platform; it panics.
func HashF(input *[8192]byte, length, counter uint64, flags uint32, key *[8]uint32, out *[64]uint32, chain *[8]uint32) {
	panic("avx2: HashF called without AVX2 support")
}

// HashP is not available on this platform; it panics.
func HashP(left, right *[64]uint32, flags uint32, key *[8]uint32, out *[64]uint32, n int) {
	panic("avx2: HashP called without AVX2 support")
}
