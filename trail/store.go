package trail

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"golang.org/x/mod/sumdb/tlog"
)

// Sentinel errors of the Store contract. Implementations wrap them (%w);
// the server maps them to HTTP statuses (404, 409, 403, 401).
var (
	ErrNotFound  = errors.New("not found")
	ErrConflict  = errors.New("already exists")
	ErrForbidden = errors.New("not allowed")
	// ErrUnregistered: an Append with RequireRegistered by a writer that is
	// not (or no longer) a registered identity.
	ErrUnregistered = errors.New("identity is not registered")
)

// Role of an identity.
type Role string

// Roles, as in IS.
const (
	RoleAdmin   Role = "Admin"
	RoleManager Role = "Manager"
	RoleUser    Role = "User"
)

// AccessRights of a subscription, as in IS.
type AccessRights string

// Access rights.
const (
	RightAudit        AccessRights = "Audit"
	RightRead         AccessRights = "Read"
	RightWrite        AccessRights = "Write"
	RightReadAndWrite AccessRights = "ReadAndWrite"
)

// CanRead reports whether r allows reading a channel's entries.
func (r AccessRights) CanRead() bool {
	return r == RightRead || r == RightReadAndWrite || r == RightAudit
}

// CanWrite reports whether r allows appending entries.
func (r AccessRights) CanWrite() bool { return r == RightWrite || r == RightReadAndWrite }

func (r AccessRights) valid() bool {
	return r == RightAudit || r == RightRead || r == RightWrite || r == RightReadAndWrite
}

// Identity is a registered did:key identity.
type Identity struct {
	ID         string          // did:key, the primary key
	Username   string          // unique
	Role       Role            //
	ClaimType  string          // claim.type (Person, Device, Organization, …)
	Claim      json.RawMessage // the whole claim object, or nil
	Hidden     bool            //
	Creator    string          // DID of the creating identity, or ""
	Registered time.Time       //
}

// IdentityQuery filters SearchIdentities. Empty fields do not filter;
// Username and Type match as case-insensitive substrings, Creator exactly.
type IdentityQuery struct {
	Type, Username, Creator string
	RegisteredSince         time.Time
	Limit, Offset           int
	Asc                     bool
}

// Topic of a channel.
type Topic struct {
	Type   string `json:"type"`
	Source string `json:"source"`
}

// Channel is the channel-info record.
type Channel struct {
	Address        string
	Name           string
	Description    string
	Type           string // public or private
	Hidden         bool
	VisibilityList []string // DIDs that may see a hidden channel
	AuthorID       string
	Topics         []Topic
	PresharedKey   string // secret; never returned by the API
	Created        time.Time
	LatestMessage  time.Time // receive time of the newest entry, zero if none
	Size           int64     // number of entries; not filled by the Store (use Store.Size)
}

// ChannelQuery filters SearchChannels with IS semantics: the identity
// filters (AuthorID, SubscriberID, RequestedID) are ORed, the text filters
// (Name, TopicType, TopicSource) are ORed, and both groups are ANDed when
// both are present. Text filters are case-insensitive substring matches
// (never patterns); identity filters are exact. Hidden channels are
// returned only to Admin viewers, their author and their visibility list.
type ChannelQuery struct {
	AuthorID, SubscriberID, RequestedID string
	Name, TopicType, TopicSource        string
	Created, LatestMessage              time.Time
	Hidden                              *bool
	Viewer                              string
	ViewerIsAdmin                       bool
	Limit, Offset                       int
	Asc                                 *bool // nil: unspecified order
}

// Subscription of one identity to one channel. The author holds a
// subscription of type Author with ReadAndWrite rights.
type Subscription struct {
	ChannelAddress   string       `json:"channelAddress"`
	ID               string       `json:"id"`
	Type             string       `json:"type"` // Author or Subscriber
	SubscriptionLink string       `json:"subscriptionLink,omitempty"`
	IsAuthorized     bool         `json:"isAuthorized"`
	AccessRights     AccessRights `json:"accessRights"`
	PublicKey        string       `json:"publicKey,omitempty"`
	KeyloadLink      string       `json:"keyloadLink,omitempty"`
	SequenceLink     string       `json:"sequenceLink,omitempty"`
	PskID            string       `json:"pskId,omitempty"`
}

// Entry is one stored channel entry.
type Entry struct {
	ChannelAddress string
	Index          int64    // 0, 1, 2, … without gaps
	Leaf           []byte   // canonical SignedEntry bytes, stored verbatim
	LeafHash       [32]byte // LeafHash(Leaf)
	Writer         string
	Created        time.Time // log.created
	Received       time.Time // commit time at the gateway
}

// EntryQuery selects entries of one channel. Since >= 0 selects entries
// with Index >= Since in ascending order (catch-up); otherwise Asc orders
// by index. Start/End filter on log.created (inclusive), zero = open.
type EntryQuery struct {
	Since         int64
	Asc           bool
	Start, End    time.Time
	Limit, Offset int
}

// AppendRequest is one entry to append.
type AppendRequest struct {
	ChannelAddress string
	Leaf           []byte
	Writer         string
	Created        time.Time
	// RequireRegistered makes Append also check, in the same transaction,
	// that Writer is a registered identity (else ErrUnregistered). The
	// gateway sets it instead of looking the writer up before the append.
	RequireRegistered bool
}

// Credential is an issued verifiable credential.
type Credential struct {
	ID      string          // the credential id (urn:uuid:…)
	Subject string          // DID
	Issuer  string          // DID
	VC      json.RawMessage // the signed credential, verbatim
	Revoked bool
	Issued  time.Time
}

// Store is the gateway's persistence. The embedded implementation is
// trail/sqlite; a PostgreSQL implementation must meet the same contract.
//
// Contract, for every implementation:
//   - Every method that changes state returns only after the change is
//     durable (committed and synced): the server answers 2xx right after.
//   - Methods are safe for concurrent use, also from several processes on
//     one database where the implementation supports that.
//   - Missing records give an error wrapping ErrNotFound; unique-key
//     violations (identity id or username, channel address or name,
//     subscription (channel, id), duplicate entry leaf in a channel,
//     credential id, trusted root) wrap ErrConflict.
//   - Append assigns each channel's entries the indexes 0, 1, 2, … with no
//     gap and no duplicate, in commit order, and stores Leaf byte for byte.
//     It checks, in the same transaction as the insert, that the channel
//     exists (else ErrNotFound) and that the writer is the author or holds
//     an authorized Write or ReadAndWrite subscription (else ErrForbidden),
//     so a revoke that committed first always wins.
//   - Entries and their indexes are never changed or deleted.
//   - TakeNonce consumes a nonce atomically: of two concurrent calls for
//     the same nonce at most one succeeds.
type Store interface {
	CreateIdentity(ctx context.Context, id Identity) error
	GetIdentity(ctx context.Context, did string) (Identity, error)
	UpdateIdentity(ctx context.Context, id Identity) error
	DeleteIdentity(ctx context.Context, did string) error
	SearchIdentities(ctx context.Context, q IdentityQuery) ([]Identity, error)

	// PutNonce records a login nonce for did that expires at expires; it
	// may drop expired and the oldest outstanding nonces of did beyond 8.
	PutNonce(ctx context.Context, did, nonce string, expires time.Time) error
	// Nonces lists did's unexpired nonces at now.
	Nonces(ctx context.Context, did string, now time.Time) ([]string, error)
	// TakeNonce deletes an unexpired nonce; ErrNotFound if it is gone.
	TakeNonce(ctx context.Context, did, nonce string, now time.Time) error

	// CreateChannel stores ch and its author's subscription atomically.
	CreateChannel(ctx context.Context, ch Channel, author Subscription) error
	GetChannel(ctx context.Context, addr string) (Channel, error)
	// UpdateChannel rewrites topics, hidden and visibility list only.
	UpdateChannel(ctx context.Context, ch Channel) error
	// DeleteChannel removes the channel-info record and its subscriptions;
	// entries stay (they are the audit trail) but can no longer be appended.
	DeleteChannel(ctx context.Context, addr string) error
	SearchChannels(ctx context.Context, q ChannelQuery) ([]Channel, error)

	CreateSubscription(ctx context.Context, s Subscription) error
	GetSubscription(ctx context.Context, addr, did string) (Subscription, error)
	// ListSubscriptions lists a channel's subscriptions, all when
	// authorized is nil.
	ListSubscriptions(ctx context.Context, addr string, authorized *bool) ([]Subscription, error)
	UpdateSubscription(ctx context.Context, s Subscription) error
	DeleteSubscription(ctx context.Context, addr, did string) error

	// Append appends entries, possibly batching concurrent calls into one
	// transaction (group commit), and returns each stored Entry or error in
	// order. See the contract above.
	Append(ctx context.Context, req AppendRequest) (Entry, error)
	Entries(ctx context.Context, addr string, q EntryQuery) ([]Entry, error)
	// EntryByMessageID finds an entry by the message part of its link.
	EntryByMessageID(ctx context.Context, addr, msgID string) (Entry, error)
	// Size is the number of entries of a channel (0 for unknown ones).
	Size(ctx context.Context, addr string) (int64, error)

	// Each channel is also an RFC 6962 (SHA-256) transparency log in the
	// golang.org/x/mod/sumdb/tlog stored-hash layout: Append, in the same
	// transaction as the insert of entry n, also stores
	// tlog.StoredHashesForRecordHash(n, LeafHash(leaf), r) at the
	// stored-hash indexes tlog.StoredHashIndex(0, n) onward, where r reads
	// the channel's earlier hashes, including those of earlier entries of
	// the same batch. So a committed entry always has its hashes, and the
	// hashes are as immutable as the entries.
	//
	// ReadHashes returns the channel's stored hashes at the given tlog
	// stored-hash indexes, in the order asked (it is a tlog.HashReader);
	// an error wrapping ErrNotFound if one of them is not stored.
	ReadHashes(ctx context.Context, addr string, indexes []int64) ([]tlog.Hash, error)
	// LatestCheckpoint returns the newest signed checkpoint of addr: its
	// tree size and the signed note bytes, verbatim. ErrNotFound if none.
	LatestCheckpoint(ctx context.Context, addr string) (size int64, note []byte, err error)
	// PutCheckpoint stores note as addr's latest signed checkpoint, of
	// tree size size, only if the latest stored one still has size prev
	// (prev = -1: none stored yet); otherwise it changes nothing and
	// returns an error wrapping ErrConflict. This compare-and-swap makes
	// the signed checkpoints of a channel one linear chain even with
	// several gateway replicas on one database. The caller (the server)
	// checks consistency with the previous checkpoint before signing.
	PutCheckpoint(ctx context.Context, addr string, prev, size int64, note []byte) error

	AddTrustedRoot(ctx context.Context, did string) error
	TrustedRoots(ctx context.Context) ([]string, error)
	RemoveTrustedRoot(ctx context.Context, did string) error
	PutCredential(ctx context.Context, c Credential) error
	GetCredential(ctx context.Context, id string) (Credential, error)
	CredentialsOf(ctx context.Context, subject string) ([]Credential, error)
	RevokeCredential(ctx context.Context, id string) error

	// Ping checks the store is usable (for /healthz).
	Ping(ctx context.Context) error
	Close() error
}
