// Package trail is lakeproof's audit-trail gateway (`lakeproof serve`): an
// HTTP API compatible with the IOTA Integration Services Audit Trail
// Gateway (identities, prove-ownership login, channels, subscriptions,
// credentials) plus server-sent-event notifications, and a Go client for
// it. docs/GATEWAY.md is the reference; openapi.json lists the routes.
//
// # Invariants
//
//   - Identities are did:key Ed25519 DIDs; the server never holds a user's
//     private key (POST /identities/create returns a generated key once).
//   - A channel is one append-only sequence of entries with indexes 0, 1,
//     2, … in commit order. Each entry is the RFC 8785 canonical JSON of a
//     SignedEntry, stored verbatim; its RFC 6962 leaf hash is
//     SHA-256(0x00 || entry bytes) (LeafHash), which issue 5's transparency
//     log is built on.
//   - Every entry is signed (Ed25519) over Statement.SigningInput either by
//     its writer or, for JWT-only clients, by the gateway key; the
//     statement always names the writer and the channel.
//   - No handler answers 2xx before the Store has made the change durable;
//     client mistakes are 4xx with a {"error": …} body, never 5xx.
//   - Rights (Store contract and access) are checked on every request and,
//     for appends, again inside the store transaction.
//   - Every channel is an RFC 6962 (SHA-256) transparency log over its
//     entry bytes in index order, served in the C2SP tlog-checkpoint and
//     tlog-tiles formats (log.go, docs/GATEWAY.md "Channel transparency
//     logs"). The Store writes each entry's tree hashes in the entry's
//     transaction. The gateway signs a checkpoint (a note, NoteKey) only
//     after checking that the stored tree extends the latest signed one,
//     and stores it by compare-and-swap: the signed checkpoints of a
//     channel are one consistent chain; it refuses (500) otherwise.
//     Readers check them with ParseCheckpoint, VerifyInclusion and
//     VerifyConsistency.
//
// Storage is behind the Store interface (store.go, contract documented
// there); trail/sqlite is the embedded implementation and trail/storetest
// the conformance test every implementation runs.
package trail
