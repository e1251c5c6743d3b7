package trail_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/lakeproof/lakeproof/trail"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// fuzzNoteKey is a fixed note key, so seeds and the corpus stay valid.
func fuzzNoteKey(t testing.TB) *trail.NoteKey {
	seed := bytes.Repeat([]byte{42}, ed25519.SeedSize)
	vkey, _ := note.NewEd25519VerifierKey("fuzz-gateway", ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey))
	v, _ := note.NewVerifier(vkey)
	// The signer key string as note.GenerateKey writes it.
	k, err := trail.ParseNoteKey(signerKey("fuzz-gateway", seed, v.KeyHash()))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func signerKey(name string, seed []byte, hash uint32) string {
	return "PRIVATE+KEY+" + name + "+" + hex8(hash) + "+" + b64(append([]byte{1}, seed...))
}

func FuzzParseCheckpoint(f *testing.F) {
	k := fuzzNoteKey(f)
	addr := strings.Repeat("a", 80) + ":" + strings.Repeat("b", 24)
	origin := trail.Origin(k.Name(), addr)
	sign := func(text string) []byte {
		b, err := note.Sign(&note.Note{Text: text}, k.Signer)
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	root := tlog.RecordHash([]byte("x"))
	good := origin + "\n5\n" + b64(root[:]) + "\n"
	f.Add(sign(good))
	f.Add(sign(good + "extension line\n"))
	f.Add(sign(origin + "\n05\n" + b64(root[:]) + "\n"))
	f.Add(sign(origin + "\n-1\n" + b64(root[:]) + "\n"))
	f.Add(sign(origin + "\n18446744073709551615\n" + b64(root[:]) + "\n"))
	f.Add(sign(origin + "\n5\n" + b64(root[:4]) + "\n"))
	f.Add(sign("other/channel/x\n5\n" + b64(root[:]) + "\n"))
	f.Add([]byte(good + "\n— fuzz-gateway AAAA\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		cp, err := trail.ParseCheckpoint(b, "", k.Verifier)
		if err != nil {
			return
		}
		if cp.Size < 0 || !bytes.Equal(cp.Note, b) {
			t.Fatalf("accepted %+v", cp)
		}
		n, err := note.Open(b, note.VerifierList(k.Verifier))
		if err != nil {
			t.Fatalf("accepted a note that does not open: %v", err)
		}
		want := cp.Origin + "\n" + itoa(cp.Size) + "\n" + b64(cp.Hash[:]) + "\n"
		if !strings.HasPrefix(n.Text, want) {
			t.Fatalf("accepted a non-canonical body %q", n.Text)
		}
		if _, err := trail.ParseCheckpoint(b, origin+"x", k.Verifier); err == nil {
			t.Fatal("accepted under a wrong origin")
		}
	})
}

func FuzzParseC2SPTilePath(f *testing.F) {
	for _, s := range []string{"tile/0/000", "tile/0/x001/234", "tile/1/000.p/3", "tile/entries/x123/456.p/255", "tile/entries/000.p/256",
		"tile/0/001.p/0", "tile/data/000", "tile/8/0/000", "tile/0/x000/001", "tile/7/x999/x999/x999/x999/x999/x999/x999/999", "tile/0/-01"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tl, err := trail.ParseC2SPTilePath(s)
		if err != nil {
			return
		}
		if tl.N < 0 || tl.W < 1 || tl.W > 256 || tl.L < -1 || tl.H != trail.TileHeight {
			t.Fatalf("%q parsed to %+v", s, tl)
		}
		back, err := trail.C2SPTilePath(tl)
		if err != nil || back != s {
			t.Fatalf("%q parsed to %+v, which prints as %q (%v)", s, tl, back, err)
		}
	})
}

// FuzzLogRoutes sends arbitrary paths and queries to the channel-log
// routes: the answer is never a 5xx, and errors are {"error": …}.
func FuzzLogRoutes(f *testing.F) {
	e := newEnv(f)
	w := e.user("writer")
	addr := e.channel(w, "fuzzed", "public")
	appendLeaves(f, e, addr, w, "f", 300)
	h := e.srv.Handler()
	for _, s := range []string{"checkpoint", "tile/0/000", "tile/0/001.p/44", "tile/1/000.p/1", "tile/entries/001.p/44", "entry/299",
		"proof/inclusion?index=3&size=300", "proof/consistency?from=7&to=300", "proof/consistency?from=0&to=0", "proof/inclusion?index=-1&size=1e3",
		"tile/entries/x001/000", "entry/%2e%2e", "proof/inclusion?index=1&index=2&size=3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, rest string) {
		if strings.ContainsAny(rest, "\x00\r\n #") {
			return
		}
		req := httptest.NewRequestWithContext(context.Background(), "GET", "/", nil)
		req.URL.Path = "/api/v0.1/channels/log/" + addr + "/"
		path, query, _ := strings.Cut(rest, "?")
		req.URL.Path += path
		req.URL.RawQuery = query
		req.RequestURI = req.URL.RequestURI()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("GET %s: %d %s", req.URL, rec.Code, rec.Body.String())
		}
		if rec.Code >= 400 && !strings.HasPrefix(rec.Body.String(), `{"error":`) {
			t.Fatalf("GET %s: %d %q", req.URL, rec.Code, rec.Body.String())
		}
		if rec.Code == http.StatusOK && strings.HasPrefix(path, "proof/inclusion") {
			var p trail.InclusionProof
			if err := jsonUnmarshal(rec.Body.Bytes(), &p); err != nil {
				t.Fatal(err)
			}
			if err := tlog.CheckRecord(p.Proof, p.Size, rootAt(t, e, addr, p.Size), p.Index, p.LeafHash); err != nil {
				t.Fatalf("GET %s: served proof does not verify: %v", req.URL, err)
			}
		}
	})
}

func rootAt(t *testing.T, e *env, addr string, n int64) tlog.Hash {
	h, err := tlog.TreeHash(n, tlog.HashReaderFunc(func(ix []int64) ([]tlog.Hash, error) {
		return e.store.ReadHashes(context.Background(), addr, ix)
	}))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func b64(b []byte) string                 { return base64.StdEncoding.EncodeToString(b) }
func hex8(h uint32) string                { return fmt.Sprintf("%08x", h) }
func itoa(n int64) string                 { return strconv.FormatInt(n, 10) }
func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// FuzzParseNoteKey: arbitrary note key files never panic; an accepted key
// signs notes that its derived verifier key opens.
func FuzzParseNoteKey(f *testing.F) {
	seed := bytes.Repeat([]byte{42}, ed25519.SeedSize)
	f.Add(signerKey("fuzz-gateway", seed, 0x1234abcd))
	f.Add("PRIVATE+KEY+a+00000000+AQ==")
	f.Add("PRIVATE+KEY+name+with+plus+00000000+" + b64(append([]byte{1}, seed...)))
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		k, err := trail.ParseNoteKey(s)
		if err != nil {
			return
		}
		signed, err := note.Sign(&note.Note{Text: "x\n"}, k.Signer)
		if err != nil {
			t.Fatalf("accepted key %q cannot sign: %v", s, err)
		}
		v, err := note.NewVerifier(k.VerifierKey)
		if err != nil {
			t.Fatalf("derived verifier key %q: %v", k.VerifierKey, err)
		}
		if _, err := note.Open(signed, note.VerifierList(v)); err != nil {
			t.Fatalf("key %q: its own signature does not verify with %q: %v", s, k.VerifierKey, err)
		}
	})
}
