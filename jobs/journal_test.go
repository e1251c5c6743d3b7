package jobs

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lakeproof/lakeproof/pipeline"
)

// An interrupted run leaves its journal; the next run takes the journaled
// digests without reading those objects and gives the clean root.
func TestJournalResume(t *testing.T) {
	tmp := t.TempDir()
	lake := filepath.Join(tmp, "lake")
	makeLake(t, lake, 400)
	clean := fullIndex(t, lake, filepath.Join(tmp, "clean"))
	journal := filepath.Join(tmp, "journal")
	out := filepath.Join(tmp, "out")

	old := JournalSyncEvery
	JournalSyncEvery = 0 // sync every record so the cut point is exact
	defer func() { JournalSyncEvery = old }()

	for _, cut := range []int64{100, 250} {
		ctx, cancel := context.WithCancel(context.Background())
		src := &cancelAfter{Source: openLocal(t, lake), n: cut, cancel: cancel}
		_, err := Index(ctx, src, IndexOptions{Out: out, Journal: journal, Workers: 2})
		cancel()
		if err == nil {
			t.Fatal("interrupted run succeeded")
		}
		if _, err := os.Stat(out); err == nil {
			t.Fatal("interrupted run published an index")
		}
	}
	src := openLocal(t, lake)
	jr, err := openJournal(journal, src.URI(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var journaled uint64
	for o, err := range src.Objects(context.Background()) {
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := jr.lookup(o); ok {
			journaled++
		}
	}
	jr.close()
	res, err := Index(context.Background(), src, IndexOptions{Out: out, Journal: journal, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	if res.Root != clean.Root {
		t.Fatalf("resumed root %s, clean %s", res.Root, clean.Root)
	}
	if journaled == 0 || res.Resumed != journaled || res.Rehashed+res.Resumed != 400 {
		t.Fatalf("resume re-hashed %d, took %d from the journal", res.Rehashed, res.Resumed)
	}
	if _, err := os.Stat(journal); !os.IsNotExist(err) {
		t.Fatalf("journal not removed after success: %v", err)
	}
}

func TestJournalOfAnotherJob(t *testing.T) {
	tmp := t.TempDir()
	lake := filepath.Join(tmp, "lake")
	other := filepath.Join(tmp, "other")
	makeLake(t, lake, 20)
	makeLake(t, other, 20)
	journal := filepath.Join(tmp, "journal")
	jw, err := createJournal(journal, openLocal(t, other).URI(), nil)
	if err != nil {
		t.Fatal(err)
	}
	jw.close()
	_, err = Index(context.Background(), openLocal(t, lake), IndexOptions{Out: filepath.Join(tmp, "out"), Journal: journal})
	if !errors.Is(err, ErrJournal) {
		t.Fatalf("err %v, want ErrJournal", err)
	}
}

// A torn tail (a crash in the middle of a record) ends the valid records.
func TestJournalTornTail(t *testing.T) {
	tmp := t.TempDir()
	lake := filepath.Join(tmp, "lake")
	makeLake(t, lake, 50)
	src := openLocal(t, lake)
	journal := filepath.Join(tmp, "journal")
	jw, err := createJournal(journal, src.URI(), nil)
	if err != nil {
		t.Fatal(err)
	}
	objs := listObjects(t, src)
	for _, o := range objs[:10] {
		jw.add(o, [32]byte{1})
	}
	jw.close()
	seg := filepath.Join(journal, "seg-000001")
	st, _ := os.Stat(seg)
	os.Truncate(seg, st.Size()-5)
	jr, err := openJournal(journal, src.URI(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer jr.close()
	hits := 0
	for _, o := range objs {
		if _, ok := jr.lookup(o); ok {
			hits++
		}
	}
	if hits != 9 {
		t.Fatalf("%d records read from a journal of 10 with a torn last record", hits)
	}
}

// cancelAfter cancels the run when its n-th object is opened.
type cancelAfter struct {
	pipeline.Source
	n      int64
	opened atomic.Int64
	cancel func()
}

func (s *cancelAfter) Open(ctx context.Context, o pipeline.Object) (io.ReadCloser, error) {
	if s.opened.Add(1) == s.n {
		s.cancel()
	}
	return s.Source.Open(ctx, o)
}

// Records added before a pause reach the disk within a sync period even
// if nothing is added after them (a large object being hashed ahead of the
// next batch): a timer syncs them.
func TestJournalSyncsWhileIdle(t *testing.T) {
	old := JournalSyncEvery
	JournalSyncEvery = 20 * time.Millisecond
	defer func() { JournalSyncEvery = old }()
	tmp := t.TempDir()
	lake := filepath.Join(tmp, "lake")
	makeLake(t, lake, 5)
	src := openLocal(t, lake)
	journal := filepath.Join(tmp, "journal")
	jw, err := createJournal(journal, src.URI(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer jw.close()
	objs := listObjects(t, src)
	for _, o := range objs { // one burst, right after the header's sync: buffered
		if err := jw.add(o, [32]byte{2}); err != nil {
			t.Fatal(err)
		}
	}
	hits := func() int { // what a run started now (after a crash) would find
		jr, err := openJournal(journal, src.URI(), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer jr.close()
		n := 0
		for _, o := range objs {
			if _, ok := jr.lookup(o); ok {
				n++
			}
		}
		return n
	}
	deadline := time.Now().Add(5 * time.Second)
	for hits() < len(objs) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d records on disk 5 s after they were added", hits(), len(objs))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// listObjects returns src's listing.
func listObjects(t *testing.T, src pipeline.Source) []pipeline.Object {
	t.Helper()
	var objs []pipeline.Object
	for o, err := range src.Objects(context.Background()) {
		if err != nil {
			t.Fatal(err)
		}
		objs = append(objs, o)
	}
	return objs
}
