package index_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/zeebo/blake3"

	"github.com/lakeproof/lakeproof"
	"github.com/lakeproof/lakeproof/index"
)

var ctx = context.Background()

func entryFor(i int) index.Entry {
	key := fmt.Sprintf("part=%03d/file-%06d.bin", i%7, i)
	return index.Entry{
		Key:     key,
		Size:    int64(i * 3),
		ModTime: time.Unix(1_700_000_000+int64(i), int64(i)).UTC(),
		Digest:  lakeproof.Hash(blake3.Sum256([]byte(key))),
	}
}

// sortedEntries returns n entries in key order.
func sortedEntries(n int) []index.Entry {
	es := make([]index.Entry, n)
	for i := range es {
		es[i] = entryFor(i)
		es[i].Key = fmt.Sprintf("k/%08d", i) + es[i].Key[len("part=000"):]
	}
	return es
}

func writeIndex(t testing.TB, dir string, es []index.Entry) index.Summary {
	t.Helper()
	w, err := index.Create(dir, index.Meta{Source: "file:///test", Tool: "test"})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		if err := w.Add(e); err != nil {
			t.Fatal(err)
		}
	}
	s, err := w.Commit(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func refRoot(es []index.Entry) lakeproof.Hash {
	if len(es) == 0 {
		return lakeproof.EmptyRoot
	}
	if len(es) == 1 {
		return lakeproof.LeafHash(es[0].Key, uint64(es[0].Size), es[0].Digest)
	}
	k := 1
	for k*2 < len(es) {
		k *= 2
	}
	return lakeproof.NodeHash(refRoot(es[:k]), refRoot(es[k:]))
}

func TestRoundTripAllProofs(t *testing.T) {
	sizes := []int{0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 33, 64, 100, 257}
	for _, n := range sizes {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			es := sortedEntries(n)
			dir := filepath.Join(t.TempDir(), "x.idx")
			s := writeIndex(t, dir, es)
			if want := refRoot(es); s.Root != want {
				t.Fatalf("root %s, reference %s", s.Root, want)
			}
			ix, err := index.Open(ctx, dir)
			if err != nil {
				t.Fatal(err)
			}
			defer ix.Close()
			if err := ix.Check(ctx); err != nil {
				t.Fatal(err)
			}
			for i, e := range es {
				b, err := ix.Prove(ctx, e.Key)
				if err != nil {
					t.Fatalf("prove %q: %v", e.Key, err)
				}
				if b.LeafIndex != uint64(i) || b.Digest != e.Digest || b.Size != uint64(e.Size) || b.Root != s.Root {
					t.Fatalf("bundle %+v does not describe entry %d", b, i)
				}
				parsed, err := lakeproof.ParseBundle(b.Marshal())
				if err != nil {
					t.Fatal(err)
				}
				if err := parsed.VerifyProof(); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := ix.Prove(ctx, "k/zzz"); !errors.Is(err, index.ErrKeyNotFound) {
				t.Fatalf("prove of a missing key: %v, want ErrKeyNotFound", err)
			}
		})
	}
}

func TestManyRowGroups(t *testing.T) {
	n := 2*index.RowGroupRows + 17
	if testing.Short() {
		t.Skip("slow")
	}
	es := sortedEntries(n)
	dir := filepath.Join(t.TempDir(), "x.idx")
	s := writeIndex(t, dir, es)
	if s.Root != refRoot(es) {
		t.Fatal("root differs from reference")
	}
	ix, err := index.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	for _, i := range []int{0, 1, index.RowGroupRows - 1, index.RowGroupRows, index.RowGroupRows + 1, n - 1} {
		b, err := ix.Prove(ctx, es[i].Key)
		if err != nil || b.LeafIndex != uint64(i) {
			t.Fatalf("prove entry %d: %v %v", i, b, err)
		}
		if err := b.VerifyProof(); err != nil {
			t.Fatal(err)
		}
	}
	// A prefix range that crosses a row-group boundary.
	prefix := es[index.RowGroupRows].Key[:len("k/000655")]
	var got []string
	for e, err := range ix.Entries(ctx, prefix) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, e.Key)
	}
	var want []string
	for _, e := range es {
		if strings.HasPrefix(e.Key, prefix) {
			want = append(want, e.Key)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) || len(want) == 0 {
		t.Fatalf("Entries(%q) = %d keys, want %d", prefix, len(got), len(want))
	}
	if err := ix.Check(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestIndependentParquetReader reads index.parquet with parquet-go, a
// Parquet implementation independent of the arrow-go writer.
func TestIndependentParquetReader(t *testing.T) {
	es := sortedEntries(50)
	es[3].ETag = "abc-2"
	es[3].Checksum = "CRC64NVME:AAAAAAAAAAA="
	dir := filepath.Join(t.TempDir(), "x.idx")
	s := writeIndex(t, dir, es)
	type row struct {
		Key      string    `parquet:"key"`
		Size     int64     `parquet:"size"`
		MTime    time.Time `parquet:"mtime,timestamp(nanosecond)"`
		Digest   [32]byte  `parquet:"digest"`
		Leaf     int64     `parquet:"leaf"`
		ETag     *string   `parquet:"etag,optional"`
		Checksum *string   `parquet:"checksum,optional"`
	}
	f, err := os.Open(filepath.Join(dir, index.ParquetFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	pf, err := parquet.OpenFile(f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{
		index.MetaFormat: index.Format, index.MetaRoot: s.Root.String(), index.MetaFiles: "50",
		index.MetaBytes: fmt.Sprint(s.Bytes), index.MetaSource: "file:///test", index.MetaTool: "test",
		index.MetaErrors: "0", index.MetaCreated: s.Created.Format(time.RFC3339),
	} {
		if got, ok := pf.Lookup(k); !ok || got != want {
			t.Errorf("metadata %s = %q, want %q", k, got, want)
		}
	}
	rows, err := parquet.Read[row](f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != len(es) {
		t.Fatalf("%d rows, want %d", len(rows), len(es))
	}
	for i, r := range rows {
		e := es[i]
		if r.Key != e.Key || r.Size != e.Size || !r.MTime.Equal(e.ModTime) || r.Digest != e.Digest || r.Leaf != int64(i) {
			t.Fatalf("row %d = %+v, want %+v", i, r, e)
		}
		if (r.ETag != nil) != (e.ETag != "") || (r.ETag != nil && *r.ETag != e.ETag) {
			t.Fatalf("row %d etag %v, want %q", i, r.ETag, e.ETag)
		}
		if (r.Checksum != nil) != (e.Checksum != "") {
			t.Fatalf("row %d checksum %v, want %q", i, r.Checksum, e.Checksum)
		}
	}
}

func TestNeverOverwrite(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "x.idx")
	writeIndex(t, dir, sortedEntries(3))
	before, _ := os.ReadFile(filepath.Join(dir, index.SummaryFile))
	if _, err := index.Create(dir, index.Meta{}); !errors.Is(err, index.ErrExists) {
		t.Fatalf("Create over an existing index: %v, want ErrExists", err)
	}
	// Something appears at the output path while the index is being written.
	dir2 := filepath.Join(t.TempDir(), "y.idx")
	w, err := index.Create(dir2, index.Meta{})
	if err != nil {
		t.Fatal(err)
	}
	w.Add(sortedEntries(1)[0])
	if err := os.Rename(dir, dir2); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Commit(ctx); !errors.Is(err, index.ErrExists) {
		t.Fatalf("Commit onto an existing index: %v, want ErrExists", err)
	}
	after, _ := os.ReadFile(filepath.Join(dir2, index.SummaryFile))
	if string(before) != string(after) {
		t.Fatal("existing index was modified")
	}
	assertNoTemp(t, filepath.Dir(dir2))
}

func assertNoTemp(t *testing.T, parent string) {
	t.Helper()
	ents, _ := os.ReadDir(parent)
	for _, e := range ents {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Fatalf("temporary directory %s left behind", e.Name())
		}
	}
}

func TestAbortLeavesNothing(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "x.idx")
	w, err := index.Create(dir, index.Meta{})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range sortedEntries(10) {
		w.Add(e)
	}
	w.Abort()
	if index.Exists(dir) {
		t.Fatal("aborted index exists")
	}
	assertNoTemp(t, parent)
	// Cancelled context at commit: nothing published either.
	w, _ = index.Create(dir, index.Meta{})
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := w.Commit(cctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("commit with cancelled ctx: %v", err)
	}
	if index.Exists(dir) {
		t.Fatal("index published despite cancellation")
	}
	assertNoTemp(t, parent)
}

func TestWriterRejects(t *testing.T) {
	w, err := index.Create(filepath.Join(t.TempDir(), "x.idx"), index.Meta{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	if err := w.Add(index.Entry{Key: "b"}); err != nil {
		t.Fatal(err)
	}
	for _, e := range []index.Entry{{Key: "b"}, {Key: "a"}, {Key: "c//d"}, {Key: "c", Size: -1}} {
		if err := w.Add(e); err == nil {
			t.Errorf("Add(%+v) succeeded", e)
		}
	}
}

func TestErrorsRecorded(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "x.idx")
	w, _ := index.Create(dir, index.Meta{})
	w.Add(sortedEntries(1)[0])
	w.AddError(index.ObjectError{Key: "bad\nname", Op: "key", Message: "contains control character"})
	w.AddError(index.ObjectError{Key: "inv\xffalid", Op: "key", Message: "not valid UTF-8"})
	s, err := w.Commit(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.Errors != 2 || s.Files != 1 || s.Digests[index.ErrorsFile] == "" {
		t.Fatalf("summary %+v", s)
	}
	raw, _ := os.ReadFile(filepath.Join(dir, index.ErrorsFile))
	if !strings.Contains(string(raw), `"key":"bad\nname"`) || !strings.Contains(string(raw), `"key_hex":"696e76ff616c6964"`) {
		t.Fatalf("errors.jsonl = %s", raw)
	}
	ix, err := index.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	if err := ix.Check(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestCorruption damages each file of an index and checks that Open, Prove
// or Check report ErrCorrupt and that no damaged index yields a bundle
// that fails to verify.
func TestCorruption(t *testing.T) {
	es := sortedEntries(40)
	clean := filepath.Join(t.TempDir(), "clean.idx")
	writeIndex(t, clean, es)
	damage := []struct {
		name, file string
		mutate     func([]byte) []byte
	}{
		{"truncate parquet", index.ParquetFile, func(b []byte) []byte { return b[:len(b)/2] }},
		{"empty parquet", index.ParquetFile, func(b []byte) []byte { return nil }},
		{"flip parquet footer", index.ParquetFile, func(b []byte) []byte { b[len(b)-12] ^= 0xff; return b }},
		{"flip parquet data", index.ParquetFile, func(b []byte) []byte { b[len(b)/3] ^= 0x01; return b }},
		{"truncate tree", "tree-00.bin", func(b []byte) []byte { return b[:len(b)-32] }},
		{"flip tree", "tree-00.bin", func(b []byte) []byte { b[5*32+3] ^= 0x01; return b }},
		{"flip tree level 4", "tree-04.bin", func(b []byte) []byte { b[0] ^= 0x01; return b }},
		{"summary garbage", index.SummaryFile, func(b []byte) []byte { return []byte("{not json") }},
		{"summary root", index.SummaryFile, func(b []byte) []byte {
			return []byte(strings.Replace(string(b), `"root": "`, `"root": "0`, 1)[:len(b)])
		}},
		{"summary empty", index.SummaryFile, func(b []byte) []byte { return nil }},
		{"summary missing", index.SummaryFile, nil},
	}
	for _, d := range damage {
		t.Run(d.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "x.idx")
			os.CopyFS(dir, os.DirFS(clean))
			p := filepath.Join(dir, d.file)
			if d.mutate == nil {
				os.Remove(p)
			} else {
				raw, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				os.Chmod(p, 0o644)
				if err := os.WriteFile(p, d.mutate(raw), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			ix, err := index.Open(ctx, dir)
			if err != nil {
				if !errors.Is(err, index.ErrCorrupt) {
					t.Fatalf("Open: %v, want ErrCorrupt", err)
				}
				return
			}
			defer ix.Close()
			var proveErr error
			for _, e := range es {
				b, err := ix.Prove(ctx, e.Key)
				if err != nil {
					proveErr = err
					continue
				}
				if b.VerifyProof() != nil || b.Digest != e.Digest {
					t.Fatalf("damaged index produced a wrong bundle for %q", e.Key)
				}
			}
			if proveErr != nil && !errors.Is(proveErr, index.ErrCorrupt) {
				t.Fatalf("Prove: %v, want ErrCorrupt", proveErr)
			}
			if err := ix.Check(ctx); !errors.Is(err, index.ErrCorrupt) {
				t.Fatalf("Check: %v, want ErrCorrupt", err)
			}
		})
	}
}
