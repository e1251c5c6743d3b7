package anchor

// Channel monitoring (`lakeproof channel watch`, docs/OPERATOR.md): a
// reader keeps the newest checkpoint of a channel it has verified in a
// local state file and accepts a newer one only with a valid consistency
// proof from it. Invariants:
//
//   - The state file holds the gateway's signed note verbatim; on load it
//     is verified again with the trusted key and origin, so a state file
//     can never make the monitor trust what the gateway did not sign.
//   - The state only moves forward: it is replaced (temporary file,
//     fsync, rename, fsync of the directory) only after the newer
//     checkpoint was proved consistent with the stored one.
//   - Every disagreement between two correctly signed checkpoints (same
//     size with a different root, a smaller size, a consistency proof
//     that fails) is an error wrapping trail.ErrInconsistent that names
//     both sizes and roots; the two signed notes are the evidence.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/lakeproof/lakeproof/internal/durable"
	"github.com/lakeproof/lakeproof/trail"
)

// WatchStateVersion is the "version" of the watch state files written here.
const WatchStateVersion = 1

// ErrWatchState reports a watch state file that cannot be used: not JSON,
// another version, another channel, or a checkpoint that does not verify
// with the trusted gateway key and the channel's origin.
var ErrWatchState = errors.New("unusable watch state file")

// WatchState is the content of a watch state file.
type WatchState struct {
	Version int `json:"version"`
	// Channel is the channel address the checkpoint belongs to.
	Channel string `json:"channel"`
	// Origin is the checkpoint origin, "<log name>/channel/<address>".
	Origin string `json:"origin"`
	// Gateway is the URL the checkpoint was last fetched from
	// (informational: the checkpoint's signature is what is trusted).
	Gateway string `json:"gateway"`
	// Size and Root repeat the checkpoint's tree size and root hash
	// (base64) for people reading the file.
	Size int64  `json:"size"`
	Root string `json:"root"`
	// Checkpoint is the signed note, verbatim.
	Checkpoint string `json:"checkpoint"`
	// Verified is when the checkpoint was verified.
	Verified time.Time `json:"verified"`
}

// maxWatchState bounds a state file (a checkpoint note is a few hundred
// bytes).
const maxWatchState = 1 << 20

// LoadWatchState reads the state file at path and verifies its checkpoint
// with v for the channel's origin. A missing file is an error satisfying
// errors.Is(err, fs.ErrNotExist); any other unusable content wraps
// ErrWatchState.
func LoadWatchState(path, channel string, v note.Verifier) (trail.Checkpoint, WatchState, error) {
	var st WatchState
	f, err := os.Open(path)
	if err != nil {
		return trail.Checkpoint{}, st, fmt.Errorf("read watch state: %w", err)
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, maxWatchState+1))
	if err != nil {
		return trail.Checkpoint{}, st, fmt.Errorf("read watch state %s: %w", path, err)
	}
	if len(raw) > maxWatchState {
		return trail.Checkpoint{}, st, fmt.Errorf("%w %s: larger than %d bytes", ErrWatchState, path, maxWatchState)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&st); err != nil {
		return trail.Checkpoint{}, st, fmt.Errorf("%w %s: %w", ErrWatchState, path, err)
	}
	if st.Version != WatchStateVersion {
		return trail.Checkpoint{}, st, fmt.Errorf("%w %s: version %d, want %d", ErrWatchState, path, st.Version, WatchStateVersion)
	}
	if st.Channel != channel {
		return trail.Checkpoint{}, st, fmt.Errorf("%w %s: it watches channel %s, not %s (use another --state file per channel)", ErrWatchState, path, st.Channel, channel)
	}
	origin := trail.Origin(v.Name(), channel)
	cp, err := trail.ParseCheckpoint([]byte(st.Checkpoint), origin, v)
	if err != nil {
		return trail.Checkpoint{}, st, fmt.Errorf("%w %s: its checkpoint does not verify with key %s for origin %q: %w (if the gateway key changed on purpose, move the file away to start over)",
			ErrWatchState, path, v.Name(), origin, err)
	}
	if st.Size != cp.Size || st.Root != cp.Hash.String() || st.Origin != cp.Origin {
		return trail.Checkpoint{}, st, fmt.Errorf("%w %s: its size, root or origin fields disagree with its signed checkpoint (size %d root %s)", ErrWatchState, path, cp.Size, cp.Hash)
	}
	return cp, st, nil
}

// SaveWatchState replaces the state file at path with st, crash-consistently:
// a temporary sibling is written and fsynced, renamed over path, and the
// directory fsynced, so after a crash path holds either the old or the new
// state. Missing parent directories are created (0700).
func SaveWatchState(path string, st WatchState) error {
	st.Version = WatchStateVersion
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("encode watch state %s: %w", path, err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("save watch state: %w", err)
	}
	if err := durable.WriteFile(path, append(b, '\n'), 0o600, true); err != nil {
		return fmt.Errorf("save watch state: %w", err)
	}
	return nil
}

// NewWatchState returns the state recording cp, fetched from gateway.
func NewWatchState(channel, gateway string, cp trail.Checkpoint, now time.Time) WatchState {
	return WatchState{
		Version: WatchStateVersion, Channel: channel, Origin: cp.Origin, Gateway: gateway,
		Size: cp.Size, Root: cp.Hash.String(), Checkpoint: string(cp.Note), Verified: now.UTC(),
	}
}

// Monitor checks the checkpoints a gateway signs for one channel. It needs
// no credentials: checkpoints and proofs are public (docs/GATEWAY.md).
type Monitor struct {
	Client   *trail.Client
	Channel  string
	Verifier note.Verifier
}

// Origin is the checkpoint origin the monitor accepts:
// "<verifier key name>/channel/<channel>".
func (m *Monitor) Origin() string { return trail.Origin(m.Verifier.Name(), m.Channel) }

// Latest fetches the gateway's newest checkpoint of the channel and
// verifies its signature and origin; a checkpoint that does not verify is
// an error wrapping trail.ErrCheckpoint, a failure to fetch it is not.
func (m *Monitor) Latest(ctx context.Context) (trail.Checkpoint, error) {
	b, err := m.Client.Checkpoint(ctx, m.Channel)
	if err != nil {
		return trail.Checkpoint{}, fmt.Errorf("fetch checkpoint of channel %s: %w", m.Channel, err)
	}
	cp, err := trail.ParseCheckpoint(b, m.Origin(), m.Verifier)
	if err != nil {
		return trail.Checkpoint{}, fmt.Errorf("checkpoint of channel %s from %s: %w", m.Channel, m.Client.BaseURL, err)
	}
	return cp, nil
}

// Inconsistency describes two signed checkpoints of one log that cannot
// both be honest: the evidence of a split view or a rewritten history.
type Inconsistency struct {
	Kind         string // "split view", "log shrank" or "rewritten history"
	Older, Newer trail.Checkpoint
	Proof        []tlog.Hash // the consistency proof that failed, if any
	Err          error       // the proof check's error, if any
}

func (e *Inconsistency) Error() string {
	s := fmt.Sprintf("%s: %s: stored checkpoint size %d root %s, gateway now signs size %d root %s",
		trail.ErrInconsistent, e.Kind, e.Older.Size, e.Older.Hash, e.Newer.Size, e.Newer.Hash)
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap makes the error match trail.ErrInconsistent (and the proof
// check's error).
func (e *Inconsistency) Unwrap() []error {
	if e.Err != nil {
		return []error{trail.ErrInconsistent, e.Err}
	}
	return []error{trail.ErrInconsistent}
}

// Check verifies that newer is the same log as older, possibly grown:
// equal sizes need equal roots, a smaller size is never accepted, and a
// larger one needs the gateway's consistency proof to verify. It returns
// an *Inconsistency (wrapping trail.ErrInconsistent) when the two signed
// checkpoints disagree, and other errors when the proof could not be
// fetched. Both checkpoints must already be verified.
func (m *Monitor) Check(ctx context.Context, older, newer trail.Checkpoint) error {
	switch {
	case newer.Size < older.Size:
		return &Inconsistency{Kind: "log shrank", Older: older, Newer: newer}
	case newer.Size == older.Size:
		if newer.Hash != older.Hash {
			return &Inconsistency{Kind: "split view (same size, different root)", Older: older, Newer: newer}
		}
		return nil
	case older.Size == 0:
		// The empty log is a prefix of every log; only its root is checked.
		if err := trail.VerifyConsistency(older, newer, nil); err != nil {
			return &Inconsistency{Kind: "rewritten history (wrong empty-tree root)", Older: older, Newer: newer, Err: err}
		}
		return nil
	}
	proof, err := m.Client.ConsistencyProof(ctx, m.Channel, older.Size, newer.Size)
	if err != nil {
		return fmt.Errorf("fetch consistency proof of channel %s from size %d to %d: %w", m.Channel, older.Size, newer.Size, err)
	}
	if err := trail.VerifyConsistency(older, newer, proof); err != nil {
		return &Inconsistency{Kind: "rewritten history (consistency proof fails)", Older: older, Newer: newer, Proof: proof, Err: err}
	}
	return nil
}

// Evidence is what `channel watch` writes next to its state file when it
// finds an inconsistency: both signed notes (each verifiable with the
// gateway key) and the failing proof. Anyone can re-check it.
type Evidence struct {
	Channel string      `json:"channel"`
	Kind    string      `json:"kind"`
	Older   string      `json:"older"`
	Newer   string      `json:"newer"`
	Proof   []tlog.Hash `json:"proof,omitempty"`
	Error   string      `json:"error"`
	Found   time.Time   `json:"found"`
}

// SaveEvidence writes the evidence of e to a new file named
// "<statePath>.inconsistent-<unix time>.json" and returns its path. It
// never replaces an existing file.
func SaveEvidence(statePath, channel string, e *Inconsistency, now time.Time) (string, error) {
	ev := Evidence{Channel: channel, Kind: e.Kind, Older: string(e.Older.Note), Newer: string(e.Newer.Note), Proof: e.Proof, Error: e.Error(), Found: now.UTC()}
	b, err := json.MarshalIndent(ev, "", "  ")
	if err != nil {
		return "", fmt.Errorf("encode evidence: %w", err)
	}
	for i := 0; ; i++ {
		p := fmt.Sprintf("%s.inconsistent-%d.json", statePath, now.Unix())
		if i > 0 {
			p = fmt.Sprintf("%s.inconsistent-%d-%d.json", statePath, now.Unix(), i)
		}
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, os.ErrExist) && i < 100 {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("save evidence: %w", err)
		}
		_, err = f.Write(append(b, '\n'))
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return "", fmt.Errorf("save evidence %s: %w", p, err)
		}
		return p, nil
	}
}
