package lakeproof_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zeebo/blake3"
	"golang.org/x/mod/sumdb/note"

	"github.com/lakeproof/lakeproof"
	"github.com/lakeproof/lakeproof/anchor"
)

// TestIndependentVerifierAnchored runs testdata/independent-verifier/verify.py
// with a trust file on the golden two-level bundle (testdata/anchored) and
// on tampered copies: it must give the same verdict as lakeproof, naming
// the same link. It checks that docs/FORMAT.md §12 is complete, including
// the Ed25519 entry and checkpoint signatures and the SHA-256 channel proof.
func TestIndependentVerifierAnchored(t *testing.T) {
	script := independentVerifier(t)
	gold := "testdata/anchored"
	raw, err := os.ReadFile(filepath.Join(gold, "bundle.json"))
	if err != nil {
		t.Fatal(err)
	}
	trustRaw, _ := os.ReadFile(filepath.Join(gold, "trust.json"))
	file := filepath.Join(gold, "part-02.csv")
	bundle := func(f func(b *lakeproof.Bundle)) []byte {
		b, err := lakeproof.ParseBundle(raw)
		if err != nil {
			t.Fatal(err)
		}
		f(b)
		return b.Marshal()
	}
	trust := func(f func(tr *anchor.Trust)) []byte {
		var tr anchor.Trust
		json.Unmarshal(trustRaw, &tr)
		f(&tr)
		out, _ := json.Marshal(tr)
		return out
	}
	noop := func(*lakeproof.Bundle) {}
	// A DID and a note key that the golden trust does not hold.
	const strangerDID = "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK"
	// Same name, other (fixed) key; its base64 contains a '+', which a
	// verifier must not split on.
	_, strangerKey, err := note.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{10}, 32)), "gateway.example")
	if err != nil {
		t.Fatal(err)
	}
	flipSig := func(b *lakeproof.Bundle) {
		p := b.Anchor.Proof
		i := strings.LastIndex(p, " ") + 1
		sig, _ := base64.StdEncoding.DecodeString(strings.TrimSpace(p[i:]))
		sig[10] ^= 1
		b.Anchor.Proof = p[:i] + base64.StdEncoding.EncodeToString(sig) + "\n"
	}
	for _, tc := range []struct {
		name   string
		bundle []byte
		trust  []byte
		code   int
		out    string
		want   error // lakeproof's verdict
	}{
		{"valid", bundle(noop), trustRaw, 0, "valid", nil},
		{"unknown writer", bundle(noop), trust(func(tr *anchor.Trust) { tr.Writers = []string{strangerDID} }), 1, "writer not trusted", anchor.ErrWriterNotTrusted},
		{"wrong gateway key", bundle(noop), trust(func(tr *anchor.Trust) { tr.Gateways = []string{strangerKey} }), 1, "checkpoint signature", anchor.ErrCheckpointSignature},
		{"altered checkpoint signature", bundle(flipSig), trustRaw, 1, "checkpoint signature", anchor.ErrCheckpointSignature},
		{"altered entry", bundle(func(b *lakeproof.Bundle) {
			b.Anchor.Entry = strings.Replace(b.Anchor.Entry, `"bytes":90`, `"bytes":91`, 1)
		}), trustRaw, 1, "entry signature", anchor.ErrEntrySignature},
		{"another channel", bundle(func(b *lakeproof.Bundle) { b.Anchor.Channel = strings.Repeat("b", 80) + ":" + strings.Repeat("b", 24) }),
			trustRaw, 1, "channel mismatch", anchor.ErrOriginMismatch},
		{"altered entry proof", bundle(func(b *lakeproof.Bundle) {
			l := strings.Split(b.Anchor.Proof, "\n")
			h, _ := base64.StdEncoding.DecodeString(l[2])
			h[0] ^= 1
			l[2] = base64.StdEncoding.EncodeToString(h)
			b.Anchor.Proof = strings.Join(l, "\n")
		}), trustRaw, 1, "entry inclusion", anchor.ErrEntryInclusion},
		{"altered root", bundle(func(b *lakeproof.Bundle) { b.Root[0] ^= 1 }), trustRaw, 1, "proof does not lead to root", lakeproof.ErrProofMismatch},
		{"truncated entry proof", bundle(func(b *lakeproof.Bundle) {
			l := strings.Split(b.Anchor.Proof, "\n")
			b.Anchor.Proof = strings.Join(append(l[:2:2], l[3:]...), "\n")
		}), trustRaw, 2, "malformed bundle", lakeproof.ErrMalformedBundle},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			bp, tp := filepath.Join(dir, "b.json"), filepath.Join(dir, "trust.json")
			os.WriteFile(bp, tc.bundle, 0o644)
			os.WriteFile(tp, tc.trust, 0o644)
			out, err := exec.Command("python3", script, bp, file, tp).CombinedOutput()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code == 3 {
				t.Skipf("no Ed25519 for the independent verifier: %s", out)
			}
			if code != tc.code || !strings.HasPrefix(string(out), tc.out) {
				t.Errorf("independent verifier: exit %d %q, want %d %q", code, out, tc.code, tc.out)
			}
			b, err := lakeproof.ParseBundle(tc.bundle)
			if err == nil {
				var tr anchor.Trust
				if tr, err = anchor.ParseTrust(tc.trust); err != nil {
					t.Fatal(err)
				}
				content, _ := os.ReadFile(file)
				if err = b.VerifyContent(uint64(len(content)), lakeproof.Hash(blake3.Sum256(content))); err == nil {
					_, err = anchor.Verify(b, tr)
				}
			}
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Errorf("lakeproof: %v, want %v", err, tc.want)
			}
		})
	}
}
