package anchor_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lakeproof/lakeproof/anchor"
)

func TestSaveReceiptNoReplace(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	if err := anchor.SaveReceipt(dir, f.receipt); err != nil {
		t.Fatal(err)
	}
	name := filepath.Join(dir, anchor.ReceiptName(fxChannelA))
	before, _ := os.ReadFile(name)
	other := f.receipt
	other.Index++
	if err := anchor.SaveReceipt(dir, other); !errors.Is(err, anchor.ErrAnchored) {
		t.Fatalf("second save: %v, want ErrAnchored", err)
	}
	if after, _ := os.ReadFile(name); string(after) != string(before) {
		t.Fatal("receipt replaced")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("left %d files, want only the receipt", len(ents))
	}
	r, err := anchor.ReceiptFor(dir, "")
	if err != nil || r.Index != f.receipt.Index || r.Channel != fxChannelA {
		t.Fatalf("ReceiptFor: %+v %v", r, err)
	}
	// A second channel: "" is now ambiguous, the address picks one.
	b := f.receipt
	b.Channel = fxChannelB
	if err := anchor.SaveReceipt(dir, b); err != nil {
		t.Fatal(err)
	}
	if _, err := anchor.ReceiptFor(dir, ""); err == nil {
		t.Fatal("two receipts, no channel: accepted")
	}
	if r, err := anchor.ReceiptFor(dir, fxChannelB); err != nil || r.Channel != fxChannelB {
		t.Fatalf("ReceiptFor(B): %+v %v", r, err)
	}
	if _, err := anchor.ReceiptFor(t.TempDir(), ""); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("no receipt: %v", err)
	}
	// A damaged receipt is an error, not "not anchored".
	os.WriteFile(filepath.Join(dir, anchor.ReceiptName(fxChannelA)+".x"), nil, 0o644)
	os.WriteFile(filepath.Join(dir, "anchor-zz.json"), []byte("{"), 0o644)
	if _, err := anchor.ReadReceipts(dir); err == nil {
		t.Fatal("damaged receipt accepted")
	}
}

func TestDatasetName(t *testing.T) {
	for in, want := range map[string]string{
		"/idx/sales-2026-11.idx": "sales-2026-11", "lake": "lake", "/a/b.c.idx/": "b.c", ".hidden": ".hidden",
	} {
		if got := anchor.DatasetName(in); got != want {
			t.Errorf("DatasetName(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestReadReceiptsBounded: an index directory is untrusted input; a
// receipt "file" that never ends (here /dev/zero) is refused after a
// bounded read instead of exhausting memory.
func TestReadReceiptsBounded(t *testing.T) {
	if _, err := os.Stat("/dev/zero"); err != nil {
		t.Skip("no /dev/zero")
	}
	dir := t.TempDir()
	if err := os.Symlink("/dev/zero", filepath.Join(dir, "anchor-endless.json")); err != nil {
		t.Skip(err)
	}
	_, err := anchor.ReadReceipts(dir)
	if err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("got %v, want a receipt larger than the limit", err)
	}
}
