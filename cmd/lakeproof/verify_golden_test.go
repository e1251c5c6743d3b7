package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const goldenAnchored = "../../testdata/anchored"

// TestVerifyGoldenAnchorState: --json says whether the anchor level of a
// two-level bundle was checked, so a script never mistakes a bundle
// checked only at the dataset level for a verified anchor.
func TestVerifyGoldenAnchorState(t *testing.T) {
	bundle := filepath.Join(goldenAnchored, "bundle.json")
	file := filepath.Join(goldenAnchored, "part-02.csv")
	trust := filepath.Join(goldenAnchored, "trust.json")
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		anchor string
		check  string
	}{
		{"no trust given", nil, exitOK, "not-checked", "all"},
		{"trust file", []string{"--trust", trust}, exitOK, "verified", "all"},
		{"untrusted writer", []string{"--trust-gateway", "gateway.example+e0dd7545+AYE5dw6ofRdfVqNUZsNMfszLjYqRtO43ol32D1uPybOU",
			"--trust-writer", "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK"}, exitInvalid, "failed", "writer-trust"},
	} {
		out, code := lp(t, append([]string{"verify", "--json", "--proof", bundle, file}, tc.args...)...)
		var r map[string]any
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("%s: output %q: %v", tc.name, out, err)
		}
		if code != tc.code || r["anchor"] != tc.anchor || r["check"] != tc.check {
			t.Errorf("%s: exit %d, %s; want exit %d, anchor %q, check %q", tc.name, code, out, tc.code, tc.anchor, tc.check)
		}
	}
}

// TestVerifyGoldenGarbageFields puts garbage in every field of the golden
// two-level bundle, one at a time: verify never succeeds, exits 1
// (a check failed) or 2 (malformed bundle), and names the problem.
func TestVerifyGoldenGarbageFields(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(goldenAnchored, "bundle.json"))
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(goldenAnchored, "part-02.csv")
	trust := filepath.Join(goldenAnchored, "trust.json")
	dir := t.TempDir()
	garbage := []any{nil, "", "garbage", -1, 1e30, true, []any{}, map[string]any{}, strings.Repeat("A", 70000)}
	fields := []string{"format", "key", "size", "digest", "leaf_index", "tree_size", "inclusion", "root", "anchor",
		"anchor.channel", "anchor.entry", "anchor.proof"}
	n := 0
	for _, field := range fields {
		for gi, g := range garbage {
			var b map[string]any
			if err := json.Unmarshal(raw, &b); err != nil {
				t.Fatal(err)
			}
			obj, key := b, field
			if k, ok := strings.CutPrefix(field, "anchor."); ok {
				obj, key = b["anchor"].(map[string]any), k
			}
			obj[key] = g
			enc, _ := json.Marshal(b)
			p := filepath.Join(dir, field+"-"+string(rune('a'+gi))+".json")
			if err := os.WriteFile(p, enc, 0o644); err != nil {
				t.Fatal(err)
			}
			out, code := lp(t, "verify", "--proof", p, file, "--trust", trust)
			n++
			if code != exitInvalid && code != exitUsage {
				t.Errorf("%s = %.40v: exit %d, want 1 or 2:\n%s", field, g, code, out)
				continue
			}
			if !strings.Contains(out, "malformed proof bundle") && !strings.Contains(out, "INVALID") {
				t.Errorf("%s = %.40v: exit %d without naming the problem:\n%s", field, g, code, out)
			}
		}
	}
	t.Logf("%d garbage bundles rejected", n)
}
