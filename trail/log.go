package trail

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/maphash"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/lakeproof/lakeproof/internal/durable"
)

// Channel transparency logs: every channel is an RFC 6962 SHA-256 log in
// the tlog stored-hash layout (the Store keeps the hashes, written with the
// entries). This file serves it in the C2SP formats (tlog-checkpoint,
// tlog-tiles) plus JSON proof endpoints, and signs checkpoints.
//
// Invariant: the gateway signs a checkpoint of a channel only after
// checking that the stored tree extends the latest signed checkpoint
// (consistency proof from the stored hashes), and stores it with a
// compare-and-swap on the previous size, so the signed checkpoints of a
// channel form one linear, mutually consistent chain even with several
// replicas. If the stored log does not extend the signed one (the database
// was altered), it refuses to sign, logs the fact and answers 500.

// logHashes is the tlog.HashReader of one channel in the store.
func (s *Server) logHashes(ctx context.Context, addr string) tlog.HashReader {
	return tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		return s.cfg.Store.ReadHashes(ctx, addr, idx)
	})
}

// signLocks serializes checkpoint signing per channel within one process
// (replicas are serialized by PutCheckpoint's compare-and-swap).
type signLocks struct {
	seed maphash.Seed
	mu   [64]sync.Mutex
}

func (l *signLocks) lock(addr string) func() {
	m := &l.mu[maphash.String(l.seed, addr)%uint64(len(l.mu))]
	m.Lock()
	return m.Unlock
}

// signedMemo remembers, per channel, the newest checkpoint this process
// signed or served (its size and root). It is the gateway's own memory of
// what it has vouched for, independent of the store: a store that was
// rolled back, lost its checkpoint row or had its history rewritten cannot
// make it sign a checkpoint inconsistent with one it already published.
//
// With dir set (Config.SignedDir; `lakeproof serve` uses DATA/signed) the
// memory also survives restarts and power loss: one small file per
// channel, written crash-consistently (temp file, fsync, rename, fsync of
// the directory) before the checkpoint is returned, so a store rewritten
// while the gateway was down is refused after the restart too. Without
// dir the memory lasts as long as the process.
type signedMemo struct {
	dir string
	mu  sync.Mutex
	m   map[string]memoEntry
}

// memoEntry is a remembered checkpoint (about 70 bytes plus the key).
type memoEntry struct {
	size int64
	hash tlog.Hash
	note [sha256.Size]byte // SHA-256 of the signed note, for a cheap same-note test
}

// memoFile is where dir keeps addr's entry: the hex SHA-256 of the address
// (addresses are validated elsewhere, but a file name must not depend on it).
func (m *signedMemo) memoFile(addr string) string {
	h := sha256.Sum256([]byte(addr))
	return filepath.Join(m.dir, hex.EncodeToString(h[:]))
}

// get returns the remembered checkpoint of addr (its Origin is "": the
// caller's origin applies; Note is not kept) and its note's SHA-256. A
// memory file that cannot be read or parsed is an error: the gateway does
// not sign until an operator looks at it.
func (m *signedMemo) get(addr string) (Checkpoint, [sha256.Size]byte, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.m[addr]; ok {
		return Checkpoint{Size: e.size, Hash: e.hash}, e.note, true, nil
	}
	if m.dir == "" {
		return Checkpoint{}, [sha256.Size]byte{}, false, nil
	}
	f := m.memoFile(addr)
	b, err := os.ReadFile(f)
	if errors.Is(err, os.ErrNotExist) {
		return Checkpoint{}, [sha256.Size]byte{}, false, nil
	}
	if err != nil {
		return Checkpoint{}, [sha256.Size]byte{}, false, fmt.Errorf("read the signed-checkpoint memory of %s: %w", addr, err)
	}
	e, err := parseMemo(b)
	if err != nil {
		return Checkpoint{}, [sha256.Size]byte{}, false, fmt.Errorf("signed-checkpoint memory %s of channel %s is corrupt (%w): restore it from a backup or, if the channel's history is known good, remove it", f, addr, err)
	}
	if m.m == nil {
		m.m = make(map[string]memoEntry)
	}
	m.m[addr] = e
	return Checkpoint{Size: e.size, Hash: e.hash}, e.note, true, nil
}

// put records cp unless a larger checkpoint is already recorded. Calls
// for one address must not overlap (LogCheckpoint holds the channel's sign
// lock); calls for different channels run their file writes (two fsyncs)
// concurrently.
func (m *signedMemo) put(addr string, cp Checkpoint) error {
	m.mu.Lock()
	old, ok := m.m[addr]
	m.mu.Unlock()
	if ok && old.size >= cp.Size {
		return nil
	}
	e := memoEntry{size: cp.Size, hash: cp.Hash, note: sha256.Sum256(cp.Note)}
	if m.dir != "" {
		if err := m.write(addr, e); err != nil {
			return fmt.Errorf("remember the checkpoint of %s at size %d: %w", addr, cp.Size, err)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.m == nil {
		m.m = make(map[string]memoEntry)
	}
	m.m[addr] = e
	return nil
}

// write stores e as addr's memory file: "size hexroot hexnotehash\n",
// crash-consistently.
func (m *signedMemo) write(addr string, e memoEntry) error {
	if err := os.MkdirAll(m.dir, 0o700); err != nil {
		return err
	}
	line := fmt.Appendf(nil, "%d %s %s\n", e.size, hex.EncodeToString(e.hash[:]), hex.EncodeToString(e.note[:]))
	return durable.WriteFile(m.memoFile(addr), line, 0o600, true)
}

// parseMemo parses a memory file written by write.
func parseMemo(b []byte) (memoEntry, error) {
	var e memoEntry
	fields := strings.Fields(string(b))
	if len(fields) != 3 || !strings.HasSuffix(string(b), "\n") || strings.Count(string(b), "\n") != 1 {
		return e, errors.New("want one line: size, root and note hash")
	}
	size, err := strconv.ParseInt(fields[0], 10, 64)
	if err != nil || size < 0 {
		return e, fmt.Errorf("bad size %q", fields[0])
	}
	root, err1 := hex.DecodeString(fields[1])
	nh, err2 := hex.DecodeString(fields[2])
	if err1 != nil || err2 != nil || len(root) != len(e.hash) || len(nh) != len(e.note) {
		return e, errors.New("bad root or note hash")
	}
	e.size = size
	copy(e.hash[:], root)
	copy(e.note[:], nh)
	return e, nil
}

// checkMemo checks that cp (about to be signed or served) extends the
// newest checkpoint of addr this process signed or served, with a
// consistency proof from the stored hashes. A failure is a refusal.
func (s *Server) checkMemo(ctx context.Context, addr string, cp Checkpoint) error {
	known, _, ok, err := s.signed.get(addr)
	if err != nil {
		return s.refuse(addr, err)
	}
	if !ok {
		return nil
	}
	known.Origin = cp.Origin
	if cp.Size < known.Size {
		return s.refuse(addr, fmt.Errorf("%w: the store's log is at size %d but this gateway already signed or served a checkpoint of size %d (the store was rolled back)", ErrInconsistent, cp.Size, known.Size))
	}
	var proof tlog.TreeProof
	if known.Size > 0 && known.Size < cp.Size {
		p, err := tlog.ProveTree(cp.Size, known.Size, s.logHashes(ctx, addr))
		if errors.Is(err, ErrNotFound) {
			return s.refuse(addr, fmt.Errorf("%w: consistency proof %d→%d: %w", ErrInconsistent, known.Size, cp.Size, err))
		}
		if err != nil {
			return fmt.Errorf("checkpoint of %s: consistency proof %d→%d: %w", addr, known.Size, cp.Size, err)
		}
		proof = p
	}
	if err := VerifyConsistency(known, cp, proof); err != nil {
		return s.refuse(addr, fmt.Errorf("against the checkpoint of size %d this gateway signed or served earlier: %w", known.Size, err))
	}
	return nil
}

// errRefuseToSign marks a checkpoint the gateway will not sign because the
// stored log does not extend its latest signed checkpoint.
var errRefuseToSign = errors.New("refusing to sign")

// LogCheckpoint returns the latest signed checkpoint of channel addr,
// signing a new one first when the log has grown since (after checking it
// extends the previous one). Errors wrapping ErrInconsistent mean the
// stored log was altered: nothing was signed.
func (s *Server) LogCheckpoint(ctx context.Context, addr string) ([]byte, error) {
	k := s.cfg.NoteKey
	if k == nil {
		return nil, errf(http.StatusServiceUnavailable, "this gateway has no note key: checkpoints are not available")
	}
	origin := Origin(k.Name(), addr)
	defer s.signLocks.lock(addr)()
	for attempt := 0; ; attempt++ {
		// The checkpoint first, then the size: another replica may sign
		// meanwhile, but never for more entries than are committed, so
		// size < prevSize means entries were removed.
		prevSize, prevNote, err := s.cfg.Store.LatestCheckpoint(ctx, addr)
		switch {
		case errors.Is(err, ErrNotFound):
			prevSize = -1
		case err != nil:
			return nil, fmt.Errorf("checkpoint of %s: %w", addr, err)
		}
		size, err := s.cfg.Store.Size(ctx, addr)
		if err != nil {
			return nil, fmt.Errorf("checkpoint of %s: %w", addr, err)
		}
		if size == 0 && prevSize < 0 {
			if _, err := s.cfg.Store.GetChannel(ctx, addr); err != nil {
				return nil, fmt.Errorf("checkpoint of %s: %w", addr, err)
			}
		}
		known, knownNote, haveKnown, err := s.signed.get(addr)
		if err != nil {
			return nil, s.refuse(addr, err)
		}
		if haveKnown && prevSize < known.Size {
			return nil, s.refuse(addr, fmt.Errorf("%w: the store's latest checkpoint has size %d (-1: none) but this gateway already signed or served one of size %d (the checkpoint row was deleted or rolled back)", ErrInconsistent, prevSize, known.Size))
		}
		if prevSize == size {
			if !haveKnown || known.Size < prevSize {
				// Signed by another replica (or before a restart): check
				// it against what this process vouched for, then
				// remember it.
				prev, err := ParseCheckpoint(prevNote, origin, k.Verifier)
				if err != nil {
					return nil, s.refuse(addr, fmt.Errorf("latest stored checkpoint: %w", err))
				}
				if err := s.checkMemo(ctx, addr, prev); err != nil {
					return nil, err
				}
				if err := s.signed.put(addr, prev); err != nil {
					return nil, err
				}
			} else if known.Size == prevSize && sha256.Sum256(prevNote) != knownNote {
				// Same size: the stored note must be the one remembered
				// (Ed25519 note signatures are deterministic, so the root
				// is compared only when the bytes differ).
				if prev, err := ParseCheckpoint(prevNote, origin, k.Verifier); err != nil {
					return nil, s.refuse(addr, fmt.Errorf("latest stored checkpoint: %w", err))
				} else if prev.Hash != known.Hash {
					return nil, s.refuse(addr, fmt.Errorf("%w: the stored checkpoint of size %d has another root than the one this gateway signed or served", ErrInconsistent, prevSize))
				}
			}
			return prevNote, nil
		}
		if prevSize > size {
			return nil, s.refuse(addr, fmt.Errorf("%w: the log has %d entries but a checkpoint of size %d was signed", ErrInconsistent, size, prevSize))
		}
		r := s.logHashes(ctx, addr)
		root, err := tlog.TreeHash(size, r)
		if errors.Is(err, ErrNotFound) {
			return nil, s.refuse(addr, fmt.Errorf("%w: tree hash at size %d: %w", ErrInconsistent, size, err))
		}
		if err != nil {
			return nil, fmt.Errorf("checkpoint of %s: tree hash at size %d: %w", addr, size, err)
		}
		cur := Checkpoint{Origin: origin, Size: size, Hash: root}
		var prevHash tlog.Hash
		if prevSize >= 0 {
			prev, err := ParseCheckpoint(prevNote, origin, k.Verifier)
			if err != nil {
				return nil, s.refuse(addr, fmt.Errorf("latest stored checkpoint: %w", err))
			}
			prevHash = prev.Hash
			if prev.Size != prevSize {
				return nil, s.refuse(addr, fmt.Errorf("%w: stored checkpoint row says size %d, its note %d", ErrInconsistent, prevSize, prev.Size))
			}
			var proof tlog.TreeProof
			if prevSize > 0 {
				proof, err = tlog.ProveTree(size, prevSize, r)
				if errors.Is(err, ErrNotFound) {
					return nil, s.refuse(addr, fmt.Errorf("%w: consistency proof %d→%d: %w", ErrInconsistent, prevSize, size, err))
				}
				if err != nil {
					return nil, fmt.Errorf("checkpoint of %s: consistency proof %d→%d: %w", addr, prevSize, size, err)
				}
			}
			if err := VerifyConsistency(prev, cur, proof); err != nil {
				return nil, s.refuse(addr, err)
			}
		}
		// cur extends prev (checked above); if prev is the remembered
		// checkpoint, it extends that too.
		if !haveKnown || known.Size != prevSize || known.Hash != prevHash {
			if err := s.checkMemo(ctx, addr, cur); err != nil {
				return nil, err
			}
		}
		signed, err := note.Sign(&note.Note{Text: string(checkpointBody(origin, size, root))}, k.Signer)
		if err != nil {
			return nil, fmt.Errorf("sign checkpoint of %s at size %d: %w", addr, size, err)
		}
		err = s.cfg.Store.PutCheckpoint(ctx, addr, prevSize, size, signed)
		if errors.Is(err, ErrConflict) && attempt < 16 {
			// Another replica signed meanwhile. Its checkpoint will do if
			// it covers as much as ours (it checked consistency too, and
			// the next signing checks against it); else start over.
			if n, other, err := s.cfg.Store.LatestCheckpoint(ctx, addr); err == nil && n >= size {
				ocp, err := ParseCheckpoint(other, origin, k.Verifier)
				if err != nil {
					return nil, s.refuse(addr, fmt.Errorf("latest stored checkpoint: %w", err))
				}
				if err := s.checkMemo(ctx, addr, ocp); err != nil {
					return nil, err
				}
				if err := s.signed.put(addr, ocp); err != nil {
					return nil, err
				}
				return other, nil
			}
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("store checkpoint of %s at size %d: %w", addr, size, err)
		}
		cur.Note = signed
		if err := s.signed.put(addr, cur); err != nil {
			return nil, err
		}
		s.metrics.checkpointsSigned.Add(1)
		return signed, nil
	}
}

func (s *Server) refuse(addr string, err error) error {
	s.metrics.checkpointsRefused.Add(1)
	s.cfg.Logger.Error("channel log does not extend its signed checkpoint: refusing to sign; the store was altered "+
		"(find what changed with 'lakeproof channel verify ADDR'; do not restart to clear it: docs/OPERATOR.md, Refusals)", "channel", addr, "err", err)
	return &refusal{addr: addr, err: err}
}

// refusal is a checkpoint the gateway refused to sign (500 to clients).
type refusal struct {
	addr string
	err  error
}

func (r *refusal) Error() string {
	return fmt.Sprintf("%v a checkpoint of channel %s: %v", errRefuseToSign, r.addr, r.err)
}
func (r *refusal) Unwrap() []error { return []error{errRefuseToSign, r.err} }

// ---- handlers ----

func (s *Server) getCheckpoint(w http.ResponseWriter, r *http.Request, c *caller) error {
	addr, err := pathAddr(r)
	if err != nil {
		return err
	}
	b, err := s.LogCheckpoint(r.Context(), addr)
	var ref *refusal
	if errors.As(err, &ref) {
		return errf(http.StatusInternalServerError, "%v", ref)
	}
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(b)
	return nil
}

// logSize is the channel's number of entries; 404 for a channel that
// has neither entries nor a channel record.
func (s *Server) logSize(ctx context.Context, addr string) (int64, error) {
	size, err := s.cfg.Store.Size(ctx, addr)
	if err != nil {
		return 0, err
	}
	if size == 0 {
		if _, err := s.cfg.Store.GetChannel(ctx, addr); err != nil {
			return 0, err
		}
	}
	return size, nil
}

// parseIndex parses a non-negative decimal integer query or path value
// (digits only, no sign, no leading zeros).
func parseIndex(name, v string) (int64, error) {
	if v == "" {
		return 0, errf(http.StatusBadRequest, "%s is required (a non-negative integer)", name)
	}
	if len(v) > 19 || (len(v) > 1 && v[0] == '0') {
		return 0, errf(http.StatusBadRequest, "%s %q: want a non-negative integer without leading zeros", name, v)
	}
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return 0, errf(http.StatusBadRequest, "%s %q: want a non-negative integer", name, v)
		}
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, errf(http.StatusBadRequest, "%s %q: %v", name, v, err)
	}
	return n, nil
}

func (s *Server) getTile(w http.ResponseWriter, r *http.Request, c *caller) error {
	addr, err := pathAddr(r)
	if err != nil {
		return err
	}
	t, err := ParseC2SPTilePath("tile/" + r.PathValue("L") + "/" + r.PathValue("N"))
	if err != nil {
		return errf(http.StatusBadRequest, "%v", err)
	}
	if t.L < 0 {
		return errf(http.StatusBadRequest, "entry bundles are tile/entries/<N>")
	}
	size, err := s.logSize(r.Context(), addr)
	if err != nil {
		return err
	}
	if !tileAvailable(t, size) {
		return errf(http.StatusNotFound, "tile %s of channel %s: the log has only %d entries", "tile/"+r.PathValue("L")+"/"+r.PathValue("N"), addr, size)
	}
	data, err := tlog.ReadTileData(t, s.logHashes(r.Context(), addr))
	if err != nil {
		return fmt.Errorf("tile %+v of %s: %w", t, addr, err)
	}
	writeTile(w, t, data)
	return nil
}

// tileAvailable reports whether the first size entries cover tile t.
func tileAvailable(t tlog.Tile, size int64) bool {
	shift := uint(t.H * max(t.L, 0))
	if shift >= 63 {
		return false
	}
	have := size >> shift // complete subtrees of height 8·L
	if t.N > have>>uint(t.H) {
		return false
	}
	need := t.N<<uint(t.H) + int64(t.W)
	return need <= have
}

func writeTile(w http.ResponseWriter, t tlog.Tile, data []byte) {
	w.Header().Set("Content-Type", "application/octet-stream")
	if t.W == 1<<uint(t.H) {
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		w.Header().Set("Cache-Control", "no-cache")
	}
	_, _ = w.Write(data)
}

// readableEntries checks the caller's read rights on addr as GET
// /channels/history does (read rights, or the preshared key).
func (s *Server) readableEntries(r *http.Request, c *caller) (string, error) {
	addr, a, err := s.pathChannel(r, c)
	if err != nil {
		return "", err
	}
	psk := r.URL.Query().Get("preshared-key")
	ok := a.read || (psk != "" && a.ch.PresharedKey != "" && subtle.ConstantTimeCompare([]byte(psk), []byte(a.ch.PresharedKey)) == 1)
	switch {
	case !ok && c == nil && psk == "":
		return "", errf(http.StatusUnauthorized, "not authenticated: entries of channel %s need read rights", addr)
	case !ok:
		return "", errf(http.StatusForbidden, "not allowed to read entries of channel %s", addr)
	}
	return addr, nil
}

func (s *Server) getEntryBundle(w http.ResponseWriter, r *http.Request, c *caller) error {
	if _, err := pathAddr(r); err != nil {
		return err
	}
	t, err := ParseC2SPTilePath("tile/entries/" + r.PathValue("N"))
	if err != nil {
		return errf(http.StatusBadRequest, "%v", err)
	}
	addr, err := s.readableEntries(r, c)
	if err != nil {
		return err
	}
	size, err := s.logSize(r.Context(), addr)
	if err != nil {
		return err
	}
	if !tileAvailable(t, size) {
		return errf(http.StatusNotFound, "entry bundle %d of channel %s: the log has only %d entries", t.N, addr, size)
	}
	start := t.N << uint(t.H)
	es, err := s.cfg.Store.Entries(r.Context(), addr, EntryQuery{Since: start, Asc: true, Limit: t.W})
	if err != nil {
		return err
	}
	var out []byte
	for i, e := range es {
		if e.Index != start+int64(i) {
			return fmt.Errorf("entry bundle %d of %s: entry %d is missing from the store", t.N, addr, start+int64(i))
		}
		if len(e.Leaf) > MaxLogEntry {
			return fmt.Errorf("entry bundle %d of %s: entry %d has %d bytes, more than a bundle can hold", t.N, addr, e.Index, len(e.Leaf))
		}
		out = binary.BigEndian.AppendUint16(out, uint16(len(e.Leaf)))
		out = append(out, e.Leaf...)
	}
	if len(es) != t.W {
		return fmt.Errorf("entry bundle %d of %s: %d of %d entries in the store", t.N, addr, len(es), t.W)
	}
	writeTile(w, t, out)
	return nil
}

func (s *Server) getEntry(w http.ResponseWriter, r *http.Request, c *caller) error {
	if _, err := pathAddr(r); err != nil {
		return err
	}
	idx, err := parseIndex("index", r.PathValue("index"))
	if err != nil {
		return err
	}
	addr, err := s.readableEntries(r, c)
	if err != nil {
		return err
	}
	es, err := s.cfg.Store.Entries(r.Context(), addr, EntryQuery{Since: idx, Asc: true, Limit: 1})
	if err != nil {
		return err
	}
	if len(es) == 0 || es[0].Index != idx {
		return errf(http.StatusNotFound, "entry %d of channel %s: not found", idx, addr)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(es[0].Leaf)
	return nil
}

func (s *Server) getInclusionProof(w http.ResponseWriter, r *http.Request, c *caller) error {
	addr, err := pathAddr(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	idx, err := parseIndex("index", q.Get("index"))
	if err != nil {
		return err
	}
	n, err := parseIndex("size", q.Get("size"))
	if err != nil {
		return err
	}
	size, err := s.logSize(r.Context(), addr)
	if err != nil {
		return err
	}
	if n > size {
		return errf(http.StatusNotFound, "channel %s has %d entries, not %d", addr, size, n)
	}
	if idx >= n {
		return errf(http.StatusBadRequest, "index %d is not in a tree of size %d", idx, n)
	}
	rd := s.logHashes(r.Context(), addr)
	lh, err := rd.ReadHashes([]int64{tlog.StoredHashIndex(0, idx)})
	if err != nil {
		return fmt.Errorf("inclusion proof of %s entry %d: %w", addr, idx, err)
	}
	p, err := tlog.ProveRecord(n, idx, rd)
	if err != nil {
		return fmt.Errorf("inclusion proof of %s entry %d at size %d: %w", addr, idx, n, err)
	}
	writeJSON(w, http.StatusOK, InclusionProof{Index: idx, Size: n, LeafHash: lh[0], Proof: nonNilHashes(p)})
	return nil
}

func (s *Server) getConsistencyProof(w http.ResponseWriter, r *http.Request, c *caller) error {
	addr, err := pathAddr(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	from, err := parseIndex("from", q.Get("from"))
	if err != nil {
		return err
	}
	to, err := parseIndex("to", q.Get("to"))
	if err != nil {
		return err
	}
	if from > to {
		return errf(http.StatusBadRequest, "from %d is larger than to %d", from, to)
	}
	size, err := s.logSize(r.Context(), addr)
	if err != nil {
		return err
	}
	if to > size {
		return errf(http.StatusNotFound, "channel %s has %d entries, not %d", addr, size, to)
	}
	var p tlog.TreeProof
	if from > 0 && from < to {
		if p, err = tlog.ProveTree(to, from, s.logHashes(r.Context(), addr)); err != nil {
			return fmt.Errorf("consistency proof of %s from %d to %d: %w", addr, from, to, err)
		}
	}
	writeJSON(w, http.StatusOK, ConsistencyProof{From: from, To: to, Proof: nonNilHashes(p)})
	return nil
}

func nonNilHashes(p []tlog.Hash) []tlog.Hash {
	if p == nil {
		return []tlog.Hash{}
	}
	return p
}

// checkLogLeaf checks that the channel log's stored leaf hash at e.Index
// is e's leaf hash; it returns a message for validate, "" when it is.
func (s *Server) checkLogLeaf(ctx context.Context, e Entry) string {
	hs, err := s.cfg.Store.ReadHashes(ctx, e.ChannelAddress, []int64{tlog.StoredHashIndex(0, e.Index)})
	if err != nil {
		return fmt.Sprintf("stored entry %d is not in the channel's transparency log: %v", e.Index, err)
	}
	if hs[0] != tlog.RecordHash(e.Leaf) {
		return fmt.Sprintf("stored entry %d does not match the channel's transparency log at index %d (the store was altered)", e.Index, e.Index)
	}
	return ""
}

// LogReport is the result of VerifyLog, a full integrity check of one
// channel log at the gateway.
type LogReport struct {
	ChannelAddress string `json:"channelAddress"`
	Size           int64  `json:"size"`           // entries the store reports
	CheckpointSize int64  `json:"checkpointSize"` // latest signed checkpoint's size, -1 if none
	Valid          bool   `json:"valid"`
	// Problems lists what is wrong (at most maxProblems, then a count).
	Problems []string `json:"problems"`
}

const maxProblems = 100

// VerifyLog re-reads every entry of channel addr and checks: indexes are
// 0…size-1 without gaps; each entry is canonical, names this channel and
// its signature verifies (writer or this gateway); its stored leaf hash
// and the log's stored record hash match its bytes; the RFC 6962 root
// recomputed from the entries (with transparency-dev/merkle-compatible
// compact ranges, independent of the stored interior hashes) equals the
// root from the stored hashes, and, at the latest signed checkpoint's
// size, that checkpoint's root. It reads the whole channel: O(size).
func (s *Server) VerifyLog(ctx context.Context, addr string) (LogReport, error) {
	rep := LogReport{ChannelAddress: addr, CheckpointSize: -1, Problems: []string{}}
	more := 0
	problem := func(format string, args ...any) {
		if len(rep.Problems) < maxProblems {
			rep.Problems = append(rep.Problems, fmt.Sprintf(format, args...))
		} else {
			more++
		}
	}
	// The newest checkpoint this process signed or served (LogCheckpoint)
	// is checked too, as the stored one may have been deleted or rolled
	// back. It is read first: it only ever holds a checkpoint that was
	// stored before, so an honest store is at least as new.
	known, _, haveKnown, merr := s.signed.get(addr)
	if merr != nil {
		problem("%v", merr)
	}
	// The checkpoint before the size (see LogCheckpoint).
	var signed *Checkpoint
	cpSize, cpNote, err := s.cfg.Store.LatestCheckpoint(ctx, addr)
	size, serr := s.cfg.Store.Size(ctx, addr)
	if serr != nil {
		return rep, fmt.Errorf("verify log of %s: %w", addr, serr)
	}
	rep.Size = size
	switch {
	case errors.Is(err, ErrNotFound):
	case err != nil:
		return rep, fmt.Errorf("verify log of %s: %w", addr, err)
	default:
		rep.CheckpointSize = cpSize
		if s.cfg.NoteKey == nil {
			problem("a checkpoint of size %d is stored but this gateway has no note key to check it", cpSize)
		} else if cp, err := ParseCheckpoint(cpNote, Origin(s.cfg.NoteKey.Name(), addr), s.cfg.NoteKey.Verifier); err != nil {
			problem("latest stored checkpoint: %v", err)
		} else if cp.Size != cpSize {
			problem("latest stored checkpoint: row says size %d, its note %d", cpSize, cp.Size)
		} else {
			signed = &cp
		}
		if cpSize > size {
			problem("a checkpoint of size %d was signed but the log has only %d entries (entries were deleted)", cpSize, size)
		}
	}
	if haveKnown && known.Size > rep.CheckpointSize {
		problem("this gateway signed or served a checkpoint of size %d since it started, but the store's latest is of size %d (-1: none): the checkpoints row was deleted or rolled back", known.Size, rep.CheckpointSize)
	}
	if haveKnown && signed != nil && signed.Size == known.Size && signed.Hash != known.Hash {
		problem("the stored checkpoint of size %d has another root than the one this gateway signed or served (it was replaced)", known.Size)
	}
	if haveKnown && known.Size > size {
		problem("this gateway signed or served a checkpoint of size %d but the log has only %d entries (entries were deleted)", known.Size, size)
	}
	stack := newRootStack()
	next, gaps := int64(0), false
	checkSigned := func() {
		if signed != nil && stack.n == signed.Size && !gaps {
			if root := stack.root(); root != signed.Hash {
				problem("the entries do not hash to the root of the signed checkpoint of size %d (history was rewritten)", signed.Size)
			}
		}
		if haveKnown && stack.n == known.Size && !gaps && (signed == nil || signed.Size != known.Size) {
			if root := stack.root(); root != known.Hash {
				problem("the entries do not hash to the root of the checkpoint of size %d this gateway signed or served (history was rewritten)", known.Size)
			}
		}
	}
	checkSigned()
	const page = 1000
	for next < size {
		es, err := s.cfg.Store.Entries(ctx, addr, EntryQuery{Since: next, Asc: true, Limit: page})
		if err != nil {
			return rep, fmt.Errorf("verify log of %s: %w", addr, err)
		}
		for len(es) > 0 && es[len(es)-1].Index >= size {
			es = es[:len(es)-1] // appended after the size was read
		}
		if len(es) == 0 {
			break
		}
		idx := make([]int64, len(es))
		for i, e := range es {
			idx[i] = tlog.StoredHashIndex(0, e.Index)
		}
		stored, serr := s.cfg.Store.ReadHashes(ctx, addr, idx)
		for i, e := range es {
			if e.Index != next {
				problem("entries %d to %d are missing", next, e.Index-1)
				gaps = true
			}
			next = e.Index + 1
			rh := tlog.RecordHash(e.Leaf)
			if LeafHash(e.Leaf) != e.LeafHash {
				problem("entry %d: stored leaf hash does not match its bytes", e.Index)
			}
			if serr != nil {
				problem("entry %d: log hash: %v", e.Index, serr)
			} else if stored[i] != rh {
				problem("entry %d does not match the channel's transparency log at its index (altered, moved or replaced)", e.Index)
			}
			if se, err := ParseLeaf(e.Leaf); err != nil {
				problem("entry %d: %v", e.Index, err)
			} else if err := se.Verify(s.did); err != nil {
				problem("entry %d: %v", e.Index, err)
			} else if se.Statement.ChannelAddress != addr {
				problem("entry %d was signed for channel %s", e.Index, se.Statement.ChannelAddress)
			}
			if !gaps {
				stack.push(rh)
				checkSigned()
			}
		}
	}
	if next != size {
		problem("entries %d to %d are missing", next, size-1)
		gaps = true
	}
	if !gaps {
		th, err := tlog.TreeHash(size, s.logHashes(ctx, addr))
		if err != nil {
			problem("tree hash from the stored log hashes: %v", err)
		} else if th != stack.root() {
			problem("the stored log hashes do not match the entries (stored root %s, the entries hash to %s)", th, stack.root())
		}
	}
	if more > 0 {
		rep.Problems = append(rep.Problems, fmt.Sprintf("… and %d more problems", more))
	}
	rep.Valid = len(rep.Problems) == 0
	return rep, nil
}

// rootStack computes an RFC 6962 root incrementally (a compact range from
// 0: one hash per set bit of n), without the stored interior hashes.
type rootStack struct {
	n     int64
	nodes []tlog.Hash // perfect subtree roots, largest first
}

func newRootStack() *rootStack { return &rootStack{} }

func (r *rootStack) push(h tlog.Hash) {
	r.nodes = append(r.nodes, h)
	for n := r.n; n&1 == 1; n >>= 1 {
		k := len(r.nodes)
		r.nodes = append(r.nodes[:k-2], tlog.NodeHash(r.nodes[k-2], r.nodes[k-1]))
	}
	r.n++
}

func (r *rootStack) root() tlog.Hash {
	if len(r.nodes) == 0 {
		return emptyTreeHash
	}
	h := r.nodes[len(r.nodes)-1]
	for i := len(r.nodes) - 2; i >= 0; i-- {
		h = tlog.NodeHash(r.nodes[i], h)
	}
	return h
}

func (s *Server) verifyLog(w http.ResponseWriter, r *http.Request, c *caller) error {
	addr, a, err := s.pathChannel(r, c)
	if err != nil {
		return err
	}
	if !a.author && !a.admin {
		return errf(http.StatusForbidden, "only the author of channel %s or an Admin may run its integrity check", addr)
	}
	rep, err := s.VerifyLog(r.Context(), addr)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, rep)
	return nil
}
