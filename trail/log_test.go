package trail_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/lakeproof/lakeproof/trail"
	tdlog "github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/tlog"
)

// appendLeaves appends n entries signed by w to addr through the store
// concurrently (group commit).
func appendLeaves(t testing.TB, e *env, addr string, w *trail.Client, tag string, n int) {
	t.Helper()
	writer := w.ID
	var wg sync.WaitGroup
	errc := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			se, err := trail.Sign(trail.Statement{V: trail.StatementVersion, ChannelAddress: addr, Writer: writer, Nonce: fmt.Sprint(tag, "-", i),
				Log: trail.Log{Type: "bulk", Created: "2026-01-01T00:00:00Z"}}, w.Key)
			if err != nil {
				errc <- err
				return
			}
			leaf, err := se.Leaf()
			if err != nil {
				errc <- err
				return
			}
			_, err = e.store.Append(context.Background(), trail.AppendRequest{ChannelAddress: addr, Writer: writer, Leaf: leaf})
			errc <- err
		}(i)
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		if err != nil {
			t.Fatal(err)
		}
	}
}

func leavesOf(t testing.TB, e *env, addr string) [][]byte {
	t.Helper()
	es, err := e.store.Entries(context.Background(), addr, trail.EntryQuery{Since: 0, Asc: true})
	if err != nil {
		t.Fatal(err)
	}
	out := make([][]byte, len(es))
	for i, en := range es {
		if en.Index != int64(i) {
			t.Fatalf("entry %d has index %d", i, en.Index)
		}
		out[i] = en.Leaf
	}
	return out
}

// independentRoot is the RFC 6962 root of leaves computed with
// transparency-dev/merkle (not tlog).
func independentRoot(t testing.TB, leaves [][]byte) []byte {
	t.Helper()
	if len(leaves) == 0 {
		return rfc6962.DefaultHasher.EmptyRoot()
	}
	rf := compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}
	r := rf.NewEmptyRange(0)
	for _, l := range leaves {
		if err := r.Append(rfc6962.DefaultHasher.HashLeaf(l), nil); err != nil {
			t.Fatal(err)
		}
	}
	root, err := r.GetRootHash(nil)
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func byteProof(p []tlog.Hash) [][]byte {
	out := make([][]byte, len(p))
	for i := range p {
		out[i] = p[i][:]
	}
	return out
}

func (e *env) checkpoint(t testing.TB, c *trail.Client, addr string) trail.Checkpoint {
	t.Helper()
	b, err := c.Checkpoint(context.Background(), addr)
	if err != nil {
		t.Fatalf("checkpoint of %s: %v", addr, err)
	}
	cp, err := trail.ParseCheckpoint(b, trail.Origin("test-gateway", addr), e.noteKey.Verifier)
	if err != nil {
		t.Fatalf("checkpoint of %s: %v\n%s", addr, err, b)
	}
	return cp
}

// TestChannelLogOverHTTP reads a channel's log the way an outside tlog
// client does (checkpoint, tiles, entry bundles, proofs over real HTTP)
// and checks everything against transparency-dev/merkle.
func TestChannelLogOverHTTP(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	w := e.user("writer")
	addr := e.channel(w, "logged", "private")
	anon := trail.NewClient(e.url) // no JWT: checkpoint, tiles and proofs are public

	cp0 := e.checkpoint(t, anon, addr)
	if cp0.Size != 0 || !bytesEq(cp0.Hash[:], rfc6962.DefaultHasher.EmptyRoot()) {
		t.Fatalf("empty channel checkpoint: %+v", cp0)
	}
	for i := 0; i < 3; i++ { // through the API, as writers do
		if _, err := w.Write(ctx, addr, trail.Log{Type: "reading", Metadata: []byte(fmt.Sprint(i))}); err != nil {
			t.Fatal(err)
		}
	}
	cp3 := e.checkpoint(t, anon, addr)
	appendLeaves(t, e, addr, w, "a", 297) // 300
	cp300 := e.checkpoint(t, anon, addr)
	appendLeaves(t, e, addr, w, "b", 345) // 645: 2 full tiles + 133, level-1 tile of width 2
	cp := e.checkpoint(t, anon, addr)
	leaves := leavesOf(t, e, addr)
	if cp.Size != int64(len(leaves)) || cp.Size != 645 {
		t.Fatalf("checkpoint size %d, %d leaves", cp.Size, len(leaves))
	}
	if root := independentRoot(t, leaves); !bytesEq(root, cp.Hash[:]) {
		t.Fatalf("checkpoint root %x, merkle computes %x", cp.Hash, root)
	}
	// transparency-dev/formats parses and verifies it too (as witnesses do).
	fcp, _, _, err := tdlog.ParseCheckpoint(cp.Note, cp.Origin, e.noteKey.Verifier)
	if err != nil || fcp.Size != uint64(cp.Size) || !bytesEq(fcp.Hash, cp.Hash[:]) {
		t.Fatalf("transparency-dev/formats: %+v %v", fcp, err)
	}
	again := e.checkpoint(t, anon, addr)
	if string(again.Note) != string(cp.Note) {
		t.Fatal("the log did not grow but a new checkpoint was signed")
	}

	if rep, err := w.VerifyLog(ctx, addr); err != nil || !rep.Valid || rep.Size != 645 || rep.CheckpointSize != 645 {
		t.Fatalf("integrity check: %+v %v", rep, err)
	}

	t.Run("inclusion proofs", func(t *testing.T) {
		for _, i := range []int64{0, 1, 2, 255, 256, 299, 511, 512, 600, 644} {
			p, err := anon.InclusionProof(ctx, addr, i, cp.Size)
			if err != nil {
				t.Fatal(err)
			}
			if err := trail.VerifyInclusion(cp, i, leaves[i], p); err != nil {
				t.Fatalf("entry %d: %v", i, err)
			}
			lh := rfc6962.DefaultHasher.HashLeaf(leaves[i])
			if err := proof.VerifyInclusion(rfc6962.DefaultHasher, uint64(i), uint64(cp.Size), lh, byteProof(p), cp.Hash[:]); err != nil {
				t.Fatalf("entry %d: transparency-dev/merkle: %v", i, err)
			}
			if err := trail.VerifyInclusion(cp, i, append([]byte(" "), leaves[i]...), p); !errors.Is(err, trail.ErrProof) {
				t.Fatalf("altered entry %d: %v", i, err)
			}
			if i > 0 {
				if err := trail.VerifyInclusion(cp, i-1, leaves[i], p); !errors.Is(err, trail.ErrProof) {
					t.Fatalf("entry %d at index %d: %v", i, i-1, err)
				}
			}
			if len(p) > 0 {
				if err := trail.VerifyInclusion(cp, i, leaves[i], p[:len(p)-1]); !errors.Is(err, trail.ErrProof) {
					t.Fatalf("truncated proof of %d: %v", i, err)
				}
			}
			got, err := w.LogEntry(ctx, addr, i)
			if err != nil || string(got) != string(leaves[i]) {
				t.Fatalf("entry %d: %q %v", i, got, err)
			}
		}
		// An older tree size.
		p, err := anon.InclusionProof(ctx, addr, 2, 3)
		if err != nil {
			t.Fatal(err)
		}
		if err := trail.VerifyInclusion(cp3, 2, leaves[2], p); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("consistency proofs", func(t *testing.T) {
		for _, old := range []trail.Checkpoint{cp0, cp3, cp300, cp} {
			p, err := anon.ConsistencyProof(ctx, addr, old.Size, cp.Size)
			if err != nil {
				t.Fatal(err)
			}
			if err := trail.VerifyConsistency(old, cp, p); err != nil {
				t.Fatalf("%d→%d: %v", old.Size, cp.Size, err)
			}
			if old.Size > 0 && old.Size < cp.Size {
				if err := proof.VerifyConsistency(rfc6962.DefaultHasher, uint64(old.Size), uint64(cp.Size), byteProof(p), old.Hash[:], cp.Hash[:]); err != nil {
					t.Fatalf("%d→%d: transparency-dev/merkle: %v", old.Size, cp.Size, err)
				}
				if err := trail.VerifyConsistency(old, cp, p[1:]); !errors.Is(err, trail.ErrInconsistent) {
					t.Fatalf("truncated proof: %v", err)
				}
			}
		}
		if err := trail.VerifyConsistency(cp, cp300, nil); !errors.Is(err, trail.ErrInconsistent) {
			t.Fatalf("newer → older: %v", err)
		}
	})

	t.Run("tiles verified against the checkpoint", func(t *testing.T) {
		thr := tlog.TileHashReader(tlog.Tree{N: cp.Size, Hash: cp.Hash}, anon.TileReader(ctx, addr))
		root, err := tlog.TreeHash(cp.Size, thr)
		if err != nil || root != cp.Hash {
			t.Fatalf("root from tiles: %x %v", root, err)
		}
		for _, i := range []int64{0, 300, 644} {
			p, err := tlog.ProveRecord(cp.Size, i, thr)
			if err != nil {
				t.Fatal(err)
			}
			if err := proof.VerifyInclusion(rfc6962.DefaultHasher, uint64(i), uint64(cp.Size), rfc6962.DefaultHasher.HashLeaf(leaves[i]), byteProof(p), cp.Hash[:]); err != nil {
				t.Fatalf("proof from tiles of %d: %v", i, err)
			}
		}
		// Raw tile bytes: level 0 tile 1 is the leaf hashes of 256..511.
		raw, err := anon.LogTile(ctx, addr, "tile/0/001")
		if err != nil || len(raw) != 256*32 {
			t.Fatalf("tile/0/001: %d bytes, %v", len(raw), err)
		}
		for k := 0; k < 256; k++ {
			if !bytesEq(raw[32*k:32*k+32], rfc6962.DefaultHasher.HashLeaf(leaves[256+k])) {
				t.Fatalf("tile/0/001 hash %d", k)
			}
		}
		if raw, err := anon.LogTile(ctx, addr, "tile/0/002.p/133"); err != nil || len(raw) != 133*32 {
			t.Fatalf("partial tile: %d %v", len(raw), err)
		}
		if raw, err := anon.LogTile(ctx, addr, "tile/1/000.p/2"); err != nil || len(raw) != 64 {
			t.Fatalf("level-1 tile: %d %v", len(raw), err)
		}
	})

	t.Run("entry bundles", func(t *testing.T) {
		for _, tc := range []struct {
			path  string
			first int
			n     int
		}{{"tile/entries/000", 0, 256}, {"tile/entries/001", 256, 256}, {"tile/entries/002.p/133", 512, 133}, {"tile/entries/002.p/5", 512, 5}} {
			raw, err := w.LogTile(ctx, addr, tc.path)
			if err != nil {
				t.Fatal(err)
			}
			for k := 0; k < tc.n; k++ {
				if len(raw) < 2 {
					t.Fatalf("%s: short at entry %d", tc.path, k)
				}
				l := int(binary.BigEndian.Uint16(raw))
				if string(raw[2:2+l]) != string(leaves[tc.first+k]) {
					t.Fatalf("%s entry %d differs", tc.path, k)
				}
				raw = raw[2+l:]
			}
			if len(raw) != 0 {
				t.Fatalf("%s: %d trailing bytes", tc.path, len(raw))
			}
		}
	})

	t.Run("errors", func(t *testing.T) {
		stranger := e.user("stranger")
		other := strings.Repeat("9", 80) + ":" + strings.Repeat("9", 24)
		base := "/api/v0.1/channels/log/"
		for _, tc := range []struct {
			path, jwt string
			code      int
		}{
			{base + addr + "/entry/0", "", 401},
			{base + addr + "/entry/0", stranger.JWT(), 403},
			{base + addr + "/tile/entries/000", "", 401},
			{base + addr + "/tile/entries/000", stranger.JWT(), 403},
			{base + addr + "/entry/645", w.JWT(), 404},
			{base + addr + "/entry/-1", w.JWT(), 400},
			{base + addr + "/entry/01", w.JWT(), 400},
			{base + addr + "/entry/x", w.JWT(), 400},
			{base + addr + "/tile/entries/003", w.JWT(), 404},
			{base + addr + "/tile/entries/002", w.JWT(), 404},
			{base + addr + "/tile/entries/002.p/134", w.JWT(), 404},
			{base + addr + "/tile/entries/002.p/0", w.JWT(), 400},
			{base + addr + "/tile/0/002", "", 404},
			{base + addr + "/tile/0/2", "", 400},
			{base + addr + "/tile/0/x002", "", 400},
			{base + addr + "/tile/0/000.p/256", "", 400},
			{base + addr + "/tile/1/000", "", 404},
			{base + addr + "/tile/9/000", "", 400},
			{base + addr + "/tile/data/000", "", 400},
			{base + addr + "/tile/-1/000", "", 400},
			{base + addr + "/proof/inclusion?index=0", "", 400},
			{base + addr + "/proof/inclusion?index=5&size=5", "", 400},
			{base + addr + "/proof/inclusion?index=0&size=646", "", 404},
			{base + addr + "/proof/inclusion?index=%2B1&size=5", "", 400},
			{base + addr + "/proof/inclusion?index=1&size=99999999999999999999", "", 400},
			{base + addr + "/proof/consistency?from=5&to=4", "", 400},
			{base + addr + "/proof/consistency?from=5&to=646", "", 404},
			{base + addr + "/proof/consistency?from=5", "", 400},
			{base + other + "/checkpoint", "", 404},
			{base + other + "/proof/consistency?from=0&to=0", "", 404},
			{base + "nothex/checkpoint", "", 400},
		} {
			e.wantStatus(t, "GET", tc.path, tc.jwt, nil, tc.code)
		}
		// Public channel entries need no JWT.
		pub := e.channel(w, "public-log", "public")
		appendLeaves(t, e, pub, w, "p", 2)
		e.wantStatus(t, "GET", base+pub+"/entry/1", "", nil, 200)
		e.wantStatus(t, "GET", base+pub+"/tile/entries/000.p/2", "", nil, 200)
	})
}

func bytesEq(a, b []byte) bool { return string(a) == string(b) }

// TestCheckpointsFormOneChain signs checkpoints from two gateways on one
// database (replicas sharing the note key) while entries are appended:
// every pair of checkpoints seen is consistent, sizes never go back, and
// the integrity check never reports a problem meanwhile.
func TestCheckpointsFormOneChain(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	w := e.user("writer")
	addr := e.channel(w, "chain", "private")
	srv2, err := trail.New(ctx, trail.Config{Store: e.store, GatewayKey: freshKey(), JWTSecret: e.secret, RateLimit: -1, NoteKey: e.noteKey})
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu   sync.Mutex
		seen []trail.Checkpoint
		wg   sync.WaitGroup
	)
	stop := make(chan struct{})
	for _, s := range []*trail.Server{e.srv, srv2, e.srv, srv2} {
		wg.Add(1)
		go func(s *trail.Server) {
			defer wg.Done()
			last := int64(-1)
			for {
				select {
				case <-stop:
					return
				default:
				}
				b, err := s.LogCheckpoint(ctx, addr)
				if err != nil {
					t.Error(err)
					return
				}
				cp, err := trail.ParseCheckpoint(b, trail.Origin("test-gateway", addr), e.noteKey.Verifier)
				if err != nil {
					t.Error(err)
					return
				}
				if cp.Size < last {
					t.Errorf("checkpoint size went back from %d to %d", last, cp.Size)
				}
				last = cp.Size
				mu.Lock()
				seen = append(seen, cp)
				mu.Unlock()
			}
		}(s)
	}
	// The integrity check runs alongside: never a false alarm.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			rep, err := e.srv.VerifyLog(ctx, addr)
			if err != nil || !rep.Valid {
				t.Errorf("integrity check during appends: %+v %v", rep, err)
				return
			}
		}
	}()
	for i := 0; i < 20; i++ {
		appendLeaves(t, e, addr, w, fmt.Sprint(i), 5)
	}
	close(stop)
	wg.Wait()
	final := e.checkpoint(t, trail.NewClient(e.url), addr)
	if final.Size != 100 {
		t.Fatalf("final size %d", final.Size)
	}
	bySize := map[int64]tlog.Hash{}
	for _, cp := range seen {
		if h, ok := bySize[cp.Size]; ok && h != cp.Hash {
			t.Fatalf("two roots at size %d", cp.Size)
		}
		bySize[cp.Size] = cp.Hash
		p, err := e.admin.ConsistencyProof(ctx, addr, cp.Size, final.Size)
		if err != nil {
			t.Fatal(err)
		}
		if err := trail.VerifyConsistency(cp, final, p); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d checkpoints of %d distinct sizes", len(seen), len(bySize))
}

// TestEntryTooLargeForTiles: entries must fit a tlog-tiles bundle.
func TestEntryTooLargeForTiles(t *testing.T) {
	e := newEnv(t)
	w := e.user("writer")
	addr := e.channel(w, "big", "private")
	body := fmt.Sprintf(`{"type":"x","payload":{"a":%q}}`, strings.Repeat("a", trail.MaxLogEntry))
	e.wantStatus(t, "POST", "/api/v0.1/channels/logs/"+addr, w.JWT(), []byte(body), http.StatusRequestEntityTooLarge)
}

func freshKey() ed25519.PrivateKey {
	_, k, _ := ed25519.GenerateKey(rand.Reader)
	return k
}
