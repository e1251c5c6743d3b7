// Package sqlite is the embedded trail.Store: one SQLite database file in
// WAL mode with synchronous=FULL, so a commit is on disk (the WAL fsynced)
// before any method returns.
//
// # Invariants
//
//   - All writes go through one connection; reads use a separate pool and
//     see committed data only (WAL snapshot isolation).
//   - Appends are group-committed: a single goroutine takes every pending
//     Append, runs them in one transaction (one fsync for the batch) and
//     answers each caller only after COMMIT returned. Per-channel indexes
//     come from MAX(idx)+1 inside that transaction, so they are contiguous.
//   - Entry rows are insert-only; the leaf bytes are stored verbatim.
//   - Each channel's RFC 6962 stored hashes (tlog layout, table
//     log_hashes) are inserted in the same transaction as the entry they
//     cover, so a committed entry always has them. A database written by
//     a version without log_hashes gets them computed from its entries
//     when opened (once; Open fails, naming the channel and entry, if an
//     entry's leaf_hash column does not match its leaf bytes).
//   - Signed checkpoints (table checkpoints, one row per channel) only
//     move forward through PutCheckpoint's compare-and-swap.
package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/lakeproof/lakeproof/trail"
	"golang.org/x/mod/sumdb/tlog"
	_ "modernc.org/sqlite" // database/sql driver "sqlite"
)

// maxBatch bounds the number of appends committed in one transaction.
const maxBatch = 512

const schema = `
CREATE TABLE IF NOT EXISTS identities (
	id TEXT PRIMARY KEY,
	username TEXT NOT NULL UNIQUE,
	role TEXT NOT NULL,
	claim_type TEXT NOT NULL DEFAULT '',
	claim BLOB,
	hidden INTEGER NOT NULL DEFAULT 0,
	creator TEXT NOT NULL DEFAULT '',
	registered INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS nonces (
	id TEXT NOT NULL,
	nonce TEXT NOT NULL,
	expires INTEGER NOT NULL,
	PRIMARY KEY (id, nonce)
);
CREATE TABLE IF NOT EXISTS channels (
	address TEXT PRIMARY KEY,
	name TEXT UNIQUE,
	description TEXT NOT NULL DEFAULT '',
	type TEXT NOT NULL,
	hidden INTEGER NOT NULL DEFAULT 0,
	visibility TEXT NOT NULL DEFAULT '[]',
	author TEXT NOT NULL,
	topics TEXT NOT NULL DEFAULT '[]',
	psk TEXT NOT NULL DEFAULT '',
	created INTEGER NOT NULL,
	latest INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS subscriptions (
	address TEXT NOT NULL,
	id TEXT NOT NULL,
	type TEXT NOT NULL,
	link TEXT NOT NULL DEFAULT '',
	authorized INTEGER NOT NULL,
	rights TEXT NOT NULL,
	pubkey TEXT NOT NULL DEFAULT '',
	keyload TEXT NOT NULL DEFAULT '',
	sequence TEXT NOT NULL DEFAULT '',
	psk_id TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (address, id)
);
CREATE TABLE IF NOT EXISTS entries (
	address TEXT NOT NULL,
	idx INTEGER NOT NULL,
	leaf BLOB NOT NULL,
	leaf_hash BLOB NOT NULL,
	msg_id TEXT NOT NULL,
	writer TEXT NOT NULL,
	created INTEGER NOT NULL,
	received INTEGER NOT NULL,
	PRIMARY KEY (address, idx),
	UNIQUE (address, leaf_hash)
);
DROP INDEX IF EXISTS entries_msg;
CREATE TABLE IF NOT EXISTS trusted_roots (id TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS credentials (
	id TEXT PRIMARY KEY,
	subject TEXT NOT NULL,
	issuer TEXT NOT NULL,
	vc BLOB NOT NULL,
	revoked INTEGER NOT NULL DEFAULT 0,
	issued INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS credentials_subject ON credentials (subject);
CREATE TABLE IF NOT EXISTS log_hashes (
	address TEXT NOT NULL,
	idx INTEGER NOT NULL,
	hash BLOB NOT NULL,
	PRIMARY KEY (address, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS checkpoints (
	address TEXT PRIMARY KEY,
	size INTEGER NOT NULL,
	note BLOB NOT NULL
);
`

// Store is the SQLite trail.Store.
type Store struct {
	w, r    *sql.DB
	stmts   map[string]*sql.Stmt // hot queries, prepared once per pool
	appends chan *appendReq
	quit    chan struct{}
	done    chan struct{}
	once    sync.Once
}

var _ trail.Store = (*Store)(nil)

type appendReq struct {
	ctx   context.Context
	req   trail.AppendRequest
	entry trail.Entry
	err   error
	done  chan struct{}
}

// Open opens (creating if needed) the database trail.db in dir.
func Open(ctx context.Context, dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir %q: %w", dir, err)
	}
	path := filepath.Join(dir, "trail.db")
	dsn := "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=foreign_keys(ON)"
	w, err := sql.Open("sqlite", dsn+"&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("open %q: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	if _, err := w.ExecContext(ctx, schema); err != nil {
		w.Close()
		return nil, fmt.Errorf("create schema in %q: %w", path, err)
	}
	var mode string
	if err := w.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		w.Close()
		return nil, fmt.Errorf("open %q: journal mode is %q, want wal (%v)", path, mode, err)
	}
	r, err := sql.Open("sqlite", dsn+"&_pragma=query_only(ON)")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open %q for reading: %w", path, err)
	}
	r.SetMaxOpenConns(8)
	r.SetMaxIdleConns(8)
	s := &Store{w: w, r: r, appends: make(chan *appendReq, 4096), quit: make(chan struct{}), done: make(chan struct{}), stmts: map[string]*sql.Stmt{}}
	for name, q := range map[string]string{
		"identity": `SELECT ` + identityCols + ` FROM identities WHERE id = ?`,
		"channel":  `SELECT ` + channelCols + ` FROM channels WHERE address = ?`,
		"size":     `SELECT COALESCE(MAX(idx) + 1, 0) FROM entries WHERE address = ?`,
		"sub":      `SELECT ` + subCols + ` FROM subscriptions WHERE address = ? AND id = ?`,
		"hash":     `SELECT hash FROM log_hashes WHERE address = ? AND idx = ?`,
	} {
		if s.stmts[name], err = r.PrepareContext(ctx, q); err != nil {
			w.Close()
			r.Close()
			return nil, fmt.Errorf("prepare %s query: %w", name, err)
		}
	}
	for name, q := range map[string]string{
		"w-chan":   `SELECT author, (SELECT COALESCE(MAX(idx) + 1, 0) FROM entries WHERE address = ?1) FROM channels WHERE address = ?1`,
		"w-ident":  `SELECT 1 FROM identities WHERE id = ?`,
		"w-rights": `SELECT authorized, rights FROM subscriptions WHERE address = ? AND id = ?`,
		"w-insert": `INSERT INTO entries (address, idx, leaf, leaf_hash, msg_id, writer, created, received) VALUES (?,?,?,?,?,?,?,?)`,
		"w-latest": `UPDATE channels SET latest = ? WHERE address = ?`,
		"w-hash":   `SELECT hash FROM log_hashes WHERE address = ? AND idx = ?`,
		"w-hashes": `INSERT INTO log_hashes (address, idx, hash) VALUES (?,?,?)`,
	} {
		if s.stmts[name], err = w.PrepareContext(ctx, q); err != nil {
			w.Close()
			r.Close()
			return nil, fmt.Errorf("prepare %s statement: %w", name, err)
		}
	}
	go s.commitLoop()
	if err := s.migrateHashes(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("open %q: %w", path, err)
	}
	return s, nil
}

// Close stops the committer (pending appends are finished first) and
// closes the database.
func (s *Store) Close() error {
	s.once.Do(func() { close(s.quit) })
	<-s.done
	for _, st := range s.stmts {
		st.Close()
	}
	return errors.Join(s.r.Close(), s.w.Close())
}

// Ping implements trail.Store.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	if err := s.r.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("ping sqlite: %w", err)
	}
	return nil
}

func ns(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNS(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// isUnique reports a UNIQUE or PRIMARY KEY constraint violation.
func isUnique(err error) bool {
	return err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed")
}

func notFoundIfNone(res sql.Result, what string) error {
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if n == 0 {
		return fmt.Errorf("%s: %w", what, trail.ErrNotFound)
	}
	return nil
}

// ---- identities ----

// CreateIdentity implements trail.Store.
func (s *Store) CreateIdentity(ctx context.Context, id trail.Identity) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO identities (id, username, role, claim_type, claim, hidden, creator, registered) VALUES (?,?,?,?,?,?,?,?)`,
		id.ID, id.Username, string(id.Role), id.ClaimType, []byte(id.Claim), b2i(id.Hidden), id.Creator, ns(id.Registered))
	if isUnique(err) {
		return fmt.Errorf("create identity %s (username %q): %w", id.ID, id.Username, trail.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("create identity %s: %w", id.ID, err)
	}
	return nil
}

const identityCols = `id, username, role, claim_type, claim, hidden, creator, registered`

func scanIdentity(sc interface{ Scan(...any) error }) (trail.Identity, error) {
	var (
		id         trail.Identity
		role       string
		claim      []byte
		hidden     int
		registered int64
	)
	err := sc.Scan(&id.ID, &id.Username, &role, &id.ClaimType, &claim, &hidden, &id.Creator, &registered)
	id.Role, id.Hidden, id.Registered = trail.Role(role), hidden != 0, fromNS(registered)
	if len(claim) > 0 {
		id.Claim = json.RawMessage(claim)
	}
	return id, err
}

// GetIdentity implements trail.Store.
func (s *Store) GetIdentity(ctx context.Context, did string) (trail.Identity, error) {
	id, err := scanIdentity(s.stmts["identity"].QueryRowContext(ctx, did))
	if errors.Is(err, sql.ErrNoRows) {
		return id, fmt.Errorf("identity %s: %w", did, trail.ErrNotFound)
	}
	if err != nil {
		return id, fmt.Errorf("get identity %s: %w", did, err)
	}
	return id, nil
}

// UpdateIdentity implements trail.Store.
func (s *Store) UpdateIdentity(ctx context.Context, id trail.Identity) error {
	res, err := s.w.ExecContext(ctx, `UPDATE identities SET username = ?, role = ?, claim_type = ?, claim = ?, hidden = ? WHERE id = ?`,
		id.Username, string(id.Role), id.ClaimType, []byte(id.Claim), b2i(id.Hidden), id.ID)
	if isUnique(err) {
		return fmt.Errorf("update identity %s (username %q): %w", id.ID, id.Username, trail.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("update identity %s: %w", id.ID, err)
	}
	return notFoundIfNone(res, "update identity "+id.ID)
}

// DeleteIdentity implements trail.Store.
func (s *Store) DeleteIdentity(ctx context.Context, did string) error {
	res, err := s.w.ExecContext(ctx, `DELETE FROM identities WHERE id = ?`, did)
	if err != nil {
		return fmt.Errorf("delete identity %s: %w", did, err)
	}
	return notFoundIfNone(res, "delete identity "+did)
}

// SearchIdentities implements trail.Store.
func (s *Store) SearchIdentities(ctx context.Context, q trail.IdentityQuery) ([]trail.Identity, error) {
	var (
		where []string
		args  []any
	)
	if q.Type != "" {
		where, args = append(where, "instr(lower(claim_type), lower(?)) > 0"), append(args, q.Type)
	}
	if q.Username != "" {
		where, args = append(where, "instr(lower(username), lower(?)) > 0"), append(args, q.Username)
	}
	if q.Creator != "" {
		where, args = append(where, "creator = ?"), append(args, q.Creator)
	}
	if !q.RegisteredSince.IsZero() {
		where, args = append(where, "registered >= ?"), append(args, ns(q.RegisteredSince))
	}
	query := `SELECT ` + identityCols + ` FROM identities`
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	if q.Asc {
		query += " ORDER BY registered ASC, id"
	} else {
		query += " ORDER BY registered DESC, id"
	}
	query += " LIMIT ? OFFSET ?"
	args = append(args, q.Limit, q.Offset)
	rows, err := s.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("search identities: %w", err)
	}
	defer rows.Close()
	var out []trail.Identity
	for rows.Next() {
		id, err := scanIdentity(rows)
		if err != nil {
			return nil, fmt.Errorf("search identities: %w", err)
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

// ---- nonces ----

// PutNonce implements trail.Store.
func (s *Store) PutNonce(ctx context.Context, did, nonce string, expires time.Time) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("put nonce for %s: %w", did, err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM nonces WHERE id = ? AND (expires <= ? OR nonce IN (SELECT nonce FROM nonces WHERE id = ? ORDER BY expires DESC LIMIT -1 OFFSET 7))`,
		did, time.Now().UnixNano(), did); err != nil {
		return fmt.Errorf("put nonce for %s: %w", did, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO nonces (id, nonce, expires) VALUES (?,?,?)`, did, nonce, ns(expires)); err != nil {
		return fmt.Errorf("put nonce for %s: %w", did, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("put nonce for %s: %w", did, err)
	}
	return nil
}

// Nonces implements trail.Store.
func (s *Store) Nonces(ctx context.Context, did string, now time.Time) ([]string, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT nonce FROM nonces WHERE id = ? AND expires > ?`, did, ns(now))
	if err != nil {
		return nil, fmt.Errorf("nonces of %s: %w", did, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, fmt.Errorf("nonces of %s: %w", did, err)
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

// TakeNonce implements trail.Store.
func (s *Store) TakeNonce(ctx context.Context, did, nonce string, now time.Time) error {
	res, err := s.w.ExecContext(ctx, `DELETE FROM nonces WHERE id = ? AND nonce = ? AND expires > ?`, did, nonce, ns(now))
	if err != nil {
		return fmt.Errorf("take nonce of %s: %w", did, err)
	}
	return notFoundIfNone(res, "nonce of "+did)
}

// ---- channels ----

// CreateChannel implements trail.Store.
func (s *Store) CreateChannel(ctx context.Context, ch trail.Channel, author trail.Subscription) error {
	vis, _ := json.Marshal(nonNil(ch.VisibilityList))
	topics, _ := json.Marshal(ch.Topics)
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("create channel %s: %w", ch.Address, err)
	}
	defer tx.Rollback()
	var name any
	if ch.Name != "" {
		name = ch.Name
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO channels (address, name, description, type, hidden, visibility, author, topics, psk, created) VALUES (?,?,?,?,?,?,?,?,?,?)`,
		ch.Address, name, ch.Description, ch.Type, b2i(ch.Hidden), string(vis), ch.AuthorID, string(topics), ch.PresharedKey, ns(ch.Created))
	if isUnique(err) {
		return fmt.Errorf("create channel %s (name %q): %w", ch.Address, ch.Name, trail.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("create channel %s: %w", ch.Address, err)
	}
	if err := insertSub(ctx, tx, author); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("create channel %s: %w", ch.Address, err)
	}
	return nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

const channelCols = `address, COALESCE(name, ''), description, type, hidden, visibility, author, topics, psk, created, latest`

func scanChannel(sc interface{ Scan(...any) error }) (trail.Channel, error) {
	var (
		ch              trail.Channel
		hidden          int
		vis, topics     string
		created, latest int64
	)
	if err := sc.Scan(&ch.Address, &ch.Name, &ch.Description, &ch.Type, &hidden, &vis, &ch.AuthorID, &topics, &ch.PresharedKey, &created, &latest); err != nil {
		return ch, err
	}
	ch.Hidden, ch.Created, ch.LatestMessage = hidden != 0, fromNS(created), fromNS(latest)
	if err := json.Unmarshal([]byte(vis), &ch.VisibilityList); err != nil {
		return ch, fmt.Errorf("decode visibility list of %s: %w", ch.Address, err)
	}
	if err := json.Unmarshal([]byte(topics), &ch.Topics); err != nil {
		return ch, fmt.Errorf("decode topics of %s: %w", ch.Address, err)
	}
	return ch, nil
}

// GetChannel implements trail.Store.
func (s *Store) GetChannel(ctx context.Context, addr string) (trail.Channel, error) {
	ch, err := scanChannel(s.stmts["channel"].QueryRowContext(ctx, addr))
	if errors.Is(err, sql.ErrNoRows) {
		return ch, fmt.Errorf("channel %s: %w", addr, trail.ErrNotFound)
	}
	if err != nil {
		return ch, fmt.Errorf("get channel %s: %w", addr, err)
	}
	return ch, nil
}

// UpdateChannel implements trail.Store.
func (s *Store) UpdateChannel(ctx context.Context, ch trail.Channel) error {
	vis, _ := json.Marshal(nonNil(ch.VisibilityList))
	topics, _ := json.Marshal(ch.Topics)
	res, err := s.w.ExecContext(ctx, `UPDATE channels SET topics = ?, hidden = ?, visibility = ? WHERE address = ?`,
		string(topics), b2i(ch.Hidden), string(vis), ch.Address)
	if err != nil {
		return fmt.Errorf("update channel %s: %w", ch.Address, err)
	}
	return notFoundIfNone(res, "update channel "+ch.Address)
}

// DeleteChannel implements trail.Store.
func (s *Store) DeleteChannel(ctx context.Context, addr string) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("delete channel %s: %w", addr, err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `DELETE FROM channels WHERE address = ?`, addr)
	if err != nil {
		return fmt.Errorf("delete channel %s: %w", addr, err)
	}
	if err := notFoundIfNone(res, "delete channel "+addr); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM subscriptions WHERE address = ?`, addr); err != nil {
		return fmt.Errorf("delete subscriptions of %s: %w", addr, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("delete channel %s: %w", addr, err)
	}
	return nil
}

// SearchChannels implements trail.Store.
func (s *Store) SearchChannels(ctx context.Context, q trail.ChannelQuery) ([]trail.Channel, error) {
	var (
		groupA, groupB, where []string
		args                  []any
	)
	// Group A (identities, exact), group B (text, substring): built in
	// argument order A, B, then the remaining filters.
	if q.AuthorID != "" {
		groupA, args = append(groupA, "author = ?"), append(args, q.AuthorID)
	}
	if q.SubscriberID != "" {
		groupA, args = append(groupA, "EXISTS (SELECT 1 FROM subscriptions s WHERE s.address = channels.address AND s.id = ? AND s.authorized = 1 AND s.type = 'Subscriber')"), append(args, q.SubscriberID)
	}
	if q.RequestedID != "" {
		groupA, args = append(groupA, "EXISTS (SELECT 1 FROM subscriptions s WHERE s.address = channels.address AND s.id = ? AND s.authorized = 0)"), append(args, q.RequestedID)
	}
	if q.Name != "" {
		groupB, args = append(groupB, "instr(lower(COALESCE(name, '')), lower(?)) > 0"), append(args, q.Name)
	}
	if q.TopicType != "" {
		groupB, args = append(groupB, "EXISTS (SELECT 1 FROM json_each(channels.topics) t WHERE instr(lower(json_extract(t.value, '$.type')), lower(?)) > 0)"), append(args, q.TopicType)
	}
	if q.TopicSource != "" {
		groupB, args = append(groupB, "EXISTS (SELECT 1 FROM json_each(channels.topics) t WHERE instr(lower(json_extract(t.value, '$.source')), lower(?)) > 0)"), append(args, q.TopicSource)
	}
	switch {
	case len(groupA) > 0 && len(groupB) > 0:
		where = append(where, "("+strings.Join(groupA, " OR ")+") AND ("+strings.Join(groupB, " OR ")+")")
	case len(groupA)+len(groupB) > 0:
		where = append(where, "("+strings.Join(append(groupA, groupB...), " OR ")+")")
	}
	if !q.Created.IsZero() {
		where, args = append(where, "created >= ?"), append(args, ns(q.Created))
	}
	if !q.LatestMessage.IsZero() {
		where, args = append(where, "latest >= ?"), append(args, ns(q.LatestMessage))
	}
	if q.Hidden != nil {
		where, args = append(where, "hidden = ?"), append(args, b2i(*q.Hidden))
	}
	if !q.ViewerIsAdmin {
		where, args = append(where, "(hidden = 0 OR author = ? OR EXISTS (SELECT 1 FROM json_each(channels.visibility) v WHERE v.value = ?))"), append(args, q.Viewer, q.Viewer)
	}
	query := `SELECT ` + channelCols + ` FROM channels`
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	if q.Asc != nil {
		if *q.Asc {
			query += " ORDER BY created ASC, address"
		} else {
			query += " ORDER BY created DESC, address"
		}
	}
	query += " LIMIT ? OFFSET ?"
	args = append(args, q.Limit, q.Offset)
	rows, err := s.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("search channels: %w", err)
	}
	defer rows.Close()
	var out []trail.Channel
	for rows.Next() {
		ch, err := scanChannel(rows)
		if err != nil {
			return nil, fmt.Errorf("search channels: %w", err)
		}
		out = append(out, ch)
	}
	return out, rows.Err()
}

// ---- subscriptions ----

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func insertSub(ctx context.Context, db execer, sub trail.Subscription) error {
	_, err := db.ExecContext(ctx, `INSERT INTO subscriptions (address, id, type, link, authorized, rights, pubkey, keyload, sequence, psk_id) VALUES (?,?,?,?,?,?,?,?,?,?)`,
		sub.ChannelAddress, sub.ID, sub.Type, sub.SubscriptionLink, b2i(sub.IsAuthorized), string(sub.AccessRights), sub.PublicKey, sub.KeyloadLink, sub.SequenceLink, sub.PskID)
	if isUnique(err) {
		return fmt.Errorf("subscription of %s to %s: %w", sub.ID, sub.ChannelAddress, trail.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("create subscription of %s to %s: %w", sub.ID, sub.ChannelAddress, err)
	}
	return nil
}

// CreateSubscription implements trail.Store.
func (s *Store) CreateSubscription(ctx context.Context, sub trail.Subscription) error {
	return insertSub(ctx, s.w, sub)
}

const subCols = `address, id, type, link, authorized, rights, pubkey, keyload, sequence, psk_id`

func scanSub(sc interface{ Scan(...any) error }) (trail.Subscription, error) {
	var (
		sub    trail.Subscription
		auth   int
		rights string
	)
	err := sc.Scan(&sub.ChannelAddress, &sub.ID, &sub.Type, &sub.SubscriptionLink, &auth, &rights, &sub.PublicKey, &sub.KeyloadLink, &sub.SequenceLink, &sub.PskID)
	sub.IsAuthorized, sub.AccessRights = auth != 0, trail.AccessRights(rights)
	return sub, err
}

// GetSubscription implements trail.Store.
func (s *Store) GetSubscription(ctx context.Context, addr, did string) (trail.Subscription, error) {
	sub, err := scanSub(s.stmts["sub"].QueryRowContext(ctx, addr, did))
	if errors.Is(err, sql.ErrNoRows) {
		return sub, fmt.Errorf("subscription of %s to %s: %w", did, addr, trail.ErrNotFound)
	}
	if err != nil {
		return sub, fmt.Errorf("get subscription of %s to %s: %w", did, addr, err)
	}
	return sub, nil
}

// ListSubscriptions implements trail.Store.
func (s *Store) ListSubscriptions(ctx context.Context, addr string, authorized *bool) ([]trail.Subscription, error) {
	query, args := `SELECT `+subCols+` FROM subscriptions WHERE address = ?`, []any{addr}
	if authorized != nil {
		query, args = query+" AND authorized = ?", append(args, b2i(*authorized))
	}
	rows, err := s.r.QueryContext(ctx, query+" ORDER BY type, id", args...)
	if err != nil {
		return nil, fmt.Errorf("list subscriptions of %s: %w", addr, err)
	}
	defer rows.Close()
	var out []trail.Subscription
	for rows.Next() {
		sub, err := scanSub(rows)
		if err != nil {
			return nil, fmt.Errorf("list subscriptions of %s: %w", addr, err)
		}
		out = append(out, sub)
	}
	return out, rows.Err()
}

// UpdateSubscription implements trail.Store.
func (s *Store) UpdateSubscription(ctx context.Context, sub trail.Subscription) error {
	res, err := s.w.ExecContext(ctx, `UPDATE subscriptions SET link = ?, authorized = ?, rights = ?, keyload = ?, sequence = ?, psk_id = ? WHERE address = ? AND id = ?`,
		sub.SubscriptionLink, b2i(sub.IsAuthorized), string(sub.AccessRights), sub.KeyloadLink, sub.SequenceLink, sub.PskID, sub.ChannelAddress, sub.ID)
	if err != nil {
		return fmt.Errorf("update subscription of %s to %s: %w", sub.ID, sub.ChannelAddress, err)
	}
	return notFoundIfNone(res, "update subscription of "+sub.ID+" to "+sub.ChannelAddress)
}

// DeleteSubscription implements trail.Store.
func (s *Store) DeleteSubscription(ctx context.Context, addr, did string) error {
	res, err := s.w.ExecContext(ctx, `DELETE FROM subscriptions WHERE address = ? AND id = ?`, addr, did)
	if err != nil {
		return fmt.Errorf("delete subscription of %s to %s: %w", did, addr, err)
	}
	return notFoundIfNone(res, "delete subscription of "+did+" to "+addr)
}

// ---- entries ----

// Append implements trail.Store.
func (s *Store) Append(ctx context.Context, req trail.AppendRequest) (trail.Entry, error) {
	r := &appendReq{ctx: ctx, req: req, done: make(chan struct{})}
	select {
	case s.appends <- r:
	case <-s.quit:
		return trail.Entry{}, fmt.Errorf("append to %s: store closed", req.ChannelAddress)
	case <-ctx.Done():
		return trail.Entry{}, ctx.Err()
	}
	// Once queued, wait for the outcome even if ctx ends: the entry may
	// already be committed and the caller must not report otherwise.
	<-r.done
	return r.entry, r.err
}

func (s *Store) commitLoop() {
	defer close(s.done)
	trail.GroupCommit(s.appends, s.quit, maxBatch, s.commitBatch)
}

// commitBatch appends every request in one transaction. A request that
// fails its checks gets its own error and does not affect the others; a
// failure of the transaction itself fails every request in it. Channel
// author, next index and writer rights are read once per batch inside the
// transaction (nothing else writes while it is open: one write
// connection).
func (s *Store) commitBatch(batch []*appendReq) {
	defer func() {
		for _, r := range batch {
			close(r.done)
		}
	}()
	fail := func(err error) {
		for _, r := range batch {
			if r.err == nil {
				r.err, r.entry = err, trail.Entry{}
			}
		}
	}
	ctx := context.Background()
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		fail(fmt.Errorf("append: begin: %w", err))
		return
	}
	defer tx.Rollback()
	txStmts := map[string]*sql.Stmt{}
	stmt := func(name string) *sql.Stmt {
		st := txStmts[name]
		if st == nil {
			st = tx.StmtContext(ctx, s.stmts[name])
			txStmts[name] = st
		}
		return st
	}
	b := &batchState{tx: tx, stmt: stmt, now: time.Now().UTC(), next: map[string]int64{}, author: map[string]string{}, canWrite: map[[2]string]error{}, registered: map[string]bool{}, appended: map[string]bool{}, hashes: map[hashKey]tlog.Hash{}}
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.err = err
			continue
		}
		r.entry, r.err = b.appendOne(ctx, r.req)
		if r.err != nil && !errors.Is(r.err, trail.ErrNotFound) && !errors.Is(r.err, trail.ErrForbidden) && !errors.Is(r.err, trail.ErrConflict) && !errors.Is(r.err, trail.ErrUnregistered) {
			fail(r.err)
			return
		}
	}
	for addr := range b.appended {
		if _, err := b.stmt("w-latest").ExecContext(ctx, ns(b.now), addr); err != nil {
			fail(fmt.Errorf("append to channel %s: %w", addr, err))
			return
		}
	}
	if err := tx.Commit(); err != nil {
		fail(fmt.Errorf("append: commit: %w", err))
	}
}

type batchState struct {
	tx       *sql.Tx
	stmt     func(name string) *sql.Stmt
	now      time.Time
	next     map[string]int64    // channel -> next index
	author   map[string]string   // channel -> author ("" = no channel)
	canWrite map[[2]string]error // (channel, writer) -> nil or ErrForbidden
	// registered caches, per writer, whether it is a registered identity
	// (read only for requests with RequireRegistered).
	registered map[string]bool
	appended   map[string]bool // channels with an entry in this batch
	// hashes caches the stored hashes written in this batch, so the
	// entries of one batch build on each other without reading back.
	hashes map[hashKey]tlog.Hash
}

type hashKey struct {
	addr string
	idx  int64
}

// storeHashes computes and inserts the tlog stored hashes of entry n of
// addr with leaf hash lh. Earlier hashes come from this batch's cache or
// from the transaction.
func (b *batchState) storeHashes(ctx context.Context, addr string, n int64, lh tlog.Hash) error {
	r := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			if h, ok := b.hashes[hashKey{addr, x}]; ok {
				out[i] = h
				continue
			}
			var raw []byte
			if err := b.stmt("w-hash").QueryRowContext(ctx, addr, x).Scan(&raw); err != nil {
				return nil, fmt.Errorf("stored hash %d: %w", x, err)
			}
			if len(raw) != tlog.HashSize {
				return nil, fmt.Errorf("stored hash %d has %d bytes", x, len(raw))
			}
			copy(out[i][:], raw)
		}
		return out, nil
	})
	hs, err := tlog.StoredHashesForRecordHash(n, lh, r)
	if err != nil {
		return fmt.Errorf("log hashes of channel %s entry %d: %w", addr, n, err)
	}
	base := tlog.StoredHashIndex(0, n)
	for i, h := range hs {
		if _, err := b.stmt("w-hashes").ExecContext(ctx, addr, base+int64(i), h[:]); err != nil {
			return fmt.Errorf("store log hash %d of channel %s entry %d: %w", base+int64(i), addr, n, err)
		}
		b.hashes[hashKey{addr, base + int64(i)}] = h
	}
	return nil
}

func (b *batchState) appendOne(ctx context.Context, req trail.AppendRequest) (trail.Entry, error) {
	addr := req.ChannelAddress
	if req.RequireRegistered {
		known, ok := b.registered[req.Writer]
		if !ok {
			var one int
			err := b.stmt("w-ident").QueryRowContext(ctx, req.Writer).Scan(&one)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return trail.Entry{}, fmt.Errorf("append to channel %s: identity %s: %w", addr, req.Writer, err)
			}
			known = err == nil
			b.registered[req.Writer] = known
		}
		if !known {
			return trail.Entry{}, fmt.Errorf("append to channel %s by %s: %w", addr, req.Writer, trail.ErrUnregistered)
		}
	}
	author, ok := b.author[addr]
	if !ok {
		// The channel's author and next index in one statement, once per
		// channel and batch (this transaction is the only writer).
		var next int64
		err := b.stmt("w-chan").QueryRowContext(ctx, addr).Scan(&author, &next)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return trail.Entry{}, fmt.Errorf("append to channel %s: %w", addr, err)
		}
		b.author[addr] = author
		if author != "" {
			b.next[addr] = next
		}
	}
	if author == "" {
		return trail.Entry{}, fmt.Errorf("append to channel %s: %w", addr, trail.ErrNotFound)
	}
	if req.Writer != author {
		key := [2]string{addr, req.Writer}
		werr, ok := b.canWrite[key]
		if !ok {
			var (
				auth   int
				rights string
			)
			err := b.stmt("w-rights").QueryRowContext(ctx, addr, req.Writer).Scan(&auth, &rights)
			switch {
			case errors.Is(err, sql.ErrNoRows):
				werr = fmt.Errorf("append to channel %s by %s: no subscription: %w", addr, req.Writer, trail.ErrForbidden)
			case err != nil:
				return trail.Entry{}, fmt.Errorf("append to channel %s: %w", addr, err)
			case auth == 0 || !trail.AccessRights(rights).CanWrite():
				werr = fmt.Errorf("append to channel %s by %s (rights %s, authorized %v): %w", addr, req.Writer, rights, auth != 0, trail.ErrForbidden)
			}
			b.canWrite[key] = werr
		}
		if werr != nil {
			return trail.Entry{}, werr
		}
	}
	idx := b.next[addr]
	lh := trail.LeafHash(req.Leaf)
	// A UNIQUE violation aborts only this statement, not the transaction.
	_, err := b.stmt("w-insert").ExecContext(ctx,
		addr, idx, req.Leaf, lh[:], trail.MessageID(lh), req.Writer, ns(req.Created), ns(b.now))
	if isUnique(err) {
		b.next[addr] = idx
		return trail.Entry{}, fmt.Errorf("append to channel %s: entry %x: %w", addr, lh[:12], trail.ErrConflict)
	}
	if err != nil {
		return trail.Entry{}, fmt.Errorf("append to channel %s at %d: %w", addr, idx, err)
	}
	if err := b.storeHashes(ctx, addr, idx, lh); err != nil {
		return trail.Entry{}, err // not a sentinel: fails the whole batch
	}
	b.next[addr] = idx + 1
	b.appended[addr] = true
	return trail.Entry{ChannelAddress: addr, Index: idx, Leaf: req.Leaf, LeafHash: lh, Writer: req.Writer, Created: req.Created, Received: b.now}, nil
}

const entryCols = `address, idx, leaf, leaf_hash, writer, created, received`

func scanEntry(sc interface{ Scan(...any) error }) (trail.Entry, error) {
	var (
		e                 trail.Entry
		lh                []byte
		created, received int64
	)
	if err := sc.Scan(&e.ChannelAddress, &e.Index, &e.Leaf, &lh, &e.Writer, &created, &received); err != nil {
		return e, err
	}
	if len(lh) != 32 {
		return e, fmt.Errorf("entry %d of %s: stored leaf hash has %d bytes", e.Index, e.ChannelAddress, len(lh))
	}
	copy(e.LeafHash[:], lh)
	e.Created, e.Received = fromNS(created), fromNS(received)
	return e, nil
}

// Entries implements trail.Store.
func (s *Store) Entries(ctx context.Context, addr string, q trail.EntryQuery) ([]trail.Entry, error) {
	query, args := `SELECT `+entryCols+` FROM entries WHERE address = ?`, []any{addr}
	asc := q.Asc
	if q.Since >= 0 {
		query, args, asc = query+" AND idx >= ?", append(args, q.Since), true
	}
	if !q.Start.IsZero() {
		query, args = query+" AND created >= ?", append(args, ns(q.Start))
	}
	if !q.End.IsZero() {
		query, args = query+" AND created <= ?", append(args, ns(q.End))
	}
	if asc {
		query += " ORDER BY idx ASC"
	} else {
		query += " ORDER BY idx DESC"
	}
	limit := q.Limit
	if limit <= 0 {
		limit = -1
	}
	query, args = query+" LIMIT ? OFFSET ?", append(args, limit, q.Offset)
	rows, err := s.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("entries of %s: %w", addr, err)
	}
	defer rows.Close()
	var out []trail.Entry
	for rows.Next() {
		e, err := scanEntry(rows)
		if err != nil {
			return nil, fmt.Errorf("entries of %s: %w", addr, err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// EntryByMessageID implements trail.Store.
func (s *Store) EntryByMessageID(ctx context.Context, addr, msgID string) (trail.Entry, error) {
	if _, err := hex.DecodeString(msgID); err != nil || len(msgID) != 24 {
		return trail.Entry{}, fmt.Errorf("entry %q of %s: %w", msgID, addr, trail.ErrNotFound)
	}
	// The message id is the first 12 bytes of the leaf hash: a range scan
	// of the (address, leaf_hash) index finds it without an index of its own.
	lo, _ := hex.DecodeString(msgID)
	hi := append(append([]byte{}, lo...), bytes.Repeat([]byte{0xff}, 20)...)
	e, err := scanEntry(s.r.QueryRowContext(ctx, `SELECT `+entryCols+` FROM entries WHERE address = ? AND leaf_hash BETWEEN ? AND ? ORDER BY idx LIMIT 1`, addr, lo, hi))
	if errors.Is(err, sql.ErrNoRows) {
		return e, fmt.Errorf("entry %s of %s: %w", msgID, addr, trail.ErrNotFound)
	}
	if err != nil {
		return e, fmt.Errorf("entry %s of %s: %w", msgID, addr, err)
	}
	return e, nil
}

// Size implements trail.Store.
func (s *Store) Size(ctx context.Context, addr string) (int64, error) {
	var n int64
	if err := s.stmts["size"].QueryRowContext(ctx, addr).Scan(&n); err != nil {
		return 0, fmt.Errorf("size of %s: %w", addr, err)
	}
	return n, nil
}

// ---- channel transparency logs ----

// ReadHashes implements trail.Store. Many indexes close together (a
// tile) are read with one range scan, others one by one.
func (s *Store) ReadHashes(ctx context.Context, addr string, indexes []int64) ([]tlog.Hash, error) {
	if len(indexes) >= 16 {
		lo, hi := slices.Min(indexes), slices.Max(indexes)
		if lo >= 0 && hi-lo < 4*int64(len(indexes)) {
			return s.readHashRange(ctx, addr, indexes, lo, hi)
		}
	}
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		var raw []byte
		err := s.stmts["hash"].QueryRowContext(ctx, addr, x).Scan(&raw)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("log hash %d of channel %s: %w", x, addr, trail.ErrNotFound)
		}
		if err != nil {
			return nil, fmt.Errorf("log hash %d of channel %s: %w", x, addr, err)
		}
		if len(raw) != tlog.HashSize {
			return nil, fmt.Errorf("log hash %d of channel %s: stored value has %d bytes, want %d", x, addr, len(raw), tlog.HashSize)
		}
		copy(out[i][:], raw)
	}
	return out, nil
}

func (s *Store) readHashRange(ctx context.Context, addr string, indexes []int64, lo, hi int64) ([]tlog.Hash, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT idx, hash FROM log_hashes WHERE address = ? AND idx BETWEEN ? AND ?`, addr, lo, hi)
	if err != nil {
		return nil, fmt.Errorf("log hashes %d to %d of channel %s: %w", lo, hi, addr, err)
	}
	defer rows.Close()
	span := make([]tlog.Hash, hi-lo+1)
	have := make([]bool, hi-lo+1)
	for rows.Next() {
		var (
			x   int64
			raw []byte
		)
		if err := rows.Scan(&x, &raw); err != nil {
			return nil, fmt.Errorf("log hashes %d to %d of channel %s: %w", lo, hi, addr, err)
		}
		if len(raw) != tlog.HashSize {
			return nil, fmt.Errorf("log hash %d of channel %s: stored value has %d bytes, want %d", x, addr, len(raw), tlog.HashSize)
		}
		copy(span[x-lo][:], raw)
		have[x-lo] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("log hashes %d to %d of channel %s: %w", lo, hi, addr, err)
	}
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		if !have[x-lo] {
			return nil, fmt.Errorf("log hash %d of channel %s: %w", x, addr, trail.ErrNotFound)
		}
		out[i] = span[x-lo]
	}
	return out, nil
}

// LatestCheckpoint implements trail.Store.
func (s *Store) LatestCheckpoint(ctx context.Context, addr string) (int64, []byte, error) {
	var (
		size int64
		note []byte
	)
	err := s.r.QueryRowContext(ctx, `SELECT size, note FROM checkpoints WHERE address = ?`, addr).Scan(&size, &note)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil, fmt.Errorf("checkpoint of channel %s: %w", addr, trail.ErrNotFound)
	}
	if err != nil {
		return 0, nil, fmt.Errorf("checkpoint of channel %s: %w", addr, err)
	}
	return size, note, nil
}

// PutCheckpoint implements trail.Store.
func (s *Store) PutCheckpoint(ctx context.Context, addr string, prev, size int64, note []byte) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("put checkpoint of channel %s: begin: %w", addr, err)
	}
	defer tx.Rollback()
	var cur int64
	err = tx.QueryRowContext(ctx, `SELECT size FROM checkpoints WHERE address = ?`, addr).Scan(&cur)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		cur = -1
	case err != nil:
		return fmt.Errorf("put checkpoint of channel %s: %w", addr, err)
	}
	if cur != prev {
		return fmt.Errorf("put checkpoint of channel %s at size %d: latest stored size is %d, not %d: %w", addr, size, cur, prev, trail.ErrConflict)
	}
	if cur < 0 {
		_, err = tx.ExecContext(ctx, `INSERT INTO checkpoints (address, size, note) VALUES (?,?,?)`, addr, size, note)
	} else {
		_, err = tx.ExecContext(ctx, `UPDATE checkpoints SET size = ?, note = ? WHERE address = ?`, size, note, addr)
	}
	if err != nil {
		return fmt.Errorf("put checkpoint of channel %s at size %d: %w", addr, size, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("put checkpoint of channel %s at size %d: commit: %w", addr, size, err)
	}
	return nil
}

// migrateHashes computes the log hashes of entries written by a version
// without log_hashes (or left without them in any other way): for each
// channel whose stored-hash count is short of its size, it hashes the
// missing entries in index order, in one transaction per channel. The
// leaf_hash column is checked against the leaf bytes first.
func (s *Store) migrateHashes(ctx context.Context) error {
	rows, err := s.w.QueryContext(ctx, `SELECT e.address, MAX(e.idx) + 1,
		(SELECT COUNT(*) FROM log_hashes h WHERE h.address = e.address),
		(SELECT COALESCE(MAX(h.idx) + 1, 0) FROM log_hashes h WHERE h.address = e.address)
		FROM entries e GROUP BY e.address`)
	if err != nil {
		return fmt.Errorf("check log hashes: %w", err)
	}
	type todo struct {
		addr               string
		size, hashes, next int64
	}
	var work []todo
	for rows.Next() {
		var w todo
		if err := rows.Scan(&w.addr, &w.size, &w.hashes, &w.next); err != nil {
			rows.Close()
			return fmt.Errorf("check log hashes: %w", err)
		}
		if w.hashes != w.next {
			return fmt.Errorf("channel %s: log hashes have gaps (%d stored, highest index %d): the database was altered; restore it from a backup", w.addr, w.hashes, w.next-1)
		}
		if w.hashes != tlog.StoredHashCount(w.size) {
			work = append(work, w)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("check log hashes: %w", err)
	}
	for _, w := range work {
		if err := s.migrateChannel(ctx, w.addr, w.size, w.hashes); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) migrateChannel(ctx context.Context, addr string, size, have int64) error {
	// First entry without hashes: the largest n with StoredHashCount(n) <= have.
	from := int64(0)
	for from < size && tlog.StoredHashCount(from+1) <= have {
		from++
	}
	if tlog.StoredHashCount(from) != have {
		return fmt.Errorf("channel %s: %d log hashes stored for %d entries, not a valid prefix: the database was altered; restore it from a backup", addr, have, size)
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("compute log hashes of channel %s: %w", addr, err)
	}
	defer tx.Rollback()
	txStmts := map[string]*sql.Stmt{}
	b := &batchState{tx: tx, hashes: map[hashKey]tlog.Hash{}, stmt: func(name string) *sql.Stmt {
		if txStmts[name] == nil {
			txStmts[name] = tx.StmtContext(ctx, s.stmts[name])
		}
		return txStmts[name]
	}}
	rows, err := tx.QueryContext(ctx, `SELECT idx, leaf, leaf_hash FROM entries WHERE address = ? AND idx >= ? ORDER BY idx`, addr, from)
	if err != nil {
		return fmt.Errorf("compute log hashes of channel %s: %w", addr, err)
	}
	defer rows.Close()
	type ent struct {
		idx int64
		lh  tlog.Hash
	}
	var ents []ent
	for rows.Next() {
		var (
			e        ent
			leaf, lh []byte
		)
		if err := rows.Scan(&e.idx, &leaf, &lh); err != nil {
			return fmt.Errorf("compute log hashes of channel %s: %w", addr, err)
		}
		if e.lh = tlog.RecordHash(leaf); !bytes.Equal(lh, e.lh[:]) {
			return fmt.Errorf("channel %s entry %d: stored leaf_hash does not match the leaf bytes: the database was altered; restore it from a backup", addr, e.idx)
		}
		if e.idx != from+int64(len(ents)) {
			return fmt.Errorf("channel %s: entry %d missing: the database was altered; restore it from a backup", addr, from+int64(len(ents)))
		}
		ents = append(ents, e)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("compute log hashes of channel %s: %w", addr, err)
	}
	rows.Close()
	for _, e := range ents {
		if err := b.storeHashes(ctx, addr, e.idx, e.lh); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("compute log hashes of channel %s: commit: %w", addr, err)
	}
	return nil
}

// ---- verification ----

// AddTrustedRoot implements trail.Store.
func (s *Store) AddTrustedRoot(ctx context.Context, did string) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO trusted_roots (id) VALUES (?)`, did)
	if isUnique(err) {
		return fmt.Errorf("trusted root %s: %w", did, trail.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("add trusted root %s: %w", did, err)
	}
	return nil
}

// TrustedRoots implements trail.Store.
func (s *Store) TrustedRoots(ctx context.Context) ([]string, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id FROM trusted_roots ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("trusted roots: %w", err)
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("trusted roots: %w", err)
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

// RemoveTrustedRoot implements trail.Store.
func (s *Store) RemoveTrustedRoot(ctx context.Context, did string) error {
	res, err := s.w.ExecContext(ctx, `DELETE FROM trusted_roots WHERE id = ?`, did)
	if err != nil {
		return fmt.Errorf("remove trusted root %s: %w", did, err)
	}
	return notFoundIfNone(res, "trusted root "+did)
}

// PutCredential implements trail.Store.
func (s *Store) PutCredential(ctx context.Context, c trail.Credential) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO credentials (id, subject, issuer, vc, revoked, issued) VALUES (?,?,?,?,?,?)`,
		c.ID, c.Subject, c.Issuer, []byte(c.VC), b2i(c.Revoked), ns(c.Issued))
	if isUnique(err) {
		return fmt.Errorf("credential %s: %w", c.ID, trail.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("put credential %s: %w", c.ID, err)
	}
	return nil
}

func scanCred(sc interface{ Scan(...any) error }) (trail.Credential, error) {
	var (
		c       trail.Credential
		vc      []byte
		revoked int
		issued  int64
	)
	err := sc.Scan(&c.ID, &c.Subject, &c.Issuer, &vc, &revoked, &issued)
	c.VC, c.Revoked, c.Issued = json.RawMessage(vc), revoked != 0, fromNS(issued)
	return c, err
}

// GetCredential implements trail.Store.
func (s *Store) GetCredential(ctx context.Context, id string) (trail.Credential, error) {
	c, err := scanCred(s.r.QueryRowContext(ctx, `SELECT id, subject, issuer, vc, revoked, issued FROM credentials WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return c, fmt.Errorf("credential %s: %w", id, trail.ErrNotFound)
	}
	if err != nil {
		return c, fmt.Errorf("get credential %s: %w", id, err)
	}
	return c, nil
}

// CredentialsOf implements trail.Store.
func (s *Store) CredentialsOf(ctx context.Context, subject string) ([]trail.Credential, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id, subject, issuer, vc, revoked, issued FROM credentials WHERE subject = ? ORDER BY issued`, subject)
	if err != nil {
		return nil, fmt.Errorf("credentials of %s: %w", subject, err)
	}
	defer rows.Close()
	var out []trail.Credential
	for rows.Next() {
		c, err := scanCred(rows)
		if err != nil {
			return nil, fmt.Errorf("credentials of %s: %w", subject, err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// RevokeCredential implements trail.Store.
func (s *Store) RevokeCredential(ctx context.Context, id string) error {
	res, err := s.w.ExecContext(ctx, `UPDATE credentials SET revoked = 1 WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("revoke credential %s: %w", id, err)
	}
	return notFoundIfNone(res, "revoke credential "+id)
}
