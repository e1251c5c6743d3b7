package avx2

import (
	"math/rand/v2"
	"testing"

	"lukechampine.com/blake3/guts"
)

// TestAgainstGuts checks HashF and HashP, column by column, against the
// portable compression of lukechampine.com/blake3/guts.
func TestAgainstGuts(t *testing.T) {
	if !Available {
		t.Skip("no AVX2 on this machine (or purego build): kernels not callable")
	}
	r := rand.New(rand.NewPCG(1, 2))
	var input [8192]byte
	for round := range 50 {
		for i := range input {
			input[i] = byte(r.Uint32())
		}
		var key [8]uint32
		for i := range key {
			key[i] = r.Uint32()
		}
		if round == 0 {
			key = guts.IV
		}
		counter := r.Uint64() >> 8
		flags := uint32(round % 2 * guts.FlagKeyedHash)
		var out [64]uint32
		var chain [8]uint32
		HashF(&input, 8192, counter, flags, &key, &out, &chain)
		for c := range 8 {
			want := guts.ChainingValue(guts.CompressChunk(input[c*1024:(c+1)*1024], &key, counter+uint64(c), flags))
			for j := range 8 {
				if out[c+8*j] != want[j] {
					t.Fatalf("round %d: HashF chunk %d word %d = %#x, want %#x", round, c, j, out[c+8*j], want[j])
				}
			}
		}

		var left, right [64]uint32
		for i := range left {
			left[i], right[i] = r.Uint32(), r.Uint32()
		}
		for n := 1; n <= 8; n++ {
			HashP(&left, &right, flags|guts.FlagParent, &key, &out, n)
			for c := range n {
				var l, rr [8]uint32
				for j := range 8 {
					l[j], rr[j] = left[c+8*j], right[c+8*j]
				}
				want := guts.ChainingValue(guts.ParentNode(l, rr, &key, flags))
				for j := range 8 {
					if out[c+8*j] != want[j] {
						t.Fatalf("round %d: HashP(n=%d) column %d word %d = %#x, want %#x", round, n, c, j, out[c+8*j], want[j])
					}
				}
			}
		}
	}
}
