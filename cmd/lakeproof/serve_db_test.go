package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lakeproof/lakeproof/trail"
	"github.com/lakeproof/lakeproof/trail/postgres/pgtest"
)

// startServe runs runServe with o on a loopback port until the test ends.
func startServe(t *testing.T, o serveOpts) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	o.listen, o.jwtTTL, o.maxBody, o.rateLimit, o.logName = "127.0.0.1:0", time.Hour, 1<<20, -1, trail.DefaultLogName
	o.ready = func(a string) { ready <- a }
	go func() { done <- runServe(ctx, io.Discard, o) }()
	select {
	case a := <-ready:
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("serve: %v", err)
			}
		})
		return "http://" + a
	case err := <-done:
		cancel()
		t.Fatalf("serve: %v", err)
	case <-time.After(20 * time.Second):
		cancel()
		t.Fatal("serve did not start")
	}
	return ""
}

// TestServePostgresReplicas: two `lakeproof serve --db postgres://…`
// processes' worth of gateways on one database, sharing the data
// directory's keys as docs/OPERATOR.md says: an entry written through one
// is read and proven through the other, and both serve the same signed
// checkpoint.
func TestServePostgresReplicas(t *testing.T) {
	db := pgtest.NewDatabase(t)
	dataA, dataB := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	a := startServe(t, serveOpts{data: dataA, db: db})
	if err := os.MkdirAll(dataB, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"gateway.key", "jwt.secret", "log-note.key"} {
		b, err := os.ReadFile(filepath.Join(dataA, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dataB, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	b := startServe(t, serveOpts{data: dataB, db: db})
	if _, err := os.Stat(filepath.Join(dataA, "trail.db")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("--db postgres:// also created a SQLite database: %v", err)
	}

	ctx := context.Background()
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	ca := trail.NewClient(a)
	ca.Key, ca.ID = key, trail.DIDFromPublicKey(key.Public().(ed25519.PublicKey))
	if err := ca.Register(ctx, "writer", map[string]string{"type": "Device"}); err != nil {
		t.Fatal(err)
	}
	if err := ca.Authenticate(ctx); err != nil {
		t.Fatal(err)
	}
	addr, err := ca.CreateChannel(ctx, trail.CreateChannelRequest{Name: "replicated", Type: "private", Topics: []trail.Topic{{Type: "t", Source: "s"}}})
	if err != nil {
		t.Fatal(err)
	}
	cb := *ca
	cb.BaseURL = b // same JWT: the replicas share jwt.secret
	d, err := cb.Write(ctx, addr, trail.Log{Type: "via-b"})
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.LogEntry(ctx, addr, d.Index)
	if err != nil {
		t.Fatal(err)
	}
	noteA, err := ca.Checkpoint(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	noteB, err := cb.Checkpoint(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	if string(noteA) != string(noteB) {
		t.Fatalf("replicas serve different checkpoints:\n%s\n%s", noteA, noteB)
	}
	nk, err := trail.LoadNoteKey(filepath.Join(dataB, "log-note.key"))
	if err != nil {
		t.Fatal(err)
	}
	cp, err := trail.ParseCheckpoint(noteA, trail.Origin(nk.Name(), addr), nk.Verifier)
	if err != nil {
		t.Fatal(err)
	}
	proof, err := ca.InclusionProof(ctx, addr, d.Index, cp.Size)
	if err != nil {
		t.Fatal(err)
	}
	if err := trail.VerifyInclusion(cp, d.Index, leaf, proof); err != nil {
		t.Fatal(err)
	}
}

// TestServeBadDB: an unusable --db is a usage error (exit 2) that names
// the problem without echoing a password.
func TestServeBadDB(t *testing.T) {
	for _, tc := range []struct{ db, want string }{
		{"mysql://root:hunter2@db/trail", "want a postgres:// URL"},
		{"host=/tmp dbname=x", "want a postgres:// URL"},
		{"postgres://lakeproof:hunter2@127.0.0.1:1/trail?connect_timeout=2", `database "trail" on 127.0.0.1:1`},
	} {
		err := runServe(context.Background(), io.Discard, serveOpts{listen: "127.0.0.1:0", data: t.TempDir(), db: tc.db, logName: trail.DefaultLogName})
		var u usageError
		if !errors.As(err, &u) || exitCode(err) != 2 {
			t.Errorf("--db %q: got %v (exit %d), want a usage error", tc.db, err, exitCode(err))
			continue
		}
		if !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("--db %q: message %q", tc.db, err)
		}
	}
}
