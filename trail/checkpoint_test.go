package trail_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"strings"
	"testing"

	"github.com/lakeproof/lakeproof/trail"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

func TestParseCheckpoint(t *testing.T) {
	k := fuzzNoteKey(t)
	addr := strings.Repeat("a", 80) + ":" + strings.Repeat("b", 24)
	origin := trail.Origin(k.Name(), addr)
	root := tlog.RecordHash([]byte("root"))
	body := origin + "\n7\n" + b64(root[:]) + "\n"
	sign := func(text string, signers ...note.Signer) []byte {
		t.Helper()
		b, err := note.Sign(&note.Note{Text: text}, signers...)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	wskey, wvkey, _ := note.GenerateKey(rand.Reader, "witness.example")
	witness, _ := note.NewSigner(wskey)
	other, _, _ := note.GenerateKey(rand.Reader, k.Name()) // same name, another key
	otherSigner, _ := note.NewSigner(other)
	good := sign(body, k.Signer)

	cp, err := trail.ParseCheckpoint(good, origin, k.Verifier)
	if err != nil || cp.Size != 7 || cp.Hash != root || cp.Origin != origin || !bytes.Equal(cp.Note, good) {
		t.Fatalf("%+v %v", cp, err)
	}
	if _, err := trail.ParseCheckpoint(good, "", k.Verifier); err != nil {
		t.Fatalf("any origin: %v", err)
	}
	// Cosigned by a witness (unknown to us): still ours.
	if _, err := trail.ParseCheckpoint(sign(body, k.Signer, witness), origin, k.Verifier); err != nil {
		t.Fatalf("cosigned: %v", err)
	}
	if _, err := trail.ParseCheckpoint(sign(body+"ext line\n", k.Signer), origin, k.Verifier); err != nil {
		t.Fatalf("extension line: %v", err)
	}
	wv, _ := note.NewVerifier(wvkey)
	flipped := bytes.Clone(good)
	flipped[len(flipped)-5] ^= 1
	for _, tc := range []struct {
		name string
		note []byte
		v    note.Verifier
		orig string
	}{
		{"another channel", good, k.Verifier, trail.Origin(k.Name(), strings.Repeat("c", 80)+":"+strings.Repeat("d", 24))},
		{"another gateway name", good, k.Verifier, trail.Origin("other", addr)},
		{"signed by another key of the same name", sign(body, otherSigner), k.Verifier, origin},
		{"only the witness signed", sign(body, witness), k.Verifier, origin},
		{"verified with the witness key", good, wv, origin},
		{"altered signature", flipped, k.Verifier, origin},
		{"altered size", bytes.Replace(good, []byte("\n7\n"), []byte("\n8\n"), 1), k.Verifier, origin},
		{"leading zero", sign(origin+"\n07\n"+b64(root[:])+"\n", k.Signer), k.Verifier, origin},
		{"short hash", sign(origin+"\n7\n"+b64(root[:31])+"\n", k.Signer), k.Verifier, origin},
		{"no hash line", sign(origin+"\n7\n", k.Signer), k.Verifier, origin},
		{"negative size", sign(origin+"\n-7\n"+b64(root[:])+"\n", k.Signer), k.Verifier, origin},
		{"size overflows int64", sign(origin+"\n9223372036854775808\n"+b64(root[:])+"\n", k.Signer), k.Verifier, origin},
		{"truncated", good[:len(good)-20], k.Verifier, origin},
		{"empty", nil, k.Verifier, origin},
		{"no verifier", good, nil, origin},
		{"empty extension line", sign(body+"\n", k.Signer), k.Verifier, origin},
		{"empty line between extension lines", sign(body+"ext\n\next\n", k.Signer), k.Verifier, origin},
	} {
		if _, err := trail.ParseCheckpoint(tc.note, tc.orig, tc.v); !errors.Is(err, trail.ErrCheckpoint) {
			t.Errorf("%s: got %v, want ErrCheckpoint", tc.name, err)
		}
	}
}

func TestVerifyConsistencyEdges(t *testing.T) {
	h := func(s string) tlog.Hash { return tlog.RecordHash([]byte(s)) }
	empty := trail.Checkpoint{Origin: "o", Size: 0, Hash: tlog.Hash(sha256Empty())}
	a := trail.Checkpoint{Origin: "o", Size: 1, Hash: h("a")}
	if err := trail.VerifyConsistency(empty, a, nil); err != nil {
		t.Fatalf("from the empty tree: %v", err)
	}
	if err := trail.VerifyConsistency(a, a, nil); err != nil {
		t.Fatalf("same checkpoint: %v", err)
	}
	fork := trail.Checkpoint{Origin: "o", Size: 1, Hash: h("b")}
	if err := trail.VerifyConsistency(a, fork, nil); !errors.Is(err, trail.ErrInconsistent) {
		t.Fatalf("split view: %v", err)
	}
	if err := trail.VerifyConsistency(a, trail.Checkpoint{Origin: "p", Size: 1, Hash: h("a")}, nil); !errors.Is(err, trail.ErrCheckpoint) {
		t.Fatalf("other origin: %v", err)
	}
	if err := trail.VerifyConsistency(trail.Checkpoint{Origin: "o", Hash: h("x")}, a, nil); !errors.Is(err, trail.ErrInconsistent) {
		t.Fatalf("wrong empty root: %v", err)
	}
	if err := trail.VerifyInclusion(a, 0, []byte("a"), nil); err != nil {
		t.Fatalf("single-entry tree: %v", err)
	}
	if err := trail.VerifyInclusion(a, 1, []byte("a"), nil); !errors.Is(err, trail.ErrProof) {
		t.Fatalf("index out of range: %v", err)
	}
}

func sha256Empty() []byte {
	h, _ := tlog.TreeHash(0, nil)
	return h[:]
}
