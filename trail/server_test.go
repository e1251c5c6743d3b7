package trail_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lakeproof/lakeproof/trail"
	"github.com/lakeproof/lakeproof/trail/sqlite"
)

// TestSeedWorkflow runs the IS use case: X registers Y and sensor Z, A
// registers B and tool C; Z creates channel A; C finds it by metadata and
// asks to subscribe; Z authorizes C as reader; Z writes; C is notified
// over server-sent events and can validate what it got.
func TestSeedWorkflow(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	companyX, companyA := e.user("company-x"), e.user("company-a")
	_ = companyX
	_ = companyA
	e.user("employee-y")
	e.user("employee-b")
	z, c := e.user("sensor-z"), e.user("tool-c")

	addr := e.channel(z, "channel-a", "private")
	found, err := c.SearchChannels(ctx, url.Values{"topic-type": {"SENSOR"}, "topic-source": {"sensor-z"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(found) != 1 || found[0].ChannelAddress != addr || found[0].AuthorID != z.ID {
		t.Fatalf("search found %+v", found)
	}
	if _, err := c.RequestSubscription(ctx, addr, trail.RightRead); err != nil {
		t.Fatal(err)
	}
	subs, err := z.Subscriptions(ctx, addr)
	if err != nil || len(subs) != 2 {
		t.Fatalf("subscriptions: %v %+v", err, subs)
	}
	if err := z.Authorize(ctx, addr, c.ID, ""); err != nil {
		t.Fatal(err)
	}

	got := make(chan trail.ChannelData, 10)
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go c.Follow(fctx, addr, 0, func(d trail.ChannelData) error { got <- d; return nil })

	for i := 0; i < 3; i++ {
		if _, err := z.Write(ctx, addr, trail.Log{Type: "threat", Payload: json.RawMessage(fmt.Sprintf(`{"level":%d}`, i))}); err != nil {
			t.Fatal(err)
		}
	}
	var recv []trail.ChannelData
	for len(recv) < 3 {
		select {
		case d := <-got:
			recv = append(recv, d)
		case <-time.After(5 * time.Second):
			t.Fatalf("notified of %d entries, want 3", len(recv))
		}
	}
	for i, d := range recv {
		if d.Index != int64(i) || d.Source.ID != z.ID || d.Signer != z.ID {
			t.Fatalf("entry %d: %+v", i, d)
		}
		if err := d.SignedEntry(addr).Verify(); err != nil {
			t.Fatalf("entry %d does not verify offline: %v", i, err)
		}
	}
	res, err := c.Validate(ctx, addr, recv)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if !r.IsValid {
			t.Fatalf("validate: %+v", r)
		}
	}
	read, err := c.Read(ctx, addr, url.Values{"asc": {"true"}})
	if err != nil || len(read) != 3 || read[0].Index != 0 {
		t.Fatalf("read: %v %+v", err, read)
	}
}

func TestProveOwnershipAttacks(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	u := e.user("alice")
	path := "/api/v0.1/authentication/prove-ownership/" + u.ID
	nonce := func() string {
		var n struct{ Nonce string }
		b := e.wantStatus(t, "GET", path, "", nil, 200)
		json.Unmarshal(b, &n)
		if len(n.Nonce) != 40 {
			t.Fatalf("nonce %q", n.Nonce)
		}
		return n.Nonce
	}
	body := func(sig []byte) []byte {
		b, _ := json.Marshal(map[string]string{"signedNonce": hex.EncodeToString(sig)})
		return b
	}

	t.Run("wrong key", func(t *testing.T) {
		_, other, _ := ed25519.GenerateKey(rand.Reader)
		n := nonce()
		e.wantStatus(t, "POST", path, "", body(ed25519.Sign(other, trail.NonceDigest(n))), 401)
	})
	t.Run("signature over the nonce itself, not its digest", func(t *testing.T) {
		n := nonce()
		e.wantStatus(t, "POST", path, "", body(ed25519.Sign(u.Key, []byte(n))), 401)
	})
	t.Run("reused nonce", func(t *testing.T) {
		n := nonce()
		sig := body(ed25519.Sign(u.Key, trail.NonceDigest(n)))
		e.wantStatus(t, "POST", path, "", sig, 200)
		e.wantStatus(t, "POST", path, "", sig, 401)
	})
	t.Run("expired nonce", func(t *testing.T) {
		n := nonce()
		e.skew.Store(int64(6 * time.Minute))
		defer e.skew.Store(0)
		e.wantStatus(t, "POST", path, "", body(ed25519.Sign(u.Key, trail.NonceDigest(n))), 401)
	})
	t.Run("malformed", func(t *testing.T) {
		e.wantStatus(t, "POST", path, "", []byte(`{"signedNonce":"zz"}`), 400)
		e.wantStatus(t, "POST", path, "", []byte(`{"signedNonce":`), 400)
		e.wantStatus(t, "GET", "/api/v0.1/authentication/prove-ownership/did:iota:abc", "", nil, 400)
	})
	t.Run("unknown identity", func(t *testing.T) {
		pub, _, _ := ed25519.GenerateKey(rand.Reader)
		e.wantStatus(t, "GET", "/api/v0.1/authentication/prove-ownership/"+trail.DIDFromPublicKey(pub), "", nil, 404)
	})
	t.Run("two logins in parallel both work", func(t *testing.T) {
		n1, n2 := nonce(), nonce()
		e.wantStatus(t, "POST", path, "", body(ed25519.Sign(u.Key, trail.NonceDigest(n2))), 200)
		e.wantStatus(t, "POST", path, "", body(ed25519.Sign(u.Key, trail.NonceDigest(n1))), 200)
	})
	_ = ctx
}

func TestJWTAttacks(t *testing.T) {
	e := newEnv(t)
	u := e.user("bob")
	p := "/api/v0.1/channel-info/search"
	e.wantStatus(t, "GET", p, u.JWT(), nil, 200)
	forged, _ := trail.SignJWT(bytes.Repeat([]byte{8}, 32), trail.TokenUser{ID: u.ID, Role: trail.RoleAdmin}, time.Now(), time.Hour)
	parts := strings.Split(u.JWT(), ".")
	noneTok := "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0." + parts[1] + "."
	for name, tok := range map[string]string{
		"forged":    forged,
		"alg none":  noneTok,
		"garbage":   "not.a.jwt",
		"truncated": parts[0] + "." + parts[1],
	} {
		t.Run(name, func(t *testing.T) { e.wantStatus(t, "GET", p, tok, nil, 401) })
	}
	t.Run("expired", func(t *testing.T) {
		e.skew.Store(int64(2 * time.Hour))
		defer e.skew.Store(0)
		e.wantStatus(t, "GET", p, u.JWT(), nil, 401)
	})
	t.Run("missing", func(t *testing.T) { e.wantStatus(t, "GET", p, "", nil, 401) })
	t.Run("deleted identity", func(t *testing.T) {
		v := e.user("victor")
		addr := e.channel(v, "victors", "public")
		w := "/api/v0.1/channels/logs/" + addr
		e.wantStatus(t, "POST", w, v.JWT(), []byte(`{"type":"before"}`), 200)
		e.wantStatus(t, "DELETE", "/api/v0.1/identities/identity/"+v.ID, v.JWT(), nil, 200)
		e.wantStatus(t, "GET", p, v.JWT(), nil, 401)
		// The write route checks the registration inside the append
		// transaction; a deleted author gets 401 there too, and 401 wins
		// over what else is wrong with the request.
		e.wantStatus(t, "POST", w, v.JWT(), []byte(`{"type":"after"}`), 401)
		e.wantStatus(t, "POST", w, v.JWT(), []byte(`{"type":`), 401)
		e.wantStatus(t, "POST", "/api/v0.1/channels/logs/"+strings.Repeat("ab", 40)+":"+strings.Repeat("cd", 12), v.JWT(), []byte(`{"type":"x"}`), 401)
	})
	t.Run("stale role in token", func(t *testing.T) {
		// A token's role is not trusted on the write path either: a
		// refused write resolves the caller from the store first.
		m := e.user("mallory")
		hidden, err := u.CreateChannel(context.Background(), trail.CreateChannelRequest{Name: "bobs-hidden", Type: "private", Hidden: true, Topics: []trail.Topic{{Type: "t", Source: "s"}}})
		if err != nil {
			t.Fatal(err)
		}
		// As if issued before a demotion: Admin in the token, User in the store.
		stale, _ := trail.SignJWT(e.secret, trail.TokenUser{ID: m.ID, Role: trail.RoleAdmin, Username: "mallory"}, time.Now(), time.Hour)
		e.wantStatus(t, "POST", "/api/v0.1/channels/logs/"+hidden, stale, []byte(`{"type":"x"}`), 404)
		e.wantStatus(t, "POST", "/api/v0.1/channels/logs/"+hidden, e.admin.JWT(), []byte(`{"type":"x"}`), 403)
	})
	t.Run("verify-jwt", func(t *testing.T) {
		b := e.wantStatus(t, "POST", "/api/v0.1/authentication/verify-jwt", "", []byte(`{"jwt":"`+forged+`"}`), 200)
		if !bytes.Contains(b, []byte(`"isValid":false`)) {
			t.Fatalf("verify-jwt of a forged token: %s", b)
		}
		b = e.wantStatus(t, "POST", "/api/v0.1/authentication/verify-jwt", "", []byte(`{"jwt":"`+u.JWT()+`"}`), 200)
		if !bytes.Contains(b, []byte(`"isValid":true`)) {
			t.Fatalf("verify-jwt of a good token: %s", b)
		}
	})
}

func TestRightsEnforced(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	author, reader, writer, stranger := e.user("author"), e.user("reader"), e.user("writer"), e.user("stranger")
	addr := e.channel(author, "rights", "private")
	for _, s := range []struct {
		c *trail.Client
		r trail.AccessRights
	}{{reader, trail.RightRead}, {writer, trail.RightWrite}} {
		if _, err := s.c.RequestSubscription(ctx, addr, s.r); err != nil {
			t.Fatal(err)
		}
	}
	// Requested but not yet authorized: neither read nor write.
	_, err := reader.Read(ctx, addr, nil)
	wantCode(t, err, 403)
	_, err = writer.Write(ctx, addr, trail.Log{Type: "x"})
	wantCode(t, err, 403)
	for _, c := range []*trail.Client{reader, writer} {
		if err := author.Authorize(ctx, addr, c.ID, ""); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := writer.Write(ctx, addr, trail.Log{Type: "by-writer"}); err != nil {
		t.Fatal(err)
	}
	t.Run("read-only subscriber cannot write", func(t *testing.T) {
		_, err := reader.Write(ctx, addr, trail.Log{Type: "x"})
		wantCode(t, err, 403)
	})
	t.Run("write-only subscriber cannot read", func(t *testing.T) {
		_, err := writer.Read(ctx, addr, nil)
		wantCode(t, err, 403)
	})
	t.Run("non-subscriber cannot read private channel", func(t *testing.T) {
		_, err := stranger.Read(ctx, addr, nil)
		wantCode(t, err, 403)
		e.wantStatus(t, "GET", "/api/v0.1/channels/events/"+addr, stranger.JWT(), nil, 403)
		e.wantStatus(t, "GET", "/api/v0.1/channels/history/"+addr, "", nil, 401)
		e.wantStatus(t, "GET", "/api/v0.1/channels/history/"+addr+"?preshared-key=0123456789abcdef0123456789abcdef", "", nil, 403)
	})
	t.Run("subscriber cannot authorize itself or raise its rights", func(t *testing.T) {
		err := reader.Authorize(ctx, addr, reader.ID, trail.RightReadAndWrite)
		wantCode(t, err, 403)
		p := "/api/v0.1/subscriptions/" + addr + "/" + reader.ID
		e.wantStatus(t, "PUT", p, reader.JWT(), []byte(`{"accessRights":"ReadAndWrite"}`), 403)
		e.wantStatus(t, "POST", "/api/v0.1/subscriptions/"+addr+"/"+stranger.ID, reader.JWT(), []byte(`{"accessRights":"ReadAndWrite","isAuthorized":true}`), 403)
		s2 := e.user("sneaky")
		s2.RequestSubscription(ctx, addr, trail.RightReadAndWrite)
		e.wantStatus(t, "PUT", "/api/v0.1/subscriptions/"+addr+"/"+s2.ID, s2.JWT(), []byte(`{"isAuthorized":true}`), 403)
		_, err = s2.Write(ctx, addr, trail.Log{Type: "x"})
		wantCode(t, err, 403)
		// A harmless self-update (links only) is allowed.
		e.wantStatus(t, "PUT", p, reader.JWT(), []byte(`{"pskId":"abc"}`), 200)
	})
	t.Run("only author or admin lists subscriptions", func(t *testing.T) {
		_, err := reader.Subscriptions(ctx, addr)
		wantCode(t, err, 403)
		if subs, err := e.admin.Subscriptions(ctx, addr); err != nil || len(subs) < 3 {
			t.Fatalf("admin list: %v %d", err, len(subs))
		}
		e.wantStatus(t, "GET", "/api/v0.1/subscriptions/"+addr+"/"+writer.ID, stranger.JWT(), nil, 403)
		e.wantStatus(t, "GET", "/api/v0.1/subscriptions/"+addr+"/"+reader.ID, reader.JWT(), nil, 200)
	})
	t.Run("revoked writer and reader", func(t *testing.T) {
		if err := author.Revoke(ctx, addr, writer.ID); err != nil {
			t.Fatal(err)
		}
		if err := author.Revoke(ctx, addr, reader.ID); err != nil {
			t.Fatal(err)
		}
		_, err := writer.Write(ctx, addr, trail.Log{Type: "after-revoke"})
		wantCode(t, err, 403)
		_, err = reader.Read(ctx, addr, nil)
		wantCode(t, err, 403)
		err = author.Revoke(ctx, addr, author.ID)
		wantCode(t, err, 400)
		err = reader.Revoke(ctx, addr, writer.ID)
		wantCode(t, err, 403)
	})
	t.Run("public channel readable by any identity", func(t *testing.T) {
		pub := e.channel(author, "public-one", "public")
		if _, err := author.Write(ctx, pub, trail.Log{Type: "hello"}); err != nil {
			t.Fatal(err)
		}
		if got, err := stranger.Read(ctx, pub, nil); err != nil || len(got) != 1 {
			t.Fatalf("%v %d", err, len(got))
		}
		_, err := stranger.Write(ctx, pub, trail.Log{Type: "x"})
		wantCode(t, err, 403)
		e.wantStatus(t, "GET", "/api/v0.1/channels/history/"+pub, "", nil, 200)
	})
}

func TestUnknownAndMalformed(t *testing.T) {
	e := newEnv(t)
	u := e.user("carol")
	unknown := strings.Repeat("ab", 40) + ":" + strings.Repeat("cd", 12)
	strangerPub, _, _ := ed25519.GenerateKey(rand.Reader)
	for _, tc := range []struct {
		method, path string
		body         string
	}{
		{"GET", "/api/v0.1/channels/logs/" + unknown, ""},
		{"POST", "/api/v0.1/channels/logs/" + unknown, `{"type":"x"}`},
		{"GET", "/api/v0.1/channel-info/channel/" + unknown, ""},
		{"POST", "/api/v0.1/subscriptions/request/" + unknown, `{}`},
		{"GET", "/api/v0.1/channels/events/" + unknown, ""},
		{"GET", "/api/v0.2/identities/identity/" + trail.DIDFromPublicKey(strangerPub), ""},
		{"GET", "/api/v0.1/no/such/route", ""},
	} {
		var b []byte
		if tc.body != "" {
			b = []byte(tc.body)
		}
		code, body := e.raw(tc.method, tc.path, u.JWT(), b)
		if code != 404 {
			t.Errorf("%s %s: %d %s, want 404", tc.method, tc.path, code, body)
		}
	}
	e.wantStatus(t, "GET", "/api/v0.1/channels/logs/not-an-address", u.JWT(), nil, 400)

	addr := e.channel(u, "malformed", "private")
	for _, tc := range []struct{ method, path, body string }{
		{"POST", "/api/v0.1/channels/create", `{"topics":`},
		{"POST", "/api/v0.1/channels/create", `{"topics":[]}`},
		{"POST", "/api/v0.1/channels/create", `{"topics":"x"}`},
		{"POST", "/api/v0.1/channels/create", `[1,2]`},
		{"POST", "/api/v0.1/channels/create", `{"topics":[{"type":"a","source":"b"}]} trailing`},
		{"POST", "/api/v0.1/channels/logs/" + addr, ``},
		{"POST", "/api/v0.1/channels/logs/" + addr, `{}`},
		{"POST", "/api/v0.1/channels/logs/" + addr, `{"created":"yesterday"}`},
		{"POST", "/api/v0.1/channels/logs/" + addr, `{"type":"x","signature":"abcd"}`},
		{"POST", "/api/v0.1/channels/logs/" + addr, "{\"type\":\"\xff\"}"},
		{"POST", "/api/v0.1/channels/validate/" + addr, `[]`},
		{"POST", "/api/v0.1/channels/validate/" + addr, `{"link":1}`},
		{"POST", "/api/v0.1/subscriptions/request/" + addr, `{"accessRights":"Everything"}`},
		{"POST", "/api/v0.1/identities/create", `{"username":"x"}`},
		{"POST", "/api/v0.1/identities/identity", `{"id":"did:key:zzz","username":"xyz"}`},
		{"GET", "/api/v0.1/channels/logs/" + addr + "?start-date=2025-01-02T00:00:00Z&end-date=2025-01-01T00:00:00Z", ``},
		{"GET", "/api/v0.1/channels/logs/" + addr + "?limit=-3", ``},
		{"GET", "/api/v0.1/channels/logs/" + addr + "?since=abc", ``},
		{"POST", "/api/v0.1/verification/create-credential", `{"subject":{"id":"nope"}}`},
	} {
		var b []byte
		if tc.body != "" {
			b = []byte(tc.body)
		}
		t.Run(tc.method+" "+tc.body, func(t *testing.T) { e.wantStatus(t, tc.method, tc.path, u.JWT(), b, 400) })
	}
	t.Run("duplicate name conflict", func(t *testing.T) {
		_, err := u.CreateChannel(context.Background(), trail.CreateChannelRequest{Name: "malformed", Topics: []trail.Topic{{Type: "a", Source: "b"}}})
		wantCode(t, err, 409)
		e.wantStatus(t, "POST", "/api/v0.1/identities/identity", "", []byte(`{"id":"`+u.ID+`","username":"another"}`), 409)
		e.wantStatus(t, "POST", "/api/v0.1/identities/create", "", []byte(`{"username":"carol"}`), 409)
		_, err = u.RequestSubscription(context.Background(), addr, "")
		wantCode(t, err, 409)
	})
}

func TestOversizedBody(t *testing.T) {
	e := newEnv(t, func(c *trail.Config) { c.MaxBody = 4096 })
	u := e.user("dave")
	addr := e.channel(u, "big", "private")
	big := []byte(`{"type":"x","payload":"` + strings.Repeat("a", 8192) + `"}`)
	e.wantStatus(t, "POST", "/api/v0.1/channels/logs/"+addr, u.JWT(), big, 413)
	e.wantStatus(t, "POST", "/api/v0.1/channels/create", u.JWT(), big, 413)
	e.wantStatus(t, "POST", "/api/v0.1/channels/logs/"+addr, u.JWT(), []byte(`{"type":"small"}`), 200)
}

func TestSearchIsPlainMatching(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	u := e.user("erin")
	e.channel(u, "weird.*(a+)+$[name", "private")
	e.channel(u, "plain", "private")
	for _, q := range []string{".*", "(a+)+$", "[", `\`, "%", "_", "'", `"`, "*(a+)+$["} {
		got, err := u.SearchChannels(ctx, url.Values{"name": {q}})
		if err != nil {
			t.Fatalf("search %q: %v", q, err)
		}
		for _, ch := range got {
			if !strings.Contains(strings.ToLower(ch.Name), strings.ToLower(q)) {
				t.Fatalf("search %q matched %q: not a plain substring match", q, ch.Name)
			}
		}
		if strings.Contains("weird.*(a+)+$[name", q) && len(got) != 1 {
			t.Fatalf("search %q: %d results, want 1", q, len(got))
		}
	}
	if got, _ := u.SearchChannels(ctx, url.Values{"name": {"pl.in"}}); len(got) != 0 {
		t.Fatalf("'.' acted as a wildcard: %+v", got)
	}
	long := strings.Repeat("(a+)+", 200)
	e.wantStatus(t, "GET", "/api/v0.1/channel-info/search?name="+url.QueryEscape(long), u.JWT(), nil, 400)
}

func TestHiddenChannels(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	author, friend, other := e.user("hider"), e.user("friend"), e.user("other")
	addr, err := author.CreateChannel(ctx, trail.CreateChannelRequest{Name: "secret", Hidden: true,
		VisibilityList: []trail.VisibilityItem{{ID: friend.ID}}, Topics: []trail.Topic{{Type: "t", Source: "s"}}})
	if err != nil {
		t.Fatal(err)
	}
	q := url.Values{"name": {"secret"}}
	for _, c := range []struct {
		cl   *trail.Client
		want int
	}{{author, 1}, {friend, 1}, {other, 0}, {e.admin, 1}} {
		got, err := c.cl.SearchChannels(ctx, q)
		if err != nil || len(got) != c.want {
			t.Fatalf("%s sees %d hidden channels (%v), want %d", c.cl.ID, len(got), err, c.want)
		}
		if c.cl == friend && len(got[0].VisibilityList) != 0 {
			t.Fatal("visibility list shown to a non-author")
		}
	}
	_, err = other.ChannelInfo(ctx, addr)
	wantCode(t, err, 404)
	_, err = other.Write(ctx, addr, trail.Log{Type: "probe"})
	wantCode(t, err, 404) // a hidden channel's existence is not revealed
	_, err = friend.Write(ctx, addr, trail.Log{Type: "probe"})
	wantCode(t, err, 403)
	// Delete, then try to re-add the address: its history must not be inherited.
	if _, err := author.Write(ctx, addr, trail.Log{Type: "kept"}); err != nil {
		t.Fatal(err)
	}
	e.wantStatus(t, "DELETE", "/api/v0.1/channel-info/channel/"+addr, other.JWT(), nil, 404)
	e.wantStatus(t, "DELETE", "/api/v0.1/channel-info/channel/"+addr, author.JWT(), nil, 200)
	body := []byte(`{"channelAddress":"` + addr + `","topics":[{"type":"t","source":"s"}]}`)
	e.wantStatus(t, "POST", "/api/v0.1/channel-info/channel", other.JWT(), body, 409)
	_, err = author.Read(ctx, addr, nil)
	wantCode(t, err, 404)
}

func TestEntrySignatures(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	w := e.user("signer")
	addr := e.channel(w, "signed", "private")

	t.Run("client-signed entry verifies without the server", func(t *testing.T) {
		d, err := w.Write(ctx, addr, trail.Log{Type: "reading", Metadata: json.RawMessage(`{"b":1,"a":[1.50,"x"]}`)})
		if err != nil {
			t.Fatal(err)
		}
		if d.Signer != w.ID {
			t.Fatalf("signer %s, want the writer", d.Signer)
		}
		if err := d.SignedEntry(addr).Verify(); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("gateway-signed entry for JWT-only clients", func(t *testing.T) {
		jwtOnly := trail.NewClient(e.url)
		jwtOnly.ID = w.ID
		jwtOnly.SetJWT(w.JWT())
		d, err := jwtOnly.Write(ctx, addr, trail.Log{Type: "unsigned"})
		if err != nil {
			t.Fatal(err)
		}
		if d.Signer != e.srv.DID() {
			t.Fatalf("signer %s, want the gateway", d.Signer)
		}
		if err := d.SignedEntry(addr).Verify(); err == nil {
			t.Fatal("gateway signature accepted without trusting the gateway")
		}
		if err := d.SignedEntry(addr).Verify(e.srv.DID()); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("signature by another key is rejected on write", func(t *testing.T) {
		_, other, _ := ed25519.GenerateKey(rand.Reader)
		st := trail.Statement{V: trail.StatementVersion, ChannelAddress: addr, Writer: w.ID, Log: trail.Log{Type: "forged", Created: "2026-01-01T00:00:00.000Z"}}
		se, _ := trail.Sign(st, other)
		body, _ := json.Marshal(map[string]any{"type": "forged", "created": st.Log.Created, "signature": se.Signature})
		e.wantStatus(t, "POST", "/api/v0.1/channels/logs/"+addr, w.JWT(), body, 400)
		// Signed for another channel: replay refused.
		st.ChannelAddress = strings.Repeat("0", 80) + ":" + strings.Repeat("0", 24)
		se, _ = trail.Sign(st, w.Key)
		body, _ = json.Marshal(map[string]any{"type": "forged", "created": st.Log.Created, "signature": se.Signature})
		e.wantStatus(t, "POST", "/api/v0.1/channels/logs/"+addr, w.JWT(), body, 400)
	})
	t.Run("replayed entry is a conflict", func(t *testing.T) {
		st := trail.Statement{V: trail.StatementVersion, ChannelAddress: addr, Writer: w.ID, Nonce: "n1", Log: trail.Log{Type: "once", Created: "2026-01-01T00:00:00.000Z"}}
		se, _ := trail.Sign(st, w.Key)
		body, _ := json.Marshal(map[string]any{"type": "once", "created": st.Log.Created, "nonce": "n1", "signature": se.Signature})
		e.wantStatus(t, "POST", "/api/v0.1/channels/logs/"+addr, w.JWT(), body, 200)
		e.wantStatus(t, "POST", "/api/v0.1/channels/logs/"+addr, w.JWT(), body, 409)
	})
	t.Run("validate flags altered data and bad signatures", func(t *testing.T) {
		all, err := w.Read(ctx, addr, url.Values{"asc": {"true"}})
		if err != nil || len(all) < 3 {
			t.Fatalf("%v %d", err, len(all))
		}
		altered := all[0]
		altered.Log.Type = "changed"
		badSig := all[2]
		badSig.Source.ID = e.admin.ID // claims another writer
		missing := all[1]
		missing.Link = missing.Link[:81] + strings.Repeat("0", 24)
		res, err := w.Validate(ctx, addr, []trail.ChannelData{all[1], altered, badSig, missing})
		if err != nil {
			t.Fatal(err)
		}
		if !res[0].IsValid || res[1].IsValid || res[1].Error != "not the same data" || res[1].TangleLog == nil ||
			res[2].IsValid || !strings.Contains(res[2].Error, "signature") || res[3].IsValid {
			t.Fatalf("validate: %+v", res)
		}
	})
	t.Run("validate flags an entry altered at rest", func(t *testing.T) {
		all, _ := w.Read(ctx, addr, url.Values{"asc": {"true"}})
		db, err := sql.Open("sqlite", "file:"+filepath.Join(e.dir, "trail.db")+"?_pragma=busy_timeout(5000)")
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		// Change the signed content but keep the row's hash columns: the
		// signature no longer matches the writer.
		var leaf []byte
		db.QueryRow(`SELECT leaf FROM entries WHERE address = ? AND idx = 0`, addr).Scan(&leaf)
		tampered := bytes.Replace(leaf, []byte(`"reading"`), []byte(`"READING"`), 1)
		if bytes.Equal(tampered, leaf) {
			t.Fatal("tamper did not change the leaf")
		}
		if _, err := db.Exec(`UPDATE entries SET leaf = ? WHERE address = ? AND idx = 0`, tampered, addr); err != nil {
			t.Fatal(err)
		}
		res, err := w.Validate(ctx, addr, all[:1])
		if err != nil {
			t.Fatal(err)
		}
		if res[0].IsValid {
			t.Fatalf("tampered entry validated: %+v", res[0])
		}
	})
}

func TestConcurrentAppendsAreContiguous(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	author := e.user("busy")
	addr := e.channel(author, "busy", "private")
	const writers, each = 8, 40
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for i := 0; i < writers; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for j := 0; j < each; j++ {
				if _, err := author.Write(ctx, addr, trail.Log{Type: fmt.Sprintf("w%d-%d", i, j)}); err != nil {
					errs <- err
				}
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	all, err := author.Read(ctx, addr, url.Values{"asc": {"true"}})
	if err != nil || len(all) != writers*each {
		t.Fatalf("%v: %d entries", err, len(all))
	}
	seen := map[string]bool{}
	for i, d := range all {
		if d.Index != int64(i) {
			t.Fatalf("entry %d has index %d", i, d.Index)
		}
		if seen[d.Log.Type] {
			t.Fatalf("duplicate %s", d.Log.Type)
		}
		seen[d.Log.Type] = true
	}
}

func TestNotifications(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	z, c := e.user("sensor-zz"), e.user("tool-cc")
	addr := e.channel(z, "notify", "private")
	c.RequestSubscription(ctx, addr, trail.RightRead)
	if err := z.Authorize(ctx, addr, c.ID, ""); err != nil {
		t.Fatal(err)
	}
	t.Run("long poll since", func(t *testing.T) {
		done := make(chan []trail.ChannelData, 1)
		start := time.Now()
		go func() {
			got, err := c.Read(ctx, addr, url.Values{"since": {"0"}, "wait": {"10s"}})
			if err != nil {
				t.Error(err)
			}
			done <- got
		}()
		time.Sleep(200 * time.Millisecond)
		if _, err := z.Write(ctx, addr, trail.Log{Type: "first"}); err != nil {
			t.Fatal(err)
		}
		got := <-done
		if len(got) != 1 || got[0].Log.Type != "first" || time.Since(start) > 5*time.Second {
			t.Fatalf("long poll got %+v after %v", got, time.Since(start))
		}
		// Nothing new: returns empty after the wait.
		got, err := c.Read(ctx, addr, url.Values{"since": {"1"}, "wait": {"200ms"}})
		if err != nil || len(got) != 0 {
			t.Fatalf("%v %+v", err, got)
		}
	})
	t.Run("stream resumes without gaps", func(t *testing.T) {
		var got []int64
		fctx, cancel := context.WithCancel(ctx)
		var mu sync.Mutex
		go c.Follow(fctx, addr, 0, func(d trail.ChannelData) error {
			mu.Lock()
			got = append(got, d.Index)
			mu.Unlock()
			return nil
		})
		for i := 0; i < 5; i++ {
			z.Write(ctx, addr, trail.Log{Type: "more"})
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			mu.Lock()
			n := len(got)
			mu.Unlock()
			if n == 6 || time.Now().After(deadline) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		cancel()
		mu.Lock()
		defer mu.Unlock()
		for i, idx := range got {
			if idx != int64(i) {
				t.Fatalf("stream delivered %v", got)
			}
		}
		if len(got) != 6 {
			t.Fatalf("stream delivered %v, want 0..5", got)
		}
	})
	t.Run("revoked reader's stream ends", func(t *testing.T) {
		ended := make(chan error, 1)
		go func() { ended <- c.Follow(ctx, addr, -1, func(trail.ChannelData) error { return nil }) }()
		time.Sleep(200 * time.Millisecond)
		if err := z.Revoke(ctx, addr, c.ID); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-ended:
			if err != trail.ErrStreamEnded && trail.StatusOf(err) != 403 {
				t.Fatalf("stream ended with %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("stream of a revoked reader still open")
		}
	})
}

func TestCredentials(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	x, y, z := e.user("company-x2"), e.user("employee-y2"), e.user("sensor-z2")
	issue := func(c *trail.Client, subject string) (int, []byte) {
		body, _ := json.Marshal(map[string]any{"subject": map[string]any{"id": subject, "credentialType": trail.VerifiedIdentityCredential, "claim": map[string]string{"type": "Organization"}}})
		return e.raw("POST", "/api/v0.1/verification/create-credential", c.JWT(), body)
	}
	if code, _ := issue(y, z.ID); code != 403 {
		t.Fatalf("unverified identity issued a credential: %d", code)
	}
	code, vcX := issue(e.admin, x.ID)
	if code != 200 {
		t.Fatalf("admin issue: %d %s", code, vcX)
	}
	check := func(vc []byte) bool {
		b := e.wantStatus(t, "POST", "/api/v0.1/verification/check-credential", "", vc, 200)
		return bytes.Contains(b, []byte(`"isVerified":true`))
	}
	if !check(vcX) {
		t.Fatal("fresh credential does not check")
	}
	if code, vcY := issue(x, y.ID); code != 200 || !check(vcY) {
		t.Fatalf("verified identity could not issue: %d %s", code, vcY)
	}
	forged := bytes.Replace(vcX, []byte(`"Organization"`), []byte(`"Person"`), 1)
	if check(forged) {
		t.Fatal("altered credential checks")
	}
	b := e.wantStatus(t, "GET", "/api/v0.1/identities/identity/"+x.ID, y.JWT(), nil, 200)
	if !bytes.Contains(b, []byte(`"isVerified":true`)) {
		t.Fatalf("identity does not show verified: %s", b)
	}
	var vc struct {
		Proof struct{ SignatureValue string }
	}
	json.Unmarshal(vcX, &vc)
	rev, _ := json.Marshal(map[string]string{"signatureValue": vc.Proof.SignatureValue})
	e.wantStatus(t, "POST", "/api/v0.1/verification/revoke-credential", z.JWT(), rev, 403)
	e.wantStatus(t, "POST", "/api/v0.1/verification/revoke-credential", e.admin.JWT(), rev, 200)
	if check(vcX) {
		t.Fatal("revoked credential checks")
	}
	// Trusted roots: admin only.
	root, _ := json.Marshal(map[string]string{"trustedRootId": z.ID})
	e.wantStatus(t, "POST", "/api/v0.1/verification/trusted-roots", y.JWT(), root, 403)
	e.wantStatus(t, "POST", "/api/v0.1/verification/trusted-roots", e.admin.JWT(), root, 200)
	e.wantStatus(t, "POST", "/api/v0.1/verification/trusted-roots", e.admin.JWT(), root, 409)
	if b := e.wantStatus(t, "GET", "/api/v0.1/verification/trusted-roots", "", nil, 200); !bytes.Contains(b, []byte(z.ID)) {
		t.Fatalf("trusted roots: %s", b)
	}
	// A subscriber's verification is visible to the author.
	addr := e.channel(z, "verified-readers", "private")
	x.RequestSubscription(ctx, addr, trail.RightRead)
	b = e.wantStatus(t, "GET", "/api/v0.1/subscriptions/"+addr+"/"+x.ID, z.JWT(), nil, 200)
	if !bytes.Contains(b, []byte(`"isVerified":false`)) { // x's only credential was revoked
		t.Fatalf("subscription: %s", b)
	}
}

func TestAPIKeyAndRateLimit(t *testing.T) {
	e := newEnv(t, func(c *trail.Config) { c.APIKey = "k3y"; c.RateLimit = 5; c.RateBurst = 5 })
	e.wantStatus(t, "GET", "/api/v0.1/verification/trusted-roots", "", nil, 401)
	e.wantStatus(t, "GET", "/api/v0.1/verification/trusted-roots?api-key=wrong", "", nil, 401)
	got429 := false
	for i := 0; i < 20 && !got429; i++ {
		code, _ := e.raw("GET", "/api/v0.1/verification/trusted-roots?api-key=k3y", "", nil)
		got429 = code == 429
	}
	if !got429 {
		t.Fatal("no 429 after 20 fast requests with a limit of 5/s")
	}
	e.wantStatus(t, "GET", "/healthz", "", nil, 200)
}

func TestInfoMetricsHealth(t *testing.T) {
	e := newEnv(t)
	b := e.wantStatus(t, "GET", "/info", "", nil, 200)
	if !bytes.Contains(b, []byte(e.srv.DID())) {
		t.Fatalf("info: %s", b)
	}
	e.wantStatus(t, "GET", "/healthz", "", nil, 200)
	b = e.wantStatus(t, "GET", "/metrics", "", nil, 200)
	for _, m := range []string{"total_requests", "http_request_duration_seconds_bucket", "lakeproof_trail_entries_appended_total", "lakeproof_trail_event_streams", "go_goroutines"} {
		if !bytes.Contains(b, []byte(m)) {
			t.Fatalf("metrics lack %s", m)
		}
	}
}

func TestDurableAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	did := trail.DIDFromPublicKey(pub)
	addr := strings.Repeat("1", 80) + ":" + strings.Repeat("2", 24)
	if err := st.CreateIdentity(ctx, trail.Identity{ID: did, Username: "u1", Role: trail.RoleUser, Registered: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateChannel(ctx, trail.Channel{Address: addr, Type: "private", AuthorID: did, Created: time.Now()},
		trail.Subscription{ChannelAddress: addr, ID: did, Type: "Author", IsAuthorized: true, AccessRights: trail.RightReadAndWrite}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if _, err := st.Append(ctx, trail.AppendRequest{ChannelAddress: addr, Leaf: []byte(fmt.Sprint(i)), Writer: did}); err != nil {
			t.Fatal(err)
		}
	}
	_, err = st.Append(ctx, trail.AppendRequest{ChannelAddress: addr, Leaf: []byte("x"), Writer: "did:key:zother"})
	if err == nil || !strings.Contains(err.Error(), trail.ErrForbidden.Error()) {
		t.Fatalf("append by a stranger: %v", err)
	}
	st.Close()
	st, err = sqlite.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if n, err := st.Size(ctx, addr); err != nil || n != 3 {
		t.Fatalf("after reopen: size %d, %v", n, err)
	}
	e, err := st.Append(ctx, trail.AppendRequest{ChannelAddress: addr, Leaf: []byte("3"), Writer: did})
	if err != nil || e.Index != 3 {
		t.Fatalf("append after reopen: %+v %v", e, err)
	}
}

func TestGracefulShutdownEndsStreams(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	z := e.user("sensor-zzz")
	addr := e.channel(z, "shut", "private")
	ended := make(chan struct{})
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		z.Follow(fctx, addr, -1, func(trail.ChannelData) error { return nil })
		close(ended)
	}()
	time.Sleep(200 * time.Millisecond)
	sctx, scancel := context.WithTimeout(ctx, 5*time.Second)
	defer scancel()
	if err := e.hs.Config.Shutdown(sctx); err != nil {
		t.Fatalf("shutdown with an open stream: %v", err)
	}
	cancel()
	<-ended
}
