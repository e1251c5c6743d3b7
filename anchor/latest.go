package anchor

// Finding a dataset's latest anchor on a channel, for readers
// (`lakeproof audit SOURCE --channel`). "Latest" is authenticated, not
// taken from the gateway's word: every entry from the chosen anchor up to
// the end of the gateway's signed checkpoint is checked against the
// checkpoint's tree (hash tiles verified with tlog.TileHashReader), so a
// gateway can neither invent an anchor nor hide a newer one of the same
// dataset without failing a check.

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/lakeproof/lakeproof/trail"
)

// ErrGatewayLied: the gateway served entries that are not the ones its
// signed checkpoint commits to, or skipped some.
var ErrGatewayLied = errors.New("gateway's entries do not match its signed checkpoint")

// Skipped is an anchor entry FindLatest passed over.
type Skipped struct {
	Index   int64  `json:"index"`
	Writer  string `json:"writer"`
	Dataset string `json:"dataset,omitempty"`
	Reason  string `json:"reason"`
}

// Found is the newest anchor of a dataset by a trusted writer.
type Found struct {
	Receipt    Receipt // entry, checkpoint and inclusion proof
	Payload    Payload
	Writer     string
	Created    string
	Checkpoint trail.Checkpoint
	// GatewayKey is the name of the trusted key that signed Checkpoint.
	GatewayKey string
	// Skipped lists the newer anchors of the dataset that were not
	// trusted (another writer, a bad signature, a malformed payload).
	Skipped []Skipped
	// Datasets lists every dataset name anchored on the channel by a
	// trusted writer (newest first), when FindLatest was asked for "".
	Datasets []string
}

// readPage is the number of entries asked for per read.
const readPage = 1000

// FindLatest returns the newest anchor of dataset on channel signed by a
// writer in t.Writers, included in the gateway's latest checkpoint signed
// by a key in t.Gateways. With dataset "" the channel must hold anchors
// of exactly one dataset by trusted writers (else an error lists them).
// c needs read rights on the channel (entries are read with
// GET /channels/logs). Errors match ErrCheckpointSignature,
// ErrOriginMismatch, ErrNoAnchor, ErrGatewayLied or ErrEntryInclusion,
// or are failures to talk to the gateway.
//
// It filters by trusted writers, checks the checkpoint signature and
// proves that no entry after the anchor was altered or withheld.
func FindLatest(ctx context.Context, c *trail.Client, channel, dataset string, t Trust) (Found, error) {
	var f Found
	if len(t.Gateways) == 0 {
		return f, errors.New("no trusted gateway key: give the gateway's verifier key (--trust-gateway)")
	}
	if len(t.Writers) == 0 {
		return f, errors.New("no trusted writer: give the DID of the dataset's writer (--trust-writer)")
	}
	vs, err := t.verifiers()
	if err != nil {
		return f, err
	}
	signed, err := c.Checkpoint(ctx, channel)
	if err != nil {
		return f, fmt.Errorf("fetch checkpoint of channel %s: %w", channel, err)
	}
	var errs []error
	for _, v := range vs {
		cp, err := trail.ParseCheckpoint(signed, trail.Origin(v.Name(), channel), v)
		if err == nil {
			f.Checkpoint, f.GatewayKey = cp, v.Name()
			break
		}
		errs = append(errs, err)
	}
	if f.GatewayKey == "" {
		return f, fmt.Errorf("%w: latest checkpoint of channel %s from %s: %w", ErrCheckpointSignature, channel, c.BaseURL, errors.Join(errs...))
	}
	cp := f.Checkpoint

	// Scan newest first. Pages of the descending read shift when entries
	// are appended meanwhile; entries are therefore taken by index:
	// beyond the checkpoint or already seen are ignored, a gap is a lie.
	next := cp.Size - 1 // the index the next entry taken must have
	var (
		found     bool
		read      []tlog.Hash // read[i] is the record hash of entry cp.Size-1-i as read (32 bytes per entry, not the entry)
		bestLeaf  []byte
		datasets  []string
		bestIndex int64
	)
scan:
	for page := 0; next >= 0; page++ {
		q := url.Values{"limit": {strconv.Itoa(readPage)}, "index": {strconv.Itoa(page)}, "asc": {"false"}}
		es, err := c.Read(ctx, channel, q)
		if err != nil {
			return f, fmt.Errorf("read channel %s: %w", channel, err)
		}
		if len(es) == 0 {
			return f, fmt.Errorf("%w: channel %s: the checkpoint has %d entries, the gateway's read ended before entry %d", ErrGatewayLied, channel, cp.Size, next)
		}
		for _, d := range es {
			if d.Index > next {
				continue
			}
			if d.Index < next {
				return f, fmt.Errorf("%w: channel %s: the read skipped entries %d to %d", ErrGatewayLied, channel, d.Index+1, next)
			}
			leaf, err := d.SignedEntry(channel).Leaf()
			if err != nil {
				return f, fmt.Errorf("%w: channel %s entry %d: %w", ErrGatewayLied, channel, d.Index, err)
			}
			read = append(read, tlog.RecordHash(leaf))
			next--
			if d.Log.Type != Type {
				continue
			}
			e, p, err := ParsePayload(leaf)
			if dataset != "" && err == nil && p.Dataset != dataset {
				continue
			}
			switch {
			case err != nil:
				f.Skipped = append(f.Skipped, Skipped{Index: d.Index, Writer: d.Source.ID, Reason: err.Error()})
			case !slices.Contains(t.Writers, e.Statement.Writer):
				f.Skipped = append(f.Skipped, Skipped{Index: d.Index, Writer: e.Statement.Writer, Dataset: p.Dataset, Reason: ErrWriterNotTrusted.Error()})
			case dataset != "":
				found, bestIndex, bestLeaf = true, d.Index, leaf
				break scan
			default:
				if !slices.Contains(datasets, p.Dataset) {
					datasets = append(datasets, p.Dataset)
					if len(datasets) == 1 {
						found, bestIndex, bestLeaf = true, d.Index, leaf
					}
				}
			}
		}
	}
	f.Datasets = datasets
	if dataset == "" && len(datasets) > 1 {
		sorted := slices.Clone(datasets)
		sort.Strings(sorted)
		return f, fmt.Errorf("channel %s holds anchors of %d datasets (%s): name one with --dataset", channel, len(datasets), strings.Join(sorted, ", "))
	}
	if !found {
		what := "any dataset"
		if dataset != "" {
			what = "dataset " + strconv.Quote(dataset)
		}
		msg := fmt.Sprintf("channel %s holds no anchor of %s signed by a trusted writer (%s) in its %d entries",
			channel, what, strings.Join(t.Writers, ", "), cp.Size)
		if len(f.Skipped) > 0 {
			msg += fmt.Sprintf("; %d anchors passed over, the newest entry %d by %s: %s", len(f.Skipped), f.Skipped[0].Index, f.Skipped[0].Writer, f.Skipped[0].Reason)
		}
		return f, fmt.Errorf("%w: %s", ErrNoAnchor, msg)
	}
	// Keep only the skipped anchors newer than the one found.
	f.Skipped = slices.DeleteFunc(f.Skipped, func(s Skipped) bool { return s.Index < bestIndex })

	// Authenticate every entry from the anchor found to the checkpoint's
	// end against the checkpoint's tree: the anchor is in the log, and no
	// newer entry was altered in the read to hide a newer anchor.
	n := cp.Size - bestIndex
	read = read[:n]
	idx := make([]int64, n)
	for i := range idx {
		idx[i] = tlog.StoredHashIndex(0, cp.Size-1-int64(i))
	}
	hr := tlog.TileHashReader(tlog.Tree{N: cp.Size, Hash: cp.Hash}, c.TileReader(ctx, channel))
	hashes, err := hr.ReadHashes(idx)
	if err != nil {
		if ctx.Err() != nil {
			return f, ctx.Err()
		}
		return f, fmt.Errorf("channel %s: read hash tiles of entries %d to %d at size %d: %w", channel, bestIndex, cp.Size-1, cp.Size, err)
	}
	for i, h := range hashes {
		if read[i] != h {
			return f, fmt.Errorf("%w: channel %s entry %d as read is not the entry the checkpoint of size %d commits to", ErrGatewayLied, channel, cp.Size-1-int64(i), cp.Size)
		}
	}
	leaf := bestLeaf
	e, p, err := ParsePayload(leaf)
	if err != nil { // checked in the scan; parsing is deterministic
		return f, err
	}
	if e.Statement.ChannelAddress != channel {
		return f, fmt.Errorf("%w: entry %d was written to channel %s", ErrOriginMismatch, bestIndex, e.Statement.ChannelAddress)
	}
	proof, err := c.InclusionProof(ctx, channel, bestIndex, cp.Size)
	if err != nil {
		return f, fmt.Errorf("channel %s: inclusion proof of entry %d at size %d: %w", channel, bestIndex, cp.Size, err)
	}
	if err := trail.VerifyInclusion(cp, bestIndex, leaf, proof); err != nil {
		return f, fmt.Errorf("%w: %w", ErrEntryInclusion, err)
	}
	f.Receipt = Receipt{Channel: channel, Index: bestIndex, Entry: leaf, Checkpoint: cp.Note, Proof: proof, Gateway: c.BaseURL}
	f.Payload, f.Writer, f.Created = p, e.Statement.Writer, e.Statement.Log.Created
	return f, nil
}
