package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// startTrailGateway runs `lakeproof serve` (runServe) on a loopback port
// for the test, with a fresh data directory, and returns its URL.
func startTrailGateway(t *testing.T, admins ...string) string {
	t.Helper()
	return startServe(t, serveOpts{data: filepath.Join(t.TempDir(), "trail"), admins: admins})
}

type trailSyncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *trailSyncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *trailSyncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestChannelCLI(t *testing.T) {
	gw := startTrailGateway(t)
	ctx := context.Background()
	dir := t.TempDir()
	zKey, cKey := filepath.Join(dir, "z.key"), filepath.Join(dir, "c.key")
	var out bytes.Buffer
	if err := runIdentityNew(ctx, &out, identityNewOpts{out: zKey, gateway: gw, name: "sensor-z", claimType: "Device"}); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(zKey); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode: %v %v", st.Mode(), err)
	}
	if err := runIdentityNew(ctx, &out, identityNewOpts{out: cKey, gateway: gw, name: "tool-c", json: true}); err != nil {
		t.Fatal(err)
	}
	var cID struct{ ID string }
	json.Unmarshal([]byte(out.String()[strings.LastIndex(strings.TrimSpace(out.String()), "\n")+1:]), &cID)
	if !strings.HasPrefix(cID.ID, "did:key:z") {
		t.Fatalf("identity new --json: %q", out.String())
	}
	if err := runIdentityNew(ctx, &out, identityNewOpts{out: cKey}); err == nil || exitCode(err) != exitUsage {
		t.Fatalf("overwriting a key file: %v", err)
	}
	out.Reset()
	if err := runIdentityShow(ctx, &out, identityShowOpts{key: zKey, json: true}); err != nil || !strings.Contains(out.String(), `"registered":true`) {
		t.Fatalf("identity show: %v %s", err, out.String())
	}
	os.Chmod(zKey, 0o644)
	if err := runIdentityShow(ctx, &out, identityShowOpts{key: zKey}); exitCode(err) != exitUsage {
		t.Fatalf("world-readable key accepted: %v", err)
	}
	os.Chmod(zKey, 0o600)

	z, c := channelOpts{gateway: gw, key: zKey}, channelOpts{gateway: gw, key: cKey}
	out.Reset()
	zj := z
	zj.json = true
	if err := runChannelCreate(ctx, &out, zj, channelCreateOpts{name: "channel-a", typ: "private", topics: []string{"threat:sensor-z"}}); err != nil {
		t.Fatal(err)
	}
	var created struct {
		ChannelAddress string `json:"channelAddress"`
	}
	if err := json.Unmarshal(out.Bytes(), &created); err != nil || len(created.ChannelAddress) != 105 {
		t.Fatalf("channel create --json printed %q", out.String())
	}
	addr := created.ChannelAddress
	if err := runChannelCreate(ctx, &out, z, channelCreateOpts{name: "x", topics: []string{"notopic"}}); exitCode(err) != exitUsage {
		t.Fatalf("bad --topic: %v", err)
	}
	out.Reset()
	if err := runChannelSearch(ctx, &out, c, channelSearchOpts{topicSource: "SENSOR-Z", limit: 10}); err != nil || !strings.Contains(out.String(), addr) {
		t.Fatalf("search: %v %q", err, out.String())
	}
	if err := runChannelSubscribe(ctx, &out, c, addr, "Read"); err != nil {
		t.Fatal(err)
	}
	if _, err := runChannelReadErr(ctx, c, addr); err == nil {
		t.Fatal("read before authorization succeeded")
	}
	if err := runChannelAuthorize(ctx, &out, z, addr, cID.ID, "", false); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := runChannelSubscriptions(ctx, &out, z, addr); err != nil || !strings.Contains(out.String(), cID.ID) {
		t.Fatalf("subscriptions: %v %q", err, out.String())
	}

	// follow prints entries as they arrive.
	fctx, cancel := context.WithCancel(ctx)
	var followed trailSyncBuf
	fdone := make(chan error, 1)
	cj := c
	cj.json = true
	go func() { fdone <- runChannelFollow(fctx, &followed, cj, addr, 0) }()
	time.Sleep(200 * time.Millisecond)
	for _, p := range []string{`{"ports":[22]}`, "plain text"} {
		if err := runChannelWrite(ctx, nil, &out, z, addr, channelWriteOpts{typ: "alert", payload: p}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for strings.Count(followed.String(), "\n") < 2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-fdone; err != nil {
		t.Fatalf("follow: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(followed.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], `"index":0`) || !strings.Contains(lines[1], `"plain text"`) {
		t.Fatalf("follow printed %q", followed.String())
	}
	got, err := runChannelReadErr(ctx, c, addr)
	if err != nil || !strings.Contains(got, "#0 ") || !strings.Contains(got, "#1 ") {
		t.Fatalf("read: %v %q", err, got)
	}
	if err := runChannelWrite(ctx, nil, &out, c, addr, channelWriteOpts{typ: "x"}); err == nil {
		t.Fatal("read-only subscriber wrote")
	}
	if err := runChannelAuthorize(ctx, &out, z, addr, cID.ID, "", true); err != nil {
		t.Fatal(err)
	}
	if _, err := runChannelReadErr(ctx, c, addr); err == nil {
		t.Fatal("revoked reader read")
	}
}

func runChannelReadErr(ctx context.Context, o channelOpts, addr string) (string, error) {
	var b bytes.Buffer
	err := runChannelRead(ctx, &b, o, addr, channelReadOpts{})
	return b.String(), err
}
