package jobs

import (
	"errors"
	"fmt"
	"iter"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/zeebo/blake3"

	"github.com/lakeproof/lakeproof"
	"github.com/lakeproof/lakeproof/index"
	"github.com/lakeproof/lakeproof/pipeline"
)

// The predecessor's root check (reuser: no second tree while rows are
// reused in place, then one started from the writer's range) accepts the
// predecessor exactly when its rows lead to its summary's root, wherever
// the listing first departs from it and however far emission lags behind
// reuse.
func TestPredecessorRootCheckModes(t *testing.T) {
	const n = 40
	mt := time.Unix(1_700_000_000, 0).UTC()
	prev := make([]index.Entry, n)
	var bytes uint64
	tree := newRange()
	for i := range prev {
		prev[i] = index.Entry{Key: fmt.Sprintf("k%03d", 2*i+1), Size: int64(i), ModTime: mt, Digest: blake3.Sum256([]byte{byte(i)})}
		leaf := lakeproof.LeafHash(prev[i].Key, uint64(prev[i].Size), prev[i].Digest)
		tree.Append(leaf[:], nil)
		bytes += uint64(i)
	}
	h, _ := tree.GetRootHash(nil)
	sum := index.Summary{Root: lakeproof.Hash(h), Files: n, Bytes: bytes}

	at := func(i int, f func([]index.Entry, int) []index.Entry) func([]index.Entry) []index.Entry {
		return func(es []index.Entry) []index.Entry { return f(es, i) }
	}
	touch := func(es []index.Entry, i int) []index.Entry { es[i].ModTime = es[i].ModTime.Add(time.Second); return es }
	rewrite := func(es []index.Entry, i int) []index.Entry {
		es[i].Digest[0] ^= 1
		es[i].ModTime = mt.Add(time.Hour)
		return es
	}
	drop := func(es []index.Entry, i int) []index.Entry { return slices.Delete(es, i, i+1) }
	extra := func(es []index.Entry, i int) []index.Entry { // a new key just before row i (i = len: after the last)
		key := fmt.Sprintf("k%03d", 2*i)
		if i == len(es) {
			key = "z"
		}
		return slices.Insert(es, i, index.Entry{Key: key, Size: 3, ModTime: mt, Digest: blake3.Sum256([]byte(key))})
	}
	cases := map[string]func([]index.Entry) []index.Entry{
		"unchanged": func(es []index.Entry) []index.Entry { return es },
		"empty":     func([]index.Entry) []index.Entry { return nil },
	}
	for _, i := range []int{0, 1, n / 2, n - 1} {
		cases[fmt.Sprintf("touched %d", i)] = at(i, touch)
		cases[fmt.Sprintf("rewritten %d", i)] = at(i, rewrite)
		cases[fmt.Sprintf("missing %d", i)] = at(i, drop)
		cases[fmt.Sprintf("extra %d", i)] = at(i, extra)
	}
	cases["extra at the end"] = at(n, extra)

	tmp := t.TempDir()
	run := func(t *testing.T, rows []index.Entry, listing []index.Entry, lag int, all bool) error {
		t.Helper()
		ru := newReuser(&IndexResult{}, nil, all)
		w, err := index.Create(filepath.Join(tmp, fmt.Sprint(time.Now().UnixNano())), index.Meta{Source: "test:", Tool: "test"})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Abort()
		ru.w = w
		ru.next, ru.stop = ru.rows(entriesOf(rows))
		ru.advance()
		var pending []index.Entry // reused or hashed, not yet emitted
		emit := func() {
			e := pending[0]
			pending = pending[1:]
			j, err := ru.pop(e.Key)
			if err != nil {
				t.Fatal(err)
			}
			if err := ru.write(e, j); err != nil {
				t.Fatal(err)
			}
		}
		for _, e := range listing {
			if d, ok := ru.reuse(pipeline.Object{Key: e.Key, Size: e.Size, ModTime: e.ModTime}); ok {
				e.Digest = d // else: "hashed", e.Digest is the content's
			}
			pending = append(pending, e)
			for len(pending) > lag {
				emit()
			}
		}
		for len(pending) > 0 {
			emit()
		}
		return ru.finish(sum)
	}
	for name, mod := range cases {
		for _, lag := range []int{0, 1, 3, 2 * n} {
			for _, all := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/lag %d/rehash all %v", name, lag, all), func(t *testing.T) {
					listing := mod(slices.Clone(prev))
					if err := run(t, prev, listing, lag, all); err != nil {
						t.Fatalf("intact predecessor refused: %v", err)
					}
					for _, bad := range []int{0, n / 2, n - 1} { // one row altered: no longer the summary's root
						rows := slices.Clone(prev)
						rows[bad].Digest[31] ^= 0x80
						listing := mod(slices.Clone(prev))
						if err := run(t, rows, listing, lag, all); !errors.Is(err, ErrPredecessor) {
							t.Fatalf("row %d altered: %v, want ErrPredecessor", bad, err)
						}
					}
				})
			}
		}
	}
}

func entriesOf(es []index.Entry) iter.Seq2[index.Entry, error] {
	return func(yield func(index.Entry, error) bool) {
		for _, e := range es {
			if !yield(e, nil) {
				return
			}
		}
	}
}
