// Package index writes and reads a lakeproof dataset index: one directory
// per dataset version holding the Parquet table of entries, the stored
// levels of the Merkle tree, and a summary. docs/FORMAT.md ("Index") is the
// normative layout.
//
//	<dir>/summary.json    format, source, root, counts, file digests
//	<dir>/index.parquet   one row per entry, in key order (leaf order)
//	<dir>/tree-LL.bin     perfect-subtree node hashes of level LL (LL = 0, 4, 8, …)
//	<dir>/errors.jsonl    objects that could not be hashed (only with skip-errors)
//
// Invariants:
//   - an index directory is only ever visible at its final path complete:
//     it is written in a temporary sibling directory, every file and the
//     directory are fsynced, and it is renamed into place without replacing
//     anything already there;
//   - a published index is never modified or overwritten;
//   - row i of index.parquet is leaf i of the tree whose root is in
//     summary.json, and keys are strictly increasing bytewise;
//   - readers treat every byte they read as untrusted: proofs are checked
//     against the root before they are returned.
package index

import (
	"errors"
	"time"

	"github.com/lakeproof/lakeproof"
)

// Format is the value of summary.json's "format" field for this layout.
const Format = "lakeproof/index/v1"

// File names inside an index directory.
const (
	SummaryFile = "summary.json"
	ParquetFile = "index.parquet"
	ErrorsFile  = "errors.jsonl"
)

// LevelStride is the distance between stored tree levels: levels 0, 4,
// 8, … are stored; a node of another level is recomputed from at most
// 2^(LevelStride-1) stored nodes below it.
const LevelStride = 4

// RowGroupRows is the number of rows per Parquet row group.
const RowGroupRows = 1 << 13

// Parquet key-value metadata keys.
const (
	MetaFormat  = "lakeproof.format"
	MetaSource  = "lakeproof.source"
	MetaRoot    = "lakeproof.root"
	MetaFiles   = "lakeproof.files"
	MetaBytes   = "lakeproof.bytes"
	MetaErrors  = "lakeproof.errors"
	MetaCreated = "lakeproof.created"
	MetaTool    = "lakeproof.tool"
)

// Entry is one row of the index: one file of the dataset.
type Entry struct {
	Key      string
	Size     int64
	ModTime  time.Time
	Digest   lakeproof.Hash
	Leaf     uint64 // leaf index in the dataset tree = row number
	ETag     string // provider ETag (S3), "" if none
	Checksum string // provider checksum "ALGO:base64", "" if none
}

// ObjectError is one object that could not be indexed, as recorded in
// errors.jsonl. A key that is not valid UTF-8 cannot be carried by JSON
// as it is, so KeyHex then holds its bytes in hex (Key holds a lossy,
// readable form).
type ObjectError struct {
	Key     string `json:"key"`
	KeyHex  string `json:"key_hex,omitempty"`
	Op      string `json:"op"`
	Message string `json:"error"`
}

// Summary is the content of summary.json.
type Summary struct {
	Format  string            `json:"format"`
	Source  string            `json:"source"`
	Root    lakeproof.Hash    `json:"root"`
	Files   uint64            `json:"files"`
	Bytes   uint64            `json:"bytes"`
	Errors  uint64            `json:"errors"`
	Created time.Time         `json:"created"`
	Tool    string            `json:"tool"`
	Digests map[string]string `json:"digests"` // file name -> BLAKE3 hex of its bytes
	// Previous, if set, names the index version this one was derived from
	// by incremental re-indexing (docs/FORMAT.md §8.1).
	Previous *Previous `json:"previous,omitempty"`
	// Shard, if set, marks a partial index holding one key range of a
	// sharded run (docs/FORMAT.md §8.2); lakeproof merge combines them.
	Shard *Shard `json:"shard,omitempty"`
}

// Sentinel errors.
var (
	// ErrExists means the output index already exists; it is never overwritten.
	ErrExists = errors.New("index already exists")
	// ErrKeyNotFound means a key is not in the dataset.
	ErrKeyNotFound = errors.New("key not in dataset")
	// ErrCorrupt means an index file is malformed or inconsistent with summary.json.
	ErrCorrupt = errors.New("index is corrupt")
)

func levelFile(level uint) string {
	return "tree-" + string([]byte{'0' + byte(level/10), '0' + byte(level%10)}) + ".bin"
}
