package trail_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/lakeproof/lakeproof/trail"
)

func FuzzParseDID(f *testing.F) {
	pub := ed25519.PublicKey(bytes.Repeat([]byte{1}, 32))
	f.Add(trail.DIDFromPublicKey(pub))
	f.Add("did:key:z6Mk")
	f.Add("did:key:z111111111111111111111111111111111111111111111111")
	f.Add("did:iota:H9gnk3KXPiopLtwLRm3ooKU3D4oNJz49DDLVXx5xov19")
	f.Add("did:key:z0OIl")
	f.Fuzz(func(t *testing.T, s string) {
		pub, err := trail.ParseDID(s)
		if err != nil {
			return
		}
		if len(pub) != ed25519.PublicKeySize || trail.DIDFromPublicKey(pub) != s {
			t.Fatalf("ParseDID(%q) accepted a non-canonical DID", s)
		}
	})
}

func FuzzBase58(f *testing.F) {
	f.Add("1112")
	f.Add("z")
	f.Add("0")
	f.Fuzz(func(t *testing.T, s string) {
		b, err := trail.Base58Decode(s)
		if err != nil {
			return
		}
		if got := trail.Base58Encode(b); got != s {
			t.Fatalf("round trip %q -> %x -> %q", s, b, got)
		}
	})
}

func FuzzParseSignature(f *testing.F) {
	f.Add(strings.Repeat("ab", 64))
	f.Add("zz")
	f.Fuzz(func(t *testing.T, s string) {
		b, err := trail.ParseSignature(s)
		if err == nil && len(b) != ed25519.SignatureSize {
			t.Fatalf("%d bytes", len(b))
		}
	})
}

func FuzzCanonicalize(f *testing.F) {
	for _, s := range []string{`{"b":1,"a":[1.50,"x",null,true]}`, `1e400`, `{"a":1,"a":2}`, `"\u0000\u20ac"`, `[[[[[]]]]]`, `-0`, `{"\ud83d\ude00":1,"\u20ac":2}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := trail.Canonicalize(in)
		if err != nil {
			return
		}
		if !json.Valid(out) {
			t.Fatalf("canonical form %q is not JSON", out)
		}
		again, err := trail.Canonicalize(out)
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("not idempotent: %q -> %q (%v)", out, again, err)
		}
	})
}

func FuzzParseJWT(f *testing.F) {
	secret := bytes.Repeat([]byte{7}, 32)
	good, _ := trail.SignJWT(secret, trail.TokenUser{ID: "did:key:zx", Role: trail.RoleUser}, time.Unix(1e9, 0), time.Hour)
	f.Add(good)
	f.Add("a.b.c")
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add(strings.Replace(good, "eyJhbGciOiJIUzI1NiIs", "eyJhbGciOiJIUzM4NCIs", 1)) // HS384 header
	f.Fuzz(func(t *testing.T, tok string) {
		u, err := trail.ParseJWT(secret, tok, time.Unix(1e9+60, 0))
		if err != nil {
			return
		}
		// Forging an HMAC is out of a fuzzer's reach and decoding is strict
		// (one spelling per token), so the only token that can verify is
		// the one the secret signed.
		if tok != good {
			t.Fatalf("accepted a token the secret did not sign: %q", tok)
		}
		if u.ID != "did:key:zx" || u.Role != trail.RoleUser {
			t.Fatalf("wrong user %+v", u)
		}
	})
}

func FuzzParseLeaf(f *testing.F) {
	_, key, _ := ed25519.GenerateKey(nil)
	se, _ := trail.Sign(trail.Statement{V: trail.StatementVersion, ChannelAddress: "a", Writer: "w", Log: trail.Log{Type: "t", Payload: json.RawMessage(`{"x":[1,2]}`)}}, key)
	leaf, _ := se.Leaf()
	f.Add(leaf)
	f.Add([]byte(`{"statement":{},"signer":"","signature":""}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		e, err := trail.ParseLeaf(in)
		if err != nil {
			return
		}
		out, err := e.Leaf()
		if err != nil || !bytes.Equal(out, in) {
			t.Fatalf("accepted leaf is not canonical: %q vs %q", in, out)
		}
		_ = e.Verify() // must not panic
	})
}

// FuzzRequestBodies sends arbitrary bodies to every route that decodes one
// and requires that none is answered with a 5xx.
func FuzzRequestBodies(f *testing.F) {
	for _, s := range []string{`{"topics":[{"type":"a","source":"b"}]}`, `{"type":"x","payload":{"a":1}}`, `[{"link":"x"}]`, `{"signedNonce":"00"}`,
		`{"id":"did:key:z6Mk","username":"abc"}`, `{"subject":{"id":"x"}}`, `{"accessRights":"Read"}`, `{"jwt":"a.b.c"}`, `null`, `[]`, `"\xff"`} {
		for r := 0; r < 12; r++ {
			f.Add(uint8(r), []byte(s))
		}
	}
	e := newEnv(f)
	u := e.user("fuzzer")
	uid, jwt := u.ID, u.JWT()
	addr := e.channel(u, "fuzz", "private")
	h := e.srv.Handler()
	f.Fuzz(func(tt *testing.T, route uint8, body []byte) {
		paths := []struct{ m, p string }{
			{"POST", "/api/v0.1/channels/create"},
			{"POST", "/api/v0.1/channels/logs/" + addr},
			{"POST", "/api/v0.1/channels/validate/" + addr},
			{"POST", "/api/v0.1/authentication/prove-ownership/" + uid},
			{"POST", "/api/v0.1/authentication/verify-jwt"},
			{"POST", "/api/v0.1/identities/create"},
			{"POST", "/api/v0.1/identities/identity"},
			{"PUT", "/api/v0.1/identities/identity"},
			{"POST", "/api/v0.1/subscriptions/authorize/" + addr},
			{"PUT", "/api/v0.1/channel-info/channel"},
			{"POST", "/api/v0.1/verification/create-credential"},
			{"POST", "/api/v0.1/verification/check-credential"},
		}
		rt := paths[int(route)%len(paths)]
		req := httptest.NewRequest(rt.m, rt.p, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+jwt)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			tt.Fatalf("%s %s with %q: %d %s", rt.m, rt.p, body, rec.Code, rec.Body)
		}
	})
}
