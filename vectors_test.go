package lakeproof_test

import (
	"context"
	"encoding/json"
	"flag"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/zeebo/blake3"

	"github.com/lakeproof/lakeproof"
	"github.com/lakeproof/lakeproof/index"
	"github.com/lakeproof/lakeproof/pipeline"
	"github.com/lakeproof/lakeproof/sources/local"
)

var update = flag.Bool("update", false, "rewrite testdata/vectors.json from the current implementation")

// vector is one golden dataset. Shell creates it with bash in an empty
// directory; docs/FORMAT.md explains how to reproduce Root with the CLI:
//
//	mkdir d && (cd d && bash -c "$SHELL") && lakeproof index d --out d.idx --json
type vector struct {
	Name  string   `json:"name"`
	Shell string   `json:"shell"`
	Root  string   `json:"root"`
	Files int      `json:"files"`
	Bytes int64    `json:"bytes"`
	Keys  []string `json:"keys,omitempty"` // in tree order; omitted for big vectors
}

var vectorSpecs = []vector{
	{Name: "empty", Shell: `:`},
	{Name: "one-file", Shell: `printf 'hello, lake\n' > hello.txt`},
	{Name: "two-files", Shell: `printf a > a; printf b > b`},
	{Name: "three-files", Shell: `mkdir -p x; printf 'one\n' > x/1; printf 'two\n' > x/2; printf 'three\n' > x/3`},
	{Name: "seven-files", Shell: `for i in 0 1 2 3 4 5 6; do printf 'part %d\n' $i > part-$i.csv; done`},
	{Name: "thousand-files", Shell: `for i in $(seq 0 999); do mkdir -p dir-$((i / 100)); printf 'row %d\n' $i > dir-$((i / 100))/f-$i.txt; done`},
	{Name: "zero-byte-files", Shell: `mkdir -p z; : > empty; : > z/empty; printf x > z/x`},
	{Name: "unicode-keys", Shell: `mkdir -p 日本; printf 1 > café.txt; printf 2 > 日本/データ.csv; printf 3 > 'emoji-🙂'; printf 4 > 'a b+c%20d'; printf 5 > 'back\slash'`},
	{Name: "bytewise-not-walk-order", Shell: `mkdir -p a/c; printf 1 > a.txt; printf 2 > a/b; printf 3 > a-b; printf 4 > 'a b'; printf 5 > a0; printf 6 > a/c/d`},
}

func buildVector(t *testing.T, v vector) (dir string, got vector, digests map[string]lakeproof.Hash) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), "d")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", "-c", v.Shell)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", v.Shell, err, out)
	}
	src, err := local.New(dir, local.Options{})
	if err != nil {
		t.Fatal(err)
	}
	w, err := index.Create(dir+".idx", index.Meta{Source: "test", Tool: "test"})
	if err != nil {
		t.Fatal(err)
	}
	got = vector{Name: v.Name, Shell: v.Shell}
	digests = map[string]lakeproof.Hash{}
	err = pipeline.Run(context.Background(), src, pipeline.Options{Workers: 3, Window: 5}, func(r pipeline.Result) error {
		if r.Err != nil {
			t.Fatalf("object error: %v", r.Err)
		}
		got.Keys = append(got.Keys, r.Key)
		got.Files++
		got.Bytes += r.Size
		digests[r.Key] = r.Digest
		return w.Add(index.Entry{Key: r.Key, Size: r.Size, ModTime: r.ModTime, Digest: r.Digest})
	})
	if err != nil {
		t.Fatal(err)
	}
	sum, err := w.Commit(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got.Root = sum.Root.String()
	if got.Files > 20 {
		got.Keys = nil
	}
	return dir, got, digests
}

func TestGoldenVectors(t *testing.T) {
	path := filepath.Join("testdata", "vectors.json")
	var golden []vector
	if !*update {
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(raw, &golden); err != nil {
			t.Fatal(err)
		}
		if len(golden) != len(vectorSpecs) {
			t.Fatalf("%s has %d vectors, want %d (run go test -run TestGoldenVectors -update)", path, len(golden), len(vectorSpecs))
		}
	}
	var out []vector
	for i, spec := range vectorSpecs {
		t.Run(spec.Name, func(t *testing.T) {
			dir, got, digests := buildVector(t, spec)
			out = append(out, got)
			if !*update {
				if want := golden[i]; got.Root != want.Root || got.Files != want.Files || got.Bytes != want.Bytes ||
					!slices.Equal(got.Keys, want.Keys) || got.Shell != want.Shell {
					t.Errorf("got %+v\nwant %+v", got, want)
				}
			}
			checkAgainstReference(t, dir, got, digests)
		})
	}
	if *update {
		var buf strings.Builder
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(buf.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// checkAgainstReference recomputes the vector independently: a plain
// directory walk sorted bytewise, whole-file BLAKE3 (and the b3sum binary
// when present), and the naive recursive tree.
func checkAgainstReference(t *testing.T, dir string, got vector, digests map[string]lakeproof.Hash) {
	t.Helper()
	var keys []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		if d.Type().IsRegular() {
			rel, _ := filepath.Rel(dir, p)
			keys = append(keys, filepath.ToSlash(rel))
		}
		return nil
	})
	slices.Sort(keys) // Go string order is bytewise
	if got.Keys != nil && !slices.Equal(keys, got.Keys) {
		t.Fatalf("key order %q, reference %q", got.Keys, keys)
	}
	var leaves [][]byte
	for _, k := range keys {
		data, err := os.ReadFile(filepath.Join(dir, k))
		if err != nil {
			t.Fatal(err)
		}
		d := lakeproof.Hash(blake3.Sum256(data))
		if digests[k] != d {
			t.Fatalf("%s: pipeline digest %s, reference %s", k, digests[k], d)
		}
		leaves = append(leaves, lakeproof.LeafData(k, uint64(len(data)), d))
	}
	if ref := lakeproof.Hash(refRoot(leaves)); ref.String() != got.Root {
		t.Fatalf("root %s, naive reference %s", got.Root, ref)
	}
	if len(keys) == 0 || !haveB3sum(t) {
		return
	}
	// b3sum over every file, from the dataset root, keys as arguments.
	args := append([]string{"--no-mmap"}, keys...)
	if len(keys) > 200 {
		args = append([]string{"--no-mmap"}, keys[:200]...)
	}
	cmd := exec.Command("b3sum", args...)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("b3sum: %v", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		hexd, name, _ := strings.Cut(strings.TrimPrefix(line, "\\"), "  ")
		name = strings.ReplaceAll(name, `\\`, `\`)
		if digests[name].String() != hexd {
			t.Errorf("b3sum %s = %s, lakeproof %s", name, hexd, digests[name])
		}
	}
}
