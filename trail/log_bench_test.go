package trail_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	mrand "math/rand/v2"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lakeproof/lakeproof/trail"
	"github.com/lakeproof/lakeproof/trail/sqlite"
	"golang.org/x/mod/sumdb/tlog"
)

// Channel-log benchmarks (issue 5 part 8). Results and commands:
// benchmarks/trail_results.md. They run only with -bench.

// BenchmarkAnchorAppend measures durable appends per second through the
// API (client-signed entries, concurrent writers, group commit), the
// path every anchor takes.
func BenchmarkAnchorAppend(b *testing.B) {
	e := newEnv(b)
	w := e.user("anchorer")
	addr := e.channel(w, "anchors", "private")
	ctx := context.Background()
	var seq atomic.Int64
	b.SetParallelism(16)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := seq.Add(1)
			if _, err := w.Write(ctx, addr, trail.Log{Type: "lakeproof.anchor/v1", PublicPayload: []byte(fmt.Sprintf(`{"dataset":"d","treeSize":%d}`, i))}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "appends/s")
}

// BenchmarkCheckpointAfterAppend measures GET …/checkpoint when the log
// grew by one entry since the last checkpoint: tree hash, consistency
// proof against the previous checkpoint, note signature and the
// compare-and-swap store.
func BenchmarkCheckpointAfterAppend(b *testing.B) {
	dir := b.TempDir()
	e := newEnv(b, func(c *trail.Config) { c.SignedDir = dir }) // as 'lakeproof serve' runs it
	w := e.user("anchorer")
	addr := e.channel(w, "anchors", "private")
	appendLeaves(b, e, addr, w, "pre", 1000)
	ctx := context.Background()
	anon := trail.NewClient(e.url)
	if _, err := anon.Checkpoint(ctx, addr); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		if _, err := e.store.Append(ctx, trail.AppendRequest{ChannelAddress: addr, Writer: w.ID, Leaf: []byte(fmt.Sprint("leaf ", i))}); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if _, err := anon.Checkpoint(ctx, addr); err != nil {
			b.Fatal(err)
		}
	}
}

// bigLog is one channel of LAKEPROOF_BENCH_LOG_SIZE (default 1,000,000)
// entries behind a real gateway, built once per test binary run.
var bigLog struct {
	once  sync.Once
	err   error
	dir   string
	st    *sqlite.Store
	hs    *httptest.Server
	addr  string
	n     int64
	build time.Duration
	nk    *trail.NoteKey
}

func bigLeaf(i int64) []byte {
	return fmt.Appendf(nil, `{"type":"lakeproof.anchor/v1","n":%d,"pad":"0123456789abcdef0123456789abcdef0123456789abcdef"}`, i)
}

func TestMain(m *testing.M) {
	code := m.Run()
	if bigLog.hs != nil {
		bigLog.hs.Close()
		bigLog.st.Close()
	}
	if bigLog.dir != "" {
		os.RemoveAll(bigLog.dir)
	}
	os.Exit(code)
}

func buildBigLog() error {
	n := int64(1_000_000)
	if v := os.Getenv("LAKEPROOF_BENCH_LOG_SIZE"); v != "" {
		var err error
		if n, err = strconv.ParseInt(v, 10, 64); err != nil || n < 1 {
			return fmt.Errorf("LAKEPROOF_BENCH_LOG_SIZE %q: want a positive integer", v)
		}
	}
	dir, err := os.MkdirTemp("", "lakeproof-bench-log-")
	if err != nil {
		return err
	}
	bigLog.dir = dir
	ctx := context.Background()
	st, err := sqlite.Open(ctx, dir)
	if err != nil {
		return err
	}
	bigLog.st = st
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	author := trail.DIDFromPublicKey(pub)
	addr := strings.Repeat("c", 80) + ":" + strings.Repeat("d", 24)
	if err := st.CreateChannel(ctx, trail.Channel{Address: addr, Type: "public", AuthorID: author, Created: time.Now()},
		trail.Subscription{ChannelAddress: addr, ID: author, Type: "Author", IsAuthorized: true, AccessRights: trail.RightReadAndWrite}); err != nil {
		return err
	}
	// Many concurrent appenders: the store group-commits up to 512 per
	// transaction, so this is the fast path of the real Append.
	start := time.Now()
	const workers = 512
	var (
		next atomic.Int64
		wg   sync.WaitGroup
		errs = make(chan error, workers)
	)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= n {
					return
				}
				leaf := bigLeaf(i)
				if _, err := st.Append(ctx, trail.AppendRequest{ChannelAddress: addr, Writer: author, Leaf: leaf}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	bigLog.build = time.Since(start)
	_, gw, _ := ed25519.GenerateKey(rand.Reader)
	nk, err := trail.LoadOrCreateNoteKey(dir+"/log-note.key", "bench-gateway")
	if err != nil {
		return err
	}
	srv, err := trail.New(ctx, trail.Config{Store: st, GatewayKey: gw, JWTSecret: make([]byte, 32), RateLimit: -1, NoteKey: nk})
	if err != nil {
		return err
	}
	bigLog.hs = httptest.NewServer(srv.Handler())
	bigLog.nk = nk
	bigLog.addr, bigLog.n = addr, n
	return nil
}

func needBigLog(b *testing.B) {
	b.Helper()
	bigLog.once.Do(func() {
		bigLog.err = buildBigLog()
		if bigLog.err == nil {
			fmt.Fprintf(os.Stderr, "built a channel of %d entries in %v (%.0f appends/s)\n", bigLog.n, bigLog.build.Round(time.Millisecond), float64(bigLog.n)/bigLog.build.Seconds())
		}
	})
	if bigLog.err != nil {
		b.Fatal(bigLog.err)
	}
}

// BenchmarkInclusionProofHTTP fetches (over loopback HTTP, JSON) and
// verifies the inclusion proof of a random entry of the big channel at
// its full size. Target: < 20 ms.
func BenchmarkInclusionProofHTTP(b *testing.B) {
	needBigLog(b)
	ctx := context.Background()
	c := trail.NewClient(bigLog.hs.URL)
	signed, err := c.Checkpoint(ctx, bigLog.addr) // the first one signs
	if err != nil {
		b.Fatal(err)
	}
	cp, err := trail.ParseCheckpoint(signed, trail.Origin(bigLog.nk.Name(), bigLog.addr), bigLog.nk.Verifier)
	if err != nil || cp.Size < bigLog.n {
		b.Fatalf("checkpoint: %+v %v", cp, err)
	}
	// Entries were appended concurrently, so read the leaves of a random
	// sample of indexes first (not timed).
	rng := mrand.New(mrand.NewPCG(1, 2))
	type sample struct {
		idx  int64
		leaf []byte
	}
	var samples []sample
	for len(samples) < 512 {
		idx := rng.Int64N(bigLog.n)
		es, err := bigLog.st.Entries(ctx, bigLog.addr, trail.EntryQuery{Since: idx, Asc: true, Limit: 1})
		if err != nil || len(es) != 1 || es[0].Index != idx {
			b.Fatalf("entry %d: %v", idx, err)
		}
		samples = append(samples, sample{idx, es[0].Leaf})
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		sm := samples[i%len(samples)]
		p, err := c.InclusionProof(ctx, bigLog.addr, sm.idx, cp.Size)
		if err != nil {
			b.Fatal(err)
		}
		if err := trail.VerifyInclusion(cp, sm.idx, sm.leaf, p); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCheckpointBigLog: GET …/checkpoint of the big channel when
// nothing changed (the stored note is served).
func BenchmarkCheckpointBigLog(b *testing.B) {
	needBigLog(b)
	ctx := context.Background()
	c := trail.NewClient(bigLog.hs.URL)
	for i := 0; i < b.N; i++ {
		if _, err := c.Checkpoint(ctx, bigLog.addr); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkConsistencyProofHTTP: consistency proof from a random older
// size to the full size of the big channel.
func BenchmarkConsistencyProofHTTP(b *testing.B) {
	needBigLog(b)
	ctx := context.Background()
	c := trail.NewClient(bigLog.hs.URL)
	rng := mrand.New(mrand.NewPCG(3, 4))
	for i := 0; i < b.N; i++ {
		from := 1 + rng.Int64N(bigLog.n-1)
		if _, err := c.ConsistencyProof(ctx, bigLog.addr, from, bigLog.n); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTileHTTP fetches a random full level-0 hash tile (256 hashes).
func BenchmarkTileHTTP(b *testing.B) {
	needBigLog(b)
	ctx := context.Background()
	c := trail.NewClient(bigLog.hs.URL)
	rng := mrand.New(mrand.NewPCG(5, 6))
	for i := 0; i < b.N; i++ {
		n := rng.Int64N(bigLog.n / 256)
		p, _ := trail.C2SPTilePath(tileAt(0, n))
		if _, err := c.LogTile(ctx, bigLog.addr, p); err != nil {
			b.Fatal(err)
		}
	}
}

func tileAt(l int, n int64) tlog.Tile {
	return tlog.Tile{H: trail.TileHeight, L: l, N: n, W: 1 << trail.TileHeight}
}

var bigExtra atomic.Int64 // distinct extra entries across benchmark runs

// BenchmarkCheckpointAfterAppendBigLog: as BenchmarkCheckpointAfterAppend,
// on the big channel (the work grows with log₂ of the size).
func BenchmarkCheckpointAfterAppendBigLog(b *testing.B) {
	needBigLog(b)
	ctx := context.Background()
	c := trail.NewClient(bigLog.hs.URL)
	if _, err := c.Checkpoint(ctx, bigLog.addr); err != nil {
		b.Fatal(err)
	}
	ch, err := bigLog.st.GetChannel(ctx, bigLog.addr)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		if _, err := bigLog.st.Append(ctx, trail.AppendRequest{ChannelAddress: bigLog.addr, Writer: ch.AuthorID, Leaf: fmt.Appendf(nil, "extra %d", bigExtra.Add(1))}); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if _, err := c.Checkpoint(ctx, bigLog.addr); err != nil {
			b.Fatal(err)
		}
	}
}
