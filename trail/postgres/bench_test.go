//go:build linux

package postgres_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lakeproof/lakeproof/trail"
	"github.com/lakeproof/lakeproof/trail/postgres"
	"github.com/lakeproof/lakeproof/trail/postgres/pgtest"
)

// BenchmarkReplicaAppends measures durable appends per second to one
// channel through gateway replicas on one PostgreSQL database: 64
// concurrent writers over real HTTP (client-signed entries), spread over
// the replicas; each append is acknowledged after its transaction (entry
// and tree hashes) committed with synchronous_commit=on. Run with
//
//	source .ci/setup.d/30-postgres.sh
//	go test -run '^$' -bench ReplicaAppends -benchtime 5000x ./trail/postgres/
//
// Metrics: appends/s; go-cpu-ms/append, the CPU of this process (clients
// and gateways) per append; pg-cpu-ms/append, the CPU of the PostgreSQL
// server processes per append (Linux /proc; omitted elsewhere).
func BenchmarkReplicaAppends(b *testing.B) {
	for _, replicas := range []int{1, 2} {
		b.Run(fmt.Sprintf("replicas=%d/writers=64", replicas), func(b *testing.B) {
			ctx := context.Background()
			c := newCluster(b, pgtest.NewDatabase(b), replicas)
			author := c.user(b, 0, "bench")
			addr := c.channel(b, author, "bench")
			var next atomic.Int64
			runAppends(b, c.dsn, 64, func(pb *testing.PB) {
				cl := c.at(author, int(next.Add(1))%replicas)
				for pb.Next() {
					if _, err := cl.Write(ctx, addr, trail.Log{Type: "bench"}); err != nil {
						b.Error(err)
						return
					}
				}
			})
			if n, err := c.stores[0].Size(ctx, addr); err != nil || n != int64(b.N) {
				b.Fatalf("%d entries stored after %d appends (%v)", n, b.N, err)
			}
		})
	}
}

// BenchmarkStoreAppends is the store alone (no HTTP, JSON or signatures):
// 64 goroutines calling Append on one channel through two Stores (two
// connection pools and group committers, as two replicas have).
func BenchmarkStoreAppends(b *testing.B) {
	ctx := context.Background()
	dsn := pgtest.NewDatabase(b)
	stores := []*postgres.Store{open(b, dsn), open(b, dsn)}
	const addr, author = "bench-channel", "did:key:zbench"
	if err := stores[0].CreateChannel(ctx, trail.Channel{Address: addr, Type: "private", AuthorID: author, Created: time.Now()},
		trail.Subscription{ChannelAddress: addr, ID: author, Type: "Author", IsAuthorized: true, AccessRights: trail.RightReadAndWrite}); err != nil {
		b.Fatal(err)
	}
	var next, seq atomic.Int64
	runAppends(b, dsn, 64, func(pb *testing.PB) {
		st := stores[next.Add(1)%2]
		for pb.Next() {
			leaf := fmt.Appendf(nil, `{"statement":{"n":%d}}`, seq.Add(1))
			if _, err := st.Append(ctx, trail.AppendRequest{ChannelAddress: addr, Leaf: leaf, Writer: author}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	if n, err := stores[1].Size(ctx, addr); err != nil || n != int64(b.N) {
		b.Fatalf("%d entries stored after %d appends (%v)", n, b.N, err)
	}
}

// runAppends runs body in writers goroutines and reports the metrics.
func runAppends(b *testing.B, dsn string, writers int, body func(*testing.PB)) {
	procs := runtime.GOMAXPROCS(0)
	b.SetParallelism((writers + procs - 1) / procs)
	pgPids := serverPids(b, dsn)
	commits0 := commits(b, dsn)
	goCPU0, pgCPU0 := selfCPU(), procsCPU(pgPids)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(body)
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "appends/s")
	b.ReportMetric(float64((selfCPU()-goCPU0).Microseconds())/1e3/float64(b.N), "go-cpu-ms/append")
	if len(pgPids) > 0 {
		b.ReportMetric(float64((procsCPU(pgPids)-pgCPU0).Microseconds())/1e3/float64(b.N), "pg-cpu-ms/append")
	}
	// Backends flush their statistics at most once a second.
	time.Sleep(1500 * time.Millisecond)
	if n := commits(b, dsn) - commits0; n > 0 {
		b.ReportMetric(float64(b.N)/float64(n), "appends/commit")
	}
}

// commits is the number of committed transactions in the database so far
// (pg_stat_database; approximate: it includes the benchmark's own reads).
func commits(b *testing.B, dsn string) int64 {
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int64
	if err := conn.QueryRow(context.Background(), `SELECT pg_stat_force_next_flush(), xact_commit FROM pg_stat_database WHERE datname = current_database()`).Scan(nil, &n); err != nil {
		b.Fatal(err)
	}
	return n
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// serverPids lists the PostgreSQL postmaster and its children (the
// backends, WAL writer, checkpointer, …) via /proc; nil if unavailable.
func serverPids(b *testing.B, dsn string) []int {
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(context.Background())
	var backend int
	if err := conn.QueryRow(context.Background(), `SELECT pg_backend_pid()`).Scan(&backend); err != nil {
		b.Fatal(err)
	}
	postmaster := statField(backend, 3)
	if postmaster <= 0 {
		return nil
	}
	pids := []int{postmaster}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err == nil && statField(pid, 3) == postmaster {
			pids = append(pids, pid)
		}
	}
	return pids
}

// statField returns field i of /proc/pid/stat as an integer, counting
// from 0 (0 pid, 1 comm, 2 state, 3 ppid, 13 utime, 14 stime); -1 if
// unreadable.
func statField(pid, i int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return -1
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if i-2 >= len(f) || i < 2 {
		return -1
	}
	n, err := strconv.Atoi(f[i-2])
	if err != nil {
		return -1
	}
	return n
}

// procsCPU sums user+system CPU of pids (clock ticks of 10 ms; Linux
// USER_HZ is 100). Processes that exited meanwhile are not counted.
func procsCPU(pids []int) time.Duration {
	var ticks int
	for _, p := range pids {
		if u, s := statField(p, 13), statField(p, 14); u >= 0 && s >= 0 {
			ticks += u + s
		}
	}
	return time.Duration(ticks) * 10 * time.Millisecond
}
