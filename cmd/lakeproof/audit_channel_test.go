package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lakeproof/lakeproof/anchor"
	"github.com/lakeproof/lakeproof/trail"
)

// lpCmd runs the real command line in-process and returns stdout, the
// error text and the exit code.
func lpCmd(t *testing.T, args ...string) (string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	defer slog.SetDefault(slog.Default()) // the root command replaces it
	root := newRootCmd()
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&errb)
	err := root.ExecuteContext(context.Background())
	if err != nil {
		out.WriteString("\nerror: " + err.Error())
	}
	if s := errb.String(); strings.Contains(s, "panic") || strings.Contains(s, "goroutine") {
		t.Fatalf("lakeproof %s: stderr: %s", strings.Join(args, " "), s)
	}
	return out.String(), exitCode(err)
}

func wantLP(t *testing.T, code int, want []string, args ...string) string {
	t.Helper()
	out, got := lpCmd(t, args...)
	if got != code {
		t.Fatalf("lakeproof %s: exit %d, want %d:\n%s", strings.Join(args, " "), got, code, out)
	}
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Fatalf("lakeproof %s: output lacks %q:\n%s", strings.Join(args, " "), w, out)
		}
	}
	return out
}

func auditWriteFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for k, v := range files {
		p := filepath.Join(dir, filepath.FromSlash(k))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// auditIdentity creates a key file registered on gw and returns its path and DID.
func auditIdentity(t *testing.T, gw, path, name string) string {
	t.Helper()
	var out bytes.Buffer
	if err := runIdentityNew(context.Background(), &out, identityNewOpts{out: path, gateway: gw, name: name, json: true}); err != nil {
		t.Fatal(err)
	}
	k, _, err := trail.LoadKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return k.ID
}

// TestAuditChannel: a writer indexes and anchors a dataset; a reader
// audits received copies against the channel: exact copies pass, altered
// ones fail with per-key detail when the anchored index is given, and
// anchors by untrusted writers, a wrong gateway key, a wrong index and a
// gateway that alters entries are all caught.
func TestAuditChannel(t *testing.T) {
	dir := t.TempDir()
	noteKey, verifier := newNoteKey(t, dir)
	data := filepath.Join(dir, "gw")
	g := startLogGateway(t, data, noteKey)
	gw := g.url
	wKey, rKey, xKey := filepath.Join(dir, "w.key"), filepath.Join(dir, "r.key"), filepath.Join(dir, "x.key")
	wDID := auditIdentity(t, gw, wKey, "writer")
	rDID := auditIdentity(t, gw, rKey, "reader")
	xDID := auditIdentity(t, gw, xKey, "other-writer")

	out := wantLP(t, 0, nil, "channel", "create", "--gateway", gw, "--key", wKey, "--name", "lakes", "--topic", "dataset:sales", "--json")
	var created struct{ ChannelAddress string }
	if err := json.Unmarshal([]byte(out), &created); err != nil {
		t.Fatal(err)
	}
	addr := created.ChannelAddress
	wantLP(t, 0, nil, "channel", "subscribe", addr, "--gateway", gw, "--key", rKey, "--rights", "Read")
	wantLP(t, 0, nil, "channel", "authorize", addr, "--gateway", gw, "--key", wKey, "--id", rDID)
	wantLP(t, 0, nil, "channel", "subscribe", addr, "--gateway", gw, "--key", xKey, "--rights", "ReadAndWrite")
	wantLP(t, 0, nil, "channel", "authorize", addr, "--gateway", gw, "--key", wKey, "--id", xDID)

	lake := filepath.Join(dir, "lake")
	files := map[string]string{"a.csv": "1,2,3\n", "b/c.parquet": "PAR1 c", "b/d.parquet": "PAR1 d", "e.json": "{}"}
	auditWriteFiles(t, lake, files)
	idx := filepath.Join(dir, "sales.idx")
	wantLP(t, 0, nil, "index", lake, "--out", idx, "--quiet")
	wantLP(t, 0, nil, "channel", "write", addr, "--gateway", gw, "--key", wKey, "--type", "note", "--payload", "before the anchor")
	wantLP(t, 0, nil, "anchor", "--index", idx, "--channel", addr, "--key", wKey, "--gateway", gw, "--trust-gateway", verifier)
	wantLP(t, 0, nil, "channel", "write", addr, "--gateway", gw, "--key", wKey, "--type", "note", "--payload", "after the anchor")

	reader := []string{"--channel", addr, "--gateway", gw, "--key", rKey, "--trust-gateway", verifier, "--trust-writer", wDID}
	audit := func(code int, want []string, src string, extra ...string) string {
		t.Helper()
		return wantLP(t, code, want, append(append([]string{"audit", src}, reader...), extra...)...)
	}

	// Exact copy: with the dataset name, with the index, and with neither
	// (the channel's only dataset).
	audit(0, []string{"result   OK", "entry 1 by " + wDID, "dataset  sales"}, lake, "--dataset", "sales")
	audit(0, []string{"matched  4", "result   OK"}, lake, "--index", idx)
	audit(0, []string{"result   OK"}, lake)
	out = audit(0, nil, lake, "--json")
	var js auditChannelOutput
	if err := json.Unmarshal([]byte(out), &js); err != nil || !js.Match || js.Anchor.Index != 1 || js.Files != 4 || js.Anchor.Payload.Dataset != "sales" {
		t.Fatalf("--json: %v %s", err, out)
	}

	// A JWT instead of a key file.
	c := trail.NewClient(gw)
	k, priv, _ := trail.LoadKeyFile(rKey)
	c.ID, c.Key = k.ID, priv
	if err := c.Authenticate(context.Background()); err != nil {
		t.Fatal(err)
	}
	wantLP(t, 0, []string{"result   OK"}, "audit", lake, "--channel", addr, "--gateway", gw, "--jwt", c.JWT(), "--trust-gateway", verifier, "--trust-writer", wDID)
	// A trust file instead of flags.
	trustFile := filepath.Join(dir, "trust.json")
	tb, _ := json.Marshal(map[string][]string{"gateways": {verifier}, "writers": {wDID}})
	os.WriteFile(trustFile, tb, 0o644)
	wantLP(t, 0, []string{"result   OK"}, "audit", lake, "--channel", addr, "--gateway", gw, "--key", rKey, "--trust", trustFile)

	// A copy on S3 (a real S3 server, versitygw), with the anchored index.
	t.Run("s3", func(t *testing.T) {
		srv := s3Env(t, true)
		bucket := srv.NewBucket(t)
		for k, v := range files {
			srv.Put(t, bucket, "lake/"+k, []byte(v))
		}
		uri := "s3://" + bucket + "/lake"
		audit(0, []string{"result   OK", "source   " + uri}, uri, "--index", idx)
		srv.Put(t, bucket, "lake/e.json", []byte("{ }"))
		audit(1, []string{"changed  e.json", "result   DIFFERENT"}, uri, "--index", idx)
	})

	// An altered copy: changed, missing and extra keys.
	bad := filepath.Join(dir, "bad")
	auditWriteFiles(t, bad, map[string]string{"a.csv": "1,2,4\n", "b/c.parquet": "PAR1 c", "e.json": "{}", "z.txt": "new"})
	audit(1, []string{"result   DIFFERENT", "run again with --index"}, bad, "--dataset", "sales")
	audit(1, []string{"changed  a.csv", "missing  b/d.parquet", "extra    z.txt", "matched  2", "result   DIFFERENT"}, bad, "--index", idx)

	// --index must be the anchored index.
	badIdx := filepath.Join(dir, "bad.idx")
	wantLP(t, 0, nil, "index", bad, "--out", badIdx, "--quiet")
	audit(1, []string{"is not the anchored index"}, bad, "--index", badIdx, "--dataset", "sales")

	// Another writer anchors the altered copy under the same name: the
	// reader who trusts only the first writer ignores it (and says so);
	// one who trusts the other writer gets that anchor.
	wantLP(t, 0, nil, "anchor", "--index", badIdx, "--dataset", "sales", "--channel", addr, "--key", xKey, "--gateway", gw, "--trust-gateway", verifier)
	audit(0, []string{"result   OK", "ignored  newer entry 3 by " + xDID, "not trusted"}, lake, "--index", idx)
	wantLP(t, 0, []string{"result   OK", "entry 3 by " + xDID}, "audit", bad, "--channel", addr, "--gateway", gw, "--key", rKey,
		"--trust-gateway", verifier, "--trust-writer", xDID, "--dataset", "sales")
	// Two trusted writers: the newest anchor wins.
	audit(1, []string{"entry 3 by " + xDID, "DIFFERENT"}, lake, "--dataset", "sales", "--trust-writer", xDID)

	// Two datasets on the channel: without --dataset or --index, ask.
	other := filepath.Join(dir, "other.idx")
	wantLP(t, 0, nil, "index", lake, "--out", other, "--quiet")
	wantLP(t, 0, nil, "anchor", "--index", other, "--channel", addr, "--key", wKey, "--gateway", gw, "--trust-gateway", verifier)
	audit(2, []string{"2 datasets (other, sales)", "--dataset"}, lake)
	audit(0, []string{"dataset  other", "result   OK"}, lake, "--dataset", "other")

	// Trust and access failures.
	_, otherVerifier := newNoteKey(t, filepath.Join(dir, "k2"))
	for _, tc := range []struct {
		name string
		code int
		want string
		args []string
	}{
		{"no trusted anchor", 1, "no anchor found", []string{"audit", lake, "--channel", addr, "--gateway", gw, "--key", rKey, "--trust-gateway", verifier, "--trust-writer", rDID, "--dataset", "sales"}},
		{"unknown dataset", 1, `dataset "nope"`, append(append([]string{"audit", lake}, reader...), "--dataset", "nope")},
		{"wrong gateway key", 1, "checkpoint signature does not verify", []string{"audit", lake, "--channel", addr, "--gateway", gw, "--key", rKey, "--trust-gateway", otherVerifier, "--trust-writer", wDID}},
		{"no trust-writer", 2, "--trust-writer", []string{"audit", lake, "--channel", addr, "--gateway", gw, "--key", rKey, "--trust-gateway", verifier}},
		{"no trust-gateway", 2, "--trust-gateway", []string{"audit", lake, "--channel", addr, "--gateway", gw, "--key", rKey, "--trust-writer", wDID}},
		{"bad trust-writer", 2, "--trust-writer", []string{"audit", lake, "--channel", addr, "--gateway", gw, "--key", rKey, "--trust-gateway", verifier, "--trust-writer", "did:web:x"}},
		{"bad channel", 2, "not a channel address", []string{"audit", lake, "--channel", "xyz", "--gateway", gw, "--key", rKey, "--trust-gateway", verifier, "--trust-writer", wDID}},
		{"no credentials", 2, "--key FILE", []string{"audit", lake, "--channel", addr, "--gateway", gw, "--trust-gateway", verifier, "--trust-writer", wDID}},
		{"key and jwt", 2, "not both", append(append([]string{"audit", lake}, reader...), "--jwt", "x")},
		{"append-only", 2, "--append-only", append(append([]string{"audit", lake}, reader...), "--append-only")},
		{"channel flags without channel", 2, "only apply with --channel", []string{"audit", lake, "--index", idx, "--trust-writer", wDID}},
		{"missing index", 2, "", append(append([]string{"audit", lake}, reader...), "--index", filepath.Join(dir, "none.idx"))},
		{"missing source", 2, "", append([]string{"audit", filepath.Join(dir, "none")}, reader...)},
		{"missing key file", 2, "key file", []string{"audit", lake, "--channel", addr, "--gateway", gw, "--key", rKey + ".none", "--trust-gateway", verifier, "--trust-writer", wDID}},
	} {
		t.Run(tc.name, func(t *testing.T) { wantLP(t, tc.code, []string{tc.want}, tc.args...) })
	}
	// An identity without read rights.
	nKey := filepath.Join(dir, "n.key")
	auditIdentity(t, gw, nKey, "nobody")
	wantLP(t, 2, []string{"Read rights"}, "audit", lake, "--channel", addr, "--gateway", gw, "--key", nKey, "--trust-gateway", verifier, "--trust-writer", wDID)

	// The gateway alters an entry newer than the anchor in its database
	// (say, to hide a newer anchor): the read no longer matches the signed
	// checkpoint.
	db, err := sql.Open("sqlite", "file:"+filepath.Join(data, "trail.db")+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var leaf []byte
	if err := db.QueryRow(`SELECT leaf FROM entries WHERE address = ? AND idx = 2`, addr).Scan(&leaf); err != nil {
		t.Fatal(err)
	}
	tampered := bytes.Replace(leaf, []byte("after the anchor"), []byte("AFTER the anchor"), 1)
	if bytes.Equal(tampered, leaf) {
		t.Fatal("tamper did not change entry 2")
	}
	if _, err := db.Exec(`UPDATE entries SET leaf = ? WHERE address = ? AND idx = 2`, tampered, addr); err != nil {
		t.Fatal(err)
	}
	audit(1, []string{"entry 2 as read is not the entry the checkpoint"}, lake, "--index", idx)

	// The gateway withholds an entry (a newer anchor) from its reads.
	if _, err := db.Exec(`DELETE FROM entries WHERE address = ? AND idx = 3`, addr); err != nil {
		t.Fatal(err)
	}
	audit(1, []string{"skipped entries 3 to 3"}, lake, "--index", idx)
}

// BenchmarkFindLatest measures how long a reader takes to find and
// authenticate a dataset's anchor followed by LAKEPROOF_BENCH_AFTER
// (default 2000) other entries on a real gateway (SQLite).
func BenchmarkFindLatest(b *testing.B) {
	after := 2000
	if v := os.Getenv("LAKEPROOF_BENCH_AFTER"); v != "" {
		fmt.Sscan(v, &after)
	}
	dir := b.TempDir()
	noteKeyPath := filepath.Join(dir, "note.key")
	k, err := trail.LoadOrCreateNoteKey(noteKeyPath, trail.DefaultLogName)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	ready := make(chan string, 1)
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- runServe(sctx, io.Discard, serveOpts{listen: "127.0.0.1:0", data: filepath.Join(dir, "gw"), noteKey: noteKeyPath, logName: trail.DefaultLogName,
			jwtTTL: time.Hour, maxBody: 1 << 20, rateLimit: -1, ready: func(a string) { ready <- a }})
	}()
	gw := "http://" + <-ready
	defer func() { cancel(); <-done }()
	wKey := filepath.Join(dir, "w.key")
	var out bytes.Buffer
	if err := runIdentityNew(ctx, &out, identityNewOpts{out: wKey, gateway: gw, name: "bench-writer"}); err != nil {
		b.Fatal(err)
	}
	o := channelOpts{gateway: gw, key: wKey, json: true}
	out.Reset()
	if err := runChannelCreate(ctx, &out, o, channelCreateOpts{name: "bench", typ: "private", topics: []string{"dataset:x"}}); err != nil {
		b.Fatal(err)
	}
	var created struct{ ChannelAddress string }
	json.Unmarshal(out.Bytes(), &created)
	addr := created.ChannelAddress
	lake := filepath.Join(dir, "lake")
	os.MkdirAll(lake, 0o755)
	os.WriteFile(filepath.Join(lake, "f"), []byte("x"), 0o644)
	idx := filepath.Join(dir, "bench.idx")
	if _, err := runIndex(ctx, indexOptions{Source: lake, Out: idx, Quiet: true}, io.Discard, io.Discard); err != nil {
		b.Fatal(err)
	}
	c, err := o.client(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := anchor.Anchor(ctx, idx, anchor.Options{Client: c, Channel: addr, Tool: "bench"}); err != nil {
		b.Fatal(err)
	}
	for i := range after {
		if _, err := c.Write(ctx, addr, trail.Log{Type: "note", Payload: json.RawMessage(fmt.Sprintf(`{"i":%d}`, i))}); err != nil {
			b.Fatal(err)
		}
	}
	trust := anchor.Trust{Gateways: []string{k.VerifierKey}, Writers: []string{c.ID}}
	b.ResetTimer()
	for b.Loop() {
		f, err := anchor.FindLatest(ctx, c, addr, "bench", trust)
		if err != nil || f.Receipt.Index != 0 {
			b.Fatalf("%v %d", err, f.Receipt.Index)
		}
	}
	b.ReportMetric(float64(after), "entries-after")
}
