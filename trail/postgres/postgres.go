// Package postgres is the PostgreSQL trail.Store (pgx/v5, pgxpool): the
// store to use when several gateway replicas (`lakeproof serve --db
// postgres://…`) share one database.
//
// # Sequencing
//
// Appends are sequenced by the channel row: every append transaction
// locks the row of each channel it appends to (SELECT … FOR UPDATE, in
// address order, so two transactions never deadlock), and only then, in a
// new statement, reads the channel's next index (MAX(idx)+1) and checks
// the writer's rights. PostgreSQL's READ COMMITTED gives every statement a
// fresh snapshot, so the statement after the lock sees every entry that
// the previous holder of the lock committed: indexes are 0, 1, 2, … with no
// gap and no duplicate across all processes, in commit order. The writer's
// subscription is read FOR SHARE and its identity FOR KEY SHARE in the same
// transaction, so a revoke or delete either committed before (and the
// append fails) or waits for the append to commit. The tlog stored hashes
// of each new entry (tlog.StoredHashesForRecordHash, reading the channel's
// earlier hashes in the same transaction) are inserted in that
// transaction too, so a committed entry always has its hashes and two
// replicas can never build different trees. An advisory lock would
// serialize all channels; the row lock serializes only appends to the same
// channel.
//
// Within one process, concurrent Append calls are group-committed: one
// goroutine takes every pending append (up to maxBatch), runs them in one
// transaction (one WAL flush for the batch) and answers each caller after
// COMMIT returned. A batch takes four round trips whatever its size: the
// checks (pipelined, taking the row locks), one read of the earlier tree
// hashes the new ones depend on (found by a dry run of tlog's algorithm),
// the inserts (pipelined, multi-row), and COMMIT.
//
// # Invariants
//
//   - Every method that changes state returns after COMMIT, which (with
//     the default synchronous_commit=on) is after the WAL is flushed.
//   - Entry and log_hashes rows are insert-only; leaf bytes are stored
//     verbatim. Signed checkpoints change only by compare-and-swap.
//   - The schema is created and migrated by New under a session advisory
//     lock, so any number of processes may start at once.
//   - Times are stored as Unix nanoseconds (bigint, 0 = zero time) so they
//     round-trip exactly, as in trail/sqlite.
package postgres

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/lakeproof/lakeproof/trail"
)

// maxBatch bounds the number of appends committed in one transaction.
const maxBatch = 512

// migrationLock is the pg_advisory_lock key held while the schema is
// created or migrated ("lakeproof" in ASCII, truncated to 63 bits).
const migrationLock int64 = 0x6c616b6570726f6f

// migrations are applied in order; schema_version holds how many ran.
// Never edit an entry that has shipped: append a new one.
var migrations = []string{
	`CREATE TABLE identities (
	id text PRIMARY KEY,
	username text NOT NULL UNIQUE,
	role text NOT NULL,
	claim_type text NOT NULL DEFAULT '',
	claim bytea,
	hidden boolean NOT NULL DEFAULT false,
	creator text NOT NULL DEFAULT '',
	registered bigint NOT NULL
);
CREATE TABLE nonces (
	id text NOT NULL,
	nonce text NOT NULL,
	expires bigint NOT NULL,
	PRIMARY KEY (id, nonce)
);
CREATE TABLE channels (
	address text PRIMARY KEY,
	name text UNIQUE,
	description text NOT NULL DEFAULT '',
	type text NOT NULL,
	hidden boolean NOT NULL DEFAULT false,
	visibility jsonb NOT NULL DEFAULT '[]',
	author text NOT NULL,
	topics jsonb NOT NULL DEFAULT '[]',
	psk text NOT NULL DEFAULT '',
	created bigint NOT NULL,
	latest bigint NOT NULL DEFAULT 0
);
CREATE TABLE subscriptions (
	address text NOT NULL,
	id text NOT NULL,
	type text NOT NULL,
	link text NOT NULL DEFAULT '',
	authorized boolean NOT NULL,
	rights text NOT NULL,
	pubkey text NOT NULL DEFAULT '',
	keyload text NOT NULL DEFAULT '',
	sequence text NOT NULL DEFAULT '',
	psk_id text NOT NULL DEFAULT '',
	PRIMARY KEY (address, id)
);
CREATE TABLE entries (
	address text NOT NULL,
	idx bigint NOT NULL,
	leaf bytea NOT NULL,
	leaf_hash bytea NOT NULL,
	msg_id text NOT NULL,
	writer text NOT NULL,
	created bigint NOT NULL,
	received bigint NOT NULL,
	PRIMARY KEY (address, idx),
	UNIQUE (address, leaf_hash)
);
CREATE TABLE log_hashes (
	address text NOT NULL,
	idx bigint NOT NULL,
	hash bytea NOT NULL,
	PRIMARY KEY (address, idx)
);
CREATE TABLE checkpoints (
	address text PRIMARY KEY,
	size bigint NOT NULL,
	note bytea NOT NULL
);
CREATE TABLE trusted_roots (id text PRIMARY KEY);
CREATE TABLE credentials (
	id text PRIMARY KEY,
	subject text NOT NULL,
	issuer text NOT NULL,
	vc bytea NOT NULL,
	revoked boolean NOT NULL DEFAULT false,
	issued bigint NOT NULL
);
CREATE INDEX credentials_subject ON credentials (subject);`,
}

// Store is the PostgreSQL trail.Store.
type Store struct {
	pool    *pgxpool.Pool
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

// New connects to the database named by dsn (a postgres:// URL or a
// key=value connection string, see pgx), creates or migrates the schema and
// starts the append committer. The role needs CREATE on the database's
// schema on first start.
func New(ctx context.Context, dsn string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: parse connection string: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: connect to %s: %w", describe(cfg), err)
	}
	if err := migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: %s: %w", describe(cfg), err)
	}
	s := &Store{pool: pool, appends: make(chan *appendReq, 4096), quit: make(chan struct{}), done: make(chan struct{})}
	go s.commitLoop()
	return s, nil
}

// describe names the database of cfg for error messages, without the
// password.
func describe(cfg *pgxpool.Config) string {
	c := cfg.ConnConfig
	return fmt.Sprintf("database %q on %s:%d as %q", c.Database, c.Host, c.Port, c.User)
}

// migrate creates or migrates the schema; a role without the privilege to
// do so gets an error that says who can.
func migrate(ctx context.Context, pool *pgxpool.Pool) error {
	err := migrateSchema(ctx, pool)
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "42501" { // insufficient_privilege
		return fmt.Errorf("%w (the schema is missing or older than this lakeproof: start it once as a role that may create tables in the database, e.g. its owner; docs/OPERATOR.md)", err)
	}
	return err
}

// migrateSchema applies the pending migrations under the advisory lock, each in
// its own transaction with the version bump. When the schema is already
// current it changes nothing and needs no DDL privilege, so replicas may
// run as a role that may only read and write rows (docs/OPERATOR.md).
func migrateSchema(ctx context.Context, pool *pgxpool.Pool) error {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Release()
	var version int
	err = conn.QueryRow(ctx, `SELECT version FROM schema_version`).Scan(&version)
	var pe *pgconn.PgError
	switch {
	case err == nil && version == len(migrations):
		return nil
	case err == nil && version > len(migrations):
		return fmt.Errorf("database schema version %d is newer than this lakeproof (%d): upgrade lakeproof", version, len(migrations))
	case err == nil, errors.Is(err, pgx.ErrNoRows), errors.As(err, &pe) && pe.Code == "42P01": // undefined_table
	default:
		return fmt.Errorf("read schema_version: %w", err)
	}
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, migrationLock); err != nil {
		return fmt.Errorf("take migration lock: %w", err)
	}
	defer func() {
		// A failed unlock (e.g. broken connection) ends with the session.
		_, _ = conn.Exec(context.Background(), `SELECT pg_advisory_unlock($1)`, migrationLock)
	}()
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)`); err != nil {
		return fmt.Errorf("create schema_version: %w", err)
	}
	version = 0
	err = conn.QueryRow(ctx, `SELECT version FROM schema_version`).Scan(&version)
	if errors.Is(err, pgx.ErrNoRows) {
		if _, err := conn.Exec(ctx, `INSERT INTO schema_version (version) VALUES (0)`); err != nil {
			return fmt.Errorf("init schema_version: %w", err)
		}
	} else if err != nil {
		return fmt.Errorf("read schema_version: %w", err)
	}
	if version > len(migrations) {
		return fmt.Errorf("database schema version %d is newer than this lakeproof (%d): upgrade lakeproof", version, len(migrations))
	}
	for v := version; v < len(migrations); v++ {
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, migrations[v]); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `UPDATE schema_version SET version = $1`, v+1)
			return err
		})
		if err != nil {
			return fmt.Errorf("schema migration %d: %w", v+1, err)
		}
	}
	return nil
}

// Close stops the committer (pending appends are finished first) and
// closes the pool.
func (s *Store) Close() error {
	s.once.Do(func() { close(s.quit) })
	<-s.done
	s.pool.Close()
	return nil
}

// Ping implements trail.Store.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("ping postgres: %w", err)
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

// isUnique reports a unique_violation (SQLSTATE 23505).
func isUnique(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

func notFoundIfNone(tag pgconn.CommandTag, what string) error {
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("%s: %w", what, trail.ErrNotFound)
	}
	return nil
}

// ---- identities ----

// CreateIdentity implements trail.Store.
func (s *Store) CreateIdentity(ctx context.Context, id trail.Identity) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO identities (id, username, role, claim_type, claim, hidden, creator, registered) VALUES ($1,$2,$3,$4,$5,$6,$7,$8)`,
		id.ID, id.Username, string(id.Role), id.ClaimType, nilIfEmpty(id.Claim), id.Hidden, id.Creator, ns(id.Registered))
	if isUnique(err) {
		return fmt.Errorf("create identity %s (username %q): %w", id.ID, id.Username, trail.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("create identity %s: %w", id.ID, err)
	}
	return nil
}

func nilIfEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

const identityCols = `id, username, role, claim_type, claim, hidden, creator, registered`

func scanIdentity(sc pgx.Row) (trail.Identity, error) {
	var (
		id         trail.Identity
		role       string
		claim      []byte
		registered int64
	)
	err := sc.Scan(&id.ID, &id.Username, &role, &id.ClaimType, &claim, &id.Hidden, &id.Creator, &registered)
	id.Role, id.Registered = trail.Role(role), fromNS(registered)
	if len(claim) > 0 {
		id.Claim = json.RawMessage(claim)
	}
	return id, err
}

// GetIdentity implements trail.Store.
func (s *Store) GetIdentity(ctx context.Context, did string) (trail.Identity, error) {
	id, err := scanIdentity(s.pool.QueryRow(ctx, `SELECT `+identityCols+` FROM identities WHERE id = $1`, did))
	if errors.Is(err, pgx.ErrNoRows) {
		return id, fmt.Errorf("identity %s: %w", did, trail.ErrNotFound)
	}
	if err != nil {
		return id, fmt.Errorf("get identity %s: %w", did, err)
	}
	return id, nil
}

// UpdateIdentity implements trail.Store.
func (s *Store) UpdateIdentity(ctx context.Context, id trail.Identity) error {
	tag, err := s.pool.Exec(ctx, `UPDATE identities SET username = $1, role = $2, claim_type = $3, claim = $4, hidden = $5 WHERE id = $6`,
		id.Username, string(id.Role), id.ClaimType, nilIfEmpty(id.Claim), id.Hidden, id.ID)
	if isUnique(err) {
		return fmt.Errorf("update identity %s (username %q): %w", id.ID, id.Username, trail.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("update identity %s: %w", id.ID, err)
	}
	return notFoundIfNone(tag, "update identity "+id.ID)
}

// DeleteIdentity implements trail.Store.
func (s *Store) DeleteIdentity(ctx context.Context, did string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM identities WHERE id = $1`, did)
	if err != nil {
		return fmt.Errorf("delete identity %s: %w", did, err)
	}
	return notFoundIfNone(tag, "delete identity "+did)
}

// args numbers query parameters as they are added.
type args []any

func (a *args) add(v any) string {
	*a = append(*a, v)
	return "$" + strconv.Itoa(len(*a))
}

// SearchIdentities implements trail.Store.
func (s *Store) SearchIdentities(ctx context.Context, q trail.IdentityQuery) ([]trail.Identity, error) {
	var (
		where []string
		a     args
	)
	if q.Type != "" {
		where = append(where, "strpos(lower(claim_type), lower("+a.add(q.Type)+")) > 0")
	}
	if q.Username != "" {
		where = append(where, "strpos(lower(username), lower("+a.add(q.Username)+")) > 0")
	}
	if q.Creator != "" {
		where = append(where, "creator = "+a.add(q.Creator))
	}
	if !q.RegisteredSince.IsZero() {
		where = append(where, "registered >= "+a.add(ns(q.RegisteredSince)))
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
	query += " LIMIT " + a.add(int64(q.Limit)) + " OFFSET " + a.add(int64(q.Offset))
	rows, err := s.pool.Query(ctx, query, a...)
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
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("search identities: %w", err)
	}
	return out, nil
}

// ---- nonces ----

// PutNonce implements trail.Store.
func (s *Store) PutNonce(ctx context.Context, did, nonce string, expires time.Time) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM nonces WHERE id = $1 AND (expires <= $2 OR nonce IN (SELECT nonce FROM nonces WHERE id = $1 ORDER BY expires DESC OFFSET 7))`,
			did, time.Now().UnixNano()); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO nonces (id, nonce, expires) VALUES ($1,$2,$3)`, did, nonce, ns(expires))
		return err
	})
	if isUnique(err) {
		return fmt.Errorf("put nonce for %s: %w", did, trail.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("put nonce for %s: %w", did, err)
	}
	return nil
}

// Nonces implements trail.Store.
func (s *Store) Nonces(ctx context.Context, did string, now time.Time) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT nonce FROM nonces WHERE id = $1 AND expires > $2`, did, ns(now))
	if err != nil {
		return nil, fmt.Errorf("nonces of %s: %w", did, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("nonces of %s: %w", did, err)
	}
	return out, nil
}

// TakeNonce implements trail.Store.
func (s *Store) TakeNonce(ctx context.Context, did, nonce string, now time.Time) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM nonces WHERE id = $1 AND nonce = $2 AND expires > $3`, did, nonce, ns(now))
	if err != nil {
		return fmt.Errorf("take nonce of %s: %w", did, err)
	}
	return notFoundIfNone(tag, "nonce of "+did)
}

// ---- channels ----

// CreateChannel implements trail.Store.
func (s *Store) CreateChannel(ctx context.Context, ch trail.Channel, author trail.Subscription) error {
	vis, _ := json.Marshal(nonNil(ch.VisibilityList))
	topics, _ := json.Marshal(nonNilTopics(ch.Topics))
	var name any
	if ch.Name != "" {
		name = ch.Name
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("create channel %s: %w", ch.Address, err)
	}
	defer tx.Rollback(context.Background()) // no-op after Commit
	_, err = tx.Exec(ctx, `INSERT INTO channels (address, name, description, type, hidden, visibility, author, topics, psk, created) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)`,
		ch.Address, name, ch.Description, ch.Type, ch.Hidden, string(vis), ch.AuthorID, string(topics), ch.PresharedKey, ns(ch.Created))
	if isUnique(err) {
		return fmt.Errorf("create channel %s (name %q): %w", ch.Address, ch.Name, trail.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("create channel %s: %w", ch.Address, err)
	}
	if err := insertSub(ctx, tx, author); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
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

func nonNilTopics(t []trail.Topic) []trail.Topic {
	if t == nil {
		return []trail.Topic{}
	}
	return t
}

const channelCols = `address, COALESCE(name, ''), description, type, hidden, visibility::text, author, topics::text, psk, created, latest`

func scanChannel(sc pgx.Row) (trail.Channel, error) {
	var (
		ch              trail.Channel
		vis, topics     string
		created, latest int64
	)
	if err := sc.Scan(&ch.Address, &ch.Name, &ch.Description, &ch.Type, &ch.Hidden, &vis, &ch.AuthorID, &topics, &ch.PresharedKey, &created, &latest); err != nil {
		return ch, err
	}
	ch.Created, ch.LatestMessage = fromNS(created), fromNS(latest)
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
	ch, err := scanChannel(s.pool.QueryRow(ctx, `SELECT `+channelCols+` FROM channels WHERE address = $1`, addr))
	if errors.Is(err, pgx.ErrNoRows) {
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
	topics, _ := json.Marshal(nonNilTopics(ch.Topics))
	tag, err := s.pool.Exec(ctx, `UPDATE channels SET topics = $1, hidden = $2, visibility = $3 WHERE address = $4`,
		string(topics), ch.Hidden, string(vis), ch.Address)
	if err != nil {
		return fmt.Errorf("update channel %s: %w", ch.Address, err)
	}
	return notFoundIfNone(tag, "update channel "+ch.Address)
}

// DeleteChannel implements trail.Store.
func (s *Store) DeleteChannel(ctx context.Context, addr string) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM channels WHERE address = $1`, addr)
		if err != nil {
			return err
		}
		if err := notFoundIfNone(tag, "channel"); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM subscriptions WHERE address = $1`, addr)
		return err
	})
	if err != nil {
		return fmt.Errorf("delete channel %s: %w", addr, err)
	}
	return nil
}

// SearchChannels implements trail.Store.
func (s *Store) SearchChannels(ctx context.Context, q trail.ChannelQuery) ([]trail.Channel, error) {
	var (
		groupA, groupB, where []string
		a                     args
	)
	// Group A (identities, exact) ORed, group B (text, substring) ORed,
	// both ANDed when both are present (IS semantics).
	if q.AuthorID != "" {
		groupA = append(groupA, "author = "+a.add(q.AuthorID))
	}
	if q.SubscriberID != "" {
		groupA = append(groupA, "EXISTS (SELECT 1 FROM subscriptions s WHERE s.address = channels.address AND s.id = "+a.add(q.SubscriberID)+" AND s.authorized AND s.type = 'Subscriber')")
	}
	if q.RequestedID != "" {
		groupA = append(groupA, "EXISTS (SELECT 1 FROM subscriptions s WHERE s.address = channels.address AND s.id = "+a.add(q.RequestedID)+" AND NOT s.authorized)")
	}
	if q.Name != "" {
		groupB = append(groupB, "strpos(lower(COALESCE(name, '')), lower("+a.add(q.Name)+")) > 0")
	}
	if q.TopicType != "" {
		groupB = append(groupB, "EXISTS (SELECT 1 FROM jsonb_array_elements(channels.topics) t WHERE strpos(lower(t->>'type'), lower("+a.add(q.TopicType)+")) > 0)")
	}
	if q.TopicSource != "" {
		groupB = append(groupB, "EXISTS (SELECT 1 FROM jsonb_array_elements(channels.topics) t WHERE strpos(lower(t->>'source'), lower("+a.add(q.TopicSource)+")) > 0)")
	}
	switch {
	case len(groupA) > 0 && len(groupB) > 0:
		where = append(where, "("+strings.Join(groupA, " OR ")+") AND ("+strings.Join(groupB, " OR ")+")")
	case len(groupA)+len(groupB) > 0:
		where = append(where, "("+strings.Join(append(groupA, groupB...), " OR ")+")")
	}
	if !q.Created.IsZero() {
		where = append(where, "created >= "+a.add(ns(q.Created)))
	}
	if !q.LatestMessage.IsZero() {
		where = append(where, "latest >= "+a.add(ns(q.LatestMessage)))
	}
	if q.Hidden != nil {
		where = append(where, "hidden = "+a.add(*q.Hidden))
	}
	if !q.ViewerIsAdmin {
		v := a.add(q.Viewer)
		where = append(where, "(NOT hidden OR author = "+v+" OR visibility @> jsonb_build_array("+v+"::text))")
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
	query += " LIMIT " + a.add(int64(q.Limit)) + " OFFSET " + a.add(int64(q.Offset))
	rows, err := s.pool.Query(ctx, query, a...)
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
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("search channels: %w", err)
	}
	return out, nil
}

// ---- subscriptions ----

type execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

func insertSub(ctx context.Context, db execer, sub trail.Subscription) error {
	_, err := db.Exec(ctx, `INSERT INTO subscriptions (address, id, type, link, authorized, rights, pubkey, keyload, sequence, psk_id) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)`,
		sub.ChannelAddress, sub.ID, sub.Type, sub.SubscriptionLink, sub.IsAuthorized, string(sub.AccessRights), sub.PublicKey, sub.KeyloadLink, sub.SequenceLink, sub.PskID)
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
	return insertSub(ctx, s.pool, sub)
}

const subCols = `address, id, type, link, authorized, rights, pubkey, keyload, sequence, psk_id`

func scanSub(sc pgx.Row) (trail.Subscription, error) {
	var (
		sub    trail.Subscription
		rights string
	)
	err := sc.Scan(&sub.ChannelAddress, &sub.ID, &sub.Type, &sub.SubscriptionLink, &sub.IsAuthorized, &rights, &sub.PublicKey, &sub.KeyloadLink, &sub.SequenceLink, &sub.PskID)
	sub.AccessRights = trail.AccessRights(rights)
	return sub, err
}

// GetSubscription implements trail.Store.
func (s *Store) GetSubscription(ctx context.Context, addr, did string) (trail.Subscription, error) {
	sub, err := scanSub(s.pool.QueryRow(ctx, `SELECT `+subCols+` FROM subscriptions WHERE address = $1 AND id = $2`, addr, did))
	if errors.Is(err, pgx.ErrNoRows) {
		return sub, fmt.Errorf("subscription of %s to %s: %w", did, addr, trail.ErrNotFound)
	}
	if err != nil {
		return sub, fmt.Errorf("get subscription of %s to %s: %w", did, addr, err)
	}
	return sub, nil
}

// ListSubscriptions implements trail.Store.
func (s *Store) ListSubscriptions(ctx context.Context, addr string, authorized *bool) ([]trail.Subscription, error) {
	a := args{addr}
	query := `SELECT ` + subCols + ` FROM subscriptions WHERE address = $1`
	if authorized != nil {
		query += " AND authorized = " + a.add(*authorized)
	}
	rows, err := s.pool.Query(ctx, query+" ORDER BY type, id", a...)
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
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list subscriptions of %s: %w", addr, err)
	}
	return out, nil
}

// UpdateSubscription implements trail.Store.
func (s *Store) UpdateSubscription(ctx context.Context, sub trail.Subscription) error {
	tag, err := s.pool.Exec(ctx, `UPDATE subscriptions SET link = $1, authorized = $2, rights = $3, keyload = $4, sequence = $5, psk_id = $6 WHERE address = $7 AND id = $8`,
		sub.SubscriptionLink, sub.IsAuthorized, string(sub.AccessRights), sub.KeyloadLink, sub.SequenceLink, sub.PskID, sub.ChannelAddress, sub.ID)
	if err != nil {
		return fmt.Errorf("update subscription of %s to %s: %w", sub.ID, sub.ChannelAddress, err)
	}
	return notFoundIfNone(tag, "update subscription of "+sub.ID+" to "+sub.ChannelAddress)
}

// DeleteSubscription implements trail.Store.
func (s *Store) DeleteSubscription(ctx context.Context, addr, did string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM subscriptions WHERE address = $1 AND id = $2`, addr, did)
	if err != nil {
		return fmt.Errorf("delete subscription of %s to %s: %w", did, addr, err)
	}
	return notFoundIfNone(tag, "delete subscription of "+did+" to "+addr)
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
	select {
	case <-r.done:
	case <-s.done:
		// The committer has exited: it finished every request it took
		// (closing their done first), so one still open was never taken.
		select {
		case <-r.done:
		default:
			return trail.Entry{}, fmt.Errorf("append to %s: store closed", req.ChannelAddress)
		}
	}
	return r.entry, r.err
}

func (s *Store) commitLoop() {
	defer close(s.done)
	trail.GroupCommit(s.appends, s.quit, maxBatch, s.commitBatch)
}

// commitTimeout bounds one append transaction (lock waits included).
const commitTimeout = time.Minute

// commitBatch appends every request of batch in one transaction. A request
// that fails its checks (ErrNotFound, ErrForbidden, ErrUnregistered,
// ErrConflict) gets its own error and does not affect the others; a failure
// of the transaction itself fails every request in it.
func (s *Store) commitBatch(batch []*appendReq) {
	defer func() {
		for _, r := range batch {
			close(r.done)
		}
	}()
	var live []*appendReq
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.err = err
			continue
		}
		live = append(live, r)
	}
	if len(live) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), commitTimeout)
	defer cancel()
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		now := time.Now().UTC()
		err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			for _, r := range live {
				r.err, r.entry = nil, trail.Entry{}
			}
			return appendBatch(ctx, tx, live, now)
		})
		// Retry only what PostgreSQL certainly rolled back: a deadlock
		// or serialization failure (not expected: locks are taken in
		// one order). Anything else, e.g. a connection lost during
		// COMMIT, may have committed and is reported.
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || (pe.Code != "40P01" && pe.Code != "40001") {
			break
		}
	}
	if err != nil {
		for _, r := range live {
			r.err, r.entry = fmt.Errorf("append to channel %s: %w", r.req.ChannelAddress, err), trail.Entry{}
		}
	}
}

// chanBatch is one channel's part of an append batch.
type chanBatch struct {
	addr     string
	reqs     []*appendReq
	writers  []string // distinct writers of reqs
	hashes   [][]byte // leaf hashes of reqs
	exists   bool     // the channel row was found (and is now locked)
	author   string
	next     int64               // next free index, read under the lock
	canWrite map[string]error    // writer -> nil or ErrForbidden (non-authors)
	stored   map[string]bool     // leaf hashes already in the channel
	accepted []*appendReq        // in index order from next
	cache    map[int64]tlog.Hash // stored hashes: read and new
	need     map[int64]bool      // stored-hash indexes to read (dry run)
}

// appendBatch runs the checks and inserts of one batch inside tx; it sets
// per-request errors on the requests and returns only transaction errors.
// It takes four round trips whatever the batch size: the pipelined checks
// (which lock the channel rows), the earlier tree hashes the new ones
// depend on, the pipelined inserts, and COMMIT (by the caller).
func appendBatch(ctx context.Context, tx pgx.Tx, batch []*appendReq, now time.Time) error {
	var need []string // writers whose registration must be checked
	byChan := map[string]*chanBatch{}
	for _, r := range batch {
		if r.req.RequireRegistered && !slices.Contains(need, r.req.Writer) {
			need = append(need, r.req.Writer)
		}
		cb := byChan[r.req.ChannelAddress]
		if cb == nil {
			cb = &chanBatch{addr: r.req.ChannelAddress, canWrite: map[string]error{}, stored: map[string]bool{}, cache: map[int64]tlog.Hash{}, need: map[int64]bool{}}
			byChan[cb.addr] = cb
		}
		cb.reqs = append(cb.reqs, r)
		if !slices.Contains(cb.writers, r.req.Writer) {
			cb.writers = append(cb.writers, r.req.Writer)
		}
		lh := trail.LeafHash(r.req.Leaf)
		cb.hashes = append(cb.hashes, lh[:])
	}
	chans := make([]*chanBatch, 0, len(byChan))
	for _, cb := range byChan {
		chans = append(chans, cb)
	}
	// Lock order: channel address, so batches of different replicas never
	// deadlock.
	slices.SortFunc(chans, func(a, b *chanBatch) int { return strings.Compare(a.addr, b.addr) })

	// Round trip 1, pipelined: registrations (FOR KEY SHARE: a concurrent
	// DeleteIdentity waits for this transaction), then per channel the row
	// lock and — in separate statements, whose snapshots include all that
	// the previous lock holder committed — the next index, the writers'
	// rights (FOR SHARE: a concurrent revoke waits) and the leaves already
	// stored.
	b := &pgx.Batch{}
	if len(need) > 0 {
		b.Queue(`SELECT id FROM identities WHERE id = ANY($1) FOR KEY SHARE`, need)
	}
	for _, cb := range chans {
		b.Queue(`SELECT author FROM channels WHERE address = $1 FOR UPDATE`, cb.addr)
		b.Queue(`SELECT COALESCE(MAX(idx) + 1, 0) FROM entries WHERE address = $1`, cb.addr)
		b.Queue(`SELECT id, authorized, rights FROM subscriptions WHERE address = $1 AND id = ANY($2) FOR SHARE`, cb.addr, cb.writers)
		b.Queue(`SELECT leaf_hash FROM entries WHERE address = $1 AND leaf_hash = ANY($2)`, cb.addr, cb.hashes)
	}
	registered, err := readChecks(tx.SendBatch(ctx, b), need, chans)
	if err != nil {
		return err
	}

	// Decide each request; assign indexes; find the earlier tree hashes
	// the new ones need (a dry run of tlog's algorithm with zero hashes:
	// which hashes it reads depends only on the indexes).
	for _, cb := range chans {
		for i, r := range cb.reqs {
			switch {
			case r.req.RequireRegistered && !registered[r.req.Writer]:
				r.err = fmt.Errorf("append to channel %s by %s: %w", cb.addr, r.req.Writer, trail.ErrUnregistered)
			case !cb.exists:
				r.err = fmt.Errorf("append to channel %s: %w", cb.addr, trail.ErrNotFound)
			case r.req.Writer != cb.author && cb.canWrite[r.req.Writer] != nil:
				r.err = cb.canWrite[r.req.Writer]
			case cb.stored[string(cb.hashes[i])]:
				r.err = fmt.Errorf("append to channel %s: entry %x: %w", cb.addr, cb.hashes[i][:12], trail.ErrConflict)
			default:
				cb.stored[string(cb.hashes[i])] = true
				r.entry.LeafHash = [32]byte(cb.hashes[i])
				cb.accepted = append(cb.accepted, r)
			}
		}
		dry := &hashReader{cb: cb, dryRun: true}
		for k := range cb.accepted {
			n := cb.next + int64(k)
			hs, err := tlog.StoredHashesForRecordHash(n, tlog.Hash{}, dry)
			if err != nil {
				return fmt.Errorf("tree hashes of entry %d of channel %s: %w", n, cb.addr, err)
			}
			for j := range hs {
				cb.cache[tlog.StoredHashIndex(0, n)+int64(j)] = tlog.Hash{}
			}
		}
		clear(cb.cache)
	}

	// Round trip 2: those earlier hashes, all channels in one statement.
	var needAddr []string
	var needIdx []int64
	for _, cb := range chans {
		for i := range cb.need {
			needAddr, needIdx = append(needAddr, cb.addr), append(needIdx, i)
		}
	}
	if len(needIdx) > 0 {
		rows, err := tx.Query(ctx, `SELECT h.address, h.idx, h.hash FROM log_hashes h JOIN unnest($1::text[], $2::bigint[]) AS n(address, idx) ON h.address = n.address AND h.idx = n.idx`, needAddr, needIdx)
		if err != nil {
			return fmt.Errorf("read log hashes: %w", err)
		}
		for rows.Next() {
			var (
				a  string
				i  int64
				hb []byte
			)
			if err := rows.Scan(&a, &i, &hb); err != nil {
				rows.Close()
				return fmt.Errorf("read log hashes: %w", err)
			}
			if len(hb) != tlog.HashSize {
				rows.Close()
				return fmt.Errorf("log hash %d of %s: stored hash has %d bytes, want %d", i, a, len(hb), tlog.HashSize)
			}
			byChan[a].cache[i] = tlog.Hash(hb)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("read log hashes: %w", err)
		}
	}

	// The new hashes and rows.
	var (
		eAddr, eMsg, eWriter []string
		eIdx, eCreated       []int64
		eLeaf, eHash         [][]byte
		hAddr                []string
		hIdx                 []int64
		hHash                [][]byte
		appended             []string
	)
	for _, cb := range chans {
		hr := &hashReader{ctx: ctx, tx: tx, cb: cb}
		for k, r := range cb.accepted {
			n := cb.next + int64(k)
			lh := r.entry.LeafHash
			hs, err := tlog.StoredHashesForRecordHash(n, tlog.Hash(lh), hr)
			if err != nil {
				return fmt.Errorf("tree hashes of entry %d of channel %s: %w", n, cb.addr, err)
			}
			base := tlog.StoredHashIndex(0, n)
			for j, h := range hs {
				cb.cache[base+int64(j)] = h
				hAddr, hIdx, hHash = append(hAddr, cb.addr), append(hIdx, base+int64(j)), append(hHash, h[:])
			}
			eAddr, eIdx, eLeaf, eHash = append(eAddr, cb.addr), append(eIdx, n), append(eLeaf, r.req.Leaf), append(eHash, lh[:])
			eMsg, eWriter, eCreated = append(eMsg, trail.MessageID(lh)), append(eWriter, r.req.Writer), append(eCreated, ns(r.req.Created))
			r.entry = trail.Entry{ChannelAddress: cb.addr, Index: n, Leaf: r.req.Leaf, LeafHash: lh, Writer: r.req.Writer, Created: r.req.Created, Received: now}
		}
		if len(cb.accepted) > 0 {
			appended = append(appended, cb.addr)
		}
	}
	if len(eIdx) == 0 {
		return nil
	}

	// Round trip 3, pipelined: entries, hashes, latest-message times.
	b = &pgx.Batch{}
	b.Queue(`INSERT INTO entries (address, idx, leaf, leaf_hash, msg_id, writer, created, received)
		SELECT a, i, l, h, m, w, c, $8 FROM unnest($1::text[], $2::bigint[], $3::bytea[], $4::bytea[], $5::text[], $6::text[], $7::bigint[]) AS t(a, i, l, h, m, w, c)`,
		eAddr, eIdx, eLeaf, eHash, eMsg, eWriter, eCreated, ns(now))
	b.Queue(`INSERT INTO log_hashes (address, idx, hash) SELECT * FROM unnest($1::text[], $2::bigint[], $3::bytea[])`, hAddr, hIdx, hHash)
	b.Queue(`UPDATE channels SET latest = $1 WHERE address = ANY($2)`, ns(now), appended)
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("insert entries: %w", err)
	}
	return nil
}

// readChecks reads the results of the first round trip of appendBatch
// into chans and returns which of the writers in need are registered.
func readChecks(br pgx.BatchResults, need []string, chans []*chanBatch) (registered map[string]bool, err error) {
	defer func() {
		if cerr := br.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("append checks: %w", cerr)
		}
	}()
	registered = map[string]bool{}
	if len(need) > 0 {
		rows, err := br.Query()
		if err != nil {
			return nil, fmt.Errorf("check identities: %w", err)
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return nil, fmt.Errorf("check identities: %w", err)
		}
		for _, id := range ids {
			registered[id] = true
		}
	}
	for _, cb := range chans {
		err := br.QueryRow().Scan(&cb.author)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
		case err != nil:
			return nil, fmt.Errorf("lock channel %s: %w", cb.addr, err)
		default:
			cb.exists = true
		}
		if err := br.QueryRow().Scan(&cb.next); err != nil {
			return nil, fmt.Errorf("next index of channel %s: %w", cb.addr, err)
		}
		rows, err := br.Query()
		if err != nil {
			return nil, fmt.Errorf("rights on channel %s: %w", cb.addr, err)
		}
		found := map[string]bool{}
		for rows.Next() {
			var (
				id, rights string
				auth       bool
			)
			if err := rows.Scan(&id, &auth, &rights); err != nil {
				rows.Close()
				return nil, fmt.Errorf("rights on channel %s: %w", cb.addr, err)
			}
			found[id] = true
			if !auth || !trail.AccessRights(rights).CanWrite() {
				cb.canWrite[id] = fmt.Errorf("append to channel %s by %s (rights %s, authorized %v): %w", cb.addr, id, rights, auth, trail.ErrForbidden)
			} else {
				cb.canWrite[id] = nil
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("rights on channel %s: %w", cb.addr, err)
		}
		for _, id := range cb.writers {
			if !found[id] {
				cb.canWrite[id] = fmt.Errorf("append to channel %s by %s: no subscription: %w", cb.addr, id, trail.ErrForbidden)
			}
		}
		rows, err = br.Query()
		if err != nil {
			return nil, fmt.Errorf("duplicate check on channel %s: %w", cb.addr, err)
		}
		dups, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
		if err != nil {
			return nil, fmt.Errorf("duplicate check on channel %s: %w", cb.addr, err)
		}
		for _, d := range dups {
			cb.stored[string(d)] = true
		}
	}
	return registered, nil
}

// hashReader is the tlog.HashReader of one channel inside an append
// transaction: hashes of this batch and those read in advance from the
// cache, anything else from the database. In a dry run it reads nothing:
// it records the indexes it would read and returns zero hashes.
type hashReader struct {
	ctx    context.Context
	tx     pgx.Tx
	cb     *chanBatch
	dryRun bool
}

func (h *hashReader) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	var miss []int64
	for _, i := range indexes {
		if _, ok := h.cb.cache[i]; !ok {
			miss = append(miss, i)
		}
	}
	if h.dryRun {
		for _, i := range miss {
			h.cb.need[i] = true
		}
		return make([]tlog.Hash, len(indexes)), nil
	}
	if len(miss) > 0 {
		// Not expected after the read-ahead; correct anyway.
		got, err := readHashes(h.ctx, h.tx, h.cb.addr, miss)
		if err != nil {
			return nil, err
		}
		for k, i := range miss {
			h.cb.cache[i] = got[k]
		}
	}
	out := make([]tlog.Hash, len(indexes))
	for k, i := range indexes {
		out[k] = h.cb.cache[i]
	}
	return out, nil
}

type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func readHashes(ctx context.Context, db querier, addr string, indexes []int64) ([]tlog.Hash, error) {
	rows, err := db.Query(ctx, `SELECT idx, hash FROM log_hashes WHERE address = $1 AND idx = ANY($2)`, addr, indexes)
	if err != nil {
		return nil, fmt.Errorf("read log hashes of %s: %w", addr, err)
	}
	defer rows.Close()
	got := make(map[int64]tlog.Hash, len(indexes))
	for rows.Next() {
		var (
			i int64
			b []byte
		)
		if err := rows.Scan(&i, &b); err != nil {
			return nil, fmt.Errorf("read log hashes of %s: %w", addr, err)
		}
		if len(b) != tlog.HashSize {
			return nil, fmt.Errorf("log hash %d of %s: stored hash has %d bytes, want %d", i, addr, len(b), tlog.HashSize)
		}
		got[i] = tlog.Hash(b)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read log hashes of %s: %w", addr, err)
	}
	out := make([]tlog.Hash, len(indexes))
	for k, i := range indexes {
		h, ok := got[i]
		if !ok {
			return nil, fmt.Errorf("log hash %d of %s: %w", i, addr, trail.ErrNotFound)
		}
		out[k] = h
	}
	return out, nil
}

// ReadHashes implements trail.Store.
func (s *Store) ReadHashes(ctx context.Context, addr string, indexes []int64) ([]tlog.Hash, error) {
	if len(indexes) == 0 {
		return []tlog.Hash{}, nil
	}
	return readHashes(ctx, s.pool, addr, indexes)
}

// LatestCheckpoint implements trail.Store.
func (s *Store) LatestCheckpoint(ctx context.Context, addr string) (int64, []byte, error) {
	var (
		size int64
		note []byte
	)
	err := s.pool.QueryRow(ctx, `SELECT size, note FROM checkpoints WHERE address = $1`, addr).Scan(&size, &note)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil, fmt.Errorf("checkpoint of %s: %w", addr, trail.ErrNotFound)
	}
	if err != nil {
		return 0, nil, fmt.Errorf("checkpoint of %s: %w", addr, err)
	}
	return size, note, nil
}

// PutCheckpoint implements trail.Store.
func (s *Store) PutCheckpoint(ctx context.Context, addr string, prev, size int64, note []byte) error {
	var (
		tag pgconn.CommandTag
		err error
	)
	if prev < 0 {
		tag, err = s.pool.Exec(ctx, `INSERT INTO checkpoints (address, size, note) VALUES ($1, $2, $3) ON CONFLICT (address) DO NOTHING`, addr, size, note)
	} else {
		tag, err = s.pool.Exec(ctx, `UPDATE checkpoints SET size = $3, note = $4 WHERE address = $1 AND size = $2`, addr, prev, size, note)
	}
	if err != nil {
		return fmt.Errorf("put checkpoint of %s at size %d: %w", addr, size, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("put checkpoint of %s at size %d: latest stored checkpoint is no longer of size %d: %w", addr, size, prev, trail.ErrConflict)
	}
	return nil
}

const entryCols = `address, idx, leaf, leaf_hash, writer, created, received`

func scanEntry(sc pgx.Row) (trail.Entry, error) {
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
	a := args{addr}
	query := `SELECT ` + entryCols + ` FROM entries WHERE address = $1`
	asc := q.Asc
	if q.Since >= 0 {
		query, asc = query+" AND idx >= "+a.add(q.Since), true
	}
	if !q.Start.IsZero() {
		query += " AND created >= " + a.add(ns(q.Start))
	}
	if !q.End.IsZero() {
		query += " AND created <= " + a.add(ns(q.End))
	}
	if asc {
		query += " ORDER BY idx ASC"
	} else {
		query += " ORDER BY idx DESC"
	}
	if q.Limit > 0 {
		query += " LIMIT " + a.add(int64(q.Limit))
	}
	query += " OFFSET " + a.add(int64(q.Offset))
	rows, err := s.pool.Query(ctx, query, a...)
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
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("entries of %s: %w", addr, err)
	}
	return out, nil
}

// EntryByMessageID implements trail.Store.
func (s *Store) EntryByMessageID(ctx context.Context, addr, msgID string) (trail.Entry, error) {
	lo, err := hex.DecodeString(msgID)
	if err != nil || len(msgID) != 24 {
		return trail.Entry{}, fmt.Errorf("entry %q of %s: %w", msgID, addr, trail.ErrNotFound)
	}
	// The message id is the first 12 bytes of the leaf hash: a range scan
	// of the (address, leaf_hash) index finds it.
	hi := append(append([]byte{}, lo...), bytes.Repeat([]byte{0xff}, 20)...)
	e, err := scanEntry(s.pool.QueryRow(ctx, `SELECT `+entryCols+` FROM entries WHERE address = $1 AND leaf_hash BETWEEN $2 AND $3 ORDER BY idx LIMIT 1`, addr, lo, hi))
	if errors.Is(err, pgx.ErrNoRows) {
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
	if err := s.pool.QueryRow(ctx, `SELECT COALESCE(MAX(idx) + 1, 0) FROM entries WHERE address = $1`, addr).Scan(&n); err != nil {
		return 0, fmt.Errorf("size of %s: %w", addr, err)
	}
	return n, nil
}

// ---- verification ----

// AddTrustedRoot implements trail.Store.
func (s *Store) AddTrustedRoot(ctx context.Context, did string) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO trusted_roots (id) VALUES ($1)`, did)
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
	rows, err := s.pool.Query(ctx, `SELECT id FROM trusted_roots ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("trusted roots: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("trusted roots: %w", err)
	}
	if out == nil {
		out = []string{}
	}
	return out, nil
}

// RemoveTrustedRoot implements trail.Store.
func (s *Store) RemoveTrustedRoot(ctx context.Context, did string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM trusted_roots WHERE id = $1`, did)
	if err != nil {
		return fmt.Errorf("remove trusted root %s: %w", did, err)
	}
	return notFoundIfNone(tag, "trusted root "+did)
}

// PutCredential implements trail.Store.
func (s *Store) PutCredential(ctx context.Context, c trail.Credential) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO credentials (id, subject, issuer, vc, revoked, issued) VALUES ($1,$2,$3,$4,$5,$6)`,
		c.ID, c.Subject, c.Issuer, []byte(c.VC), c.Revoked, ns(c.Issued))
	if isUnique(err) {
		return fmt.Errorf("credential %s: %w", c.ID, trail.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("put credential %s: %w", c.ID, err)
	}
	return nil
}

const credCols = `id, subject, issuer, vc, revoked, issued`

func scanCred(sc pgx.Row) (trail.Credential, error) {
	var (
		c      trail.Credential
		vc     []byte
		issued int64
	)
	err := sc.Scan(&c.ID, &c.Subject, &c.Issuer, &vc, &c.Revoked, &issued)
	c.VC, c.Issued = json.RawMessage(vc), fromNS(issued)
	return c, err
}

// GetCredential implements trail.Store.
func (s *Store) GetCredential(ctx context.Context, id string) (trail.Credential, error) {
	c, err := scanCred(s.pool.QueryRow(ctx, `SELECT `+credCols+` FROM credentials WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return c, fmt.Errorf("credential %s: %w", id, trail.ErrNotFound)
	}
	if err != nil {
		return c, fmt.Errorf("get credential %s: %w", id, err)
	}
	return c, nil
}

// CredentialsOf implements trail.Store.
func (s *Store) CredentialsOf(ctx context.Context, subject string) ([]trail.Credential, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+credCols+` FROM credentials WHERE subject = $1 ORDER BY issued`, subject)
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
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("credentials of %s: %w", subject, err)
	}
	return out, nil
}

// RevokeCredential implements trail.Store.
func (s *Store) RevokeCredential(ctx context.Context, id string) error {
	tag, err := s.pool.Exec(ctx, `UPDATE credentials SET revoked = true WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("revoke credential %s: %w", id, err)
	}
	return notFoundIfNone(tag, "revoke credential "+id)
}
