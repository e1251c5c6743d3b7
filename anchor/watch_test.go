package anchor

import (
	"context"
	"crypto/rand"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/lakeproof/lakeproof/trail"
)

// watchAddr is a syntactically valid channel address.
var watchAddr = strings.Repeat("a", 80) + ":" + strings.Repeat("b", 24)

func signedCheckpoint(t *testing.T, skey, origin string, size int64, h tlog.Hash) []byte {
	t.Helper()
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	body := log.Checkpoint{Origin: origin, Size: uint64(size), Hash: h[:]}.Marshal()
	b, err := note.Sign(&note.Note{Text: string(body)}, s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func testKey(t *testing.T, name string) (string, note.Verifier) {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return skey, v
}

func TestWatchStateRoundTrip(t *testing.T) {
	skey, v := testKey(t, "gw-test")
	origin := trail.Origin("gw-test", watchAddr)
	cp, err := trail.ParseCheckpoint(signedCheckpoint(t, skey, origin, 7, tlog.Hash{1, 2, 3}), origin, v)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "sub", "state.json")
	if _, _, err := LoadWatchState(path, watchAddr, v); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing state file: %v, want fs.ErrNotExist", err)
	}
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	if err := SaveWatchState(path, NewWatchState(watchAddr, "http://gw", cp, now)); err != nil {
		t.Fatal(err)
	}
	got, st, err := LoadWatchState(path, watchAddr, v)
	if err != nil {
		t.Fatal(err)
	}
	if got.Size != 7 || got.Hash != cp.Hash || got.Origin != origin || st.Gateway != "http://gw" || !st.Verified.Equal(now) {
		t.Fatalf("loaded %+v %+v", got, st)
	}
	// Replacing works and leaves no temporary files behind.
	cp2, _ := trail.ParseCheckpoint(signedCheckpoint(t, skey, origin, 9, tlog.Hash{4}), origin, v)
	if err := SaveWatchState(path, NewWatchState(watchAddr, "http://gw", cp2, now)); err != nil {
		t.Fatal(err)
	}
	if got, _, err := LoadWatchState(path, watchAddr, v); err != nil || got.Size != 9 {
		t.Fatalf("after replace: %+v %v", got, err)
	}
	ents, _ := os.ReadDir(filepath.Dir(path))
	if len(ents) != 1 {
		t.Fatalf("state directory holds %d files, want 1", len(ents))
	}
}

func TestWatchStateBad(t *testing.T) {
	skey, v := testKey(t, "gw-test")
	otherKey, _ := testKey(t, "gw-test")
	origin := trail.Origin("gw-test", watchAddr)
	good := signedCheckpoint(t, skey, origin, 3, tlog.Hash{9})
	cp, err := trail.ParseCheckpoint(good, origin, v)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	otherAddr := strings.Repeat("c", 80) + ":" + strings.Repeat("d", 24)
	for _, tc := range []struct {
		name string
		st   func() string // file content
	}{
		{"not JSON", func() string { return "{" }},
		{"unknown field", func() string { return `{"version":1,"channel":"` + watchAddr + `","extra":1}` }},
		{"other version", func() string { return `{"version":2,"channel":"` + watchAddr + `"}` }},
		{"other channel", func() string {
			return mustJSON(t, NewWatchState(otherAddr, "", cp, time.Now()))
		}},
		{"signed by another key", func() string {
			cp2 := cp
			cp2.Note = signedCheckpoint(t, otherKey, origin, 3, tlog.Hash{9})
			return mustJSON(t, NewWatchState(watchAddr, "", cp2, time.Now()))
		}},
		{"other origin", func() string {
			cp2 := cp
			cp2.Note = signedCheckpoint(t, skey, trail.Origin("gw-test", otherAddr), 3, tlog.Hash{9})
			return mustJSON(t, NewWatchState(watchAddr, "", cp2, time.Now()))
		}},
		{"altered size", func() string {
			cp2 := cp
			cp2.Note = []byte(strings.Replace(string(good), "\n3\n", "\n4\n", 1))
			return mustJSON(t, NewWatchState(watchAddr, "", cp2, time.Now()))
		}},
		{"too large", func() string { return strings.Repeat(" ", maxWatchState+1) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-"))
			if err := os.WriteFile(p, []byte(tc.st()), 0o600); err != nil {
				t.Fatal(err)
			}
			_, _, err := LoadWatchState(p, watchAddr, v)
			if !errors.Is(err, ErrWatchState) || !strings.Contains(err.Error(), p) {
				t.Fatalf("err %v, want ErrWatchState naming %s", err, p)
			}
		})
	}
}

func mustJSON(t *testing.T, st WatchState) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "s.json")
	if err := SaveWatchState(p, st); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestMonitorCheckLocal covers the decisions Check makes without asking
// the gateway (no proof is needed); the proof-based ones run against a
// real gateway in cmd/lakeproof (TestChannelWatch*).
func TestMonitorCheckLocal(t *testing.T) {
	skey, v := testKey(t, "gw-test")
	origin := trail.Origin("gw-test", watchAddr)
	cp := func(size int64, h tlog.Hash) trail.Checkpoint {
		c, err := trail.ParseCheckpoint(signedCheckpoint(t, skey, origin, size, h), origin, v)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	empty, _ := tlog.TreeHash(0, nil)
	m := &Monitor{Client: trail.NewClient("http://127.0.0.1:1"), Channel: watchAddr, Verifier: v}
	for _, tc := range []struct {
		name         string
		older, newer trail.Checkpoint
		kind         string // "" = consistent
	}{
		{"same", cp(5, tlog.Hash{1}), cp(5, tlog.Hash{1}), ""},
		{"split view", cp(5, tlog.Hash{1}), cp(5, tlog.Hash{2}), "split view"},
		{"shrank", cp(5, tlog.Hash{1}), cp(4, tlog.Hash{1}), "log shrank"},
		{"from empty", cp(0, empty), cp(4, tlog.Hash{1}), ""},
		{"bad empty root", cp(0, tlog.Hash{7}), cp(4, tlog.Hash{1}), "rewritten history"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := m.Check(context.Background(), tc.older, tc.newer)
			if tc.kind == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var inc *Inconsistency
			if !errors.As(err, &inc) || !errors.Is(err, trail.ErrInconsistent) || !strings.HasPrefix(inc.Kind, tc.kind) {
				t.Fatalf("err %v, want an Inconsistency of kind %q", err, tc.kind)
			}
			msg := err.Error()
			for _, want := range []string{tc.older.Hash.String(), tc.newer.Hash.String()} {
				if !strings.Contains(msg, want) {
					t.Errorf("message %q does not name root %s", msg, want)
				}
			}
			p, err := SaveEvidence(filepath.Join(t.TempDir(), "state.json"), watchAddr, inc, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			b, _ := os.ReadFile(p)
			if !strings.Contains(string(b), tc.kind) {
				t.Fatalf("evidence %s: %s", p, b)
			}
		})
	}
	// A larger size needs a proof: an unreachable gateway is an error, but
	// not an inconsistency.
	err := m.Check(context.Background(), cp(5, tlog.Hash{1}), cp(6, tlog.Hash{2}))
	if err == nil || errors.Is(err, trail.ErrInconsistent) {
		t.Fatalf("unreachable gateway: %v", err)
	}
}

// FuzzLoadWatchState: any state file content either fails with
// ErrWatchState or yields a checkpoint that verifies with the key.
func FuzzLoadWatchState(f *testing.F) {
	skey, v := testKeyF(f, "gw-test")
	origin := trail.Origin("gw-test", watchAddr)
	s, _ := note.NewSigner(skey)
	body := log.Checkpoint{Origin: origin, Size: 3, Hash: make([]byte, 32)}.Marshal()
	signed, _ := note.Sign(&note.Note{Text: string(body)}, s)
	cp, err := trail.ParseCheckpoint(signed, origin, v)
	if err != nil {
		f.Fatal(err)
	}
	dir := f.TempDir()
	p := filepath.Join(dir, "seed.json")
	if err := SaveWatchState(p, NewWatchState(watchAddr, "http://gw", cp, time.Unix(0, 0))); err != nil {
		f.Fatal(err)
	}
	seed, _ := os.ReadFile(p)
	f.Add(seed)
	f.Add([]byte(`{"version":1}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(t.TempDir(), "s.json")
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		got, _, err := LoadWatchState(p, watchAddr, v)
		if err != nil {
			if !errors.Is(err, ErrWatchState) {
				t.Fatalf("error not wrapping ErrWatchState: %v", err)
			}
			return
		}
		if _, err := trail.ParseCheckpoint(got.Note, origin, v); err != nil {
			t.Fatalf("loaded a checkpoint that does not verify: %v", err)
		}
	})
}

func testKeyF(f *testing.F, name string) (string, note.Verifier) {
	skey, vkey, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		f.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		f.Fatal(err)
	}
	return skey, v
}
