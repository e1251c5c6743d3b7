package trail_test

import (
	"crypto/ed25519"
	"fmt"
	"testing"

	"github.com/lakeproof/lakeproof/trail"
)

// Vectors from RFC 8785 (sections 3.2.2 and 3.2.3, appendix B).
func TestCanonicalize(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"numbers":[333333333.33333329,1E30,4.50,2e-3,0.000000000000000000000000001],"string":"\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/","literals":[null,true,false]}`,
			`{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}`},
		{`{"\u20ac":"Euro Sign","\r":"Carriage Return","\ufb33":"Hebrew Letter Dalet With Dagesh","1":"One","\ud83d\ude00":"Emoji: Grinning Face","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis"}`,
			"{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u0080\":\"Control\",\"\u00f6\":\"Latin Small Letter O With Diaeresis\",\"\u20ac\":\"Euro Sign\",\"\U0001F600\":\"Emoji: Grinning Face\",\"\ufb33\":\"Hebrew Letter Dalet With Dagesh\"}"},
		{`[1e21, 1e20, 1e-7, 0.000001, -0, 9007199254740993, 5e-324]`, `[1e+21,100000000000000000000,1e-7,0.000001,0,9007199254740992,5e-324]`},
		{` { "b" : [ ] , "a" : { } } `, `{"a":{},"b":[]}`},
	} {
		got, err := trail.Canonicalize([]byte(tc.in))
		if err != nil {
			t.Fatalf("%s: %v", tc.in, err)
		}
		if string(got) != tc.want {
			t.Errorf("Canonicalize(%s)\n got %s\nwant %s", tc.in, got, tc.want)
		}
	}
	for _, bad := range []string{`{"a":1,"a":2}`, `1e400`, `[1,]`, `{"a":1} x`, "\"\xff\""} {
		if _, err := trail.Canonicalize([]byte(bad)); err == nil {
			t.Errorf("Canonicalize(%q) accepted", bad)
		}
	}
}

// TestLeafGolden pins the entry encoding: the canonical leaf bytes and the
// RFC 6962 leaf hash of a fixed entry. docs/GATEWAY.md shows the same bytes.
func TestLeafGolden(t *testing.T) {
	key, _ := trail.KeyFromSeed(trail.Base58Encode(make([]byte, 32)))
	addr := "5179bb" + "00000000000000000000000000000000000000000000000000000000000000000000000000" + ":" + "6d3cf83c5b57e5e5ab024f47"
	st := trail.Statement{V: trail.StatementVersion, ChannelAddress: addr, Writer: trail.DIDFromPublicKey(key.Public().(ed25519.PublicKey)), Nonce: "n",
		Log: trail.Log{Type: "dataset-anchor", Created: "2026-01-01T00:00:00.000Z", Payload: []byte(`{"root":"ab", "size":2}`)}}
	se, err := trail.Sign(st, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := se.Leaf()
	if err != nil {
		t.Fatal(err)
	}
	wantLeaf := `{"signature":"` + se.Signature + `","signer":"` + st.Writer + `","statement":{"channelAddress":"` + addr + `","log":{"created":"2026-01-01T00:00:00.000Z","payload":{"root":"ab","size":2},"type":"dataset-anchor"},"nonce":"n","v":"lakeproof.trail.entry/v1","writer":"` + st.Writer + `"}}`
	if string(leaf) != wantLeaf {
		t.Fatalf("leaf\n got %s\nwant %s", leaf, wantLeaf)
	}
	msg, _ := st.SigningInput()
	wantMsg := `{"channelAddress":"` + addr + `","log":{"created":"2026-01-01T00:00:00.000Z","payload":{"root":"ab","size":2},"type":"dataset-anchor"},"nonce":"n","v":"lakeproof.trail.entry/v1","writer":"` + st.Writer + `"}`
	if string(msg) != wantMsg {
		t.Fatalf("signing input\n got %s\nwant %s", msg, wantMsg)
	}
	if err := se.Verify(); err != nil {
		t.Fatal(err)
	}
	// Ed25519 is deterministic: the signature of this fixed statement and
	// key is fixed too.
	const wantSig = "5df4050bc84e11ec7d2aa74f996353d1d5416e2e7adf59ae4d0f9172e78a55d91ac07eb532f6ff56b449d737aa1a78159fb8e828f5cf663c7c9148676583700a"
	if se.Signature != wantSig {
		t.Fatalf("signature %s", se.Signature)
	}
	if got := fmt.Sprintf("%x", trail.LeafHash(leaf)); got != "f03d4cdc75db08a7a40b45d41e3c307c638c416a5bba7d9a4721cd9e6a07e19b" {
		t.Fatalf("leaf hash %s", got)
	}
}
