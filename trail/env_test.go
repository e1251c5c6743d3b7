package trail_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lakeproof/lakeproof/trail"
	"github.com/lakeproof/lakeproof/trail/sqlite"
)

// env is a gateway on a loopback port with a real SQLite store.
type env struct {
	t      testing.TB
	url    string
	dir    string
	srv    *trail.Server
	store  *sqlite.Store
	hs     *httptest.Server
	skew   atomic.Int64 // added to the server clock, in ns
	admin  *trail.Client
	secret []byte
	// noteKey signs channel checkpoints.
	noteKey *trail.NoteKey
	cfg     trail.Config // for restart (fork_test.go)
}

func newEnv(t testing.TB, mods ...func(*trail.Config)) *env {
	t.Helper()
	e := &env{t: t, dir: t.TempDir()}
	ctx := context.Background()
	st, err := sqlite.Open(ctx, e.dir)
	if err != nil {
		t.Fatal(err)
	}
	e.store = st
	_, gw, _ := ed25519.GenerateKey(rand.Reader)
	adminPub, adminKey, _ := ed25519.GenerateKey(rand.Reader)
	e.secret = bytes.Repeat([]byte{7}, 32)
	nk, err := trail.LoadOrCreateNoteKey(filepath.Join(e.dir, "log-note.key"), "test-gateway")
	if err != nil {
		t.Fatal(err)
	}
	e.noteKey = nk
	cfg := trail.Config{
		Store: st, GatewayKey: gw, JWTSecret: e.secret, RateLimit: -1, NoteKey: nk,
		Admins: []string{trail.DIDFromPublicKey(adminPub)},
		Now:    func() time.Time { return time.Now().Add(time.Duration(e.skew.Load())) },
	}
	for _, m := range mods {
		m(&cfg)
	}
	e.cfg = cfg
	srv, err := trail.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.srv = srv
	e.hs = httptest.NewServer(srv.Handler())
	e.hs.Config.RegisterOnShutdown(srv.Close)
	e.url = e.hs.URL
	t.Cleanup(func() {
		srv.Close()
		e.hs.Close()
		st.Close()
	})
	e.admin = e.clientFor(adminKey)
	e.admin.APIKey = cfg.APIKey
	if err := e.admin.Authenticate(ctx); err != nil {
		t.Fatalf("admin login: %v", err)
	}
	return e
}

func (e *env) clientFor(key ed25519.PrivateKey) *trail.Client {
	c := trail.NewClient(e.url)
	c.Key = key
	c.ID = trail.DIDFromPublicKey(key.Public().(ed25519.PublicKey))
	return c
}

// user registers and logs in a new identity.
func (e *env) user(name string) *trail.Client {
	e.t.Helper()
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	c := e.clientFor(key)
	ctx := context.Background()
	if err := c.Register(ctx, name, map[string]string{"type": "Person"}); err != nil {
		e.t.Fatalf("register %s: %v", name, err)
	}
	if err := c.Authenticate(ctx); err != nil {
		e.t.Fatalf("login %s: %v", name, err)
	}
	return c
}

// raw sends a request and returns status and body.
func (e *env) raw(method, path, jwt string, body []byte) (int, []byte) {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, e.url+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if jwt != "" {
		req.Header.Set("Authorization", "Bearer "+jwt)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// wantStatus asserts a status and an {"error": …} body for errors.
func (e *env) wantStatus(t *testing.T, method, path, jwt string, body []byte, want int) []byte {
	t.Helper()
	code, b := e.raw(method, path, jwt, body)
	if code != want {
		t.Fatalf("%s %s: status %d, want %d; body %s", method, path, code, want, b)
	}
	if code >= 400 {
		var er struct {
			Error string `json:"error"`
		}
		if err := json.Unmarshal(b, &er); err != nil || er.Error == "" {
			t.Fatalf("%s %s: error body %q is not {\"error\": …}", method, path, b)
		}
	}
	return b
}

func (e *env) channel(c *trail.Client, name, typ string) string {
	e.t.Helper()
	addr, err := c.CreateChannel(context.Background(), trail.CreateChannelRequest{Name: name, Type: typ, Topics: []trail.Topic{{Type: "sensor-data", Source: "sensor-z"}}})
	if err != nil {
		e.t.Fatalf("create channel %s: %v", name, err)
	}
	return addr
}

func wantCode(t *testing.T, err error, code int) {
	t.Helper()
	if got := trail.StatusOf(err); got != code {
		t.Fatalf("got %v (status %d), want status %d", err, got, code)
	}
}
