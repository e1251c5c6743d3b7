package lakeproof_test

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/lakeproof/lakeproof"
)

func goldenProof(t testing.TB) []byte {
	raw, err := os.ReadFile("testdata/anchored/bundle.json")
	if err != nil {
		t.Fatal(err)
	}
	b, err := lakeproof.ParseBundle(raw)
	if err != nil {
		t.Fatal(err)
	}
	return []byte(b.Anchor.Proof)
}

func TestLogProofRoundTrip(t *testing.T) {
	text := goldenProof(t)
	p, err := lakeproof.ParseLogProof(text)
	if err != nil {
		t.Fatal(err)
	}
	if p.Index != 1 || p.Size != 3 || len(p.Path) != 2 || !strings.HasPrefix(p.Origin, "gateway.example/channel/") {
		t.Fatalf("parsed %+v", p)
	}
	if !bytes.Equal(p.Marshal(), text) {
		t.Fatalf("re-encoding differs:\n%s", p.Marshal())
	}
	// With extra data (c2sp.org/tlog-proof allows it; lakeproof ignores it).
	p.Extra = []byte("context")
	q, err := lakeproof.ParseLogProof(p.Marshal())
	if err != nil || string(q.Extra) != "context" {
		t.Fatalf("extra: %v %q", err, q.Extra)
	}
}

func TestParseLogProofMalformed(t *testing.T) {
	good := string(goldenProof(t))
	lines := strings.Split(good, "\n")
	for i, in := range []string{
		"", "\n", lakeproof.LogProofHeader, lakeproof.LogProofHeader + "\n",
		strings.Replace(good, "index 1", "index", 1),
		strings.Replace(good, "index 1", "index 1 ", 1),
		strings.Replace(good, "index 1", "index +1", 1),
		strings.Replace(good, "index 1", "index 99999999999999999999", 1),
		strings.Replace(good, lakeproof.LogProofHeader+"\n", lakeproof.LogProofHeader+"\nextra \n", 1),
		strings.Replace(good, lakeproof.LogProofHeader+"\n", lakeproof.LogProofHeader+"\nextra !!\n", 1),
		strings.Replace(good, lines[2], strings.TrimRight(lines[2], "="), 1), // non-canonical base64
		strings.Replace(good, "\n3\n", "\n03\n", 1),
		strings.Replace(good, "\n3\n", "\n\n3\n", 1),
		strings.Replace(good, "— ", "- ", 1),
		strings.TrimSuffix(good, "\n"),
		good[:strings.Index(good, "\n\n")+2],
		strings.Replace(good, lines[7], lines[7][:10], 1), // short root hash
		good + "\xff\n",
	} {
		if _, err := lakeproof.ParseLogProof([]byte(in)); !errors.Is(err, lakeproof.ErrMalformedBundle) {
			t.Errorf("case %d: ParseLogProof(%.80q) = %v, want ErrMalformedBundle", i, in, err)
		}
	}
}

func FuzzParseLogProof(f *testing.F) {
	f.Add(goldenProof(f))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := lakeproof.ParseLogProof(data)
		if err != nil {
			if !errors.Is(err, lakeproof.ErrMalformedBundle) {
				t.Fatalf("error does not wrap ErrMalformedBundle: %v", err)
			}
			return
		}
		q, err := lakeproof.ParseLogProof(p.Marshal())
		if err != nil {
			t.Fatalf("re-parse: %v", err)
		}
		if q.Index != p.Index || q.Size != p.Size || q.Root != p.Root || len(q.Path) != len(p.Path) {
			t.Fatal("round trip changed the proof")
		}
	})
}
