package postgres_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/lakeproof/lakeproof/trail"
	"github.com/lakeproof/lakeproof/trail/postgres/pgtest"
)

// memHashes is an in-memory tlog.HashReader, the reference the stored
// hashes are compared with.
type memHashes []tlog.Hash

func (m memHashes) ReadHashes(idx []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		if x < 0 || x >= int64(len(m)) {
			return nil, fmt.Errorf("hash %d not stored (%d)", x, len(m))
		}
		out[i] = m[x]
	}
	return out, nil
}

// referenceHashes computes the tlog stored hashes of leaves in memory.
func referenceHashes(t testing.TB, leaves [][]byte) memHashes {
	t.Helper()
	var m memHashes
	for n, leaf := range leaves {
		hs, err := tlog.StoredHashes(int64(n), leaf, m)
		if err != nil {
			t.Fatal(err)
		}
		m = append(m, hs...)
	}
	return m
}

type ack struct {
	index int64
	link  string
	typ   string
}

// TestReplicasAppendOneChannel: three gateway replicas on one database —
// two separate processes started at the same moment on the empty database
// and one in the test process — and many concurrent writers over real
// HTTP on one channel. Every
// acknowledged entry is stored at its acknowledged index, the indexes are
// 0..N-1 without gap or duplicate, the stored tree hashes are exactly
// tlog's for the leaves in index order, and every checkpoint any replica
// signed meanwhile is consistent with the final one.
func TestReplicasAppendOneChannel(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := newProcCluster(t, pgtest.NewDatabase(t), 2, 1)
	author := c.user(t, 0, "author")
	addr := c.channel(t, author, "busy")
	writers := []*trail.Client{author}
	for i := 1; i < 3; i++ {
		w := c.user(t, i, fmt.Sprint("writer-", i))
		if _, err := w.RequestSubscription(ctx, addr, trail.RightReadAndWrite); err != nil {
			t.Fatal(err)
		}
		if err := author.Authorize(ctx, addr, w.ID, ""); err != nil {
			t.Fatal(err)
		}
		writers = append(writers, w)
	}

	const goroutines, each = 24, 10
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		acks   []ack
		cps    [][]byte
		failed = make(chan error, goroutines*each)
		done   = make(chan struct{})
		first  = make(chan struct{}) // closed after the monitor's first checkpoint
	)
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			cl := c.at(writers[g%len(writers)], g%len(c.urls))
			<-first
			for j := 0; j < each; j++ {
				typ := fmt.Sprintf("g%d-%d", g, j)
				d, err := cl.Write(ctx, addr, trail.Log{Type: typ})
				if err != nil {
					failed <- fmt.Errorf("write %s at replica %d: %w", typ, g%len(c.urls), err)
					continue
				}
				mu.Lock()
				acks = append(acks, ack{d.Index, d.Link, typ})
				mu.Unlock()
			}
		}(g)
	}
	// A monitor asks the replicas in turn for checkpoints while the writers
	// run: each replica signs what it sees, against the others' CAS.
	monitor := make(chan struct{})
	go func() {
		defer close(monitor)
		defer func() {
			select {
			case <-first:
			default:
				close(first)
			}
		}()
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			default:
			}
			cp, err := c.at(author, i%len(c.urls)).Checkpoint(ctx, addr)
			if err != nil {
				failed <- fmt.Errorf("checkpoint at replica %d: %w", i%len(c.urls), err)
				return
			}
			mu.Lock()
			cps = append(cps, cp)
			mu.Unlock()
			if i == 0 {
				close(first)
			}
			time.Sleep(time.Millisecond)
		}
	}()
	wg.Wait()
	close(done)
	<-monitor
	close(failed)
	for err := range failed {
		t.Error(err)
	}
	if t.Failed() {
		t.FailNow()
	}

	const n = goroutines * each
	if len(acks) != n {
		t.Fatalf("%d appends acknowledged, want %d", len(acks), n)
	}
	final := verifyChannel(t, c, author, addr, acks, replicaRange(len(c.urls)))
	if final.Size != n {
		t.Fatalf("%d entries stored, want %d", final.Size, n)
	}
	origin := trail.Origin(c.noteKey.Name(), addr)
	bySize := map[int64]tlog.Hash{}
	for k, b := range cps {
		cp, err := trail.ParseCheckpoint(b, origin, c.noteKey.Verifier)
		if err != nil {
			t.Fatal(err)
		}
		if h, ok := bySize[cp.Size]; ok && h != cp.Hash {
			t.Fatalf("two checkpoints of size %d with different roots", cp.Size)
		}
		bySize[cp.Size] = cp.Hash
		proof, err := c.at(author, k%len(c.urls)).ConsistencyProof(ctx, addr, cp.Size, final.Size)
		if err != nil {
			t.Fatal(err)
		}
		if err := trail.VerifyConsistency(cp, final, proof); err != nil {
			t.Fatalf("checkpoint of size %d: %v", cp.Size, err)
		}
	}
	sizes := slices.Sorted(func(yield func(int64) bool) {
		for s := range bySize {
			if !yield(s) {
				return
			}
		}
	})
	t.Logf("%d entries by %d writers through %d replicas; %d checkpoints fetched meanwhile, %d distinct sizes %v", n, goroutines, len(c.urls), len(cps), len(sizes), sizes)
	if len(sizes) < 2 {
		t.Errorf("the monitor saw only %d checkpoint sizes; the test did not exercise concurrent signing", len(sizes))
	}
}

func replicaRange(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

// verifyChannel checks the stored channel against what the writers were
// told (through the in-process replica's store) and returns the
// checkpoint the replicas in alive serve now: indexes 0..N-1 without gap
// or duplicate, every acknowledged entry at its acknowledged index, the
// stored tree hashes exactly tlog's for the leaves in index order, and the
// same latest checkpoint at every replica, of size N with the reference
// root.
func verifyChannel(t *testing.T, c *cluster, author *trail.Client, addr string, acks []ack, alive []int) trail.Checkpoint {
	t.Helper()
	ctx := context.Background()
	entries, err := c.stores[0].Entries(ctx, addr, trail.EntryQuery{Since: 0})
	if err != nil {
		t.Fatal(err)
	}
	n := int64(len(entries))
	leaves := make([][]byte, n)
	for i, e := range entries {
		if e.Index != int64(i) {
			t.Fatalf("entry %d has index %d", i, e.Index)
		}
		leaves[i] = e.Leaf
	}
	for _, a := range acks {
		if a.index >= n {
			t.Fatalf("%s acknowledged at index %d, but only %d entries are stored", a.typ, a.index, n)
		}
		if got := trail.Link(addr, entries[a.index].LeafHash); got != a.link {
			t.Fatalf("%s acknowledged at index %d as %s, but that index holds %s", a.typ, a.index, a.link, got)
		}
	}
	ref := referenceHashes(t, leaves)
	got, err := c.stores[0].ReadHashes(ctx, addr, func() []int64 {
		idx := make([]int64, len(ref))
		for i := range idx {
			idx[i] = int64(i)
		}
		return idx
	}())
	if err != nil {
		t.Fatal(err)
	}
	for i := range ref {
		if got[i] != ref[i] {
			t.Fatalf("stored hash %d differs from tlog.StoredHashes", i)
		}
	}
	if n, err := c.stores[0].Size(ctx, addr); err != nil || n != int64(len(leaves)) {
		t.Fatalf("Size %d (%v), %d entries", n, err, len(leaves))
	}
	root, err := tlog.TreeHash(n, ref)
	if err != nil {
		t.Fatal(err)
	}
	origin := trail.Origin(c.noteKey.Name(), addr)
	var final trail.Checkpoint
	for k, i := range alive {
		b, err := c.at(author, i).Checkpoint(ctx, addr)
		if err != nil {
			t.Fatal(err)
		}
		cp, err := trail.ParseCheckpoint(b, origin, c.noteKey.Verifier)
		if err != nil {
			t.Fatal(err)
		}
		if cp.Size != n || cp.Hash != root {
			t.Fatalf("replica %d: checkpoint of size %d, want %d with the reference root", i, cp.Size, n)
		}
		if k > 0 && string(cp.Note) != string(final.Note) {
			t.Fatalf("replicas %d and %d serve different checkpoints of size %d:\n%s\n%s", alive[0], i, n, final.Note, cp.Note)
		}
		final = cp
	}
	return final
}

// TestReplicaKilledMidAppend: a replica process is killed (SIGKILL, as a
// crash) while writers append through it and through two other replicas.
// PostgreSQL rolls back its open transaction and releases the channel
// lock: the others go on, and the log stays gap-free with every
// acknowledged entry at its index. Entries the killed replica did not
// acknowledge may or may not be stored (the commit may have happened just
// before the kill), never half.
func TestReplicaKilledMidAppend(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := newProcCluster(t, pgtest.NewDatabase(t), 2, 1)
	author := c.user(t, 2, "author")
	addr := c.channel(t, author, "crash")
	const goroutines, each = 12, 20
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		acks     []ack
		lost     int
		killOnce sync.Once
		failed   = make(chan error, goroutines*each)
	)
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			r := g % len(c.urls)
			cl := c.at(author, r)
			for j := 0; j < each; j++ {
				typ := fmt.Sprintf("g%d-%d", g, j)
				d, err := cl.Write(ctx, addr, trail.Log{Type: typ})
				mu.Lock()
				switch {
				case err == nil:
					acks = append(acks, ack{d.Index, d.Link, typ})
				case r == 1 && c.procs[1].killed.Load():
					lost++ // the killed replica: no answer
				default:
					failed <- fmt.Errorf("write %s at replica %d: %w", typ, r, err)
				}
				n := len(acks)
				mu.Unlock()
				if n >= goroutines*each/4 {
					killOnce.Do(c.procs[1].kill)
				}
			}
		}(g)
	}
	wg.Wait()
	close(failed)
	for err := range failed {
		t.Error(err)
	}
	if t.Failed() {
		t.FailNow()
	}
	if !c.procs[1].killed.Load() || lost == 0 {
		t.Fatalf("killed %v, %d writes lost: the kill did not happen during the writes", c.procs[1].killed.Load(), lost)
	}
	// Writes through the survivors still work after the kill.
	for _, r := range []int{0, 2} {
		d, err := c.at(author, r).Write(ctx, addr, trail.Log{Type: fmt.Sprint("after-", r)})
		if err != nil {
			t.Fatalf("write through replica %d after the kill: %v", r, err)
		}
		acks = append(acks, ack{d.Index, d.Link, fmt.Sprint("after-", r)})
	}
	final := verifyChannel(t, c, author, addr, acks, []int{0, 2})
	t.Logf("%d acknowledged, %d writes to the killed replica unanswered, %d entries stored", len(acks), lost, final.Size)
	if final.Size < int64(len(acks)) || final.Size > int64(len(acks)+lost) {
		t.Fatalf("%d entries stored, want between %d acknowledged and %d attempted", final.Size, len(acks), len(acks)+lost)
	}
}
