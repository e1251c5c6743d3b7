package anchor_test

import (
	"errors"
	"testing"

	"github.com/zeebo/blake3"

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
