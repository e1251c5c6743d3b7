package anchor_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"testing"

	"github.com/zeebo/blake3"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/lakeproof/lakeproof/trail"

	"github.com/lakeproof/lakeproof"
	"github.com/lakeproof/lakeproof/anchor"
)

func blake3Sum(b []byte) lakeproof.Hash { return lakeproof.Hash(blake3.Sum256(b)) }

// FuzzVerifyBundle feeds arbitrary bytes to the bundle parser and, for
// those that parse, to the anchor verifier: nothing may panic, every
// failure is a named error, and only the genuine bundle (or an encoding of
// it) verifies.
func FuzzVerifyBundle(f *testing.F) {
	fx := newFixture(f)
	good := fx.bundle.Marshal()
	f.Add(good)
	f.Add([]byte(`{"format":"lakeproof/proof/v2"}`))
	f.Add([]byte(fx.bundle.Anchor.Proof))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := lakeproof.ParseBundle(data)
		if err != nil {
			if !errors.Is(err, lakeproof.ErrMalformedBundle) {
				t.Fatalf("parse error %v is not ErrMalformedBundle", err)
			}
			return
		}
		if b.Anchor == nil {
			return
		}
		v, err := anchor.Verify(b, fx.trust)
		if err != nil {
			return
		}
		// What verifies must anchor the fixture's dataset root, in its
		// channel, signed by its writer.
		if b.Root != fx.bundle.Root || v.Channel != fxChannelA || v.Writer != fx.trust.Writers[0] {
			t.Fatalf("a different bundle verified: %+v", v)
		}
	})
}

// FuzzParseReceipt: arbitrary receipt files never panic and either parse
// to a receipt that re-encodes to a parseable one, or fail as malformed.
func FuzzParseReceipt(f *testing.F) {
	fx := newFixture(f)
	f.Add(fx.receipt.Marshal())
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := anchor.ParseReceipt(data)
		if err != nil {
			if !errors.Is(err, lakeproof.ErrMalformedBundle) {
				t.Fatalf("error %v is not ErrMalformedBundle", err)
			}
			return
		}
		if _, err := anchor.ParseReceipt(r.Marshal()); err != nil {
			t.Fatalf("re-encoded receipt does not parse: %v", err)
		}
	})
}

// FuzzParsePayload: arbitrary entries never panic.
func FuzzParsePayload(f *testing.F) {
	fx := newFixture(f)
	f.Add(fx.receipt.Entry)
	f.Fuzz(func(t *testing.T, data []byte) {
		_, p, err := anchor.ParsePayload(data)
		if err == nil && p.Dataset == "" {
			t.Fatal("payload without a dataset name accepted")
		}
		if err != nil && !errors.Is(err, anchor.ErrEntry) && !errors.Is(err, anchor.ErrEntrySignature) {
			t.Fatalf("error %v is neither ErrEntry nor ErrEntrySignature", err)
		}
	})
}

// FuzzParseTrust: arbitrary trust files never panic; what parses has only
// valid note verifier keys and did:key writers, and re-encodes to a trust
// file that parses the same.
func FuzzParseTrust(f *testing.F) {
	fx := newFixture(f)
	good, _ := json.Marshal(fx.trust)
	f.Add(good)
	f.Add([]byte(`{"gateways":[],"writers":[]}`))
	f.Add([]byte(`{"gateways":["a+00000000+AAAA"],"writers":["did:web:x"]}`))
	f.Add([]byte(`{"gateways":null,"writers":null} {}`))
	f.Add([]byte(`{"gateways":["x"],"extra":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		tr, err := anchor.ParseTrust(data)
		if err != nil {
			return
		}
		for _, k := range tr.Gateways {
			if _, err := note.NewVerifier(k); err != nil {
				t.Fatalf("accepted gateway key %q: %v", k, err)
			}
		}
		for _, w := range tr.Writers {
			if _, err := trail.ParseDID(w); err != nil {
				t.Fatalf("accepted writer %q: %v", w, err)
			}
		}
		b, _ := json.Marshal(tr)
		back, err := anchor.ParseTrust(b)
		if err != nil || !slices.Equal(back.Gateways, tr.Gateways) || !slices.Equal(back.Writers, tr.Writers) {
			t.Fatalf("re-encoded trust file %s: %+v %v", b, back, err)
		}
	})
}

// FuzzCheckpointBodyAgrees is a differential fuzz of the two checkpoint
// parsers: lakeproof.CheckpointBody (unauthenticated, used on bundles
// before the signature is known) and trail.ParseCheckpoint (signature
// checked). For any body signed by the gateway key, both accept or both
// reject, and they agree on origin, size and root: a bundle can never mean
// one thing to the shape check and another to the signature check.
func FuzzCheckpointBodyAgrees(f *testing.F) {
	signer, vkey := noteKey(f, fxLogName, 1)
	v, err := note.NewVerifier(vkey)
	if err != nil {
		f.Fatal(err)
	}
	root := tlog.RecordHash([]byte("x"))
	r64 := base64.StdEncoding.EncodeToString(root[:])
	origin := trail.Origin(fxLogName, fxChannelA)
	for _, s := range []string{
		origin + "\n5\n" + r64 + "\n",
		origin + "\n5\n" + r64 + "\next\n",
		origin + "\n05\n" + r64 + "\n",
		origin + "\n5\n" + r64 + "\n\n",
		origin + "\n5\n" + r64[:10] + "\n",
		origin + "\n18446744073709551615\n" + r64 + "\n",
		origin + "\n9223372036854775807\n" + r64 + "\n",
		"\n5\n" + r64 + "\n",
		origin + "\r\n5\n" + r64 + "\n",
		origin + "\n+5\n" + r64 + "\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		signed, err := note.Sign(&note.Note{Text: text}, signer)
		if err != nil {
			return // not a note text at all
		}
		o, size, h, berr := lakeproof.CheckpointBody(signed)
		cp, perr := trail.ParseCheckpoint(signed, "", v)
		switch {
		case berr == nil && perr == nil:
			if o != cp.Origin || size != cp.Size || h != cp.Hash {
				t.Fatalf("%q: CheckpointBody (%q %d %s) and ParseCheckpoint (%q %d %s) disagree", text, o, size, h, cp.Origin, cp.Size, cp.Hash)
			}
		case berr == nil:
			// The shape check is looser than the signature check only
			// where Verify then rejects the bundle (ErrCheckpointSignature).
			t.Logf("%q: only CheckpointBody accepts (ParseCheckpoint: %v)", text, perr)
		case perr == nil:
			t.Fatalf("%q: ParseCheckpoint accepts (%q %d %s) but CheckpointBody rejects: %v", text, cp.Origin, cp.Size, cp.Hash, berr)
		}
	})
}
