package trail_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"database/sql"
	"errors"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lakeproof/lakeproof/trail"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Tamper tests (issue 5 part 7, SQLite): someone with write access to the
// database changes a channel behind the gateway's back. The gateway's
// validate and integrity check report it, the gateway refuses to sign a
// checkpoint that does not extend the last signed one, and a reader
// holding an old checkpoint detects a rewritten log.

type tamperEnv struct {
	*env
	w    *trail.Client
	addr string
	all  []trail.ChannelData
	cp   trail.Checkpoint // signed before the tampering, held by a reader
	db   *sql.DB
}

func newTamperEnv(t *testing.T, mods ...func(*trail.Config)) *tamperEnv {
	e := newEnv(t, mods...)
	ctx := context.Background()
	te := &tamperEnv{env: e, w: e.user("writer")}
	te.addr = e.channel(te.w, "tampered", "private")
	for i := 0; i < 6; i++ {
		if _, err := te.w.Write(ctx, te.addr, trail.Log{Type: "reading", Metadata: []byte(`{"n":` + string(rune('0'+i)) + `}`)}); err != nil {
			t.Fatal(err)
		}
	}
	all, err := te.w.Read(ctx, te.addr, url.Values{"asc": {"true"}})
	if err != nil || len(all) != 6 {
		t.Fatalf("%v %d", err, len(all))
	}
	te.all = all
	te.cp = e.checkpoint(t, te.w, te.addr)
	if rep, err := te.w.VerifyLog(ctx, te.addr); err != nil || !rep.Valid || rep.Size != 6 || rep.CheckpointSize != 6 {
		t.Fatalf("untampered log: %+v %v", rep, err)
	}
	te.db, err = sql.Open("sqlite", "file:"+filepath.Join(e.dir, "trail.db")+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { te.db.Close() })
	return te
}

func (te *tamperEnv) exec(t *testing.T, q string, args ...any) {
	t.Helper()
	if _, err := te.db.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func (te *tamperEnv) leaf(t *testing.T, idx int) []byte {
	t.Helper()
	var leaf []byte
	if err := te.db.QueryRow(`SELECT leaf FROM entries WHERE address = ? AND idx = ?`, te.addr, idx).Scan(&leaf); err != nil {
		t.Fatal(err)
	}
	return leaf
}

// replaceRow replaces entry idx by leaf, keeping the row self-consistent
// (leaf hash and message id columns match the new bytes).
func (te *tamperEnv) replaceRow(t *testing.T, idx int, leaf []byte) {
	t.Helper()
	lh := trail.LeafHash(leaf)
	te.exec(t, `UPDATE entries SET leaf = ?, leaf_hash = ?, msg_id = ? WHERE address = ? AND idx = ?`, leaf, lh[:], trail.MessageID(lh), te.addr, idx)
}

// rehash recomputes the channel's stored log hashes from its entries, as
// an attacker covering their tracks would.
func (te *tamperEnv) rehash(t *testing.T) {
	t.Helper()
	rows, err := te.db.Query(`SELECT leaf FROM entries WHERE address = ? ORDER BY idx`, te.addr)
	if err != nil {
		t.Fatal(err)
	}
	var hashes []tlog.Hash
	r := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			out[i] = hashes[x]
		}
		return out, nil
	})
	n := int64(0)
	for rows.Next() {
		var leaf []byte
		if err := rows.Scan(&leaf); err != nil {
			t.Fatal(err)
		}
		hs, err := tlog.StoredHashes(n, leaf, r)
		if err != nil {
			t.Fatal(err)
		}
		hashes = append(hashes, hs...)
		n++
	}
	rows.Close()
	te.exec(t, `DELETE FROM log_hashes WHERE address = ?`, te.addr)
	for i, h := range hashes {
		te.exec(t, `INSERT INTO log_hashes (address, idx, hash) VALUES (?,?,?)`, te.addr, i, h[:])
	}
}

// validate submits the entries as first read and returns the results.
func (te *tamperEnv) validate(t *testing.T, items []trail.ChannelData) []trail.ValidateResult {
	t.Helper()
	res, err := te.w.Validate(context.Background(), te.addr, items)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// wantReport runs the integrity check and wants it invalid with a problem
// containing each of subs.
func (te *tamperEnv) wantReport(t *testing.T, subs ...string) {
	t.Helper()
	rep, err := te.w.VerifyLog(context.Background(), te.addr)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Valid {
		t.Fatalf("integrity check passed a tampered log: %+v", rep)
	}
	all := strings.Join(rep.Problems, "\n")
	for _, s := range subs {
		if !strings.Contains(all, s) {
			t.Fatalf("integrity check problems lack %q:\n%s", s, all)
		}
	}
}

// wantRefusal appends one more entry and wants the gateway to refuse to
// sign a checkpoint for it (500, nothing stored).
func (te *tamperEnv) wantRefusal(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	if _, err := te.w.Write(ctx, te.addr, trail.Log{Type: "after"}); err != nil {
		t.Fatal(err)
	}
	_, err := te.w.Checkpoint(ctx, te.addr)
	if trail.StatusOf(err) != 500 || !strings.Contains(err.Error(), "refusing to sign") {
		t.Fatalf("checkpoint of a tampered log: %v", err)
	}
	if size, _, err := te.store.LatestCheckpoint(ctx, te.addr); err != nil || size != te.cp.Size {
		t.Fatalf("latest stored checkpoint: size %d %v", size, err)
	}
}

func TestTamperAlterEntryRow(t *testing.T) {
	te := newTamperEnv(t)
	ctx := context.Background()
	leaf := te.leaf(t, 2)
	forged := bytes.Replace(leaf, []byte(`"reading"`), []byte(`"READING"`), 1)
	te.replaceRow(t, 2, forged)

	res := te.validate(t, te.all)
	for i, r := range res {
		if (i == 2) == r.IsValid {
			t.Fatalf("validate entry %d: %+v", i, r)
		}
	}
	// What a reader sees now: the forged entry, reported.
	now, _ := te.w.Read(ctx, te.addr, url.Values{"asc": {"true"}})
	res = te.validate(t, now[2:3])
	if res[0].IsValid || !strings.Contains(res[0].Error, "signature") {
		t.Fatalf("validate forged entry: %+v", res[0])
	}
	te.wantReport(t, "entry 2 does not match the channel's transparency log", "entry 2: entry signature does not verify")
	// A reader checking the entry against a checkpoint catches it offline.
	got, err := te.w.LogEntry(ctx, te.addr, 2)
	if err != nil || !bytes.Equal(got, forged) {
		t.Fatalf("entry 2: %v", err)
	}
	p, err := te.w.InclusionProof(ctx, te.addr, 2, te.cp.Size)
	if err != nil {
		t.Fatal(err)
	}
	if err := trail.VerifyInclusion(te.cp, 2, got, p); !errors.Is(err, trail.ErrProof) {
		t.Fatalf("inclusion of the forged entry: %v", err)
	}
}

func TestTamperDeleteRows(t *testing.T) {
	t.Run("middle row", func(t *testing.T) {
		te := newTamperEnv(t)
		te.exec(t, `DELETE FROM entries WHERE address = ? AND idx = 3`, te.addr)
		res := te.validate(t, te.all[3:4])
		if res[0].IsValid {
			t.Fatalf("validate deleted entry: %+v", res[0])
		}
		te.wantReport(t, "entries 3 to 3 are missing")
		te.wantStatus(t, "GET", "/api/v0.1/channels/log/"+te.addr+"/entry/3", te.w.JWT(), nil, 404)
	})
	t.Run("last rows", func(t *testing.T) {
		te := newTamperEnv(t)
		te.exec(t, `DELETE FROM entries WHERE address = ? AND idx >= 4`, te.addr)
		te.exec(t, `DELETE FROM log_hashes WHERE address = ? AND idx >= ?`, te.addr, tlog.StoredHashIndex(0, 4))
		te.wantReport(t, "a checkpoint of size 6 was signed but the log has only 4 entries")
		_, err := te.w.Checkpoint(context.Background(), te.addr)
		if trail.StatusOf(err) != 500 || !strings.Contains(err.Error(), "refusing to sign") {
			t.Fatalf("checkpoint of a shrunk log: %v", err)
		}
		// Re-appending to length 6 and beyond yields a different history.
		for i := 0; i < 3; i++ {
			if _, err := te.w.Write(context.Background(), te.addr, trail.Log{Type: "replacement"}); err != nil {
				t.Fatal(err)
			}
		}
		_, err = te.w.Checkpoint(context.Background(), te.addr)
		if trail.StatusOf(err) != 500 || !strings.Contains(err.Error(), "refusing to sign") {
			t.Fatalf("checkpoint of a rewritten log: %v", err)
		}
	})
}

func TestTamperReorderRows(t *testing.T) {
	te := newTamperEnv(t)
	te.exec(t, `UPDATE entries SET idx = -1 WHERE address = ? AND idx = 1`, te.addr)
	te.exec(t, `UPDATE entries SET idx = 1 WHERE address = ? AND idx = 4`, te.addr)
	te.exec(t, `UPDATE entries SET idx = 4 WHERE address = ? AND idx = -1`, te.addr)
	res := te.validate(t, te.all)
	for i, r := range res {
		if (i == 1 || i == 4) == r.IsValid {
			t.Fatalf("validate entry %d: %+v", i, r)
		}
		if !r.IsValid && !strings.Contains(r.Error, "transparency log") {
			t.Fatalf("validate entry %d: %s", i, r.Error)
		}
	}
	te.wantReport(t, "entry 1 does not match", "entry 4 does not match", "do not match the entries")
	// Covering it up by recomputing the hashes: now the signed checkpoint
	// no longer matches, and the gateway will not sign past it.
	te.rehash(t)
	te.wantReport(t, "do not hash to the root of the signed checkpoint of size 6")
	te.wantRefusal(t)
}

func TestTamperEntrySignedByAnotherKey(t *testing.T) {
	te := newTamperEnv(t)
	se, err := trail.ParseLeaf(te.leaf(t, 5))
	if err != nil {
		t.Fatal(err)
	}
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	se.Statement.Log.Type = "forged"
	forged, err := trail.Sign(se.Statement, other) // same writer, another key
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := forged.Leaf()
	if err != nil {
		t.Fatal(err)
	}
	te.replaceRow(t, 5, leaf)
	now, _ := te.w.Read(context.Background(), te.addr, url.Values{"asc": {"true"}})
	res := te.validate(t, now[5:])
	if res[0].IsValid || !strings.Contains(res[0].Error, "signature") {
		t.Fatalf("validate entry signed by another key: %+v", res[0])
	}
	te.wantReport(t, "entry 5: entry signature does not verify: signer", "entry 5 does not match")
	// Even with the log hashes recomputed and the signed checkpoint
	// dropped, a reader holding the old checkpoint detects the rewrite.
	te.rehash(t)
	te.wantRefusal(t)
	te.exec(t, `DELETE FROM checkpoints WHERE address = ?`, te.addr)
	// The running gateway remembers what it signed and refuses
	// (TestGatewayNeverSignsAFork); a restarted one has only the store.
	te.restart(t)
	newer := te.checkpoint(t, te.w, te.addr)
	p, err := te.w.ConsistencyProof(context.Background(), te.addr, te.cp.Size, newer.Size)
	if err != nil {
		t.Fatal(err)
	}
	if err := trail.VerifyConsistency(te.cp, newer, p); !errors.Is(err, trail.ErrInconsistent) {
		t.Fatalf("reader with the old checkpoint: %v", err)
	}
}

func TestTamperCheckpointRow(t *testing.T) {
	te := newTamperEnv(t)
	// A checkpoint note signed by another key (same name) replaces ours.
	skey, _, err := note.GenerateKey(rand.Reader, "test-gateway")
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := note.NewSigner(skey)
	text, _ := note.Open(te.cp.Note, note.VerifierList(te.noteKey.Verifier))
	forged, err := note.Sign(&note.Note{Text: text.Text}, signer)
	if err != nil {
		t.Fatal(err)
	}
	te.exec(t, `UPDATE checkpoints SET note = ? WHERE address = ?`, forged, te.addr)
	te.wantReport(t, "latest stored checkpoint: invalid checkpoint")
	te.wantRefusal(t)
}
