package anchor_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/lakeproof/lakeproof"
	"github.com/lakeproof/lakeproof/anchor"
	"github.com/lakeproof/lakeproof/trail"
)

// reparse marshals and parses b, as a verifier reading the file would.
func reparse(t *testing.T, b *lakeproof.Bundle) (*lakeproof.Bundle, error) {
	t.Helper()
	return lakeproof.ParseBundle(b.Marshal())
}

func TestVerifyGood(t *testing.T) {
	f := newFixture(t)
	b, err := reparse(t, f.bundle)
	if err != nil {
		t.Fatal(err)
	}
	v, err := anchor.Verify(b, f.trust)
	if err != nil {
		t.Fatal(err)
	}
	if v.Index != 1 || v.Size != 3 || v.Gateway != fxLogName || v.Writer != f.trust.Writers[0] || v.Payload.Root != b.Root {
		t.Fatalf("verified %+v", v)
	}
	// A second, unrelated trusted key or writer changes nothing.
	_, other := noteKey(t, "other.example", 9)
	_, w2 := writerKey(8)
	tr := anchor.Trust{Gateways: []string{other, f.trust.Gateways[0]}, Writers: []string{w2, f.trust.Writers[0]}}
	if _, err := anchor.Verify(b, tr); err != nil {
		t.Fatal(err)
	}
}

// TestVerifyBadInput is the bad-input list of issue 5: each case must fail
// at the named link.
func TestVerifyBadInput(t *testing.T) {
	_, wrongKey := noteKey(t, fxLogName, 7) // same name, other key
	_, stranger := writerKey(5)
	for _, tc := range []struct {
		name   string
		mutate func(t *testing.T, f *fixture)
		want   error
	}{
		{"wrong gateway key", func(t *testing.T, f *fixture) { f.trust.Gateways = []string{wrongKey} }, anchor.ErrCheckpointSignature},
		{"unknown writer DID", func(t *testing.T, f *fixture) { f.trust.Writers = []string{stranger} }, anchor.ErrWriterNotTrusted},
		{"altered dataset root", func(t *testing.T, f *fixture) { f.bundle.Root[0] ^= 1 }, lakeproof.ErrProofMismatch},
		{"altered root in the anchor payload", func(t *testing.T, f *fixture) {
			// Re-signed by the trusted writer: the entry is authentic but
			// anchors another root.
			p := f.ds.payload()
			p.Root[0] ^= 1
			f.setEntry(t, entry(t, f.writer, fxChannelA, anchor.Type, "01", p.Marshal()))
		}, anchor.ErrPayloadMismatch},
		{"altered tree size in the anchor payload", func(t *testing.T, f *fixture) {
			p := f.ds.payload()
			p.TreeSize++
			f.setEntry(t, entry(t, f.writer, fxChannelA, anchor.Type, "01", p.Marshal()))
		}, anchor.ErrPayloadMismatch},
		{"altered entry (signature no longer covers it)", func(t *testing.T, f *fixture) {
			f.bundle.Anchor.Entry = strings.Replace(f.bundle.Anchor.Entry, `"files":5`, `"files":6`, 1)
		}, anchor.ErrEntrySignature},
		{"entry signed by someone else for the writer (gateway-signed)", func(t *testing.T, f *fixture) {
			gw, _ := writerKey(6)
			e, err := trail.Sign(trail.Statement{V: trail.StatementVersion, ChannelAddress: fxChannelA, Writer: f.trust.Writers[0], Nonce: "01",
				Log: trail.Log{Type: anchor.Type, Created: fxCreated, PublicPayload: f.ds.payload().Marshal()}}, gw)
			if err != nil {
				t.Fatal(err)
			}
			leaf, _ := e.Leaf()
			f.setEntry(t, leaf)
		}, anchor.ErrEntrySignature},
		{"garbage entry", func(t *testing.T, f *fixture) { f.setEntry(t, []byte("garbage")) }, anchor.ErrEntry},
		{"entry not canonical", func(t *testing.T, f *fixture) {
			f.setEntry(t, []byte(" "+string(entry(t, f.writer, fxChannelA, anchor.Type, "01", f.ds.payload().Marshal()))))
		}, anchor.ErrEntry},
		{"payload with an unknown member", func(t *testing.T, f *fixture) {
			p := strings.Replace(string(f.ds.payload().Marshal()), "{", `{"extra":1,`, 1)
			f.setEntry(t, entry(t, f.writer, fxChannelA, anchor.Type, "01", []byte(p)))
		}, anchor.ErrEntry},
		{"payload without indexDigest", func(t *testing.T, f *fixture) {
			var m map[string]any
			json.Unmarshal(f.ds.payload().Marshal(), &m)
			delete(m, "indexDigest")
			p, _ := json.Marshal(m)
			f.setEntry(t, entry(t, f.writer, fxChannelA, anchor.Type, "01", p))
		}, anchor.ErrEntry},
		{"payload root in upper-case hex", func(t *testing.T, f *fixture) {
			pl := f.ds.payload()
			p := strings.Replace(string(pl.Marshal()), pl.Root.String(), strings.ToUpper(pl.Root.String()), 1)
			f.setEntry(t, entry(t, f.writer, fxChannelA, anchor.Type, "01", []byte(p)))
		}, anchor.ErrEntry},
		{"entry not an anchor", func(t *testing.T, f *fixture) {
			f.setEntry(t, entry(t, f.writer, fxChannelA, "note", "01", f.ds.payload().Marshal()))
		}, anchor.ErrEntry},
		{"altered checkpoint signature", func(t *testing.T, f *fixture) {
			cp := f.receipt.Checkpoint
			i := strings.LastIndex(string(cp), " ") + 1
			sig, _ := base64.StdEncoding.DecodeString(strings.TrimSpace(string(cp[i:])))
			sig[len(sig)-1] ^= 1
			f.receipt.Checkpoint = append(append([]byte{}, cp[:i]...), base64.StdEncoding.EncodeToString(sig)+"\n"...)
			f.setReceipt()
		}, anchor.ErrCheckpointSignature},
		{"altered checkpoint root", func(t *testing.T, f *fixture) {
			cp := strings.Split(string(f.receipt.Checkpoint), "\n")
			h, _ := base64.StdEncoding.DecodeString(cp[2])
			h[0] ^= 1
			cp[2] = base64.StdEncoding.EncodeToString(h)
			f.receipt.Checkpoint = []byte(strings.Join(cp, "\n"))
			f.setReceipt()
		}, anchor.ErrCheckpointSignature},
		{"altered proof hash", func(t *testing.T, f *fixture) { f.receipt.Proof[0][0] ^= 1; f.setReceipt() }, anchor.ErrEntryInclusion},
		{"wrong entry index", func(t *testing.T, f *fixture) { f.receipt.Index = 0; f.setReceipt() }, anchor.ErrEntryInclusion},
		{"checkpoint from another channel (origin mismatch)", func(t *testing.T, f *fixture) {
			// The same log signed under channel B's origin.
			f.log.origin = "gateway.example/channel/" + fxChannelB
			f.receipt.Checkpoint = f.log.checkpoint(t, f.signer)
			f.setReceipt()
		}, anchor.ErrOriginMismatch},
		{"bundle names another channel than the entry", func(t *testing.T, f *fixture) {
			// A genuine channel-B log holding an entry written to channel A.
			l := &channelLog{origin: "gateway.example/channel/" + fxChannelB}
			i := l.add(t, []byte(f.bundle.Anchor.Entry))
			f.receipt.Channel, f.receipt.Index, f.receipt.Checkpoint, f.receipt.Proof = fxChannelB, i, l.checkpoint(t, f.signer), l.prove(t, i)
			f.setReceipt()
		}, anchor.ErrOriginMismatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			tc.mutate(t, f)
			b, err := reparse(t, f.bundle)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			_, err = anchor.Verify(b, f.trust)
			t.Log(err)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			// Exactly one link is named.
			for _, other := range []error{anchor.ErrEntry, anchor.ErrEntrySignature, anchor.ErrWriterNotTrusted,
				anchor.ErrPayloadMismatch, anchor.ErrCheckpointSignature, anchor.ErrOriginMismatch, anchor.ErrEntryInclusion,
				lakeproof.ErrProofMismatch, lakeproof.ErrMalformedBundle} {
				if other != tc.want && errors.Is(err, other) {
					t.Errorf("%v also matches %v", err, other)
				}
			}
		})
	}
}

func (f *fixture) setReceipt() {
	a := f.receipt.Anchored()
	f.bundle.Anchor = &a
}

func (f *fixture) setEntry(t *testing.T, leaf []byte) {
	f.receipt.Entry = leaf
	f.log = &channelLog{origin: f.log.origin}
	f.log.add(t, leaf)
	f.receipt.Index, f.receipt.Checkpoint, f.receipt.Proof = 0, f.log.checkpoint(t, f.signer), f.log.prove(t, 0)
	f.setReceipt()
}

// TestParseBundleAnchoredMalformed: a truncated proof path and garbage in
// every field of the anchor level are malformed bundles (exit 2), never a
// verification that passes.
func TestParseBundleAnchoredMalformed(t *testing.T) {
	good := newFixture(t)
	proofText := good.bundle.Anchor.Proof
	lines := strings.Split(proofText, "\n")
	for _, tc := range []struct {
		name   string
		mutate func(b *lakeproof.Bundle)
	}{
		{"truncated proof path", func(b *lakeproof.Bundle) {
			b.Anchor.Proof = strings.Join(append(lines[:2:2], lines[3:]...), "\n")
		}},
		{"extra proof hash", func(b *lakeproof.Bundle) {
			b.Anchor.Proof = strings.Join(append(append(lines[:3:3], lines[2]), lines[3:]...), "\n")
		}},
		{"no anchor in v2", func(b *lakeproof.Bundle) { b.Anchor = nil }},
		{"anchor in v1", func(b *lakeproof.Bundle) { b.Format = lakeproof.BundleFormat }},
		{"empty channel", func(b *lakeproof.Bundle) { b.Anchor.Channel = "" }},
		{"channel with spaces", func(b *lakeproof.Bundle) { b.Anchor.Channel = "a b" }},
		{"empty entry", func(b *lakeproof.Bundle) { b.Anchor.Entry = "" }},
		{"huge entry", func(b *lakeproof.Bundle) { b.Anchor.Entry = strings.Repeat("x", lakeproof.MaxEntrySize+1) }},
		{"empty proof", func(b *lakeproof.Bundle) { b.Anchor.Proof = "" }},
		{"wrong header", func(b *lakeproof.Bundle) {
			b.Anchor.Proof = "c2sp.org/tlog-proof@v2" + proofText[len(lakeproof.LogProofHeader):]
		}},
		{"index with leading zero", func(b *lakeproof.Bundle) { b.Anchor.Proof = strings.Replace(proofText, "index 1", "index 01", 1) }},
		{"negative index", func(b *lakeproof.Bundle) { b.Anchor.Proof = strings.Replace(proofText, "index 1", "index -1", 1) }},
		{"index beyond checkpoint", func(b *lakeproof.Bundle) { b.Anchor.Proof = strings.Replace(proofText, "index 1", "index 3", 1) }},
		{"hash not base64", func(b *lakeproof.Bundle) { b.Anchor.Proof = strings.Replace(proofText, lines[2], "!!!", 1) }},
		{"hash too short", func(b *lakeproof.Bundle) {
			b.Anchor.Proof = strings.Replace(proofText, lines[2], lines[2][:40]+"==", 1)
		}},
		{"no checkpoint", func(b *lakeproof.Bundle) { b.Anchor.Proof = strings.Join(lines[:4], "\n") + "\n" }},
		{"checkpoint without signature", func(b *lakeproof.Bundle) {
			b.Anchor.Proof = proofText[:strings.LastIndex(proofText, "\n\n")+2]
		}},
		{"checkpoint size not decimal", func(b *lakeproof.Bundle) { b.Anchor.Proof = strings.Replace(proofText, "\n3\n", "\n0x3\n", 1) }},
		{"unknown anchor field", func(b *lakeproof.Bundle) {}},
		{"root in upper-case hex", func(b *lakeproof.Bundle) {}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			tc.mutate(f.bundle)
			raw := f.bundle.Marshal()
			if tc.name == "unknown anchor field" {
				raw = []byte(strings.Replace(string(raw), `"channel":`, `"extra": 1, "channel":`, 1))
			}
			if tc.name == "root in upper-case hex" {
				r := f.bundle.Root.String()
				raw = []byte(strings.Replace(string(raw), `"root": "`+r, `"root": "`+strings.ToUpper(r), 1))
			}
			if _, err := lakeproof.ParseBundle(raw); !errors.Is(err, lakeproof.ErrMalformedBundle) {
				t.Fatalf("got %v, want a malformed bundle", err)
			}
		})
	}
}

func TestTrustRequired(t *testing.T) {
	f := newFixture(t)
	if _, err := anchor.Verify(f.bundle, anchor.Trust{Writers: f.trust.Writers}); err == nil {
		t.Fatal("verified without a gateway key")
	}
	if _, err := anchor.Verify(f.bundle, anchor.Trust{Gateways: f.trust.Gateways}); err == nil {
		t.Fatal("verified without a trusted writer")
	}
	if _, err := anchor.ParseTrust([]byte(`{"gateways":["nonsense"],"writers":[]}`)); err == nil {
		t.Fatal("bad gateway key accepted")
	}
	if _, err := anchor.ParseTrust([]byte(`{"gateways":[],"writers":["did:web:x"]}`)); err == nil {
		t.Fatal("bad DID accepted")
	}
}

// BenchmarkVerify measures the offline check of the anchor level of a
// two-level bundle (parse, entry signature, checkpoint signature, SHA-256
// inclusion), after the dataset level.
func BenchmarkVerify(b *testing.B) {
	f := newFixture(b)
	raw := f.bundle.Marshal()
	b.ReportAllocs()
	for b.Loop() {
		bb, err := lakeproof.ParseBundle(raw)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := anchor.Verify(bb, f.trust); err != nil {
			b.Fatal(err)
		}
	}
}
