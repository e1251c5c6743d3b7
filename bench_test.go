package lakeproof_test

import (
	"fmt"
	"testing"

	"github.com/transparency-dev/merkle/compact"

	"github.com/lakeproof/lakeproof"
)

func BenchmarkLeafHash(b *testing.B) {
	key := "sales/2026/11/part-0001.parquet"
	var d lakeproof.Hash
	for b.Loop() {
		d = lakeproof.LeafHash(key, 123456, d)
	}
}

// BenchmarkTreeAppend measures the streaming tree builder per leaf (leaf
// hash + compact-range append), the per-file cost the index writer adds.
func BenchmarkTreeAppend(b *testing.B) {
	rf := compact.RangeFactory{Hash: lakeproof.Hasher.HashChildren}
	r := rf.NewEmptyRange(0)
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = fmt.Sprintf("part=%04d/file.parquet", i)
	}
	var d lakeproof.Hash
	i := 0
	for b.Loop() {
		leaf := lakeproof.LeafHash(keys[i%len(keys)], uint64(i), d)
		if err := r.Append(leaf[:], nil); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkVerifyProof(b *testing.B) {
	bundle := bundleOf(b, 700, 1000)
	for b.Loop() {
		if err := bundle.VerifyProof(); err != nil {
			b.Fatal(err)
		}
	}
}
