package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/lakeproof/lakeproof/anchor"
	"github.com/lakeproof/lakeproof/trail"
)

// logGateway is a `lakeproof serve` (runServe) on a loopback port with
// the given data directory and checkpoint note key file, which can be
// stopped and started again on the same data.
type logGateway struct {
	t             *testing.T
	data, noteKey string
	url           string
	stop          func()
}

func startLogGateway(t *testing.T, data, noteKey string) *logGateway {
	t.Helper()
	g := &logGateway{t: t, data: data, noteKey: noteKey}
	g.start()
	t.Cleanup(g.Stop)
	return g
}

func (g *logGateway) start() {
	t := g.t
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- runServe(ctx, io.Discard, serveOpts{listen: "127.0.0.1:0", data: g.data, noteKey: g.noteKey, logName: trail.DefaultLogName,
			jwtTTL: time.Hour, maxBody: 1 << 20, rateLimit: -1, ready: func(a string) { ready <- a }})
	}()
	select {
	case a := <-ready:
		g.url = "http://" + a
		g.stop = func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("serve: %v", err)
			}
		}
	case err := <-done:
		cancel()
		t.Fatalf("serve: %v", err)
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatal("serve did not start")
	}
}

// Stop stops the gateway (idempotent).
func (g *logGateway) Stop() {
	if g.stop != nil {
		g.stop()
		g.stop = nil
	}
}

// newNoteKey creates a checkpoint note key file and returns its path and
// verifier key.
func newNoteKey(t *testing.T, dir string) (path, verifier string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path = filepath.Join(dir, "note.key")
	k, err := trail.LoadOrCreateNoteKey(path, trail.DefaultLogName)
	if err != nil {
		t.Fatal(err)
	}
	return path, k.VerifierKey
}

// copyGatewayData copies the regular files of src (a stopped gateway's data
// directory) into the new directory dst.
func copyGatewayData(t *testing.T, src, dst string) {
	t.Helper()
	if err := os.MkdirAll(dst, 0o700); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// watchWriter creates an identity and a channel on gw and returns the
// writer's channel options and the channel address.
func watchWriter(t *testing.T, gw, dir string) (channelOpts, string) {
	t.Helper()
	ctx := context.Background()
	key := filepath.Join(dir, "writer.key")
	var out bytes.Buffer
	if err := runIdentityNew(ctx, &out, identityNewOpts{out: key, gateway: gw, name: "writer-" + filepath.Base(dir)}); err != nil {
		t.Fatal(err)
	}
	o := channelOpts{gateway: gw, key: key, json: true}
	out.Reset()
	if err := runChannelCreate(ctx, &out, o, channelCreateOpts{name: "watched-" + filepath.Base(dir), typ: "private", topics: []string{"dataset:x"}}); err != nil {
		t.Fatal(err)
	}
	var created struct{ ChannelAddress string }
	if err := json.Unmarshal(out.Bytes(), &created); err != nil {
		t.Fatal(err)
	}
	return o, created.ChannelAddress
}

func writeEntries(t *testing.T, o channelOpts, addr string, payloads ...string) {
	t.Helper()
	for _, p := range payloads {
		if err := runChannelWrite(context.Background(), nil, io.Discard, o, addr, channelWriteOpts{typ: "note", payload: p}); err != nil {
			t.Fatalf("write %q: %v", p, err)
		}
	}
}

// watchOnce runs `channel watch ADDR --once` and returns its output and
// exit code.
func watchOnce(t *testing.T, gw, addr, verifier, state string) (string, int) {
	t.Helper()
	var out bytes.Buffer
	err := runChannelWatch(context.Background(), &out, channelOpts{gateway: gw, json: true}, addr,
		channelWatchOpts{trustGateway: verifier, state: state, once: true})
	if err != nil {
		out.WriteString("error: " + err.Error())
	}
	return out.String(), exitCode(err)
}

func wantWatch(t *testing.T, what string, got string, code, wantCode int, wantText ...string) {
	t.Helper()
	if code != wantCode {
		t.Fatalf("%s: exit %d, want %d; output:\n%s", what, code, wantCode, got)
	}
	for _, w := range wantText {
		if !strings.Contains(got, w) {
			t.Fatalf("%s: output does not contain %q:\n%s", what, w, got)
		}
	}
}

func evidenceFiles(t *testing.T, state string) []string {
	t.Helper()
	m, err := filepath.Glob(state + ".inconsistent-*.json")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func stateSize(t *testing.T, state string) int64 {
	t.Helper()
	b, err := os.ReadFile(state)
	if err != nil {
		t.Fatal(err)
	}
	var st anchor.WatchState
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	return st.Size
}

// TestChannelWatchSplitView runs two gateways that share one note key and
// one history up to entry 1, then diverge: a watcher that has seen one of
// them detects the other's checkpoints as a split view (same size), a
// rewritten history (larger size, consistency proof fails) and a shrunk
// log (smaller size). Every checkpoint involved is correctly signed.
func TestChannelWatchSplitView(t *testing.T) {
	dir := t.TempDir()
	noteKey, verifier := newNoteKey(t, dir)
	d1, d2 := filepath.Join(dir, "gw1"), filepath.Join(dir, "gw2")
	g1 := startLogGateway(t, d1, noteKey)
	w1, addr := watchWriter(t, g1.url, dir)
	writeEntries(t, w1, addr, "e0", "e1")
	state := filepath.Join(dir, "state", "watch.json")

	out, code := watchOnce(t, g1.url, addr, verifier, state)
	wantWatch(t, "first watch", out, code, 0, `"event":"trusted"`, `"size":2`)

	// Fork: copy the stopped gateway's database; both run with the same key.
	g1.Stop()
	copyGatewayData(t, d1, d2)
	g1.start()
	g2 := startLogGateway(t, d2, noteKey)
	w2 := w1
	w1.gateway, w2.gateway = g1.url, g2.url
	writeEntries(t, w1, addr, "honest-2")
	writeEntries(t, w2, addr, "forked-2")

	out, code = watchOnce(t, g1.url, addr, verifier, state)
	wantWatch(t, "honest advance", out, code, 0, `"event":"advanced"`, `"fromSize":2`, `"size":3`)
	out, code = watchOnce(t, g1.url, addr, verifier, state)
	wantWatch(t, "no change", out, code, 0, `"event":"unchanged"`)

	out, code = watchOnce(t, g2.url, addr, verifier, state)
	wantWatch(t, "split view", out, code, exitInvalid, "split view", "size 3", "evidence")
	if n := len(evidenceFiles(t, state)); n != 1 {
		t.Fatalf("%d evidence files after a split view, want 1", n)
	}
	if s := stateSize(t, state); s != 3 {
		t.Fatalf("state size %d after a split view, want 3 (unchanged)", s)
	}

	writeEntries(t, w2, addr, "forked-3")
	out, code = watchOnce(t, g2.url, addr, verifier, state)
	wantWatch(t, "rewritten history", out, code, exitInvalid, "rewritten history", "size 3", "size 4")

	writeEntries(t, w1, addr, "honest-3", "honest-4")
	out, code = watchOnce(t, g1.url, addr, verifier, state)
	wantWatch(t, "honest advance after the fork", out, code, 0, `"event":"advanced"`, `"size":5`)
	out, code = watchOnce(t, g2.url, addr, verifier, state)
	wantWatch(t, "shrank", out, code, exitInvalid, "log shrank", "size 5", "size 4")

	// The evidence holds two notes that both verify with the gateway key.
	ev := evidenceFiles(t, state)
	if len(ev) != 3 {
		t.Fatalf("%d evidence files, want 3", len(ev))
	}
	b, _ := os.ReadFile(ev[0])
	var e anchor.Evidence
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatal(err)
	}
	m := &anchor.Monitor{Channel: addr}
	m.Verifier, _ = loadTrustedGatewayKey(verifier)
	for _, n := range []string{e.Older, e.Newer} {
		if _, err := trail.ParseCheckpoint([]byte(n), m.Origin(), m.Verifier); err != nil {
			t.Fatalf("evidence note does not verify: %v", err)
		}
	}
}

// TestChannelWatchTamperedDB: the operator edits the database of a
// running gateway — drops the newest entries, their log hashes and the
// stored checkpoint so that the gateway signs again — and a watcher
// holding the old checkpoint reports each step.
func TestChannelWatchTamperedDB(t *testing.T) {
	dir := t.TempDir()
	noteKey, verifier := newNoteKey(t, dir)
	data := filepath.Join(dir, "gw")
	g := startLogGateway(t, data, noteKey)
	w, addr := watchWriter(t, g.url, dir)
	writeEntries(t, w, addr, "a0", "a1", "a2", "a3")
	state := filepath.Join(dir, "watch.json")
	out, code := watchOnce(t, g.url, addr, verifier, state)
	wantWatch(t, "first watch", out, code, 0, `"size":4`)

	db, err := sql.Open("sqlite", "file:"+filepath.Join(data, "trail.db")+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`DELETE FROM entries WHERE address = ? AND idx >= 2`, []any{addr}},
		{`DELETE FROM log_hashes WHERE address = ? AND idx >= ?`, []any{addr, tlog.StoredHashIndex(0, 2)}},
		{`DELETE FROM checkpoints WHERE address = ?`, []any{addr}},
	} {
		if _, err := db.Exec(q.sql, q.args...); err != nil {
			t.Fatalf("%s: %v", q.sql, err)
		}
	}
	// A gateway remembers what it signed (DATA/signed, also across a
	// restart) and refuses to sign a fork (trail TestGatewayNeverSignsAFork).
	g.Stop()
	g.start()
	w.gateway = g.url
	out, code = watchOnce(t, g.url, addr, verifier, state)
	wantWatch(t, "restarted gateway on a rolled-back store", out, code, exitUsage, "refusing to sign")
	// An attacker who also controls the gateway's data directory removes
	// that memory: then only the readers can catch it.
	g.Stop()
	if err := os.RemoveAll(filepath.Join(data, "signed")); err != nil {
		t.Fatal(err)
	}
	g.start()
	w.gateway = g.url
	out, code = watchOnce(t, g.url, addr, verifier, state)
	wantWatch(t, "rolled back", out, code, exitInvalid, "log shrank", "size 4", "size 2")

	writeEntries(t, w, addr, "b2", "b3")
	out, code = watchOnce(t, g.url, addr, verifier, state)
	wantWatch(t, "rewritten at the same size", out, code, exitInvalid, "split view", "size 4")

	writeEntries(t, w, addr, "b4")
	out, code = watchOnce(t, g.url, addr, verifier, state)
	wantWatch(t, "rewritten and grown", out, code, exitInvalid, "rewritten history", "size 4", "size 5")
	if s := stateSize(t, state); s != 4 {
		t.Fatalf("state size %d, want 4: an inconsistent checkpoint must never replace the state", s)
	}

	// Tampering with the state file itself is caught too: its summary
	// fields, or the signed note in it.
	b, _ := os.ReadFile(state)
	os.WriteFile(state, bytes.Replace(b, []byte(`"size": 4`), []byte(`"size": 5`), 1), 0o600)
	out, code = watchOnce(t, g.url, addr, verifier, state)
	wantWatch(t, "edited state size", out, code, exitUsage, "disagree")
	os.WriteFile(state, bytes.Replace(b, []byte(`\n4\n`), []byte(`\n5\n`), 1), 0o600)
	out, code = watchOnce(t, g.url, addr, verifier, state)
	wantWatch(t, "edited state note", out, code, exitUsage, "does not verify")
}

// TestChannelWatchBadInput covers the usage and trust errors of watch.
func TestChannelWatchBadInput(t *testing.T) {
	dir := t.TempDir()
	noteKey, verifier := newNoteKey(t, dir)
	g := startLogGateway(t, filepath.Join(dir, "gw"), noteKey)
	w, addr := watchWriter(t, g.url, dir)
	writeEntries(t, w, addr, "x")
	_, otherVerifier := newNoteKey(t, filepath.Join(dir, "other"))
	keyFile := filepath.Join(dir, "verifier.txt")
	os.WriteFile(keyFile, []byte(verifier+"\n"), 0o644)
	good := filepath.Join(dir, "good.json")
	if out, code := watchOnce(t, g.url, addr, keyFile, good); code != 0 {
		t.Fatalf("verifier key from a file: exit %d: %s", code, out)
	}
	other, _ := os.ReadFile(good)
	otherAddrState := filepath.Join(dir, "other-addr.json")
	os.WriteFile(otherAddrState, bytes.Replace(other, []byte(addr), []byte(strings.Repeat("f", 80)+":"+strings.Repeat("0", 24)), 1), 0o600)
	garbage := filepath.Join(dir, "garbage.json")
	os.WriteFile(garbage, []byte("not json"), 0o600)
	hugeKey := filepath.Join(dir, "huge.vkey") // a key file is read with a bound
	os.WriteFile(hugeKey, append([]byte(verifier+"\n"), bytes.Repeat([]byte(" "), 1<<20)...), 0o600)

	for _, tc := range []struct {
		name          string
		gw, addr, key string
		state         string
		code          int
		want          string
	}{
		{"another gateway key", g.url, addr, otherVerifier, filepath.Join(dir, "s1.json"), exitInvalid, "invalid checkpoint"},
		{"state signed by another key", g.url, addr, otherVerifier, good, exitUsage, "unusable watch state"},
		{"state of another channel", g.url, addr, verifier, otherAddrState, exitUsage, "not " + addr},
		{"garbage state", g.url, addr, verifier, garbage, exitUsage, "unusable watch state"},
		{"bad verifier key", g.url, addr, "not-a-key", filepath.Join(dir, "s2.json"), exitUsage, "neither a note verifier key"},
		{"huge verifier key file", g.url, addr, hugeKey, filepath.Join(dir, "s8.json"), exitUsage, "larger than"},
		{"no verifier key", g.url, addr, "", filepath.Join(dir, "s3.json"), exitUsage, "--trust-gateway"},
		{"bad address", g.url, "abc", verifier, filepath.Join(dir, "s4.json"), exitUsage, "malformed"},
		{"no gateway", "", addr, verifier, filepath.Join(dir, "s5.json"), exitUsage, "--gateway"},
		{"unknown channel", g.url, strings.Repeat("e", 80) + ":" + strings.Repeat("1", 24), verifier, filepath.Join(dir, "s6.json"), exitUsage, "404"},
		{"unreachable gateway", "http://127.0.0.1:1", addr, verifier, filepath.Join(dir, "s7.json"), exitUsage, "fetch checkpoint"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("LAKEPROOF_GATEWAY", "")
			out, code := watchOnce(t, tc.gw, tc.addr, tc.key, tc.state)
			wantWatch(t, tc.name, out, code, tc.code, tc.want)
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "s1.json")); err == nil {
		t.Fatal("a state file was written for a checkpoint that does not verify")
	}
}

// TestChannelWatchLoop runs the polling loop through the real command
// line: it follows two advances and ends with status 0 on cancel.
func TestChannelWatchLoop(t *testing.T) {
	dir := t.TempDir()
	noteKey, verifier := newNoteKey(t, dir)
	g := startLogGateway(t, filepath.Join(dir, "gw"), noteKey)
	w, addr := watchWriter(t, g.url, dir)
	writeEntries(t, w, addr, "x")
	state := filepath.Join(dir, "watch.json")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &trailSyncBuf{}
	defer slog.SetDefault(slog.Default()) // the root command replaces it
	root := newRootCmd()
	root.SetArgs([]string{"channel", "watch", addr, "--gateway", g.url, "--trust-gateway", verifier, "--state", state, "--interval", "1s"})
	root.SetOut(out)
	root.SetErr(io.Discard)
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	deadline := time.Now().Add(20 * time.Second)
	waitFor := func(s string) {
		for !strings.Contains(out.String(), s) {
			if time.Now().After(deadline) {
				t.Fatalf("watch output lacks %q:\n%s", s, out.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitFor("trusted on first use: size 1")
	writeEntries(t, w, addr, "y")
	waitFor("size 1 -> 2")
	cancel()
	if err := <-done; exitCode(err) != 0 {
		t.Fatalf("watch after cancel: %v", err)
	}
	if s := stateSize(t, state); s != 2 {
		t.Fatalf("state size %d, want 2", s)
	}
}

// TestChannelWatchFromEmpty starts watching a channel without entries.
func TestChannelWatchFromEmpty(t *testing.T) {
	dir := t.TempDir()
	noteKey, verifier := newNoteKey(t, dir)
	g := startLogGateway(t, filepath.Join(dir, "gw"), noteKey)
	w, addr := watchWriter(t, g.url, dir)
	state := filepath.Join(dir, "watch.json")
	out, code := watchOnce(t, g.url, addr, verifier, state)
	wantWatch(t, "empty channel", out, code, 0, `"event":"trusted"`, `"size":0`)
	writeEntries(t, w, addr, "first")
	out, code = watchOnce(t, g.url, addr, verifier, state)
	wantWatch(t, "first entry", out, code, 0, `"event":"advanced"`, `"fromSize":0`, `"size":1`)
}
