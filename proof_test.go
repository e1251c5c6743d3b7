package lakeproof_test

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/zeebo/blake3"

	"github.com/lakeproof/lakeproof"
)

// bundleOf builds a valid bundle for leaf m of a tree of n synthetic leaves.
func bundleOf(t testing.TB, m, n int) *lakeproof.Bundle {
	var leaves [][]byte
	var keys []string
	var digests []lakeproof.Hash
	for i := range n {
		var d lakeproof.Hash
		d[0], d[1] = byte(i), byte(i>>8)
		k := "f/" + string(rune('a'+i%26)) + string(rune('a'+i/26))
		keys, digests = append(keys, k), append(digests, d)
		leaves = append(leaves, lakeproof.LeafData(k, uint64(i), d))
	}
	b := &lakeproof.Bundle{
		Format: lakeproof.BundleFormat, Key: keys[m], Size: uint64(m), Digest: digests[m],
		LeafIndex: uint64(m), TreeSize: uint64(n), Root: lakeproof.Hash(refRoot(leaves)),
	}
	for _, h := range refPath(m, leaves) {
		b.Inclusion = append(b.Inclusion, lakeproof.Hash(h))
	}
	return b
}

func TestBundleRoundTrip(t *testing.T) {
	for _, n := range []int{1, 2, 3, 7, 8, 9, 100} {
		for m := range n {
			b := bundleOf(t, m, n)
			p, err := lakeproof.ParseBundle(b.Marshal())
			if err != nil {
				t.Fatalf("n=%d m=%d: %v", n, m, err)
			}
			if err := p.VerifyProof(); err != nil {
				t.Fatalf("n=%d m=%d: %v", n, m, err)
			}
			if err := p.VerifyContent(b.Size, b.Digest); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestBundleTamper(t *testing.T) {
	good := bundleOf(t, 5, 13)
	for _, tc := range []struct {
		name   string
		mutate func(b *lakeproof.Bundle)
		want   error
	}{
		{"root", func(b *lakeproof.Bundle) { b.Root[0] ^= 1 }, lakeproof.ErrProofMismatch},
		{"path hash", func(b *lakeproof.Bundle) { b.Inclusion[1][31] ^= 1 }, lakeproof.ErrProofMismatch},
		{"leaf index", func(b *lakeproof.Bundle) { b.LeafIndex = 4 }, lakeproof.ErrProofMismatch},
		{"key", func(b *lakeproof.Bundle) { b.Key = "f/zz" }, lakeproof.ErrProofMismatch},
		{"size", func(b *lakeproof.Bundle) { b.Size++ }, lakeproof.ErrProofMismatch},
		{"digest", func(b *lakeproof.Bundle) { b.Digest[3] ^= 1 }, lakeproof.ErrProofMismatch},
		{"truncated path", func(b *lakeproof.Bundle) { b.Inclusion = b.Inclusion[:2] }, lakeproof.ErrMalformedBundle},
		{"extra path", func(b *lakeproof.Bundle) { b.Inclusion = append(b.Inclusion, b.Root) }, lakeproof.ErrMalformedBundle},
		{"tree size", func(b *lakeproof.Bundle) { b.TreeSize = 5 }, lakeproof.ErrMalformedBundle},
		{"format", func(b *lakeproof.Bundle) { b.Format = "lakeproof/proof/v9" }, lakeproof.ErrMalformedBundle},
		{"bad key", func(b *lakeproof.Bundle) { b.Key = "../etc/passwd" }, lakeproof.ErrMalformedBundle},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := *good
			b.Inclusion = append([]lakeproof.Hash(nil), good.Inclusion...)
			tc.mutate(&b)
			p, err := lakeproof.ParseBundle(b.Marshal())
			if err == nil {
				err = p.VerifyProof()
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	if err := good.VerifyContent(good.Size, lakeproof.Hash{}); !errors.Is(err, lakeproof.ErrContentMismatch) {
		t.Fatalf("content check: %v", err)
	}
	if err := good.VerifyContent(good.Size+1, good.Digest); !errors.Is(err, lakeproof.ErrContentMismatch) {
		t.Fatalf("size check: %v", err)
	}
}

func TestParseBundleMalformed(t *testing.T) {
	good := string(bundleOf(t, 1, 3).Marshal())
	for _, in := range []string{
		"", "{", "null", "[]", `{"format":"lakeproof/proof/v1"}`,
		good + "{}",
		strings.Replace(good, `"size"`, `"sise"`, 1),
		strings.Replace(good, `"key"`, `"extra": 1, "key"`, 1),
		strings.Replace(good, `"digest": "`, `"digest": "zz`, 1),
		strings.Replace(good, `"leaf_index": 1`, `"leaf_index": -1`, 1),
		strings.Replace(good, `"tree_size": 3`, `"tree_size": 0`, 1),
		strings.Repeat(" ", lakeproof.MaxBundleSize+1),
	} {
		if _, err := lakeproof.ParseBundle([]byte(in)); !errors.Is(err, lakeproof.ErrMalformedBundle) {
			t.Errorf("ParseBundle(%.60q) = %v, want ErrMalformedBundle", in, err)
		}
	}
}

func FuzzParseBundle(f *testing.F) {
	f.Add(bundleOf(f, 0, 1).Marshal())
	f.Add(bundleOf(f, 3, 7).Marshal())
	f.Add([]byte(`{"format":"lakeproof/proof/v1","key":"a","size":0,"digest":"00","leaf_index":0,"tree_size":1,"inclusion":[],"root":"00"}`))
	if golden, err := os.ReadFile("testdata/anchored/bundle.json"); err == nil {
		f.Add(golden) // a two-level bundle (anchor/golden_test.go)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := lakeproof.ParseBundle(data)
		if err != nil {
			if !errors.Is(err, lakeproof.ErrMalformedBundle) {
				t.Fatalf("error does not wrap ErrMalformedBundle: %v", err)
			}
			return
		}
		// A parsed bundle re-encodes and re-parses to the same value.
		b2, err := lakeproof.ParseBundle(b.Marshal())
		if err != nil {
			t.Fatalf("re-parse: %v", err)
		}
		j1, _ := json.Marshal(b)
		j2, _ := json.Marshal(b2)
		if string(j1) != string(j2) {
			t.Fatalf("round trip changed the bundle")
		}
		_ = b.VerifyProof() // must not panic
	})
}

func TestCheckKey(t *testing.T) {
	for _, k := range []string{"a", "a/b", "a b", "café", "日本/データ.csv", `back\slash`, "a+b%20", ".hidden", "a/.b", "..a", "a..", strings.Repeat("x", 1024)} {
		if err := lakeproof.CheckKey(k); err != nil {
			t.Errorf("CheckKey(%q) = %v", k, err)
		}
	}
	for _, k := range []string{"", "/a", "a/", "a//b", ".", "..", "a/./b", "a/../b", "../x", "a\nb", "a\x00b", "a\tb", "a\x7fb", "\xff\xfe", strings.Repeat("x", 1025)} {
		err := lakeproof.CheckKey(k)
		var ke *lakeproof.KeyError
		if !errors.Is(err, lakeproof.ErrInvalidKey) || !errors.As(err, &ke) || ke.Key != k {
			t.Errorf("CheckKey(%q) = %v, want a KeyError", k, err)
		}
	}
}

func FuzzCheckKey(f *testing.F) {
	for _, s := range []string{"a/b", "a//b", "../x", "\xff", "日本"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, k string) {
		if lakeproof.CheckKey(k) == nil {
			// Valid keys have a well-defined leaf encoding.
			_ = lakeproof.LeafData(k, 1, lakeproof.Hash{})
			if strings.Contains(k, "//") || strings.HasPrefix(k, "/") || strings.HasSuffix(k, "/") {
				t.Fatalf("accepted %q", k)
			}
		}
	})
}

// lakeproofVerdict applies lakeproof's verification steps (docs/FORMAT.md
// §7) and returns the exit code the CLI uses: 0 valid, 1 invalid, 2 malformed.
func lakeproofVerdict(bundle []byte, file string) (int, error) {
	b, err := lakeproof.ParseBundle(bundle)
	if err != nil {
		return 2, err
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return 2, err
	}
	if err := b.VerifyContent(uint64(len(data)), lakeproof.Hash(blake3.Sum256(data))); err != nil {
		return 1, err
	}
	if err := b.VerifyProof(); err != nil {
		return 1, err
	}
	return 0, nil
}
