package lakeproof_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lakeproof/lakeproof/index"
	"github.com/lakeproof/lakeproof/pipeline"
	"github.com/lakeproof/lakeproof/sources/local"
)

// TestIndependentVerifier runs testdata/independent-verifier/verify.py, a
// verifier written in Python from docs/FORMAT.md alone with b3sum as its
// BLAKE3, on bundles produced by lakeproof, valid and tampered: its verdicts
// must match. This checks that the specification is complete and correct.
func TestIndependentVerifier(t *testing.T) {
	script := independentVerifier(t)
	dir := filepath.Join(t.TempDir(), "lake")
	for i := range 11 {
		p := filepath.Join(dir, fmt.Sprintf("d%d", i%3), fmt.Sprintf("f-%02d.csv", i))
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte(strings.Repeat(fmt.Sprintf("row %d\n", i), i*100)), 0o644)
	}
	src, err := local.New(dir, local.Options{})
	if err != nil {
		t.Fatal(err)
	}
	idx := dir + ".idx"
	w, _ := index.Create(idx, index.Meta{Source: "test"})
	var keys []string
	err = pipeline.Run(context.Background(), src, pipeline.Options{}, func(r pipeline.Result) error {
		keys = append(keys, r.Key)
		return w.Add(index.Entry{Key: r.Key, Size: r.Size, ModTime: r.ModTime, Digest: r.Digest})
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	ix, err := index.Open(context.Background(), idx)
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	run := func(bundle []byte, file string) (int, string) {
		bp := filepath.Join(t.TempDir(), "b.json")
		os.WriteFile(bp, bundle, 0o644)
		out, err := exec.Command("python3", script, bp, file).CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return code, strings.TrimSpace(string(out))
	}
	for _, k := range keys {
		b, err := ix.Prove(context.Background(), k)
		if err != nil {
			t.Fatal(err)
		}
		if code, out := run(b.Marshal(), filepath.Join(dir, k)); code != 0 {
			t.Fatalf("%s: independent verifier says %q (exit %d)", k, out, code)
		}
	}
	b, _ := ix.Prove(context.Background(), keys[5])
	file := filepath.Join(dir, keys[5])
	other := filepath.Join(dir, keys[6])
	mutate := func(f func(m map[string]any)) []byte {
		var m map[string]any
		json.Unmarshal(b.Marshal(), &m)
		f(m)
		out, _ := json.Marshal(m)
		return out
	}
	for _, tc := range []struct {
		name   string
		bundle []byte
		file   string
		code   int
		out    string
	}{
		{"other file", b.Marshal(), other, 1, "content changed"},
		{"altered root", mutate(func(m map[string]any) { m["root"] = strings.Repeat("0", 64) }), file, 1, "proof does not lead to root"},
		{"altered path", mutate(func(m map[string]any) { m["inclusion"].([]any)[0] = strings.Repeat("1", 64) }), file, 1, "proof does not lead to root"},
		{"altered index", mutate(func(m map[string]any) { m["leaf_index"] = 4 }), file, 1, "proof does not lead to root"},
		{"truncated path", mutate(func(m map[string]any) { m["inclusion"] = m["inclusion"].([]any)[1:] }), file, 2, "malformed bundle"},
		{"unknown field", mutate(func(m map[string]any) { m["x"] = 1 }), file, 2, "malformed bundle"},
		{"bad key", mutate(func(m map[string]any) { m["key"] = "a//b" }), file, 2, "malformed bundle"},
		{"garbage", []byte("not json"), file, 2, "malformed bundle"},
	} {
		code, out := run(tc.bundle, tc.file)
		if code != tc.code || !strings.HasPrefix(out, tc.out) {
			t.Errorf("%s: independent verifier exit %d %q, want %d %q", tc.name, code, out, tc.code, tc.out)
		}
		// lakeproof's own verifier must agree.
		p, err := lakeproofVerdict(tc.bundle, tc.file)
		if p != tc.code {
			t.Errorf("%s: lakeproof verdict %d (%v), want %d", tc.name, p, err, tc.code)
		}
	}
}

// independentVerifier returns the path of the Python verifier, or skips the
// test (fails it under LAKEPROOF_REQUIRE_SERVERS=1) when python3 or b3sum,
// its BLAKE3, is missing.
func independentVerifier(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("python3"); err != nil {
		if os.Getenv("LAKEPROOF_REQUIRE_SERVERS") == "1" {
			t.Fatal("python3 not found")
		}
		t.Skip("python3 not found")
	}
	if !haveB3sum(t) {
		t.Skip("b3sum not found")
	}
	script, _ := filepath.Abs("testdata/independent-verifier/verify.py")
	return script
}
