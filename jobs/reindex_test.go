package jobs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/lakeproof/lakeproof"
	"github.com/lakeproof/lakeproof/index"
	"github.com/lakeproof/lakeproof/pipeline"
)

func incremental(t *testing.T, lake, prev, out string, opts IndexOptions) *IndexResult {
	t.Helper()
	opts.Out, opts.Previous, opts.Tool, opts.Workers = out, prev, "test", 3
	res, err := Index(context.Background(), openLocal(t, lake), opts)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestIncrementalNothingChanged(t *testing.T) {
	tmp := t.TempDir()
	lake := filepath.Join(tmp, "lake")
	makeLake(t, lake, 300)
	v1 := fullIndex(t, lake, filepath.Join(tmp, "v1"))
	v2 := incremental(t, lake, filepath.Join(tmp, "v1"), filepath.Join(tmp, "v2"), IndexOptions{})
	if v2.Root != v1.Root || v2.Reused != 300 || v2.Rehashed != 0 || v2.ChangedCount+v2.MissingCount != 0 {
		t.Fatalf("unchanged lake: %+v", v2)
	}
	digest, sum, err := index.SummaryDigest(context.Background(), index.LocalDir(filepath.Join(tmp, "v2")))
	if err != nil {
		t.Fatal(err)
	}
	p := sum.Previous
	if p == nil || p.Root != v1.Root || p.Path != filepath.Join(tmp, "v1") {
		t.Fatalf("previous pointer %+v", p)
	}
	d1, _, _ := index.SummaryDigest(context.Background(), index.LocalDir(filepath.Join(tmp, "v1")))
	if p.IndexDigest != d1 || digest == d1 {
		t.Fatalf("previous index digest %s, want %s", p.IndexDigest, d1)
	}
	if !slices.Equal(entries(t, filepath.Join(tmp, "v1")), entries(t, filepath.Join(tmp, "v2"))) {
		t.Fatal("entries differ")
	}
}

// The incremental root equals the root of a full re-hash, whatever changed.
func TestIncrementalEqualsFull(t *testing.T) {
	tmp := t.TempDir()
	lake := filepath.Join(tmp, "lake")
	keys := makeLake(t, lake, 300)
	fullIndex(t, lake, filepath.Join(tmp, "v1"))

	writeFile(t, filepath.Join(lake, keys[5]), []byte("rewritten"))
	writeFile(t, filepath.Join(lake, keys[6]), content(999, 2000))
	touchLater(t, filepath.Join(lake, keys[7])) // metadata only
	os.Remove(filepath.Join(lake, keys[8]))
	os.Remove(filepath.Join(lake, keys[299]))
	writeFile(t, filepath.Join(lake, "a-first"), []byte("new"))
	writeFile(t, filepath.Join(lake, "zz-last"), []byte("new too"))

	v2 := incremental(t, lake, filepath.Join(tmp, "v1"), filepath.Join(tmp, "v2"), IndexOptions{})
	full := fullIndex(t, lake, filepath.Join(tmp, "full"))
	if v2.Root != full.Root {
		t.Fatalf("incremental root %s, full %s", v2.Root, full.Root)
	}
	if v2.Rehashed != 5 || v2.Reused != 295 || v2.ChangedCount != 2 || v2.MissingCount != 2 {
		t.Fatalf("counts: %+v", v2)
	}
	if !slices.Equal(v2.Changed, []string{keys[5], keys[6]}) || !slices.Equal(v2.Missing, []string{keys[8], keys[299]}) {
		t.Fatalf("changed %v missing %v", v2.Changed, v2.Missing)
	}
	if !slices.Equal(entries(t, filepath.Join(tmp, "v2")), entries(t, filepath.Join(tmp, "full"))) {
		t.Fatal("entries differ from a full run")
	}
}

// Bit rot with unchanged metadata is invisible to reuse; --rehash-all and
// a sample that covers the object find it.
func TestVerifySampleFindsBitRot(t *testing.T) {
	tmp := t.TempDir()
	lake := filepath.Join(tmp, "lake")
	keys := makeLake(t, lake, 400)
	fullIndex(t, lake, filepath.Join(tmp, "v1"))
	rotten := keys[123]
	bitRot(t, filepath.Join(lake, rotten))

	plain := incremental(t, lake, filepath.Join(tmp, "v1"), filepath.Join(tmp, "plain"), IndexOptions{})
	if plain.Sampled != 0 || len(plain.Mismatches) != 0 || plain.Rehashed != 0 {
		t.Fatalf("plain incremental: %+v", plain)
	}
	all := incremental(t, lake, filepath.Join(tmp, "v1"), filepath.Join(tmp, "all"), IndexOptions{RehashAll: true})
	if all.Sampled != 400 || !slices.Equal(all.Mismatches, []string{rotten}) || all.Rehashed != 400 {
		t.Fatalf("rehash-all: %+v", all)
	}
	if full := fullIndex(t, lake, filepath.Join(tmp, "full")); all.Root != full.Root {
		t.Fatal("rehash-all root differs from a full run")
	}
	// A 10% sample is deterministic for a given predecessor and selects
	// about 10% of the objects.
	s1 := incremental(t, lake, filepath.Join(tmp, "v1"), filepath.Join(tmp, "s1"), IndexOptions{VerifySample: 0.10})
	s2 := incremental(t, lake, filepath.Join(tmp, "v1"), filepath.Join(tmp, "s2"), IndexOptions{VerifySample: 0.10})
	if s1.Sampled != s2.Sampled || !slices.Equal(s1.Mismatches, s2.Mismatches) {
		t.Fatalf("sample not deterministic: %d/%v vs %d/%v", s1.Sampled, s1.Mismatches, s2.Sampled, s2.Mismatches)
	}
	if s1.Sampled < 20 || s1.Sampled > 70 {
		t.Fatalf("10%% sample of 400 selected %d", s1.Sampled)
	}
	found := 0
	for _, k := range keys {
		frac := 0.10
		ru := &reuser{seed: s1.Previous.IndexDigest, sample: uint64(frac * (1 << 64))}
		if ru.sampled(k) {
			found++
			if k == rotten && !slices.Equal(s1.Mismatches, []string{rotten}) {
				t.Fatalf("sampled rotten key not reported: %v", s1.Mismatches)
			}
		}
	}
	if uint64(found) != s1.Sampled {
		t.Fatalf("sampled %d, recomputed %d", s1.Sampled, found)
	}
}

func TestAppendOnlyRefuses(t *testing.T) {
	tmp := t.TempDir()
	lake := filepath.Join(tmp, "lake")
	keys := makeLake(t, lake, 50)
	fullIndex(t, lake, filepath.Join(tmp, "v1"))
	writeFile(t, filepath.Join(lake, "zz/new"), []byte("appended"))
	ok := incremental(t, lake, filepath.Join(tmp, "v1"), filepath.Join(tmp, "v2"), IndexOptions{AppendOnly: true})
	if ok.Files != 51 || ok.Rehashed != 1 {
		t.Fatalf("append: %+v", ok)
	}
	writeFile(t, filepath.Join(lake, keys[3]), []byte("tampered"))
	os.Remove(filepath.Join(lake, keys[4]))
	res, err := Index(context.Background(), openLocal(t, lake), IndexOptions{
		Out: filepath.Join(tmp, "v3"), Previous: filepath.Join(tmp, "v2"), AppendOnly: true})
	if !errors.Is(err, ErrAppendOnly) {
		t.Fatalf("err %v, want ErrAppendOnly", err)
	}
	if index.Exists(filepath.Join(tmp, "v3")) || res.Published {
		t.Fatal("append-only violation published an index")
	}
	if !slices.Equal(res.Changed, []string{keys[3]}) || !slices.Equal(res.Missing, []string{keys[4]}) {
		t.Fatalf("named keys: changed %v missing %v", res.Changed, res.Missing)
	}
	assertNoTemp(t, tmp)
}

func assertNoTemp(t *testing.T, dir string) {
	t.Helper()
	tmps, _ := filepath.Glob(filepath.Join(dir, ".*.tmp-*"))
	if len(tmps) > 0 {
		t.Fatalf("temporary directories left: %v", tmps)
	}
}

func TestPredecessorRefused(t *testing.T) {
	tmp := t.TempDir()
	lake := filepath.Join(tmp, "lake")
	other := filepath.Join(tmp, "other")
	makeLake(t, lake, 40)
	makeLake(t, other, 5)
	fullIndex(t, other, filepath.Join(tmp, "other.idx"))
	fullIndex(t, lake, filepath.Join(tmp, "v1"))

	t.Run("another dataset", func(t *testing.T) {
		_, err := Index(context.Background(), openLocal(t, lake), IndexOptions{Out: filepath.Join(tmp, "x1"), Previous: filepath.Join(tmp, "other.idx")})
		if !errors.Is(err, ErrPredecessor) {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("another format version", func(t *testing.T) {
		bad := filepath.Join(tmp, "v0")
		copyDir(t, filepath.Join(tmp, "v1"), bad)
		sum, _ := os.ReadFile(filepath.Join(bad, "summary.json"))
		os.WriteFile(filepath.Join(bad, "summary.json"), []byte(replace(string(sum), "lakeproof/index/v1", "lakeproof/index/v0")), 0o644)
		_, err := Index(context.Background(), openLocal(t, lake), IndexOptions{Out: filepath.Join(tmp, "x2"), Previous: bad})
		if !errors.Is(err, ErrPredecessor) {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("altered rows", func(t *testing.T) {
		// Rows that do not lead to the summary's root: the reuser's root
		// check refuses them after the pass.
		ix, err := index.Open(context.Background(), filepath.Join(tmp, "v1"))
		if err != nil {
			t.Fatal(err)
		}
		defer ix.Close()
		sum := ix.Summary()
		sum.Root = lakeproof.Hash{1}
		_, err = Index(context.Background(), openLocal(t, lake), IndexOptions{Out: filepath.Join(tmp, "x3"), Previous: filepath.Join(tmp, "v1")})
		if err != nil {
			t.Fatal(err)
		}
		ru := newReuser(&IndexResult{}, nil, false)
		ru.mode = treeTracking // the rows below go straight into ru.tree
		for e, err := range ix.Entries(context.Background(), "") {
			if err != nil {
				t.Fatal(err)
			}
			leaf := lakeproof.LeafHash(e.Key, uint64(e.Size), e.Digest)
			ru.tree.Append(leaf[:], nil)
			ru.pbytes += uint64(e.Size)
		}
		ru.next = func() (prevEntry, error, bool) { return prevEntry{}, nil, false }
		ru.stop = func() {}
		if err := ru.finish(sum); !errors.Is(err, ErrPredecessor) {
			t.Fatalf("finish with a wrong root: %v", err)
		}
	})
	t.Run("shard as predecessor", func(t *testing.T) {
		sh := &index.Shard{Index: 0, Count: 1}
		fullShard := filepath.Join(tmp, "shard")
		if _, err := Index(context.Background(), openLocal(t, lake), IndexOptions{Out: fullShard, Shard: sh}); err != nil {
			t.Fatal(err)
		}
		_, err := Index(context.Background(), openLocal(t, lake), IndexOptions{Out: filepath.Join(tmp, "x4"), Previous: fullShard})
		if !errors.Is(err, ErrPredecessor) {
			t.Fatalf("err %v", err)
		}
	})
	assertNoTemp(t, tmp)
}

func replace(s, old, new string) string {
	for i := 0; i+len(old) <= len(s); i++ {
		if s[i:i+len(old)] == old {
			return s[:i] + new + s[i+len(old):]
		}
	}
	return s
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	if err := os.CopyFS(to, os.DirFS(from)); err != nil {
		t.Fatal(err)
	}
}

// failOpen fails to open one key, as an unreadable object would.
type failOpen struct {
	pipeline.Source
	key string
}

func (s failOpen) Open(ctx context.Context, o pipeline.Object) (io.ReadCloser, error) {
	if o.Key == s.key {
		return nil, fmt.Errorf("open %s: %w", o.Key, os.ErrPermission)
	}
	return s.Source.Open(ctx, o)
}

// An object that fails while being hashed, in an incremental run: counted
// as an error, the rest indexed (with skip-errors) or nothing (without).
func TestIncrementalHashError(t *testing.T) {
	tmp := t.TempDir()
	lake := filepath.Join(tmp, "lake")
	keys := makeLake(t, lake, 60)
	fullIndex(t, lake, filepath.Join(tmp, "v1"))
	touchLater(t, filepath.Join(lake, keys[10])) // re-hashed, and fails
	touchLater(t, filepath.Join(lake, keys[11])) // re-hashed after it
	src := failOpen{openLocal(t, lake), keys[10]}
	var seen []string
	res, err := Index(context.Background(), src, IndexOptions{Out: filepath.Join(tmp, "v2"), Previous: filepath.Join(tmp, "v1"), SkipErrors: true,
		OnError: func(e *pipeline.ObjectError) { seen = append(seen, e.Key) }})
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors != 1 || res.Files != 59 || res.Rehashed != 1 || !slices.Equal(seen, []string{keys[10]}) {
		t.Fatalf("%+v, errors on %v", res, seen)
	}
	_, err = Index(context.Background(), src, IndexOptions{Out: filepath.Join(tmp, "v3"), Previous: filepath.Join(tmp, "v1")})
	if !errors.Is(err, ErrObjects) || index.Exists(filepath.Join(tmp, "v3")) {
		t.Fatalf("without skip-errors: %v", err)
	}
}

// The reuse queue is a growing ring: FIFO order must survive growth
// while the head is anywhere in the buffer.
func TestJoinedQueue(t *testing.T) {
	var q jqueue
	next, want := 0, 0
	for round, burst := range []int{3, 20, 1, 40, 17, 100, 5} {
		for range burst {
			q.push(joined{key: fmt.Sprint(next)})
			next++
		}
		for range burst - round%2 { // leave some behind every other round
			if f, ok := q.front(); !ok || f.key != fmt.Sprint(want) {
				t.Fatalf("front %v %v, want %d", f, ok, want)
			}
			if j := q.popFront(); j.key != fmt.Sprint(want) {
				t.Fatalf("popped %q, want %d", j.key, want)
			}
			want++
		}
	}
	for q.n > 0 {
		if j := q.popFront(); j.key != fmt.Sprint(want) {
			t.Fatalf("popped %q, want %d", j.key, want)
		}
		want++
	}
	if want != next {
		t.Fatalf("popped %d of %d", want, next)
	}
	if _, ok := q.front(); ok {
		t.Fatal("front of an empty queue")
	}
}
