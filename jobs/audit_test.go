package jobs

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/lakeproof/lakeproof/index"
)

func runAudit(t *testing.T, lake, idx string, maxPending int) (*AuditReport, []Item) {
	t.Helper()
	ix, err := index.Open(context.Background(), idx)
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	var items []Item
	rep, err := Audit(context.Background(), openLocal(t, lake), ix, AuditOptions{
		Workers: 3, MaxPending: maxPending,
		OnItem: func(it Item) error { items = append(items, it); return nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	return rep, items
}

func TestAuditClean(t *testing.T) {
	tmp := t.TempDir()
	lake := filepath.Join(tmp, "lake")
	makeLake(t, lake, 200)
	res := fullIndex(t, lake, filepath.Join(tmp, "v1"))
	rep, items := runAudit(t, lake, filepath.Join(tmp, "v1"), 0)
	if !rep.Clean() || rep.Matched != 200 || len(items) != 0 {
		t.Fatalf("clean lake: report %+v, items %v", rep, items)
	}
	if rep.CurrentRoot != res.Root {
		t.Fatalf("current root %s, index root %s", rep.CurrentRoot, res.Root)
	}
}

func TestAuditDifferences(t *testing.T) {
	tmp := t.TempDir()
	lake := filepath.Join(tmp, "lake")
	keys := makeLake(t, lake, 100)
	fullIndex(t, lake, filepath.Join(tmp, "v1"))

	bitRot(t, filepath.Join(lake, keys[10]))                           // changed (metadata identical)
	writeFile(t, filepath.Join(lake, keys[20]), []byte("new content")) // changed
	os.Remove(filepath.Join(lake, keys[30]))                           // missing
	writeFile(t, filepath.Join(lake, "zz/extra"), []byte("brand new")) // extra
	// moved: same content under a new key (sorts before the old one)
	if err := os.Rename(filepath.Join(lake, keys[40]), filepath.Join(lake, "a-moved/"+"x")); err != nil {
		os.MkdirAll(filepath.Join(lake, "a-moved"), 0o755)
		if err := os.Rename(filepath.Join(lake, keys[40]), filepath.Join(lake, "a-moved/x")); err != nil {
			t.Fatal(err)
		}
	}
	// moved the other way: new key sorts after the old one
	os.MkdirAll(filepath.Join(lake, "zz"), 0o755)
	if err := os.Rename(filepath.Join(lake, keys[50]), filepath.Join(lake, "zz/moved-late")); err != nil {
		t.Fatal(err)
	}

	rep, items := runAudit(t, lake, filepath.Join(tmp, "v1"), 0)
	want := AuditReport{Matched: 95, Changed: 2, Missing: 1, Extra: 1, Moved: 2}
	got := AuditReport{Matched: rep.Matched, Changed: rep.Changed, Missing: rep.Missing, Extra: rep.Extra, Moved: rep.Moved}
	if got != want {
		t.Fatalf("counts %+v, want %+v; items %+v", got, want, items)
	}
	if rep.Clean() || !rep.AppendOnlyViolated() || rep.CurrentRoot == rep.IndexRoot {
		t.Fatalf("report %+v", rep)
	}
	find := func(s Status, key string) Item {
		for _, it := range items {
			if it.Status == s && it.Key == key {
				return it
			}
		}
		t.Fatalf("no %s item for %q in %+v", s, key, items)
		return Item{}
	}
	find(Changed, keys[10])
	find(Changed, keys[20])
	find(Missing, keys[30])
	find(Extra, "zz/extra")
	if it := find(Moved, "a-moved/x"); it.From != keys[40] {
		t.Fatalf("moved from %q, want %q", it.From, keys[40])
	}
	if it := find(Moved, "zz/moved-late"); it.From != keys[50] {
		t.Fatalf("moved from %q, want %q", it.From, keys[50])
	}
}

// With a bound of one pending key, a move whose halves are far apart in
// key order is no longer paired: it is reported as missing + extra, and
// the report says pairing was truncated.
func TestAuditMovedBound(t *testing.T) {
	tmp := t.TempDir()
	lake := filepath.Join(tmp, "lake")
	keys := makeLake(t, lake, 50)
	fullIndex(t, lake, filepath.Join(tmp, "v1"))
	os.Remove(filepath.Join(lake, keys[1]))
	os.Remove(filepath.Join(lake, keys[2]))
	os.MkdirAll(filepath.Join(lake, "zz"), 0o755)
	if err := os.Rename(filepath.Join(lake, keys[3]), filepath.Join(lake, "zz/m")); err != nil {
		t.Fatal(err)
	}
	rep, items := runAudit(t, lake, filepath.Join(tmp, "v1"), 1)
	if !rep.MovedTruncated || rep.Moved != 0 || rep.Missing != 3 || rep.Extra != 1 {
		t.Fatalf("bounded pairing: %+v", rep)
	}
	var ks []string
	for _, it := range items {
		ks = append(ks, string(it.Status)+":"+it.Key)
	}
	slices.Sort(ks)
	want := []string{"extra:zz/m", "missing:" + keys[1], "missing:" + keys[2], "missing:" + keys[3]}
	slices.Sort(want)
	if !slices.Equal(ks, want) {
		t.Fatalf("items %v, want %v", ks, want)
	}
	// With the default bound the same lake pairs the move.
	rep, _ = runAudit(t, lake, filepath.Join(tmp, "v1"), 0)
	if rep.MovedTruncated || rep.Moved != 1 || rep.Missing != 2 || rep.Extra != 0 {
		t.Fatalf("unbounded pairing: %+v", rep)
	}
}

func TestAuditAppendOnlyOK(t *testing.T) {
	tmp := t.TempDir()
	lake := filepath.Join(tmp, "lake")
	makeLake(t, lake, 30)
	fullIndex(t, lake, filepath.Join(tmp, "v1"))
	writeFile(t, filepath.Join(lake, "zz/new-log"), []byte("appended"))
	rep, _ := runAudit(t, lake, filepath.Join(tmp, "v1"), 0)
	if rep.AppendOnlyViolated() || rep.Extra != 1 || rep.Clean() {
		t.Fatalf("appending a file: %+v", rep)
	}
}

func TestAuditParquetReport(t *testing.T) {
	tmp := t.TempDir()
	lake := filepath.Join(tmp, "lake")
	keys := makeLake(t, lake, 40)
	fullIndex(t, lake, filepath.Join(tmp, "v1"))
	writeFile(t, filepath.Join(lake, keys[1]), []byte("changed"))
	os.Remove(filepath.Join(lake, keys[2]))
	ix, err := index.Open(context.Background(), filepath.Join(tmp, "v1"))
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	path := filepath.Join(tmp, "report.parquet")
	pr, err := NewParquetReport(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Audit(context.Background(), openLocal(t, lake), ix, AuditOptions{OnItem: pr.Add}); err != nil {
		t.Fatal(err)
	}
	if err := pr.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tbl, err := pqarrow.ReadTable(context.Background(), f, nil, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	defer tbl.Release()
	if tbl.NumRows() != 2 || tbl.Schema().NumFields() != ReportSchema.NumFields() {
		t.Fatalf("%d rows, schema %v", tbl.NumRows(), tbl.Schema())
	}
	for i, f := range ReportSchema.Fields() {
		g := tbl.Schema().Field(i)
		if g.Name != f.Name || !arrow.TypeEqual(g.Type, f.Type) || g.Nullable != f.Nullable {
			t.Fatalf("column %d: %v, want %v", i, g, f)
		}
	}
	var got []string
	for i := range 2 {
		st := tbl.Column(0).Data().Chunk(0).(*array.String).Value(i)
		k := tbl.Column(1).Data().Chunk(0).(*array.String).Value(i)
		got = append(got, st+":"+k)
	}
	slices.Sort(got)
	if want := []string{"changed:" + keys[1], "missing:" + keys[2]}; !slices.Equal(got, want) {
		t.Fatalf("rows %v, want %v", got, want)
	}
}
