package anchor_test

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"strings"
	"testing"

	"github.com/zeebo/blake3"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/lakeproof/lakeproof"
	"github.com/lakeproof/lakeproof/anchor"
	"github.com/lakeproof/lakeproof/trail"
)

// The fixed keys and names of the golden bundles. The keys are derived
// from fixed seeds, so every run produces the same bytes.
const (
	fxLogName  = "gateway.example"
	fxChannelA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa:aaaaaaaaaaaaaaaaaaaaaaaa"
	fxChannelB = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb:bbbbbbbbbbbbbbbbbbbbbbbb"
	fxCreated  = "2026-11-27T10:00:00Z"
)

func seed(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

// noteKey returns a fixed note signer and its verifier key.
func noteKey(t testing.TB, name string, b byte) (note.Signer, string) {
	skey, vkey, err := note.GenerateKey(bytes.NewReader(seed(b)), name)
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	return s, vkey
}

func writerKey(b byte) (ed25519.PrivateKey, string) {
	priv := ed25519.NewKeyFromSeed(seed(b))
	return priv, trail.DIDFromPublicKey(priv.Public().(ed25519.PublicKey))
}

// dataset is a small dataset of n files with their dataset tree.
type dataset struct {
	keys    []string
	content [][]byte
	leaves  []lakeproof.Hash
}

func newDataset(n int) *dataset {
	d := &dataset{}
	for i := range n {
		k := fmt.Sprintf("part-%02d.csv", i)
		c := []byte(strings.Repeat(fmt.Sprintf("row %d\n", i), i+1))
		d.keys, d.content = append(d.keys, k), append(d.content, c)
		d.leaves = append(d.leaves, lakeproof.LeafHash(k, uint64(len(c)), lakeproof.Hash(blake3.Sum256(c))))
	}
	return d
}

// mth and path are RFC 6962 §2.1 written out (with lakeproof's NodeHash).
func mth(l []lakeproof.Hash) lakeproof.Hash {
	if len(l) == 1 {
		return l[0]
	}
	k := 1
	for k*2 < len(l) {
		k *= 2
	}
	return lakeproof.NodeHash(mth(l[:k]), mth(l[k:]))
}

func path(m int, l []lakeproof.Hash) []lakeproof.Hash {
	if len(l) == 1 {
		return nil
	}
	k := 1
	for k*2 < len(l) {
		k *= 2
	}
	if m < k {
		return append(path(m, l[:k]), mth(l[k:]))
	}
	return append(path(m-k, l[k:]), mth(l[:k]))
}

func (d *dataset) bundle(m int) *lakeproof.Bundle {
	c := d.content[m]
	return &lakeproof.Bundle{Format: lakeproof.BundleFormat, Key: d.keys[m], Size: uint64(len(c)),
		Digest: lakeproof.Hash(blake3.Sum256(c)), LeafIndex: uint64(m), TreeSize: uint64(len(d.keys)),
		Inclusion: path(m, d.leaves), Root: mth(d.leaves)}
}

func (d *dataset) payload() anchor.Payload {
	var bytes uint64
	for _, c := range d.content {
		bytes += uint64(len(c))
	}
	return anchor.Payload{Dataset: "sales-2026-11", Source: "file:///data/sales", Root: mth(d.leaves),
		TreeSize: uint64(len(d.keys)), Files: uint64(len(d.keys)), Bytes: bytes,
		IndexDigest: lakeproof.Hash(blake3.Sum256([]byte("summary.json"))), Tool: "lakeproof v0.0.0-test"}
}

// entry returns the verbatim leaf of an entry signed by priv.
func entry(t testing.TB, priv ed25519.PrivateKey, channel, typ, nonce string, publicPayload []byte) []byte {
	did := trail.DIDFromPublicKey(priv.Public().(ed25519.PublicKey))
	e, err := trail.Sign(trail.Statement{V: trail.StatementVersion, ChannelAddress: channel, Writer: did, Nonce: nonce,
		Log: trail.Log{Type: typ, Created: fxCreated, PublicPayload: publicPayload}}, priv)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := e.Leaf()
	if err != nil {
		t.Fatal(err)
	}
	return leaf
}

// channelLog is an in-memory RFC 6962 SHA-256 log in the tlog layout,
// standing for a gateway's channel log in offline tests.
type channelLog struct {
	origin string
	hashes []tlog.Hash
	n      int64
}

func (l *channelLog) add(t testing.TB, leaf []byte) int64 {
	hs, err := tlog.StoredHashes(l.n, leaf, tlog.HashReaderFunc(l.read))
	if err != nil {
		t.Fatal(err)
	}
	l.hashes = append(l.hashes, hs...)
	l.n++
	return l.n - 1
}

func (l *channelLog) read(idx []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		out[i] = l.hashes[x]
	}
	return out, nil
}

// checkpoint signs the log's current tree with s.
func (l *channelLog) checkpoint(t testing.TB, s note.Signer) []byte {
	h, err := tlog.TreeHash(l.n, tlog.HashReaderFunc(l.read))
	if err != nil {
		t.Fatal(err)
	}
	msg, err := note.Sign(&note.Note{Text: fmt.Sprintf("%s\n%d\n%s\n", l.origin, l.n, tlog.Hash(h).String())}, s)
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

func (l *channelLog) prove(t testing.TB, i int64) []tlog.Hash {
	p, err := tlog.ProveRecord(l.n, i, tlog.HashReaderFunc(l.read))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// fixture is a two-level bundle for file 2 of a 5-file dataset, anchored
// as entry 1 of a 3-entry channel log, with the trust that accepts it.
type fixture struct {
	ds      *dataset
	bundle  *lakeproof.Bundle
	receipt anchor.Receipt
	trust   anchor.Trust
	signer  note.Signer
	writer  ed25519.PrivateKey
	log     *channelLog
}

func newFixture(t testing.TB) *fixture {
	ds := newDataset(5)
	s, vkey := noteKey(t, fxLogName, 2)
	priv, did := writerKey(1)
	other, _ := writerKey(3)
	l := &channelLog{origin: trail.Origin(fxLogName, fxChannelA)}
	l.add(t, entry(t, other, fxChannelA, "note", "00", []byte(`{"hello":"world"}`)))
	leaf := entry(t, priv, fxChannelA, anchor.Type, "01", ds.payload().Marshal())
	idx := l.add(t, leaf)
	l.add(t, entry(t, other, fxChannelA, "note", "02", []byte(`{"later":true}`)))
	r := anchor.Receipt{Channel: fxChannelA, Index: idx, Entry: leaf, Checkpoint: l.checkpoint(t, s), Proof: l.prove(t, idx),
		Gateway: "https://gateway.example"}
	b := ds.bundle(2)
	a := r.Anchored()
	b.Format, b.Anchor = lakeproof.BundleFormatAnchored, &a
	return &fixture{ds: ds, bundle: b, receipt: r, trust: anchor.Trust{Gateways: []string{vkey}, Writers: []string{did}},
		signer: s, writer: priv, log: l}
}
