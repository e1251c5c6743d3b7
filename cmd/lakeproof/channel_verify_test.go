package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestChannelVerifyCLI: `lakeproof channel verify` is 0 on an intact
// channel and 1, listing the problem, after a row was altered in the
// database; 2 for a caller who is not the author.
func TestChannelVerifyCLI(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	data := filepath.Join(t.TempDir(), "trail")
	ready, done := make(chan string, 1), make(chan error, 1)
	go func() {
		done <- runServe(ctx, io.Discard, serveOpts{listen: "127.0.0.1:0", data: data, jwtTTL: time.Hour, maxBody: 1 << 20, rateLimit: -1, ready: func(a string) { ready <- a }})
	}()
	var gw string
	select {
	case a := <-ready:
		gw = "http://" + a
	case err := <-done:
		cancel()
		t.Fatalf("serve: %v", err)
	}
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	dir := t.TempDir()
	zKey, cKey := filepath.Join(dir, "z.key"), filepath.Join(dir, "c.key")
	var out bytes.Buffer
	for k, name := range map[string]string{zKey: "author-z", cKey: "other-c"} {
		if err := runIdentityNew(ctx, &out, identityNewOpts{out: k, gateway: gw, name: name}); err != nil {
			t.Fatal(err)
		}
	}
	z := channelOpts{gateway: gw, key: zKey, json: true}
	out.Reset()
	if err := runChannelCreate(ctx, &out, z, channelCreateOpts{name: "verified", typ: "private", topics: []string{"t:s"}}); err != nil {
		t.Fatal(err)
	}
	var created struct {
		ChannelAddress string `json:"channelAddress"`
	}
	if err := json.Unmarshal(out.Bytes(), &created); err != nil {
		t.Fatal(err)
	}
	addr := created.ChannelAddress
	for _, p := range []string{`{"a":1}`, `{"a":2}`, `{"a":3}`} {
		if err := runChannelWrite(ctx, nil, &out, z, addr, channelWriteOpts{typ: "reading", payload: p}); err != nil {
			t.Fatal(err)
		}
	}
	z.json = false
	out.Reset()
	if err := runChannelVerify(ctx, &out, z, addr); err != nil || !strings.Contains(out.String(), "3 entries, no signed checkpoint: intact") {
		t.Fatalf("verify intact channel: %v %q", err, out.String())
	}
	if err := runChannelVerify(ctx, &out, channelOpts{gateway: gw, key: cKey}, addr); exitCode(err) != exitUsage || !strings.Contains(err.Error(), "403") {
		t.Fatalf("verify by a stranger: %v", err)
	}

	db, err := sql.Open("sqlite", "file:"+filepath.Join(data, "trail.db")+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`UPDATE entries SET leaf = replace(leaf, '"a":2', '"a":9') WHERE idx = 1`); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	err = runChannelVerify(ctx, &out, z, addr)
	if exitCode(err) != exitInvalid || !strings.Contains(out.String(), "PROBLEM entry 1: stored leaf hash does not match its bytes") || !strings.Contains(out.String(), "NOT intact") {
		t.Fatalf("verify tampered channel: %v %q", err, out.String())
	}
}
