package benchmarks

// Benchmarks of the audit-trail gateway (issue 4): durable writes per
// second with 1, 8 and 64 concurrent writers over real HTTP on loopback
// (each write: JSON, JWT check, the writer's Ed25519 signature verified,
// group commit with an fsync before the 200), and server-sent-event
// delivery latency from the end of a write to the event at a follower.
//
//	go test -run XXX -bench Trail -benchtime 3000x ./benchmarks/
//
// Results measured on the project machine are in benchmarks/trail_results.md.

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/lakeproof/lakeproof/trail"
	"github.com/lakeproof/lakeproof/trail/sqlite"
)

type trailBench struct {
	url   string
	store *sqlite.Store
}

func startTrail(b *testing.B) *trailBench {
	b.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	gw, err := trail.NewKeyFile()
	if err != nil {
		b.Fatal(err)
	}
	gwKey, _ := gw.PrivateKey()
	srv, err := trail.New(ctx, trail.Config{Store: st, GatewayKey: gwKey, JWTSecret: make([]byte, 32), RateLimit: -1})
	if err != nil {
		b.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	b.Cleanup(func() { srv.Close(); hs.Close(); st.Close() })
	return &trailBench{url: hs.URL, store: st}
}

func (tb *trailBench) identity(b *testing.B, name string) *trail.Client {
	b.Helper()
	k, _ := trail.NewKeyFile()
	priv, _ := k.PrivateKey()
	c := trail.NewClient(tb.url)
	c.HTTP = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}, Timeout: time.Minute}
	c.ID, c.Key = k.ID, priv
	ctx := context.Background()
	if err := c.Register(ctx, name, nil); err != nil {
		b.Fatal(err)
	}
	if err := c.Authenticate(ctx); err != nil {
		b.Fatal(err)
	}
	return c
}

// BenchmarkTrailDurableWrites reports writes/s; b.N writes are spread over
// the writers, each writing to its own channel.
func BenchmarkTrailDurableWrites(b *testing.B) {
	for _, writers := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			tb := startTrail(b)
			ctx := context.Background()
			clients := make([]*trail.Client, writers)
			addrs := make([]string, writers)
			for i := range clients {
				clients[i] = tb.identity(b, fmt.Sprintf("writer-%03d", i))
				a, err := clients[i].CreateChannel(ctx, trail.CreateChannelRequest{Topics: []trail.Topic{{Type: "bench", Source: "b"}}})
				if err != nil {
					b.Fatal(err)
				}
				addrs[i] = a
			}
			var next atomic.Int64
			var wg sync.WaitGroup
			errs := make(chan error, writers)
			b.ResetTimer()
			start, cpu0 := time.Now(), trailCPU(b)
			for i := 0; i < writers; i++ {
				wg.Add(1)
				go func(i int) {
					defer wg.Done()
					for next.Add(1) <= int64(b.N) {
						if _, err := clients[i].Write(ctx, addrs[i], trail.Log{Type: "bench", Payload: []byte(`{"root":"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef","files":1000}`)}); err != nil {
							errs <- err
							return
						}
					}
				}(i)
			}
			wg.Wait()
			el, cpu := time.Since(start), trailCPU(b)-cpu0
			b.StopTimer()
			close(errs)
			for err := range errs {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/el.Seconds(), "writes/s")
			// CPU (user+system) of the whole process — client and gateway —
			// per write: unlike writes/s it hardly depends on how busy the
			// machine is. 2 cores / this = the in-process ceiling.
			b.ReportMetric(float64(cpu)/float64(time.Millisecond)/float64(b.N), "cpu-ms/write")
		})
	}
}

// trailCPU is the user+system CPU time the process has used so far.
func trailCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkTrailSSELatency reports p50/p99 milliseconds from the start of
// a write request to the follower's event (so it includes the durable
// commit), writing one entry at a time (b.N entries).
func BenchmarkTrailSSELatency(b *testing.B) {
	tb := startTrail(b)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := tb.identity(b, "writer")
	r := tb.identity(b, "reader")
	addr, err := w.CreateChannel(ctx, trail.CreateChannelRequest{Topics: []trail.Topic{{Type: "bench", Source: "b"}}})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := r.RequestSubscription(ctx, addr, trail.RightRead); err != nil {
		b.Fatal(err)
	}
	if err := w.Authorize(ctx, addr, r.ID, ""); err != nil {
		b.Fatal(err)
	}
	got := make(chan time.Time, 1)
	go r.Follow(ctx, addr, 0, func(trail.ChannelData) error { got <- time.Now(); return nil })
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		sent := time.Now()
		if _, err := w.Write(ctx, addr, trail.Log{Type: "tick"}); err != nil {
			b.Fatal(err)
		}
		select {
		case at := <-got:
			lat = append(lat, at.Sub(sent))
		case <-time.After(5 * time.Second):
			b.Fatalf("event %d not delivered within 5s", i)
		}
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))]) / float64(time.Millisecond) }
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}

// BenchmarkTrailStoreAppend measures the SQLite store alone: durable
// appends/s through the group committer with 1, 8 and 64 concurrent
// callers (no HTTP, JSON or signatures), i.e. the capacity the gateway's
// write path is bounded by.
func BenchmarkTrailStoreAppend(b *testing.B) {
	for _, writers := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			ctx := context.Background()
			st, err := sqlite.Open(ctx, b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			author := "did:key:zbench"
			addrs := make([]string, writers)
			for i := range addrs {
				addrs[i] = fmt.Sprintf("%080x:%024x", i, i)
				if err := st.CreateChannel(ctx, trail.Channel{Address: addrs[i], Type: "private", AuthorID: author, Created: time.Now()},
					trail.Subscription{ChannelAddress: addrs[i], ID: author, Type: "Author", IsAuthorized: true, AccessRights: trail.RightReadAndWrite}); err != nil {
					b.Fatal(err)
				}
			}
			leaf := make([]byte, 600)
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < writers; i++ {
				wg.Add(1)
				go func(i int) {
					defer wg.Done()
					for {
						n := next.Add(1)
						if n > int64(b.N) {
							return
						}
						l := append([]byte(fmt.Sprint(n, "-")), leaf...)
						if _, err := st.Append(ctx, trail.AppendRequest{ChannelAddress: addrs[i], Leaf: l, Writer: author}); err != nil {
							b.Error(err)
							return
						}
					}
				}(i)
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "writes/s")
		})
	}
}
