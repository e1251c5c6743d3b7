package main

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/lakeproof/lakeproof/trail"
	"github.com/lakeproof/lakeproof/trail/postgres"
	"github.com/lakeproof/lakeproof/trail/sqlite"
)

// openStore opens the gateway's store named by --db: empty for the
// embedded SQLite database in --data, or a postgres:// (postgresql://) URL
// for a PostgreSQL database that several gateway replicas may share.
// Anything else is a usage error. Environment variables of libpq (PGHOST,
// PGPASSWORD, …) fill in what the URL leaves out.
func openStore(ctx context.Context, o serveOpts) (trail.Store, error) {
	switch {
	case o.db == "":
		return sqlite.Open(ctx, o.data)
	case strings.HasPrefix(o.db, "postgres://"), strings.HasPrefix(o.db, "postgresql://"):
		return postgres.New(ctx, o.db)
	default:
		return nil, fmt.Errorf("--db %q: want a postgres:// URL (or no --db for SQLite in --data)", redactDSN(o.db))
	}
}

// redactDSN hides a password in a connection URL for messages.
func redactDSN(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.User == nil {
		return dsn
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}
