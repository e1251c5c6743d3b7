package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lakeproof/lakeproof/trail"
	"github.com/lakeproof/lakeproof/trail/sqlite"
	"github.com/lakeproof/lakeproof/trail/storetest"
	"golang.org/x/mod/sumdb/tlog"
)

func TestStoreContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) trail.Store {
		st, err := sqlite.Open(context.Background(), t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	})
}

// TestLogHashesMigration: a database written before log_hashes existed
// (entries, no hashes) gets its hashes computed on open, equal to those
// Append writes; a database whose entry rows disagree with their hash
// column is refused with an error naming the channel and entry.
func TestLogHashesMigration(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := sqlite.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	author := "did:key:zauthor"
	addr := strings.Repeat("a", 80) + ":" + strings.Repeat("b", 24)
	if err := st.CreateChannel(ctx, trail.Channel{Address: addr, Type: "private", AuthorID: author, Created: time.Now()},
		trail.Subscription{ChannelAddress: addr, ID: author, Type: "Author", IsAuthorized: true, AccessRights: trail.RightReadAndWrite}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 37; i++ {
		if _, err := st.Append(ctx, trail.AppendRequest{ChannelAddress: addr, Writer: author, Leaf: []byte(fmt.Sprint("leaf ", i))}); err != nil {
			t.Fatal(err)
		}
	}
	all := make([]int64, tlog.StoredHashCount(37))
	for i := range all {
		all[i] = int64(i)
	}
	want, err := st.ReadHashes(ctx, addr, all)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()

	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "trail.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, tc := range []struct {
		name, sql string
		args      []any
	}{
		{"no table (previous version)", `DROP TABLE log_hashes`, nil},
		{"hashes of a prefix only", `DELETE FROM log_hashes WHERE idx >= ?`, []any{tlog.StoredHashIndex(0, 20)}},
	} {
		if _, err := db.Exec(tc.sql, tc.args...); err != nil {
			t.Fatal(err)
		}
		st, err := sqlite.Open(ctx, dir)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		got, err := st.ReadHashes(ctx, addr, all)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("%s: migrated hash %d differs", tc.name, i)
			}
		}
		e, err := st.Append(ctx, trail.AppendRequest{ChannelAddress: addr, Writer: author, Leaf: []byte(fmt.Sprint("after ", tc.name))})
		if err != nil || e.Index != 37 {
			t.Fatalf("%s: append after migration: %+v %v", tc.name, e, err)
		}
		st.Close()
		if _, err := db.Exec(`DELETE FROM entries WHERE idx = 37`); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(`DELETE FROM log_hashes WHERE idx >= ?`, tlog.StoredHashIndex(0, 37)); err != nil {
			t.Fatal(err)
		}
	}
	// Hashes that are no prefix of a log are refused.
	if _, err := db.Exec(`DELETE FROM log_hashes WHERE idx = 40`); err != nil {
		t.Fatal(err)
	}
	if st, err := sqlite.Open(ctx, dir); err == nil || !strings.Contains(err.Error(), "log hashes have gaps") {
		if err == nil {
			st.Close()
		}
		t.Fatalf("open with a hash deleted: %v", err)
	}
	// An altered row is refused, not hashed into the log.
	if _, err := db.Exec(`DELETE FROM log_hashes WHERE idx >= ?`, tlog.StoredHashIndex(0, 20)); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE entries SET leaf = 'forged' WHERE idx = 30`); err != nil {
		t.Fatal(err)
	}
	if st, err := sqlite.Open(ctx, dir); err == nil || !strings.Contains(err.Error(), "entry 30: stored leaf_hash does not match") {
		if err == nil {
			st.Close()
		}
		t.Fatalf("open with an altered entry: %v", err)
	}
}
