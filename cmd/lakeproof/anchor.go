package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/lakeproof/lakeproof/anchor"
	"github.com/lakeproof/lakeproof/index"
	"github.com/lakeproof/lakeproof/trail"
)

type anchorOptions struct {
	Index, Channel, Dataset, TrustGateway string
	Entry                                 int64
	Wait                                  time.Duration
	JSON                                  bool
	channelOpts
}

func init() {
	register(func() *cobra.Command {
		o := anchorOptions{Entry: -1}
		c := &cobra.Command{
			Use:   "anchor --index DIR --channel ADDR --key FILE [--gateway URL]",
			Short: "Anchor an index's root in an audit-trail channel and store the receipt",
			Long: `Write an anchor entry (type lakeproof.anchor/v1: dataset name, source, root, tree
size, files, bytes, index digest, tool version) to the channel, signed with the
writer's own key (--key, from 'lakeproof identity new'). Then wait for a channel
checkpoint that covers the entry, fetch its inclusion proof, verify both and store
the receipt in the index directory as anchor-<first 16 characters of ADDR>.json.
An index is anchored at most once per channel; the receipt is never overwritten.
'lakeproof prove' then makes two-level proof bundles (docs/FORMAT.md §12).

With --trust-gateway KEY (the gateway's verifier key, 'lakeproof serve
--print-verifier') the checkpoint's signature and origin are checked too.
If the entry was written but no receipt stored, --entry N finishes the receipt of
entry N without writing another entry.

Exit status: 0 anchored, 1 the gateway's answer does not verify, 2 usage, I/O,
already anchored.`,
			Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				return runAnchor(cmd.Context(), o, cmd.OutOrStdout())
			},
		}
		f := c.Flags()
		f.StringVarP(&o.Index, "index", "i", "", "local index directory to anchor")
		f.StringVar(&o.Channel, "channel", "", "channel address (from 'lakeproof channel create')")
		f.StringVar(&o.Dataset, "dataset", "", "dataset name (default: the index directory's name without extension)")
		f.StringVar(&o.TrustGateway, "trust-gateway", "", "gateway verifier key (or a file holding it): also check the checkpoint's signature")
		f.Int64Var(&o.Entry, "entry", -1, "finish the receipt of this already written entry instead of writing one")
		f.DurationVar(&o.Wait, "wait", 30*time.Second, "how long to wait for a checkpoint that covers the entry")
		f.StringVar(&o.gateway, "gateway", "", "gateway URL (default $LAKEPROOF_GATEWAY, then the key file's)")
		f.StringVar(&o.key, "key", "", "writer's key file")
		f.StringVar(&o.apiKey, "api-key", "", "gateway api key (default $LAKEPROOF_API_KEY)")
		f.BoolVar(&o.JSON, "json", false, "print the receipt's summary as JSON")
		c.MarkFlagRequired("index")
		c.MarkFlagRequired("channel")
		c.MarkFlagRequired("key")
		return c
	})
}

// anchorResult is what anchor (and index --anchor) prints with --json.
type anchorResult struct {
	Channel string `json:"channel"`
	Entry   int64  `json:"entry"`
	Size    int64  `json:"checkpointSize"`
	Receipt string `json:"receipt"`
	Dataset string `json:"dataset"`
	Writer  string `json:"writer"`
}

func runAnchor(ctx context.Context, o anchorOptions, stdout io.Writer) error {
	if isS3(o.Index) {
		return usageError{errors.New("--index: anchoring needs a local index directory (the receipt is stored in it)")}
	}
	if !index.Exists(o.Index) {
		return usageError{fmt.Errorf("--index %s: not an index directory (no %s)", o.Index, index.SummaryFile)}
	}
	if o.TrustGateway != "" {
		k, err := readGatewayKey(o.TrustGateway)
		if err != nil {
			return err
		}
		o.TrustGateway = k
	}
	c, err := o.channelOpts.client(ctx)
	if err != nil {
		return err
	}
	ao := anchor.Options{Client: c, Channel: o.Channel, Dataset: o.Dataset, Tool: "lakeproof " + toolVersion(),
		GatewayKey: o.TrustGateway, Wait: o.Wait}
	var r anchor.Receipt
	if o.Entry >= 0 {
		r, err = anchor.Resume(ctx, o.Index, o.Entry, ao)
	} else {
		r, err = anchor.Anchor(ctx, o.Index, ao)
	}
	if err != nil {
		return anchorError(err)
	}
	return printAnchor(stdout, o.Index, r, c.ID, o.JSON)
}

// anchorError maps anchor failures to exit codes: a gateway answer that does
// not verify is exit 1, an index already anchored a usage error (2).
func anchorError(err error) error {
	switch {
	case errors.Is(err, anchor.ErrAnchored):
		return usageError{err}
	case errors.Is(err, anchor.ErrEntryInclusion), errors.Is(err, anchor.ErrCheckpointSignature),
		errors.Is(err, anchor.ErrOriginMismatch), errors.Is(err, anchor.ErrPayloadMismatch),
		errors.Is(err, anchor.ErrEntrySignature), errors.Is(err, anchor.ErrEntry):
		return invalidError{err}
	}
	return err
}

func printAnchor(w io.Writer, dir string, r anchor.Receipt, writer string, asJSON bool) error {
	lp, err := r.Anchored().Parse()
	if err != nil {
		return err
	}
	_, p, err := anchor.ParsePayload(r.Entry)
	if err != nil {
		return err
	}
	res := anchorResult{Channel: r.Channel, Entry: r.Index, Size: lp.Size, Receipt: dir + string(os.PathSeparator) + anchor.ReceiptName(r.Channel),
		Dataset: p.Dataset, Writer: writer}
	if asJSON {
		return json.NewEncoder(w).Encode(res)
	}
	_, err = fmt.Fprintf(w, "anchored %s (root %s) as entry %d of channel %s\ncheckpoint size %d, receipt %s\n",
		p.Dataset, p.Root, r.Index, r.Channel, lp.Size, res.Receipt)
	return err
}

// indexAnchorFlags are index's --anchor, --gateway, --key and --dataset.
type indexAnchorFlags struct {
	channel, dataset, trustGateway string
	channelOpts
}

func (a *indexAnchorFlags) add(f *pflag.FlagSet) {
	f.StringVar(&a.channel, "anchor", "", "after publishing the index, anchor it in this channel (see 'lakeproof anchor')")
	f.StringVar(&a.gateway, "gateway", "", "with --anchor: gateway URL (default $LAKEPROOF_GATEWAY, then the key file's)")
	f.StringVar(&a.key, "key", "", "with --anchor: the writer's key file")
	f.StringVar(&a.dataset, "dataset", "", "with --anchor: dataset name (default: the --out directory's name without extension)")
	f.StringVar(&a.trustGateway, "trust-gateway", "", "with --anchor: gateway verifier key (or a file holding it), to check the checkpoint's signature")
}

// runIndexAnchored is index --anchor: it logs in to the gateway first (so
// a bad key or gateway fails before any hashing), writes and publishes the
// index, then anchors it. If anchoring fails after the index is published,
// the error says so and gives the command that finishes the job; the index
// then has no receipt, which 'lakeproof prove' reports as not anchored.
func runIndexAnchored(ctx context.Context, o indexOptions, stdout, stderr io.Writer) error {
	if isS3(o.Out) {
		return usageError{errors.New("--anchor needs a local --out directory (the anchor receipt is stored in it)")}
	}
	if !trail.ValidAddress(o.anchor.channel) {
		return usageError{fmt.Errorf("--anchor %q is not a channel address (80 hex digits, ':', 24 hex digits)", o.anchor.channel)}
	}
	if o.anchor.trustGateway != "" {
		k, err := readGatewayKey(o.anchor.trustGateway)
		if err != nil {
			return err
		}
		o.anchor.trustGateway = k
	}
	c, err := o.anchor.client(ctx)
	if err != nil {
		return err
	}
	res, err := runIndex(ctx, o, stdout, stderr)
	if err != nil {
		return err
	}
	r, err := anchor.Anchor(ctx, o.Out, anchor.Options{Client: c, Channel: o.anchor.channel, Dataset: o.anchor.dataset,
		Tool: "lakeproof " + toolVersion(), GatewayKey: o.anchor.trustGateway})
	switch {
	case errors.Is(err, anchor.ErrIncomplete):
		return anchorError(fmt.Errorf("index published at %s (root %s), anchoring failed: %w", o.Out, res.Root, err))
	case err != nil:
		return anchorError(fmt.Errorf("index published at %s (root %s), anchoring failed: %w; "+
			"run: lakeproof anchor --index %s --channel %s --key %s", o.Out, res.Root, err, o.Out, o.anchor.channel, o.anchor.key))
	}
	if o.Quiet {
		return nil
	}
	return printAnchor(stdout, o.Out, r, c.ID, o.JSON)
}
