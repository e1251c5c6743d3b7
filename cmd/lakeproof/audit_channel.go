package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/transparency-dev/merkle/compact"

	"github.com/lakeproof/lakeproof"
	"github.com/lakeproof/lakeproof/anchor"
	"github.com/lakeproof/lakeproof/index"
	"github.com/lakeproof/lakeproof/jobs"
	"github.com/lakeproof/lakeproof/pipeline"
	s3src "github.com/lakeproof/lakeproof/sources/s3"
	"github.com/lakeproof/lakeproof/trail"
)

// auditChannelOptions are the flags of `audit SOURCE --channel ADDR`: the
// reader's side of anchoring (docs/OPERATOR.md, "Checking a received
// dataset against its anchor").
type auditChannelOptions struct {
	Channel       string
	Gateway       string
	Key           string // key file of the reader (logs in)
	JWT           string // or a bearer token
	APIKey        string
	Dataset       string
	TrustFile     string
	TrustGateways []string
	TrustWriters  []string
}

// auditChannelOutput is what audit --channel --json prints.
type auditChannelOutput struct {
	Channel    string `json:"channel"`
	Gateway    string `json:"gateway"`
	Checkpoint struct {
		Size int64  `json:"size"`
		Root string `json:"root"`
		Key  string `json:"key"` // name of the trusted gateway key that signed it
	} `json:"checkpoint"`
	Anchor struct {
		Index   int64          `json:"index"`
		Writer  string         `json:"writer"`
		Created string         `json:"created"`
		Payload anchor.Payload `json:"payload"`
	} `json:"anchor"`
	Skipped     []anchor.Skipped `json:"skipped,omitempty"` // newer anchors of the dataset not trusted
	Source      string           `json:"source"`
	Root        lakeproof.Hash   `json:"root"` // of the copy; zero when objects could not be read
	Files       uint64           `json:"files"`
	Bytes       uint64           `json:"bytes"`
	Errors      uint64           `json:"errors"`
	ErrorItems  []string         `json:"error_items,omitempty"`
	Match       bool             `json:"match"`
	Index       string           `json:"index,omitempty"`
	IndexDigest lakeproof.Hash   `json:"index_digest,omitzero"`
	// Report is the per-key comparison with the anchored index (--index).
	Report         *jobs.AuditReport `json:"report,omitempty"`
	Items          []jobs.Item       `json:"items,omitempty"`
	ItemsTruncated bool              `json:"items_truncated,omitempty"`
}

// auditTrust assembles the trusted gateway keys and writer DIDs from
// --trust FILE, --trust-gateway and --trust-writer.
func auditTrust(co auditChannelOptions) (anchor.Trust, error) {
	flags := verifyTrustFlags{gateways: co.TrustGateways, writers: co.TrustWriters, file: co.TrustFile}
	t, err := flags.load()
	if err != nil {
		return t, err
	}
	if len(t.Gateways) == 0 {
		return t, usageError{errors.New("--channel needs the gateway's verifier key: --trust-gateway KEY (from 'lakeproof serve --print-verifier') or --trust FILE")}
	}
	if len(t.Writers) == 0 {
		return t, usageError{errors.New("--channel needs the DID of the dataset's writer: --trust-writer DID (repeatable) or --trust FILE; anchors by anyone else are ignored")}
	}
	return t, nil
}

// auditIndexDir is the index.Dir of a local or s3:// index location.
func auditIndexDir(ctx context.Context, loc string, f s3Flags) (index.Dir, error) {
	if !s3src.IsS3URI(loc) {
		return index.LocalDir(loc), nil
	}
	return s3src.NewIndexDir(ctx, loc, s3src.Options{Endpoint: f.Endpoint, PathStyle: f.PathStyle})
}

func runAuditChannel(ctx context.Context, o auditOptions, stdout io.Writer) error {
	co := o.Ch
	switch {
	case !trail.ValidAddress(co.Channel):
		return usageError{fmt.Errorf("--channel %q is not a channel address (the 105 characters printed by 'channel create')", co.Channel)}
	case o.AppendOnly:
		return usageError{errors.New("--append-only compares two index versions; it does not apply with --channel")}
	case o.Workers < 0 || o.MaxItems < 0 || o.MaxPending < 0:
		return usageError{errors.New("--workers, --max-items and --max-pending must not be negative")}
	case co.Key != "" && co.JWT != "":
		return usageError{errors.New("give --key FILE or --jwt TOKEN, not both")}
	case co.Key == "" && co.JWT == "":
		return usageError{errors.New("--channel needs read access to the channel: --key FILE (a subscribed identity) or --jwt TOKEN")}
	case o.Report != "" && o.Index == "":
		return usageError{errors.New("--report-parquet needs --index DIR (per-key detail)")}
	}
	trust, err := auditTrust(co)
	if err != nil {
		return err
	}
	var c *trail.Client
	if co.Key != "" {
		if c, err = (channelOpts{gateway: co.Gateway, key: co.Key, apiKey: co.APIKey}).client(ctx); err != nil {
			return err
		}
	} else {
		gw := trailFirstSet(co.Gateway, os.Getenv("LAKEPROOF_GATEWAY"))
		if gw == "" {
			return usageError{errors.New("--gateway URL (or $LAKEPROOF_GATEWAY) is required with --jwt")}
		}
		c = trail.NewClient(gw)
		c.APIKey = trailFirstSet(co.APIKey, os.Getenv("LAKEPROOF_API_KEY"))
		c.SetJWT(co.JWT)
	}
	dataset := co.Dataset
	if dataset == "" && o.Index != "" {
		dataset = anchor.DatasetName(o.Index)
	}

	// The index, if given, must be the anchored one: check its digest
	// before hashing anything.
	var (
		ix     *index.Index
		digest lakeproof.Hash
	)
	if o.Index != "" {
		d, err := auditIndexDir(ctx, o.Index, o.s3Flags)
		if err != nil {
			return usageError{err}
		}
		if digest, _, err = index.SummaryDigest(ctx, d); err != nil {
			return usageError{err}
		}
		if ix, err = index.OpenDir(ctx, d); err != nil {
			return usageError{err}
		}
		defer ix.Close()
	}
	src, err := openSource(ctx, o.Source, o.sourceOptions)
	if err != nil {
		return usageError{err}
	}

	found, err := anchor.FindLatest(ctx, c, co.Channel, dataset, trust)
	if err != nil {
		for _, s := range []error{anchor.ErrNoAnchor, anchor.ErrCheckpointSignature, anchor.ErrOriginMismatch,
			anchor.ErrGatewayLied, anchor.ErrEntryInclusion, trail.ErrCheckpoint, trail.ErrProof} {
			if errors.Is(err, s) {
				return invalidError{err}
			}
		}
		if trail.StatusOf(err) == 401 || trail.StatusOf(err) == 403 {
			return usageError{fmt.Errorf("%w (the reader needs Read rights on the channel: 'lakeproof channel subscribe')", err)}
		}
		return err
	}
	p := found.Payload
	out := auditChannelOutput{Channel: co.Channel, Gateway: c.BaseURL, Skipped: found.Skipped, Source: src.URI(), Index: o.Index, IndexDigest: digest}
	out.Checkpoint.Size, out.Checkpoint.Root, out.Checkpoint.Key = found.Checkpoint.Size, found.Checkpoint.Hash.String(), found.GatewayKey
	out.Anchor.Index, out.Anchor.Writer, out.Anchor.Created, out.Anchor.Payload = found.Receipt.Index, found.Writer, found.Created, p

	if ix != nil && digest != p.IndexDigest {
		return invalidError{fmt.Errorf("index %s is not the anchored index of dataset %q: its summary.json digest is %s, anchor entry %d of channel %s says %s (root %s); per-key detail needs the anchored index",
			o.Index, p.Dataset, digest, found.Receipt.Index, co.Channel, p.IndexDigest, p.Root)}
	}

	if ix != nil {
		rep, items, truncated, err := auditReport(ctx, src, ix, o)
		if err != nil {
			return err
		}
		out.Items, out.ItemsTruncated = items, truncated
		out.Report = rep
		out.Root, out.Errors, out.Bytes = rep.CurrentRoot, rep.Errors, rep.Bytes
		out.Files = rep.Matched + rep.Changed + rep.Extra + rep.Moved
	} else if err := auditHashRoot(ctx, src, o, &out); err != nil {
		return err
	}
	out.Match = out.Errors == 0 && out.Root == p.Root && out.Files == p.TreeSize
	if o.JSON {
		b, _ := json.Marshal(out)
		fmt.Fprintf(stdout, "%s\n", b)
	} else {
		printAuditChannel(stdout, &out)
	}
	if !out.Match {
		return reported{invalidError{fmt.Errorf("the copy does not match the root anchored on channel %s", co.Channel)}}
	}
	return nil
}

// auditHashRoot hashes every object of src into the dataset root, without
// an index. Objects that cannot be read are listed (up to --max-items).
func auditHashRoot(ctx context.Context, src pipeline.Source, o auditOptions, out *auditChannelOutput) error {
	rf := compact.RangeFactory{Hash: lakeproof.Hasher.HashChildren}
	tree := rf.NewEmptyRange(0)
	err := pipeline.Run(ctx, src, pipelineDefaults(src.URI(), o.Workers), func(r pipeline.Result) error {
		if r.Err != nil {
			out.Errors++
			if len(out.ErrorItems) < max(o.MaxItems, 1) {
				out.ErrorItems = append(out.ErrorItems, r.Err.Error())
			}
			return nil
		}
		leaf := lakeproof.LeafHash(r.Key, uint64(r.Size), r.Digest)
		out.Files++
		out.Bytes += uint64(r.Size)
		return tree.Append(leaf[:], nil)
	})
	if err != nil {
		return fmt.Errorf("hash %s: %w", src.URI(), err)
	}
	if out.Errors > 0 {
		return nil
	}
	out.Root = lakeproof.EmptyRoot
	if tree.End() > 0 {
		r, err := tree.GetRootHash(nil)
		if err != nil {
			return fmt.Errorf("hash %s: %w", src.URI(), err)
		}
		out.Root = lakeproof.Hash(r)
	}
	return nil
}

func printAuditChannel(w io.Writer, o *auditChannelOutput) {
	p := o.Anchor.Payload
	fmt.Fprintf(w, "channel  %s\ngateway  %s (checkpoint size %d, signed by %s)\n", o.Channel, o.Gateway, o.Checkpoint.Size, o.Checkpoint.Key)
	fmt.Fprintf(w, "anchor   entry %d by %s at %s\n", o.Anchor.Index, o.Anchor.Writer, o.Anchor.Created)
	fmt.Fprintf(w, "dataset  %s: root %s, %d files, %d bytes (from %s)\n", p.Dataset, p.Root, p.TreeSize, p.Bytes, p.Source)
	for _, s := range o.Skipped {
		fmt.Fprintf(w, "ignored  newer entry %d by %s: %s\n", s.Index, s.Writer, s.Reason)
	}
	fmt.Fprintf(w, "source   %s\n", o.Source)
	if o.Errors > 0 {
		fmt.Fprintf(w, "copy     %d objects could not be read\n", o.Errors)
	} else {
		fmt.Fprintf(w, "copy     root %s, %d files, %d bytes\n", o.Root, o.Files, o.Bytes)
	}
	if o.Report != nil {
		r := o.Report
		fmt.Fprintf(w, "index    %s (the anchored one: digest %s)\n", o.Index, o.IndexDigest)
		printAuditDiff(w, r, o.Items, o.ItemsTruncated)
	}
	for _, e := range o.ErrorItems {
		fmt.Fprintf(w, "error    %s\n", e)
	}
	switch {
	case o.Match:
		fmt.Fprintf(w, "result   OK: the copy is exactly the anchored dataset\n")
	case o.Errors > 0:
		fmt.Fprintf(w, "result   NOT VERIFIED: %d objects could not be read\n", o.Errors)
	case o.Report != nil:
		fmt.Fprintf(w, "result   DIFFERENT: root %s, anchored %s\n", o.Root, p.Root)
	default:
		fmt.Fprintf(w, "result   DIFFERENT: root %s, anchored %s; run again with --index DIR (the anchored index, digest %s) to list matched / changed / missing / extra keys\n",
			o.Root, p.Root, p.IndexDigest)
	}
}
