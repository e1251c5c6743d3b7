// Package storetest is the conformance test of the trail.Store contract.
// Every Store implementation runs it from its own tests:
//
//	func TestStore(t *testing.T) { storetest.Run(t, func(t *testing.T) trail.Store { … }) }
//
// open must return a fresh, empty store that is closed at the end of t.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/lakeproof/lakeproof/trail"
	"golang.org/x/mod/sumdb/tlog"
)

// Run runs every contract check as a subtest, each on a fresh store.
func Run(t *testing.T, open func(t *testing.T) trail.Store) {
	for _, tc := range []struct {
		name string
		f    func(*testing.T, trail.Store)
	}{
		{"Identities", identities},
		{"NoncesSingleUse", nonces},
		{"ChannelsAndSubscriptions", channels},
		{"AppendContiguousUnderConcurrency", appendConcurrent},
		{"AppendChecksRightsInTransaction", appendRights},
		{"AppendRequireRegistered", appendRegistered},
		{"EntryQueries", entryQueries},
		{"Credentials", credentials},
		{"LogHashesUnderConcurrentAppends", logHashes},
		{"CheckpointCompareAndSwap", checkpointCAS},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.f(t, open(t)) })
	}
}

func want(t *testing.T, err, sentinel error, what string) {
	t.Helper()
	if !errors.Is(err, sentinel) {
		t.Fatalf("%s: got %v, want %v", what, err, sentinel)
	}
}

func addr(i int) string { return fmt.Sprintf("%080x:%024x", i+1, i+1) }

func mkChannel(t *testing.T, s trail.Store, i int, author string) string {
	t.Helper()
	a := addr(i)
	err := s.CreateChannel(context.Background(), trail.Channel{Address: a, Name: fmt.Sprint("ch-", i), Type: "private", AuthorID: author,
		Topics: []trail.Topic{{Type: "t", Source: "s"}}, Created: time.Now()},
		trail.Subscription{ChannelAddress: a, ID: author, Type: "Author", IsAuthorized: true, AccessRights: trail.RightReadAndWrite})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func identities(t *testing.T, s trail.Store) {
	ctx := context.Background()
	id := trail.Identity{ID: "did:key:za", Username: "alice", Role: trail.RoleUser, Registered: time.Now()}
	if err := s.CreateIdentity(ctx, id); err != nil {
		t.Fatal(err)
	}
	want(t, s.CreateIdentity(ctx, id), trail.ErrConflict, "same id")
	want(t, s.CreateIdentity(ctx, trail.Identity{ID: "did:key:zb", Username: "alice", Role: trail.RoleUser}), trail.ErrConflict, "same username")
	_, err := s.GetIdentity(ctx, "did:key:zx")
	want(t, err, trail.ErrNotFound, "unknown identity")
	id.Role = trail.RoleAdmin
	if err := s.UpdateIdentity(ctx, id); err != nil {
		t.Fatal(err)
	}
	if got, err := s.GetIdentity(ctx, id.ID); err != nil || got.Role != trail.RoleAdmin {
		t.Fatalf("after update: %+v %v", got, err)
	}
	if got, err := s.SearchIdentities(ctx, trail.IdentityQuery{Username: "LIC", Limit: 10}); err != nil || len(got) != 1 {
		t.Fatalf("search: %v %v", got, err)
	}
	if got, _ := s.SearchIdentities(ctx, trail.IdentityQuery{Username: "%", Limit: 10}); len(got) != 0 {
		t.Fatalf("'%%' matched as a pattern: %v", got)
	}
	if err := s.DeleteIdentity(ctx, id.ID); err != nil {
		t.Fatal(err)
	}
	want(t, s.DeleteIdentity(ctx, id.ID), trail.ErrNotFound, "delete twice")
}

func nonces(t *testing.T, s trail.Store) {
	ctx := context.Background()
	now := time.Now()
	if err := s.PutNonce(ctx, "did:key:za", "n1", now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := s.PutNonce(ctx, "did:key:za", "old", now.Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	if ns, err := s.Nonces(ctx, "did:key:za", now); err != nil || len(ns) != 1 || ns[0] != "n1" {
		t.Fatalf("nonces: %v %v", ns, err)
	}
	want(t, s.TakeNonce(ctx, "did:key:za", "old", now), trail.ErrNotFound, "expired nonce")
	var wg sync.WaitGroup
	var wins sync.Map
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if s.TakeNonce(ctx, "did:key:za", "n1", now) == nil {
				wins.Store(i, true)
			}
		}(i)
	}
	wg.Wait()
	n := 0
	wins.Range(func(any, any) bool { n++; return true })
	if n != 1 {
		t.Fatalf("%d concurrent TakeNonce calls succeeded, want 1", n)
	}
}

func channels(t *testing.T, s trail.Store) {
	ctx := context.Background()
	a := mkChannel(t, s, 0, "did:key:zauthor")
	err := s.CreateChannel(ctx, trail.Channel{Address: addr(1), Name: "ch-0", Type: "private", AuthorID: "did:key:zauthor", Created: time.Now()},
		trail.Subscription{ChannelAddress: addr(1), ID: "did:key:zauthor", Type: "Author", IsAuthorized: true, AccessRights: trail.RightReadAndWrite})
	want(t, err, trail.ErrConflict, "channel name taken")
	if _, err := s.GetChannel(ctx, addr(1)); !errors.Is(err, trail.ErrNotFound) {
		t.Fatalf("failed create left a channel: %v", err)
	}
	sub := trail.Subscription{ChannelAddress: a, ID: "did:key:zreader", Type: "Subscriber", AccessRights: trail.RightRead}
	if err := s.CreateSubscription(ctx, sub); err != nil {
		t.Fatal(err)
	}
	want(t, s.CreateSubscription(ctx, sub), trail.ErrConflict, "subscription twice")
	f := false
	if subs, err := s.ListSubscriptions(ctx, a, &f); err != nil || len(subs) != 1 || subs[0].ID != sub.ID {
		t.Fatalf("pending subscriptions: %v %v", subs, err)
	}
	if got, _ := s.SearchChannels(ctx, trail.ChannelQuery{RequestedID: sub.ID, Limit: 10}); len(got) != 1 {
		t.Fatalf("search by requested id: %v", got)
	}
	sub.IsAuthorized = true
	if err := s.UpdateSubscription(ctx, sub); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.SearchChannels(ctx, trail.ChannelQuery{SubscriberID: sub.ID, Limit: 10}); len(got) != 1 {
		t.Fatalf("search by subscriber id: %v", got)
	}
	if got, _ := s.SearchChannels(ctx, trail.ChannelQuery{TopicType: "T", Name: "nomatch", Limit: 10}); len(got) != 1 {
		t.Fatalf("text filters are ORed: %v", got)
	}
	if got, _ := s.SearchChannels(ctx, trail.ChannelQuery{AuthorID: "did:key:zother", TopicType: "t", Limit: 10}); len(got) != 0 {
		t.Fatalf("groups are ANDed: %v", got)
	}
	if got, _ := s.SearchChannels(ctx, trail.ChannelQuery{Name: "_", Limit: 10}); len(got) != 0 {
		t.Fatalf("'_' matched as a pattern: %v", got)
	}
	if err := s.DeleteChannel(ctx, a); err != nil {
		t.Fatal(err)
	}
	_, err = s.GetSubscription(ctx, a, sub.ID)
	want(t, err, trail.ErrNotFound, "subscription after channel delete")
}

func appendConcurrent(t *testing.T, s trail.Store) {
	ctx := context.Background()
	author := "did:key:zauthor"
	addrs := []string{mkChannel(t, s, 0, author), mkChannel(t, s, 1, author)}
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
					req.ChannelAddress = addr(99)
				case 3:
					req.Leaf = []byte(fmt.Sprintf("leaf-%d-%d", w, i))
				}
				_, err := s.Append(ctx, req)
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
	if ok != 30+4*30 || dup != 3*30 || forbidden != 4*30 || absent != 4*30 {
		t.Fatalf("ok %d dup %d forbidden %d absent %d", ok, dup, forbidden, absent)
	}
	total := 0
	for _, a := range addrs {
		es, err := s.Entries(ctx, a, trail.EntryQuery{Since: 0})
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for i, e := range es {
			if e.Index != int64(i) || seen[string(e.Leaf)] || e.LeafHash != trail.LeafHash(e.Leaf) {
				t.Fatalf("entry %d: index %d leaf %q", i, e.Index, e.Leaf)
			}
			seen[string(e.Leaf)] = true
		}
		if n, _ := s.Size(ctx, a); n != int64(len(es)) {
			t.Fatalf("size %d, %d entries", n, len(es))
		}
		total += len(es)
	}
	if total != ok {
		t.Fatalf("%d entries stored, %d appends succeeded", total, ok)
	}
}

func appendRights(t *testing.T, s trail.Store) {
	ctx := context.Background()
	a := mkChannel(t, s, 0, "did:key:zauthor")
	for _, r := range []trail.AccessRights{trail.RightRead, trail.RightAudit} {
		sub := trail.Subscription{ChannelAddress: a, ID: "did:key:z" + string(r), Type: "Subscriber", IsAuthorized: true, AccessRights: r}
		if err := s.CreateSubscription(ctx, sub); err != nil {
			t.Fatal(err)
		}
		_, err := s.Append(ctx, trail.AppendRequest{ChannelAddress: a, Leaf: []byte("x"), Writer: sub.ID})
		want(t, err, trail.ErrForbidden, string(r)+" subscriber appends")
	}
	w := trail.Subscription{ChannelAddress: a, ID: "did:key:zw", Type: "Subscriber", IsAuthorized: false, AccessRights: trail.RightWrite}
	if err := s.CreateSubscription(ctx, w); err != nil {
		t.Fatal(err)
	}
	_, err := s.Append(ctx, trail.AppendRequest{ChannelAddress: a, Leaf: []byte("x"), Writer: w.ID})
	want(t, err, trail.ErrForbidden, "unauthorized writer")
	w.IsAuthorized = true
	if err := s.UpdateSubscription(ctx, w); err != nil {
		t.Fatal(err)
	}
	if e, err := s.Append(ctx, trail.AppendRequest{ChannelAddress: a, Leaf: []byte("x"), Writer: w.ID}); err != nil || e.Index != 0 {
		t.Fatalf("authorized writer: %+v %v", e, err)
	}
	if err := s.DeleteSubscription(ctx, a, w.ID); err != nil {
		t.Fatal(err)
	}
	_, err = s.Append(ctx, trail.AppendRequest{ChannelAddress: a, Leaf: []byte("y"), Writer: w.ID})
	want(t, err, trail.ErrForbidden, "revoked writer")
}

func appendRegistered(t *testing.T, s trail.Store) {
	ctx := context.Background()
	author := "did:key:zauthor"
	a := mkChannel(t, s, 0, author)
	req := trail.AppendRequest{ChannelAddress: a, Leaf: []byte("x"), Writer: author, RequireRegistered: true}
	_, err := s.Append(ctx, req)
	want(t, err, trail.ErrUnregistered, "unregistered author")
	if err := s.CreateIdentity(ctx, trail.Identity{ID: author, Username: "author", Role: trail.RoleUser, Registered: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if e, err := s.Append(ctx, req); err != nil || e.Index != 0 {
		t.Fatalf("registered author: %+v %v", e, err)
	}
	if err := s.DeleteIdentity(ctx, author); err != nil {
		t.Fatal(err)
	}
	req.Leaf = []byte("y")
	_, err = s.Append(ctx, req)
	want(t, err, trail.ErrUnregistered, "deleted author")
	req.RequireRegistered = false
	if e, err := s.Append(ctx, req); err != nil || e.Index != 1 {
		t.Fatalf("without RequireRegistered: %+v %v", e, err)
	}
}

func entryQueries(t *testing.T, s trail.Store) {
	ctx := context.Background()
	a := mkChannel(t, s, 0, "did:key:zauthor")
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < 10; i++ {
		if _, err := s.Append(ctx, trail.AppendRequest{ChannelAddress: a, Leaf: []byte(fmt.Sprint("e", i)), Writer: "did:key:zauthor", Created: base.Add(time.Duration(i) * time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	idx := func(es []trail.Entry) []int64 {
		var out []int64
		for _, e := range es {
			out = append(out, e.Index)
		}
		return out
	}
	for _, tc := range []struct {
		q    trail.EntryQuery
		want string
	}{
		{trail.EntryQuery{Since: 7}, "[7 8 9]"},
		{trail.EntryQuery{Since: -1, Limit: 3}, "[9 8 7]"},
		{trail.EntryQuery{Since: -1, Asc: true, Limit: 2, Offset: 4}, "[4 5]"},
		{trail.EntryQuery{Since: -1, Asc: true, Start: base.Add(2 * time.Hour), End: base.Add(4 * time.Hour)}, "[2 3 4]"},
		{trail.EntryQuery{Since: 10}, "[]"},
	} {
		es, err := s.Entries(ctx, a, tc.q)
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprint(idx(es)); got != tc.want {
			t.Errorf("%+v: got %s, want %s", tc.q, got, tc.want)
		}
	}
	e, err := s.EntryByMessageID(ctx, a, trail.MessageID(trail.LeafHash([]byte("e3"))))
	if err != nil || e.Index != 3 || string(e.Leaf) != "e3" {
		t.Fatalf("by message id: %+v %v", e, err)
	}
	_, err = s.EntryByMessageID(ctx, a, "000000000000000000000000")
	want(t, err, trail.ErrNotFound, "unknown message id")
}

func credentials(t *testing.T, s trail.Store) {
	ctx := context.Background()
	if err := s.AddTrustedRoot(ctx, "did:key:zroot"); err != nil {
		t.Fatal(err)
	}
	want(t, s.AddTrustedRoot(ctx, "did:key:zroot"), trail.ErrConflict, "root twice")
	if roots, err := s.TrustedRoots(ctx); err != nil || len(roots) != 1 {
		t.Fatalf("roots %v %v", roots, err)
	}
	want(t, s.RemoveTrustedRoot(ctx, "did:key:znone"), trail.ErrNotFound, "remove unknown root")
	c := trail.Credential{ID: "sig1", Subject: "did:key:zs", Issuer: "did:key:zroot", VC: []byte(`{"a":1}`), Issued: time.Now()}
	if err := s.PutCredential(ctx, c); err != nil {
		t.Fatal(err)
	}
	want(t, s.PutCredential(ctx, c), trail.ErrConflict, "credential twice")
	if err := s.RevokeCredential(ctx, "sig1"); err != nil {
		t.Fatal(err)
	}
	if cs, err := s.CredentialsOf(ctx, "did:key:zs"); err != nil || len(cs) != 1 || !cs[0].Revoked || string(cs[0].VC) != `{"a":1}` {
		t.Fatalf("credentials %+v %v", cs, err)
	}
}

// logHashes: concurrent appends (interleaved with duplicates and refused
// ones, so batches mix channels and failures) leave each channel with
// exactly the tlog stored hashes of its leaves in index order.
func logHashes(t *testing.T, s trail.Store) {
	ctx := context.Background()
	author := "did:key:zauthor"
	addrs := []string{mkChannel(t, s, 0, author), mkChannel(t, s, 1, author)}
	var wg sync.WaitGroup
	for w := 0; w < 12; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 25; i++ {
				req := trail.AppendRequest{ChannelAddress: addrs[(w+i)%2], Leaf: []byte(fmt.Sprintf("leaf-%d-%d", w, i)), Writer: author}
				if w%4 == 3 {
					req.Leaf = []byte(fmt.Sprintf("dup-%d", i)) // conflicts across workers
				}
				if w%6 == 5 {
					req.Writer = "did:key:zstranger"
				}
				if _, err := s.Append(ctx, req); err != nil && !errors.Is(err, trail.ErrConflict) && !errors.Is(err, trail.ErrForbidden) {
					t.Error(err)
				}
			}
		}(w)
	}
	wg.Wait()
	for _, a := range addrs {
		es, err := s.Entries(ctx, a, trail.EntryQuery{Since: 0})
		if err != nil {
			t.Fatal(err)
		}
		var wantHashes []tlog.Hash
		r := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
			out := make([]tlog.Hash, len(idx))
			for i, x := range idx {
				out[i] = wantHashes[x]
			}
			return out, nil
		})
		for i, e := range es {
			if e.Index != int64(i) {
				t.Fatalf("%s: entry %d has index %d", a, i, e.Index)
			}
			hs, err := tlog.StoredHashes(e.Index, e.Leaf, r)
			if err != nil {
				t.Fatal(err)
			}
			wantHashes = append(wantHashes, hs...)
		}
		n := int64(len(es))
		if int64(len(wantHashes)) != tlog.StoredHashCount(n) || n == 0 {
			t.Fatalf("%s: %d entries, %d hashes", a, n, len(wantHashes))
		}
		idx := make([]int64, len(wantHashes))
		for i := range idx {
			idx[len(idx)-1-i] = int64(i) // any order
		}
		got, err := s.ReadHashes(ctx, a, idx)
		if err != nil {
			t.Fatal(err)
		}
		for i, x := range idx {
			if got[i] != wantHashes[x] {
				t.Fatalf("%s: stored hash %d differs from tlog.StoredHashes", a, x)
			}
		}
		th, err := tlog.TreeHash(n, tlog.HashReaderFunc(func(ix []int64) ([]tlog.Hash, error) { return s.ReadHashes(ctx, a, ix) }))
		if err != nil {
			t.Fatal(err)
		}
		if wantRoot, _ := tlog.TreeHash(n, r); th != wantRoot {
			t.Fatalf("%s: tree hash from the store differs", a)
		}
		_, err = s.ReadHashes(ctx, a, []int64{0, tlog.StoredHashCount(n)})
		want(t, err, trail.ErrNotFound, "hash past the end")
	}
	_, err := s.ReadHashes(ctx, addr(42), []int64{0})
	want(t, err, trail.ErrNotFound, "hash of an unknown channel")
}

// checkpointCAS: PutCheckpoint moves a channel's checkpoint forward only
// from the size the caller read; of concurrent writers from one size,
// exactly one wins.
func checkpointCAS(t *testing.T, s trail.Store) {
	ctx := context.Background()
	a, b := addr(0), addr(1)
	_, _, err := s.LatestCheckpoint(ctx, a)
	want(t, err, trail.ErrNotFound, "no checkpoint yet")
	want(t, s.PutCheckpoint(ctx, a, 0, 5, []byte("n5")), trail.ErrConflict, "put with prev 0 when none is stored")
	if err := s.PutCheckpoint(ctx, a, -1, 5, []byte("n5")); err != nil {
		t.Fatal(err)
	}
	want(t, s.PutCheckpoint(ctx, a, -1, 6, []byte("n6")), trail.ErrConflict, "second first checkpoint")
	want(t, s.PutCheckpoint(ctx, a, 4, 6, []byte("n6")), trail.ErrConflict, "stale prev")
	if size, note, err := s.LatestCheckpoint(ctx, a); err != nil || size != 5 || string(note) != "n5" {
		t.Fatalf("latest: %d %q %v", size, note, err)
	}
	_, _, err = s.LatestCheckpoint(ctx, b)
	want(t, err, trail.ErrNotFound, "other channel")
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		wins []int64
	)
	for i := int64(0); i < 8; i++ {
		wg.Add(1)
		go func(i int64) {
			defer wg.Done()
			err := s.PutCheckpoint(ctx, a, 5, 10+i, []byte(fmt.Sprint("n", 10+i)))
			if err != nil && !errors.Is(err, trail.ErrConflict) {
				t.Error(err)
			}
			if err == nil {
				mu.Lock()
				wins = append(wins, 10+i)
				mu.Unlock()
			}
		}(i)
	}
	wg.Wait()
	if len(wins) != 1 {
		t.Fatalf("%d concurrent puts from size 5 won, want 1", len(wins))
	}
	if size, note, err := s.LatestCheckpoint(ctx, a); err != nil || size != wins[0] || string(note) != fmt.Sprint("n", wins[0]) {
		t.Fatalf("latest: %d %q %v", size, note, err)
	}
}
