package main

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lakeproof/lakeproof/trail"
)

// TestISClientConformance runs conformance/is-client/scenario.js — the
// seed workflow written against the unmodified @iota/is-client@0.1.19 —
// against `lakeproof serve` on a loopback port.
func TestISClientConformance(t *testing.T) {
	proj, _ := filepath.Abs("../../conformance/is-client")
	node, err := exec.LookPath("node")
	missing := ""
	switch {
	case err != nil:
		missing = "node (Debian package nodejs, v18+)"
	case !trailFileExists(filepath.Join(proj, "node_modules", "@iota", "is-client", "package.json")):
		missing = "conformance/is-client/node_modules (run .ci/setup.d/40-node.sh or npm ci there)"
	}
	if missing != "" {
		if os.Getenv("LAKEPROOF_REQUIRE_SERVERS") == "1" {
			t.Fatalf("missing %s and LAKEPROOF_REQUIRE_SERVERS=1", missing)
		}
		t.Skipf("missing %s", missing)
	}
	dir := t.TempDir()
	admin, err := trail.NewKeyFile()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- runServe(ctx, io.Discard, serveOpts{
			listen: "127.0.0.1:0", data: filepath.Join(dir, "trail"), apiKey: "conformance-key",
			admins: []string{admin.ID}, jwtTTL: time.Hour, maxBody: 1 << 20, rateLimit: -1,
			ready: func(a string) { ready <- a },
		})
	}()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("serve: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not start")
	}
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	tctx, tcancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer tcancel()
	cmd := exec.CommandContext(tctx, node, "scenario.js")
	cmd.Dir = proj
	cmd.Env = append(os.Environ(), "GATEWAY_URL=http://"+addr, "API_KEY=conformance-key", "ADMIN_ID="+admin.ID, "ADMIN_SECRET="+admin.Secret)
	out, err := cmd.CombinedOutput()
	t.Logf("node scenario.js:\n%s", out)
	if err != nil {
		t.Fatalf("scenario failed: %v", err)
	}
	if !strings.Contains(string(out), " passed, 0 failed") {
		t.Fatal("scenario did not report its result")
	}
}

func trailFileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
