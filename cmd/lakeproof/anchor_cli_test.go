package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/lakeproof/lakeproof"
	"github.com/lakeproof/lakeproof/anchor"
	"github.com/lakeproof/lakeproof/trail"
)

// gatewayAt runs `lakeproof serve` on the data directory data until the
// returned stop function is called (or the test ends).
func gatewayAt(t *testing.T, data string) (url string, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- runServe(ctx, io.Discard, serveOpts{listen: "127.0.0.1:0", data: data, jwtTTL: time.Hour, maxBody: 1 << 20,
			rateLimit: -1, ready: func(a string) { ready <- a }})
	}()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}
	select {
	case a := <-ready:
		t.Cleanup(stop)
		return "http://" + a, stop
	case err := <-done:
		cancel()
		t.Fatalf("serve: %v", err)
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatal("serve did not start")
	}
	return "", nil
}

// lp runs a lakeproof command line in-process and returns its output
// (stdout and the error message) and exit code.
func lp(t *testing.T, args ...string) (string, int) {
	t.Helper()
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	if err != nil && !errors.As(err, new(reported)) {
		fmt.Fprintf(&out, "lakeproof: %v\n", err)
	}
	return out.String(), exitCode(err)
}

func haveB3sumCLI() bool {
	_, err := exec.LookPath("b3sum")
	return err == nil
}

func noteGenerate(t *testing.T, name string) (skey, vkey string, err error) {
	return note.GenerateKey(rand.Reader, name)
}

func mustLP(t *testing.T, args ...string) string {
	t.Helper()
	out, code := lp(t, args...)
	if code != 0 {
		t.Fatalf("lakeproof %s: exit %d\n%s", strings.Join(args, " "), code, out)
	}
	return out
}

// TestAnchorEndToEnd: over real HTTP with an in-process gateway — identity
// new, channel create, index --anchor, prove, verify with trust (flags,
// trust file, --gateway); then tampering makes the named link fail, and a
// gateway rolled back or forked after the bundle was made is detected.
func TestAnchorEndToEnd(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "gw")
	gw, stop := gatewayAt(t, data)
	wkey, okey := filepath.Join(dir, "writer.key"), filepath.Join(dir, "other.key")
	mustLP(t, "identity", "new", "--out", wkey, "--gateway", gw)
	mustLP(t, "identity", "new", "--out", okey, "--gateway", gw)
	writer, _, err := trail.LoadKeyFile(wkey)
	if err != nil {
		t.Fatal(err)
	}
	other, _, _ := trail.LoadKeyFile(okey)
	var ch struct{ ChannelAddress string }
	if err := json.Unmarshal([]byte(mustLP(t, "channel", "create", "--key", wkey, "--gateway", gw, "--name", "lake",
		"--topic", "dataset:lake", "--json")), &ch); err != nil {
		t.Fatal(err)
	}
	addr := ch.ChannelAddress
	nk, err := trail.LoadNoteKey(filepath.Join(data, "log-note.key"))
	if err != nil {
		t.Fatal(err)
	}
	vkey := nk.VerifierKey

	// Snapshot the gateway before the anchor (for the rollback case).
	stop()
	snap := filepath.Join(dir, "gw-snapshot")
	if err := os.CopyFS(snap, os.DirFS(data)); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(snap)
	for _, e := range ents {
		os.Chmod(filepath.Join(snap, e.Name()), 0o600) // key files must stay private
	}
	gw, stop = gatewayAt(t, data)
	for i := range 2 { // the anchor is not the first entry: its proof path is not empty
		mustLP(t, "channel", "write", addr, "--key", wkey, "--gateway", gw, "--public-payload", fmt.Sprintf(`{"before":%d}`, i))
	}

	lake := filepath.Join(dir, "lake")
	for i := range 6 {
		p := filepath.Join(lake, fmt.Sprintf("d%d", i%2), fmt.Sprintf("part-%d.csv", i))
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte(strings.Repeat(fmt.Sprintf("%d,row\n", i), 10+i)), 0o644)
	}
	idx := filepath.Join(dir, "lake-2026-11.idx")
	out := mustLP(t, "index", lake, "--out", idx, "--anchor", addr, "--gateway", gw, "--key", wkey, "--json")
	if !strings.Contains(out, `"dataset":"lake-2026-11"`) {
		t.Fatalf("index --anchor output: %s", out)
	}
	receiptPath := filepath.Join(idx, anchor.ReceiptName(addr))
	if _, err := os.Stat(receiptPath); err != nil {
		t.Fatal(err)
	}
	// Anchoring twice to one channel is refused; the receipt stays.
	before, _ := os.ReadFile(receiptPath)
	if out, code := lp(t, "anchor", "--index", idx, "--channel", addr, "--gateway", gw, "--key", wkey); code != exitUsage || !strings.Contains(out, "already anchored") {
		t.Fatalf("second anchor: exit %d\n%s", code, out)
	}
	if after, _ := os.ReadFile(receiptPath); !bytes.Equal(before, after) {
		t.Fatal("receipt changed")
	}

	bundle := mustLP(t, "prove", "--index", idx, "d0/part-2.csv")
	b, err := lakeproof.ParseBundle([]byte(bundle))
	if err != nil || b.Format != lakeproof.BundleFormatAnchored {
		t.Fatalf("bundle %v: %s", err, bundle)
	}
	bp := filepath.Join(dir, "bundle.json")
	os.WriteFile(bp, []byte(bundle), 0o644)
	file := filepath.Join(lake, "d0", "part-2.csv")
	out = mustLP(t, "verify", "--proof", bp, file, "--trust-gateway", vkey, "--trust-writer", writer.ID)
	if !strings.Contains(out, "OK anchor") {
		t.Fatalf("verify: %s", out)
	}
	trustFile := filepath.Join(dir, "trust.json")
	tj, _ := json.Marshal(anchor.Trust{Gateways: []string{vkey}, Writers: []string{writer.ID}})
	os.WriteFile(trustFile, tj, 0o644)
	mustLP(t, "verify", "--proof", bp, file, "--trust", trustFile)
	keyFile := filepath.Join(dir, "gateway.vkey") // --trust-gateway also takes a file
	os.WriteFile(keyFile, []byte(vkey+"\n"), 0o644)
	mustLP(t, "verify", "--proof", bp, file, "--trust-gateway", keyFile, "--trust-writer", writer.ID)
	// The independent verifier (docs/FORMAT.md §11) accepts what a real gateway signed.
	if _, err := exec.LookPath("python3"); err == nil && haveB3sumCLI() {
		script, _ := filepath.Abs("../../testdata/independent-verifier/verify.py")
		out, err := exec.Command("python3", script, bp, file, trustFile).CombinedOutput()
		if err != nil && !strings.HasPrefix(string(out), "no ") { // exit 3: no Ed25519 available
			t.Fatalf("independent verifier: %v\n%s", err, out)
		}
	}
	// The version 1 bundle is still available and still verifies.
	v1 := mustLP(t, "prove", "--index", idx, "--no-anchor", "d0/part-2.csv")
	if !strings.Contains(v1, `"lakeproof/proof/v1"`) {
		t.Fatalf("--no-anchor: %s", v1)
	}
	v1p := filepath.Join(dir, "v1.json")
	os.WriteFile(v1p, []byte(v1), 0o644)
	mustLP(t, "verify", "--proof", v1p, file)
	if out, code := lp(t, "verify", "--proof", v1p, file, "--trust", trustFile); code != exitInvalid || !strings.Contains(out, "no anchor level") {
		t.Fatalf("v1 bundle with trust: exit %d\n%s", code, out)
	}
	// A v2 bundle without trust: the dataset level is checked and a note says the rest was not.
	if out := mustLP(t, "verify", "--proof", bp, file); !strings.Contains(out, "anchor level not checked") {
		t.Fatalf("v2 without trust: %s", out)
	}

	// --receipt FILE: the same bundle from a receipt kept elsewhere.
	if got := mustLP(t, "prove", "--index", idx, "--receipt", receiptPath, "d0/part-2.csv"); got != bundle {
		t.Fatalf("prove --receipt differs:\n%s", got)
	}
	// A receipt of another index is refused (exit 1), not glued on.
	lake2 := filepath.Join(dir, "lake2")
	os.MkdirAll(lake2, 0o755)
	os.WriteFile(filepath.Join(lake2, "x.csv"), []byte("x\n"), 0o644)
	idx2 := filepath.Join(dir, "lake2.idx")
	mustLP(t, "index", lake2, "--out", idx2)
	if out, code := lp(t, "prove", "--index", idx2, "--receipt", receiptPath, "x.csv"); code != exitInvalid || !strings.Contains(out, "anchor payload does not match") {
		t.Fatalf("prove with another index's receipt: exit %d\n%s", code, out)
	}
	// --json names the failed link.
	if out, code := lp(t, "verify", "--json", "--proof", bp, file, "--trust-gateway", vkey, "--trust-writer", other.ID); code != exitInvalid || !strings.Contains(out, `"check":"writer-trust"`) {
		t.Fatalf("verify --json, unknown writer: exit %d\n%s", code, out)
	}

	// The channel grows; the gateway's newer checkpoint must extend the bundle's.
	for i := range 3 {
		mustLP(t, "channel", "write", addr, "--key", wkey, "--gateway", gw, "--public-payload", fmt.Sprintf(`{"n":%d}`, i))
	}
	out = mustLP(t, "verify", "--proof", bp, file, "--trust", trustFile, "--gateway", gw)
	if !strings.Contains(out, "OK gateway") {
		t.Fatalf("verify --gateway: %s", out)
	}

	// A receipt lost after the entry was written is remade from the
	// entry (--entry), with the checkpoint signature checked this time.
	r, err := anchor.ParseReceipt(before)
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(receiptPath)
	mustLP(t, "anchor", "--index", idx, "--channel", addr, "--gateway", gw, "--key", wkey, "--entry", fmt.Sprint(r.Index), "--trust-gateway", vkey)
	r2, err := anchor.ReceiptFor(idx, addr)
	if err != nil || r2.Index != r.Index || !bytes.Equal(r2.Entry, r.Entry) {
		t.Fatalf("resumed receipt %+v: %v", r2, err)
	}
	// --entry of an entry that is not this index's anchor is refused.
	if out, code := lp(t, "anchor", "--index", idx, "--channel", addr, "--gateway", gw, "--key", wkey, "--entry", fmt.Sprint(r.Index+1)); code == 0 {
		t.Fatalf("--entry of a non-anchor entry accepted:\n%s", out)
	}
	os.WriteFile(receiptPath, before, 0o644)
	// A reader finds the dataset's latest anchor on the channel.
	c := trail.NewClient(gw)
	_, wpriv, _ := trail.LoadKeyFile(wkey)
	c.ID, c.Key = writer.ID, wpriv
	if err := c.Authenticate(context.Background()); err != nil {
		t.Fatal(err)
	}
	trust := anchor.Trust{Gateways: []string{vkey}, Writers: []string{writer.ID}}
	found, err := anchor.FindLatest(context.Background(), c, addr, "lake-2026-11", trust)
	if err != nil || found.Receipt.Index != r.Index || found.Payload.Root != b.Root {
		t.Fatalf("FindLatest: %+v %v", found, err)
	}
	if _, err := anchor.FindLatest(context.Background(), c, addr, "other", trust); !errors.Is(err, anchor.ErrNoAnchor) {
		t.Fatalf("FindLatest of an unknown dataset: %v", err)
	}
	// index --anchor with an unusable key fails before hashing: no index.
	badIdx := filepath.Join(dir, "bad.idx")
	if out, code := lp(t, "index", lake, "--out", badIdx, "--anchor", addr, "--gateway", gw, "--key", filepath.Join(dir, "missing.key")); code != exitUsage {
		t.Fatalf("index --anchor with a missing key: exit %d\n%s", code, out)
	}
	if _, err := os.Stat(badIdx); !os.IsNotExist(err) {
		t.Fatalf("index written although anchoring could not start: %v", err)
	}

	// Each broken link fails with exit 1 and is named.
	_, wrongKey, _ := noteGenerate(t, "lakeproof-gateway")
	for _, tc := range []struct {
		name  string
		file  string
		args  []string
		check string
	}{
		{"unknown writer", file, []string{"--trust-gateway", vkey, "--trust-writer", other.ID}, "anchor writer is not trusted"},
		{"wrong gateway key", file, []string{"--trust-gateway", wrongKey, "--trust-writer", writer.ID}, "checkpoint signature does not verify"},
		{"changed file", filepath.Join(lake, "d1", "part-1.csv"), []string{"--trust", trustFile}, "content does not match"},
	} {
		out, code := lp(t, append([]string{"verify", "--proof", bp, tc.file}, tc.args...)...)
		t.Logf("%s: exit %d: %s", tc.name, code, out)
		if code != exitInvalid || !strings.Contains(out, tc.check) {
			t.Errorf("%s: exit %d, want 1 naming %q:\n%s", tc.name, code, tc.check, out)
		}
	}
	tamper := func(name string, f func(b *lakeproof.Bundle)) string {
		b, _ := lakeproof.ParseBundle([]byte(bundle))
		f(b)
		p := filepath.Join(dir, name+".json")
		os.WriteFile(p, b.Marshal(), 0o644)
		return p
	}
	for _, tc := range []struct {
		name   string
		mutate func(b *lakeproof.Bundle)
		code   int
		check  string
	}{
		{"altered root", func(b *lakeproof.Bundle) { b.Root[3] ^= 1 }, exitInvalid, "inclusion proof does not lead to the root"},
		{"altered entry", func(b *lakeproof.Bundle) {
			b.Anchor.Entry = strings.Replace(b.Anchor.Entry, `"files":6`, `"files":7`, 1)
		}, exitInvalid, "anchor entry signature does not verify"},
		{"truncated proof path", func(b *lakeproof.Bundle) {
			l := strings.Split(b.Anchor.Proof, "\n")
			b.Anchor.Proof = strings.Join(append(l[:2:2], l[3:]...), "\n")
		}, exitUsage, "malformed proof bundle"},
		{"another channel", func(b *lakeproof.Bundle) {
			b.Anchor.Channel = strings.Repeat("b", 80) + ":" + strings.Repeat("c", 24)
		}, exitInvalid, "for another channel"},
	} {
		p := tamper(strings.ReplaceAll(tc.name, " ", "-"), tc.mutate)
		out, code := lp(t, "verify", "--proof", p, file, "--trust", trustFile)
		t.Logf("%s: exit %d: %s", tc.name, code, out)
		if code != tc.code || !strings.Contains(out, tc.check) {
			t.Errorf("%s: exit %d, want %d naming %q:\n%s", tc.name, code, tc.code, tc.check, out)
		}
	}

	// The gateway is rolled back to before the anchor: the bundle's
	// checkpoint is newer than the gateway's.
	stop()
	gw, stop = gatewayAt(t, snap)
	out, code := lp(t, "verify", "--proof", bp, file, "--trust", trustFile, "--gateway", gw)
	t.Logf("rolled back: exit %d: %s", code, out)
	if code != exitInvalid || !strings.Contains(out, "newer than the gateway") {
		t.Fatalf("rolled-back gateway: exit %d\n%s", code, out)
	}
	// … and then forked: other entries in place of the anchor.
	for i := range 4 {
		mustLP(t, "channel", "write", addr, "--key", wkey, "--gateway", gw, "--public-payload", fmt.Sprintf(`{"fork":%d}`, i))
	}
	out, code = lp(t, "verify", "--proof", bp, file, "--trust", trustFile, "--gateway", gw)
	t.Logf("forked: exit %d: %s", code, out)
	if code != exitInvalid || !strings.Contains(out, "inconsistent") {
		t.Fatalf("forked gateway: exit %d\n%s", code, out)
	}
	stop()
}
