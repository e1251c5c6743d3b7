package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/lakeproof/lakeproof/trail"
	"github.com/lakeproof/lakeproof/trail/postgres"
	"github.com/lakeproof/lakeproof/trail/postgres/pgtest"
	"github.com/lakeproof/lakeproof/trail/storetest"
)

// open returns a store on a fresh database, closed at the end of t.
func open(t testing.TB, dsn string) *postgres.Store {
	t.Helper()
	st, err := postgres.New(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func TestStoreContract(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) trail.Store { return open(t, pgtest.NewDatabase(t)) })
}

// TestConcurrentStartup: replicas starting at once on an empty database
// all succeed (the migration runs once, under the advisory lock), and a
// restart finds the schema in place.
func TestConcurrentStartup(t *testing.T) {
	t.Parallel()
	dsn := pgtest.NewDatabase(t)
	const n = 6
	errs := make(chan error, n)
	stores := make(chan *postgres.Store, n)
	for i := 0; i < n; i++ {
		go func() {
			st, err := postgres.New(context.Background(), dsn)
			errs <- err
			stores <- st
		}()
	}
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
		if st := <-stores; st != nil {
			st.Close()
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	st := open(t, dsn)
	if err := st.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := pgtest.Exec(t, dsn, `SELECT 1 FROM schema_version WHERE version = 1`); got != 1 {
		t.Fatalf("schema_version has %d rows at version 1, want 1", got)
	}
}

// TestNewerSchemaRefused: a database migrated by a newer lakeproof is not
// used (an old binary would misread it).
func TestNewerSchemaRefused(t *testing.T) {
	t.Parallel()
	dsn := pgtest.NewDatabase(t)
	open(t, dsn).Close()
	pgtest.Exec(t, dsn, `UPDATE schema_version SET version = 99`)
	st, err := postgres.New(context.Background(), dsn)
	if err == nil {
		st.Close()
		t.Fatal("opened a database of schema version 99")
	}
	if !strings.Contains(err.Error(), "schema version 99 is newer") {
		t.Fatalf("error does not say why: %v", err)
	}
}

// TestBadDSN: connection problems name the database and fail fast.
func TestBadDSN(t *testing.T) {
	t.Parallel()
	for _, dsn := range []string{"postgres://%zz", "postgres://nobody@127.0.0.1:1/none?connect_timeout=2"} {
		st, err := postgres.New(context.Background(), dsn)
		if err == nil {
			st.Close()
			t.Fatalf("%s: no error", dsn)
		}
		t.Logf("%s: %v", dsn, err)
	}
}

// TestCheckpointCAS: PutCheckpoint is a compare-and-swap on the previous
// size, so of two replicas signing from the same state only one wins.
func TestCheckpointCAS(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := pgtest.NewDatabase(t)
	a, b := open(t, dsn), open(t, dsn)
	const addr = "chan"
	if _, _, err := a.LatestCheckpoint(ctx, addr); !errors.Is(err, trail.ErrNotFound) {
		t.Fatalf("no checkpoint yet: %v", err)
	}
	if err := a.PutCheckpoint(ctx, addr, -1, 3, []byte("cp3")); err != nil {
		t.Fatal(err)
	}
	if err := b.PutCheckpoint(ctx, addr, -1, 4, []byte("cp4")); !errors.Is(err, trail.ErrConflict) {
		t.Fatalf("second first checkpoint: %v", err)
	}
	if err := b.PutCheckpoint(ctx, addr, 2, 4, []byte("cp4")); !errors.Is(err, trail.ErrConflict) {
		t.Fatalf("stale prev: %v", err)
	}
	// Concurrent swaps from the same previous size: exactly one wins.
	var wins atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			st := a
			if i%2 == 1 {
				st = b
			}
			err := st.PutCheckpoint(ctx, addr, 3, int64(10+i), []byte(fmt.Sprint("cp", 10+i)))
			if err == nil {
				wins.Add(1)
			} else if !errors.Is(err, trail.ErrConflict) {
				t.Error(err)
			}
		}(i)
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d concurrent swaps from size 3 won, want 1", wins.Load())
	}
	size, note, err := b.LatestCheckpoint(ctx, addr)
	if err != nil || string(note) != fmt.Sprint("cp", size) {
		t.Fatalf("latest: %d %q %v", size, note, err)
	}
}

// TestReadHashesMissing: a missing stored hash is ErrNotFound, not a zero
// hash.
func TestReadHashesMissing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := open(t, pgtest.NewDatabase(t))
	_, err := st.ReadHashes(ctx, "nochan", []int64{0})
	if !errors.Is(err, trail.ErrNotFound) {
		t.Fatalf("got %v, want ErrNotFound", err)
	}
}

// restrictedGrants are the privileges docs/OPERATOR.md gives the role the
// replicas run as once the schema exists: no DDL, and no UPDATE or DELETE
// on the entries and their tree hashes.
const restrictedGrants = `
GRANT USAGE ON SCHEMA public TO %[1]s;
GRANT SELECT ON schema_version TO %[1]s;
GRANT SELECT, INSERT, UPDATE, DELETE ON identities, nonces, channels, subscriptions, trusted_roots, credentials TO %[1]s;
GRANT SELECT, INSERT, UPDATE ON checkpoints TO %[1]s;
GRANT SELECT, INSERT ON entries, log_hashes TO %[1]s;`

// restrictedDSN creates a login role with exactly restrictedGrants on the
// database of dsn (whose schema must exist) and returns dsn for that role;
// the role is dropped at the end of t.
func restrictedDSN(t *testing.T, dsn string) (string, string) {
	t.Helper()
	role := fmt.Sprintf("lakeproof_gw_%d", time.Now().UnixNano())
	pgtest.Exec(t, dsn, `CREATE ROLE `+role+` LOGIN`)
	t.Cleanup(func() {
		pgtest.Exec(t, dsn, `DROP OWNED BY `+role)
		pgtest.Exec(t, dsn, `DROP ROLE `+role)
	})
	pgtest.Exec(t, dsn, `REVOKE CREATE ON SCHEMA public FROM PUBLIC`)
	pgtest.Exec(t, dsn, fmt.Sprintf(restrictedGrants, role))
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.User(role)
	return u.String(), role
}

// TestStoreContractRestrictedRole: every Store method works with only the
// privileges docs/OPERATOR.md grants the replicas' role.
func TestStoreContractRestrictedRole(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) trail.Store {
		dsn := pgtest.NewDatabase(t)
		open(t, dsn).Close() // the owner creates the schema
		gw, _ := restrictedDSN(t, dsn)
		return open(t, gw)
	})
}

// TestRestrictedRole: replicas can run as a role without DDL rights and
// without UPDATE/DELETE on entries and log_hashes (after the owner created
// the schema); the database then refuses to alter the log even to a
// compromised gateway.
func TestRestrictedRole(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := pgtest.NewDatabase(t)
	open(t, dsn).Close() // the owner creates the schema
	gw, role := restrictedDSN(t, dsn)
	u, err := url.Parse(gw)
	if err != nil {
		t.Fatal(err)
	}
	st := open(t, gw)
	a := "restricted-channel"
	if err := st.CreateChannel(ctx, trail.Channel{Address: a, Type: "private", AuthorID: "did:key:za", Created: time.Now()},
		trail.Subscription{ChannelAddress: a, ID: "did:key:za", Type: "Author", IsAuthorized: true, AccessRights: trail.RightReadAndWrite}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if e, err := st.Append(ctx, trail.AppendRequest{ChannelAddress: a, Leaf: []byte(fmt.Sprint("leaf", i)), Writer: "did:key:za"}); err != nil || e.Index != int64(i) {
			t.Fatalf("append as the restricted role: %+v %v", e, err)
		}
	}
	if err := st.PutCheckpoint(ctx, a, -1, 3, []byte("cp")); err != nil {
		t.Fatal(err)
	}
	// On a database without the schema the role cannot create it, and the
	// error says who can.
	empty, err := url.Parse(pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	empty.User = url.User(role)
	if st, err := postgres.New(ctx, empty.String()); err == nil {
		st.Close()
		t.Fatal("the restricted role opened a database without the schema")
	} else if !strings.Contains(err.Error(), "start it once as a role that may create tables") {
		t.Fatalf("no hint in: %v", err)
	}

	conn, err := pgx.Connect(ctx, u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, q := range []string{
		`UPDATE entries SET leaf = 'x' WHERE idx = 0`,
		`DELETE FROM entries WHERE idx = 2`,
		`UPDATE log_hashes SET hash = '\x00' WHERE idx = 0`,
		`DELETE FROM log_hashes`,
		`DROP TABLE entries`,
	} {
		_, err := conn.Exec(ctx, q)
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "42501" { // insufficient_privilege
			t.Errorf("%s as the gateway role: %v, want permission denied", q, err)
		}
	}
}

// TestAppendAfterClose: appends racing with Close either complete or fail
// with "store closed"; none hangs.
func TestAppendAfterClose(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := pgtest.NewDatabase(t)
	st, err := postgres.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	const a = "closing-channel"
	if err := st.CreateChannel(ctx, trail.Channel{Address: a, Type: "private", AuthorID: "did:key:za", Created: time.Now()},
		trail.Subscription{ChannelAddress: a, ID: "did:key:za", Type: "Author", IsAuthorized: true, AccessRights: trail.RightReadAndWrite}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var ok atomic.Int64
	for i := 0; i < 32; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			_, err := st.Append(ctx, trail.AppendRequest{ChannelAddress: a, Leaf: []byte(fmt.Sprint("leaf", i)), Writer: "did:key:za"})
			switch {
			case err == nil:
				ok.Add(1)
			case !strings.Contains(err.Error(), "store closed"):
				t.Error(err)
			}
		}(i)
	}
	st.Close()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("appends hang after Close")
	}
	// What was acknowledged is stored, and nothing else.
	if n, err := open(t, dsn).Size(ctx, a); err != nil || n != ok.Load() {
		t.Fatalf("%d entries stored, %d appends acknowledged (%v)", n, ok.Load(), err)
	}
}
