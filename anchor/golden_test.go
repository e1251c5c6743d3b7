package anchor_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/lakeproof/lakeproof"
	"github.com/lakeproof/lakeproof/anchor"
)

// goldenDir holds the golden two-level bundle (docs/FORMAT.md §12.6).
const goldenDir = "../testdata/anchored"

// goldenFiles returns the golden files as the fixture produces them.
func goldenFiles(t *testing.T) map[string][]byte {
	f := newFixture(t)
	trust, err := json.MarshalIndent(f.trust, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return map[string][]byte{
		"bundle.json":  f.bundle.Marshal(),
		"receipt.json": f.receipt.Marshal(),
		"trust.json":   append(trust, '\n'),
		f.bundle.Key:   f.ds.content[f.bundle.LeafIndex],
	}
}

// TestGoldenBundle fails if the two-level bundle or receipt encoding drifts:
// the fixture (fixed keys and data) must reproduce the files in
// testdata/anchored byte for byte, and they must verify. Regenerate
// deliberately with LAKEPROOF_UPDATE_GOLDEN=1 (a format change needs a new
// format string).
func TestGoldenBundle(t *testing.T) {
	files := goldenFiles(t)
	if os.Getenv("LAKEPROOF_UPDATE_GOLDEN") == "1" {
		os.MkdirAll(goldenDir, 0o755)
		for name, b := range files {
			if err := os.WriteFile(filepath.Join(goldenDir, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for name, want := range files {
		got, err := os.ReadFile(filepath.Join(goldenDir, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s drifted from the golden file:\n%s\nwant:\n%s", name, got, want)
		}
	}
	raw, _ := os.ReadFile(filepath.Join(goldenDir, "bundle.json"))
	b, err := lakeproof.ParseBundle(raw)
	if err != nil {
		t.Fatal(err)
	}
	tr, _ := os.ReadFile(filepath.Join(goldenDir, "trust.json"))
	trust, err := anchor.ParseTrust(tr)
	if err != nil {
		t.Fatal(err)
	}
	content, _ := os.ReadFile(filepath.Join(goldenDir, b.Key))
	if err := b.VerifyContent(uint64(len(content)), blake3Sum(content)); err != nil {
		t.Fatal(err)
	}
	if _, err := anchor.Verify(b, trust); err != nil {
		t.Fatal(err)
	}
	rr, _ := os.ReadFile(filepath.Join(goldenDir, "receipt.json"))
	r, err := anchor.ParseReceipt(rr)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(r.Marshal(), rr) {
		t.Fatal("receipt does not round-trip")
	}
}
