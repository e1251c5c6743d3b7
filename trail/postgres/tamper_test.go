package postgres_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/lakeproof/lakeproof/trail"
	"github.com/lakeproof/lakeproof/trail/postgres/pgtest"
)

// tamperEnv is a channel of 8 entries on two replicas, a reader's copy of
// them and the checkpoint the reader verified before the database was
// altered behind the gateways' backs.
type tamperEnv struct {
	c      *cluster
	author *trail.Client
	addr   string
	copies []trail.ChannelData
	old    trail.Checkpoint
	db     *pgx.Conn
}

const tamperSize = 8

func newTamperEnv(t *testing.T) *tamperEnv {
	ctx := context.Background()
	c := newCluster(t, pgtest.NewDatabase(t), 2)
	e := &tamperEnv{c: c, author: c.user(t, 0, "author")}
	e.addr = c.channel(t, e.author, "evidence")
	for i := 0; i < tamperSize; i++ {
		d, err := c.at(e.author, i%2).Write(ctx, e.addr, trail.Log{Type: "reading", Payload: []byte(fmt.Sprintf(`{"n":%d}`, i))})
		if err != nil {
			t.Fatal(err)
		}
		e.copies = append(e.copies, d)
	}
	b, err := e.author.Checkpoint(ctx, e.addr)
	if err != nil {
		t.Fatal(err)
	}
	if e.old, err = trail.ParseCheckpoint(b, trail.Origin(c.noteKey.Name(), e.addr), c.noteKey.Verifier); err != nil {
		t.Fatal(err)
	}
	// Before tampering every detector must pass: they can fail only
	// because of the tampering.
	if msg := e.validate(t); msg != "" {
		t.Fatalf("before tampering: validate: %s", msg)
	}
	if msg := e.inclusion(t); msg != "" {
		t.Fatalf("before tampering: inclusion: %s", msg)
	}
	if e.db, err = pgx.Connect(ctx, c.dsn); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.db.Close(context.Background()) })
	return e
}

func (e *tamperEnv) exec(t *testing.T, sql string, args ...any) {
	t.Helper()
	tag, err := e.db.Exec(context.Background(), sql, args...)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	if tag.RowsAffected() == 0 {
		t.Fatalf("%s: no row changed", sql)
	}
}

func (e *tamperEnv) leaf(t *testing.T, idx int) []byte {
	t.Helper()
	var leaf []byte
	if err := e.db.QueryRow(context.Background(), `SELECT leaf FROM entries WHERE address = $1 AND idx = $2`, e.addr, idx).Scan(&leaf); err != nil {
		t.Fatal(err)
	}
	return leaf
}

// replaceLeaf stores leaf at idx with a matching leaf_hash, as a careful
// attacker would.
func (e *tamperEnv) replaceLeaf(t *testing.T, idx int, leaf []byte) {
	t.Helper()
	lh := trail.LeafHash(leaf)
	e.exec(t, `UPDATE entries SET leaf = $3, leaf_hash = $4, msg_id = $5 WHERE address = $1 AND idx = $2`, e.addr, idx, leaf, lh[:], trail.MessageID(lh))
}

// rehash recomputes the channel's whole log_hashes from the entry rows, so
// the stored tree is self-consistent again (hiding the edit from checks
// that only compare entries with the stored tree).
func (e *tamperEnv) rehash(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	rows, err := e.db.Query(ctx, `SELECT leaf FROM entries WHERE address = $1 ORDER BY idx`, e.addr)
	if err != nil {
		t.Fatal(err)
	}
	leaves, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
	if err != nil {
		t.Fatal(err)
	}
	e.exec(t, `DELETE FROM log_hashes WHERE address = $1`, e.addr)
	for i, h := range referenceHashes(t, leaves) {
		e.exec(t, `INSERT INTO log_hashes (address, idx, hash) VALUES ($1, $2, $3)`, e.addr, i, h[:])
	}
}

// validate asks the gateway (replica 1) to validate the reader's copies
// and the entries it serves now; it returns the first complaint, of the
// gateway or of the reader comparing the gateway's answer (the entry's
// index) with its copy.
func (e *tamperEnv) validate(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	cl := e.c.at(e.author, 1)
	now, err := cl.Read(ctx, e.addr, url.Values{"asc": {"true"}})
	if err != nil {
		return "read: " + err.Error()
	}
	for _, items := range [][]trail.ChannelData{now, e.copies} {
		res, err := cl.Validate(ctx, e.addr, items)
		if err != nil {
			return "validate: " + err.Error()
		}
		for i, r := range res {
			if !r.IsValid {
				return fmt.Sprintf("item %d (%s): %s", i, r.Link, r.Error)
			}
			// The reader also compares where the gateway says the entry
			// is with where it got it.
			if r.Index == nil || *r.Index != items[i].Index {
				return fmt.Sprintf("item %d (%s): valid but the gateway places it at index %v, not %d", i, r.Link, fmtIndex(r.Index), items[i].Index)
			}
		}
	}
	return ""
}

func fmtIndex(p *int64) string {
	if p == nil {
		return "(none)"
	}
	return fmt.Sprint(*p)
}

// inclusion checks, as an offline reader would, that every entry the
// gateway serves at index i < old.Size is in the reader's old checkpoint.
func (e *tamperEnv) inclusion(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	for i := int64(0); i < e.old.Size; i++ {
		cl := e.c.at(e.author, int(i%2))
		leaf, err := cl.LogEntry(ctx, e.addr, i)
		if err != nil {
			return fmt.Sprintf("entry %d: %v", i, err)
		}
		proof, err := cl.InclusionProof(ctx, e.addr, i, e.old.Size)
		if err != nil {
			return fmt.Sprintf("inclusion proof %d: %v", i, err)
		}
		if err := trail.VerifyInclusion(e.old, i, leaf, proof); err != nil {
			return fmt.Sprintf("entry %d: %v", i, err)
		}
	}
	return ""
}

// consistency appends one more entry and asks each replica for its latest
// checkpoint: a replica must either refuse to sign or sign a tree the
// reader can prove consistent with its old checkpoint.
func (e *tamperEnv) consistency(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	if _, err := e.author.Write(ctx, e.addr, trail.Log{Type: "after"}); err != nil {
		return "append after tampering: " + err.Error()
	}
	for r := range e.c.urls {
		cl := e.c.at(e.author, r)
		b, err := cl.Checkpoint(ctx, e.addr)
		if err != nil {
			return fmt.Sprintf("replica %d: checkpoint: %v", r, err)
		}
		cp, err := trail.ParseCheckpoint(b, e.old.Origin, e.c.noteKey.Verifier)
		if err != nil {
			return fmt.Sprintf("replica %d: %v", r, err)
		}
		proof, err := cl.ConsistencyProof(ctx, e.addr, e.old.Size, cp.Size)
		if err != nil {
			return fmt.Sprintf("replica %d: consistency proof: %v", r, err)
		}
		if err := trail.VerifyConsistency(e.old, cp, proof); err != nil {
			return fmt.Sprintf("replica %d: %v", r, err)
		}
	}
	return ""
}

// TestTamperDetected alters the database directly, as an operator with
// write access could, and checks that the damage is reported: by the
// gateway's validate, by inclusion proofs against a reader's earlier
// checkpoint, and by the gateways refusing to sign (or the reader proving
// inconsistency) afterwards.
func TestTamperDetected(t *testing.T) {
	t.Parallel()
	_, mallory, _ := ed25519.GenerateKey(rand.Reader)
	type detect struct{ validate, inclusion, consistency bool }
	for _, tc := range []struct {
		name   string
		tamper func(t *testing.T, e *tamperEnv)
		want   detect
	}{
		{"alter entry row", func(t *testing.T, e *tamperEnv) {
			leaf := bytes.Replace(e.leaf(t, 3), []byte(`"n":3`), []byte(`"n":9`), 1)
			e.exec(t, `UPDATE entries SET leaf = $3 WHERE address = $1 AND idx = $2`, e.addr, 3, leaf)
		}, detect{validate: true, inclusion: true}},
		{"alter entry row and its leaf hash", func(t *testing.T, e *tamperEnv) {
			e.replaceLeaf(t, 3, bytes.Replace(e.leaf(t, 3), []byte(`"n":3`), []byte(`"n":9`), 1))
		}, detect{validate: true, inclusion: true}},
		{"delete a row", func(t *testing.T, e *tamperEnv) {
			e.exec(t, `DELETE FROM entries WHERE address = $1 AND idx = 4`, e.addr)
		}, detect{validate: true, inclusion: true}},
		{"delete the newest rows", func(t *testing.T, e *tamperEnv) {
			e.exec(t, `DELETE FROM entries WHERE address = $1 AND idx >= 6`, e.addr)
			e.exec(t, `DELETE FROM log_hashes WHERE address = $1 AND idx >= $2`, e.addr, tlog.StoredHashIndex(0, 6))
		}, detect{validate: true, inclusion: true, consistency: true}},
		{"reorder rows", func(t *testing.T, e *tamperEnv) {
			e.exec(t, `UPDATE entries SET idx = -1 WHERE address = $1 AND idx = 2`, e.addr)
			e.exec(t, `UPDATE entries SET idx = 2 WHERE address = $1 AND idx = 5`, e.addr)
			e.exec(t, `UPDATE entries SET idx = 5 WHERE address = $1 AND idx = -1`, e.addr)
		}, detect{validate: true, inclusion: true}},
		{"reorder rows and rebuild the tree", func(t *testing.T, e *tamperEnv) {
			e.exec(t, `UPDATE entries SET idx = -1 WHERE address = $1 AND idx = 2`, e.addr)
			e.exec(t, `UPDATE entries SET idx = 2 WHERE address = $1 AND idx = 5`, e.addr)
			e.exec(t, `UPDATE entries SET idx = 5 WHERE address = $1 AND idx = -1`, e.addr)
			e.rehash(t)
		}, detect{validate: true, inclusion: true, consistency: true}},
		{"swap in an entry signed by a different key", func(t *testing.T, e *tamperEnv) {
			se, err := trail.ParseLeaf(e.leaf(t, 1))
			if err != nil {
				t.Fatal(err)
			}
			forged, err := trail.Sign(se.Statement, mallory)
			if err != nil {
				t.Fatal(err)
			}
			leaf, err := forged.Leaf()
			if err != nil {
				t.Fatal(err)
			}
			e.replaceLeaf(t, 1, leaf)
			e.rehash(t)
		}, detect{validate: true, inclusion: true, consistency: true}},
		{"rewrite history and drop the signed checkpoint", func(t *testing.T, e *tamperEnv) {
			se, err := trail.ParseLeaf(e.leaf(t, 0))
			if err != nil {
				t.Fatal(err)
			}
			// A validly signed entry by another identity, as if it had
			// always been there.
			se.Statement.Writer = trail.DIDFromPublicKey(mallory.Public().(ed25519.PublicKey))
			forged, err := trail.Sign(se.Statement, mallory)
			if err != nil {
				t.Fatal(err)
			}
			leaf, err := forged.Leaf()
			if err != nil {
				t.Fatal(err)
			}
			e.replaceLeaf(t, 0, leaf)
			e.exec(t, `UPDATE entries SET writer = $2 WHERE address = $1 AND idx = 0`, e.addr, se.Statement.Writer)
			e.rehash(t)
			e.exec(t, `DELETE FROM checkpoints WHERE address = $1`, e.addr)
		}, detect{validate: true, inclusion: true, consistency: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newTamperEnv(t)
			tc.tamper(t, e)
			for _, d := range []struct {
				name string
				want bool
				run  func(*testing.T) string
			}{
				{"validate", tc.want.validate, e.validate},
				{"inclusion against the old checkpoint", tc.want.inclusion, e.inclusion},
				{"checkpoint consistency", tc.want.consistency, e.consistency},
			} {
				msg := d.run(t)
				switch {
				case d.want && msg == "":
					t.Errorf("%s did not detect the tampering", d.name)
				case msg != "":
					t.Logf("%s: %s", d.name, strings.TrimSpace(msg))
				}
			}
		})
	}
}
