// Package pgtest gives tests a fresh PostgreSQL database of their own on
// the server named by LAKEPROOF_TEST_POSTGRES (a postgres:// URL of a role
// that may CREATE DATABASE; .ci/setup.d/30-postgres.sh starts one and sets
// it). Without that variable the test is skipped, or fails when
// LAKEPROOF_REQUIRE_SERVERS=1 (as .ci/run sets), so CI cannot pass by
// skipping.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Env is the variable naming the test server.
const Env = "LAKEPROOF_TEST_POSTGRES"

// AdminDSN returns the URL of the test server, skipping (or failing, see
// the package doc) when it is not configured.
func AdminDSN(tb testing.TB) string {
	tb.Helper()
	dsn := os.Getenv(Env)
	if dsn == "" {
		if os.Getenv("LAKEPROOF_REQUIRE_SERVERS") == "1" {
			tb.Fatalf("%s is not set and LAKEPROOF_REQUIRE_SERVERS=1: source .ci/setup.d/30-postgres.sh", Env)
		}
		tb.Skipf("%s is not set: source .ci/setup.d/30-postgres.sh to run the PostgreSQL tests", Env)
	}
	return dsn
}

// NewDatabase creates an empty database for tb, dropped (connections
// closed by force) when tb ends, and returns its postgres:// URL.
func NewDatabase(tb testing.TB) string {
	tb.Helper()
	admin := AdminDSN(tb)
	u, err := url.Parse(admin)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		tb.Fatalf("%s must be a postgres:// URL, got %q (%v)", Env, admin, err)
	}
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	name := "lakeproof_test_" + hex.EncodeToString(rnd[:])
	exec(tb, admin, `CREATE DATABASE `+name)
	tb.Cleanup(func() { exec(tb, admin, `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`) })
	u.Path = "/" + name
	return u.String()
}

// Exec runs one SQL statement (or several separated by ';', without
// parameters) on the database named by dsn: the tamper tests use it to
// change rows behind the gateway's back.
func Exec(tb testing.TB, dsn, sql string, args ...any) int64 {
	tb.Helper()
	return exec(tb, dsn, sql, args...)
}

func exec(tb testing.TB, dsn, sql string, args ...any) int64 {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		tb.Fatalf("connect to test PostgreSQL: %v", err)
	}
	defer conn.Close(context.Background())
	tag, err := conn.Exec(ctx, sql, args...)
	if err != nil {
		tb.Fatalf("%s: %v", sql, err)
	}
	return tag.RowsAffected()
}
