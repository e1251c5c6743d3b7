package sqlite_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lakeproof/lakeproof/trail"
	"github.com/lakeproof/lakeproof/trail/sqlite"
)

// TestAppendBatchesKeepIndexesContiguous appends concurrently to two
// channels, with duplicates, writes by a stranger and appends to an
// unknown channel mixed in (so they land in the same group-commit
// batches), and checks each channel's indexes are 0..n-1 with every leaf
// once.
func TestAppendBatchesKeepIndexesContiguous(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	author := "did:key:zauthor"
	addrs := []string{strings.Repeat("1", 80) + ":" + strings.Repeat("a", 24), strings.Repeat("2", 80) + ":" + strings.Repeat("b", 24)}
	for _, a := range addrs {
		if err := st.CreateChannel(ctx, trail.Channel{Address: a, Type: "private", AuthorID: author, Created: time.Now()},
			trail.Subscription{ChannelAddress: a, ID: author, Type: "Author", IsAuthorized: true, AccessRights: trail.RightReadAndWrite}); err != nil {
			t.Fatal(err)
		}
	}
	const workers, each = 16, 30
	var (
		wg                         sync.WaitGroup
		mu                         sync.Mutex
		ok, dup, forbidden, absent int
	)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				req := trail.AppendRequest{ChannelAddress: addrs[i%2], Leaf: []byte(fmt.Sprintf("leaf-%d", i)), Writer: author}
				switch w % 4 {
				case 1:
					req.Writer = "did:key:zstranger"
				case 2:
					req.ChannelAddress = strings.Repeat("9", 80) + ":" + strings.Repeat("9", 24)
				case 3:
					req.Leaf = []byte(fmt.Sprintf("leaf-%d-%d", w, i))
				}
				_, err := st.Append(ctx, req)
				mu.Lock()
				switch {
				case err == nil:
					ok++
				case errors.Is(err, trail.ErrConflict):
					dup++
				case errors.Is(err, trail.ErrForbidden):
					forbidden++
				case errors.Is(err, trail.ErrNotFound):
					absent++
				default:
					t.Error(err)
				}
				mu.Unlock()
			}
		}(w)
	}
	wg.Wait()
	// w%4==0 workers (4 of them) all write leaf-0..29: 30 distinct, the
	// rest conflicts; w%4==3 workers write distinct leaves: 4*30.
	if ok != 30+4*30 || dup != 3*30 || forbidden != 4*30 || absent != 4*30 {
		t.Fatalf("ok %d dup %d forbidden %d absent %d", ok, dup, forbidden, absent)
	}
	total := 0
	for _, a := range addrs {
		es, err := st.Entries(ctx, a, trail.EntryQuery{Since: 0})
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for i, e := range es {
			if e.Index != int64(i) || seen[string(e.Leaf)] || e.LeafHash != trail.LeafHash(e.Leaf) {
				t.Fatalf("channel %s entry %d: index %d leaf %q", a[:4], i, e.Index, e.Leaf)
			}
			seen[string(e.Leaf)] = true
		}
		total += len(es)
	}
	if total != ok {
		t.Fatalf("%d entries stored, %d appends succeeded", total, ok)
	}
}
