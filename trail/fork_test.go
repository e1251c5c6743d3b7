package trail_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/lakeproof/lakeproof/trail"
)

// restart replaces the gateway process by a new one on the same store,
// note key and URL (what an operator's restart does).
func (e *env) restart(t testing.TB) {
	t.Helper()
	srv, err := trail.New(context.Background(), e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	old := e.srv
	e.hs.Config.Handler = srv.Handler()
	e.srv = srv
	old.Close()
	t.Cleanup(srv.Close)
}

// forgedLeaf returns leaf with another log type, signed by a new key.
func forgedLeaf(t *testing.T, leaf []byte) []byte {
	t.Helper()
	se, err := trail.ParseLeaf(leaf)
	if err != nil {
		t.Fatal(err)
	}
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	se.Statement.Log.Type = "forged"
	f, err := trail.Sign(se.Statement, other)
	if err != nil {
		t.Fatal(err)
	}
	b, err := f.Leaf()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestGatewayNeverSignsAFork: someone with write access to the database
// removes or rolls back the stored checkpoint and rewrites the history
// behind it. The running gateway remembers the checkpoints it signed and
// served, so it refuses to sign (500) rather than sign a checkpoint
// inconsistent with one it published (issue 5: never sign two
// inconsistent checkpoints). With Config.SignedDir the memory survives a
// restart: the tamper happens while the gateway is down.
func TestGatewayNeverSignsAFork(t *testing.T) {
	for _, restart := range []bool{false, true} {
		name := "running"
		if restart {
			name = "restarted with SignedDir"
		}
		t.Run(name, func(t *testing.T) { neverSignsAFork(t, restart) })
	}
}

func neverSignsAFork(t *testing.T, restart bool) {
	for _, tc := range []struct {
		name   string
		tamper func(t *testing.T, te *tamperEnv)
	}{
		{"checkpoint row deleted", func(t *testing.T, te *tamperEnv) {
			te.exec(t, `DELETE FROM checkpoints WHERE address = ?`, te.addr)
		}},
		{"history rewritten and checkpoint row deleted", func(t *testing.T, te *tamperEnv) {
			te.replaceRow(t, 5, forgedLeaf(t, te.leaf(t, 5)))
			te.rehash(t)
			te.exec(t, `DELETE FROM checkpoints WHERE address = ?`, te.addr)
		}},
		{"older signed checkpoint replayed and history after it rewritten", func(t *testing.T, te *tamperEnv) {
			// A checkpoint of size 3 the gateway's key did sign (it
			// would have, had a reader asked at that size).
			root := rootAt(t, te.env, te.addr, 3)
			old, err := note.Sign(&note.Note{Text: trail.Origin(te.noteKey.Name(), te.addr) + "\n3\n" + b64(root[:]) + "\n"}, te.noteKey.Signer)
			if err != nil {
				t.Fatal(err)
			}
			te.replaceRow(t, 4, forgedLeaf(t, te.leaf(t, 4)))
			te.rehash(t)
			te.exec(t, `UPDATE checkpoints SET size = 3, note = ? WHERE address = ?`, old, te.addr)
		}},
		{"same-size checkpoint of a rewritten history", func(t *testing.T, te *tamperEnv) {
			te.replaceRow(t, 5, forgedLeaf(t, te.leaf(t, 5)))
			te.rehash(t)
			root := rootAt(t, te.env, te.addr, 6)
			forged, err := note.Sign(&note.Note{Text: trail.Origin(te.noteKey.Name(), te.addr) + "\n6\n" + b64(root[:]) + "\n"}, te.noteKey.Signer)
			if err != nil {
				t.Fatal(err)
			}
			te.exec(t, `UPDATE checkpoints SET note = ? WHERE address = ?`, forged, te.addr)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mods []func(*trail.Config)
			if restart {
				dir := t.TempDir()
				mods = append(mods, func(c *trail.Config) { c.SignedDir = dir })
			}
			te := newTamperEnv(t, mods...)
			tc.tamper(t, te)
			if restart {
				te.env.restart(t)
			}
			ctx := context.Background()
			// The integrity check the operator runs after a refusal
			// reports what the refusal is about.
			if rep, err := te.w.VerifyLog(ctx, te.addr); err != nil || rep.Valid {
				t.Fatalf("integrity check of the tampered log: %+v %v", rep, err)
			} else {
				t.Logf("integrity check: %q", rep.Problems)
			}
			for i := 0; i < 2; i++ { // at the same size, and after an append
				b, err := te.w.Checkpoint(ctx, te.addr)
				if err == nil {
					cp, perr := trail.ParseCheckpoint(b, te.cp.Origin, te.noteKey.Verifier)
					if perr != nil {
						t.Fatal(perr)
					}
					var p []tlog.Hash
					if cp.Size > te.cp.Size {
						p, _ = te.w.ConsistencyProof(ctx, te.addr, te.cp.Size, cp.Size)
					}
					if verr := trail.VerifyConsistency(te.cp, cp, p); verr != nil {
						t.Fatalf("round %d: the gateway signed or served a checkpoint inconsistent with its earlier one: %v", i, verr)
					}
					t.Fatalf("round %d: a checkpoint was served from a tampered store (size %d)", i, cp.Size)
				}
				if trail.StatusOf(err) != 500 || !strings.Contains(err.Error(), "refusing to sign") {
					t.Fatalf("round %d: %v, want 500 refusing to sign", i, err)
				}
				if _, err := te.w.Write(ctx, te.addr, trail.Log{Type: "after"}); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}
