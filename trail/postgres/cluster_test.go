package postgres_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"net/http/httptest"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/lakeproof/lakeproof/trail"
	"github.com/lakeproof/lakeproof/trail/postgres"
)

// cluster is a set of gateway replicas over real HTTP on one database.
// The first procs are separate processes (this test binary re-executed,
// see main_test.go), started at the same time; the other replicas run in
// the test process, each with its own postgres.Store (its own connection
// pool and append committer). They share what operators share between
// replicas: the gateway key, the JWT secret and the note key.
type cluster struct {
	dsn      string
	urls     []string // processes first, then in-process replicas
	procs    []*replicaProc
	servers  []*trail.Server   // in-process replicas
	stores   []*postgres.Store // their stores
	noteKey  *trail.NoteKey
	adminKey ed25519.PrivateKey
}

func newCluster(tb testing.TB, dsn string, replicas int) *cluster {
	return newProcCluster(tb, dsn, 0, replicas)
}

func newProcCluster(tb testing.TB, dsn string, procs, replicas int) *cluster {
	tb.Helper()
	ctx := context.Background()
	skey, _, err := note.GenerateKey(rand.Reader, "pg-test-gateway")
	if err != nil {
		tb.Fatal(err)
	}
	nk, err := trail.ParseNoteKey(skey)
	if err != nil {
		tb.Fatal(err)
	}
	_, gw, _ := ed25519.GenerateKey(rand.Reader)
	adminPub, adminKey, _ := ed25519.GenerateKey(rand.Reader)
	c := &cluster{dsn: dsn, noteKey: nk, adminKey: adminKey}
	secret := bytes.Repeat([]byte{9}, 32)
	rc := replicaConfig{dsn: dsn, noteKey: skey, admin: trail.DIDFromPublicKey(adminPub), gwSeed: gw.Seed(), jwtSecret: secret}
	type started struct {
		p   *replicaProc
		err error
	}
	res := make(chan started, procs)
	for i := 0; i < procs; i++ {
		go func() {
			p, err := startReplicaProcess(tb, rc)
			res <- started{p, err}
		}()
	}
	for i := 0; i < procs; i++ {
		r := <-res
		if r.err != nil {
			tb.Error(r.err)
			continue
		}
		c.urls, c.procs = append(c.urls, r.p.url), append(c.procs, r.p)
	}
	if tb.Failed() {
		tb.FailNow()
	}
	for i := 0; i < replicas; i++ {
		st, err := postgres.New(ctx, dsn)
		if err != nil {
			tb.Fatal(err)
		}
		srv, err := trail.New(ctx, trail.Config{
			Store: st, GatewayKey: gw, JWTSecret: secret, RateLimit: -1,
			Admins: []string{trail.DIDFromPublicKey(adminPub)}, NoteKey: nk,
		})
		if err != nil {
			st.Close()
			tb.Fatal(err)
		}
		hs := httptest.NewServer(srv.Handler())
		tb.Cleanup(func() {
			srv.Close()
			hs.Close()
			st.Close()
		})
		c.urls, c.servers, c.stores = append(c.urls, hs.URL), append(c.servers, srv), append(c.stores, st)
	}
	return c
}

// user registers a new identity at replica i and logs it in there.
func (c *cluster) user(tb testing.TB, i int, name string) *trail.Client {
	tb.Helper()
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	cl := trail.NewClient(c.urls[i])
	cl.Key = key
	cl.ID = trail.DIDFromPublicKey(key.Public().(ed25519.PublicKey))
	ctx := context.Background()
	if err := cl.Register(ctx, name, map[string]string{"type": "Device"}); err != nil {
		tb.Fatalf("register %s: %v", name, err)
	}
	if err := cl.Authenticate(ctx); err != nil {
		tb.Fatalf("login %s: %v", name, err)
	}
	return cl
}

// at returns a copy of cl talking to replica i with the same JWT (the
// replicas share the JWT secret).
func (c *cluster) at(cl *trail.Client, i int) *trail.Client {
	cp := *cl
	cp.BaseURL = c.urls[i]
	return &cp
}

// channel creates a private channel of author.
func (c *cluster) channel(tb testing.TB, author *trail.Client, name string) string {
	tb.Helper()
	addr, err := author.CreateChannel(context.Background(), trail.CreateChannelRequest{Name: name, Type: "private", Topics: []trail.Topic{{Type: "test", Source: "pg"}}})
	if err != nil {
		tb.Fatalf("create channel %s: %v", name, err)
	}
	return addr
}
