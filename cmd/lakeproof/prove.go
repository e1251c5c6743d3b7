package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/lakeproof/lakeproof"
	"github.com/lakeproof/lakeproof/anchor"
	"github.com/lakeproof/lakeproof/index"
)

type proveOptions struct {
	Index    string
	s3       s3Flags
	Key      string
	Channel  string // choose the receipt of this channel
	Receipt  string // receipt file (for an index in S3, or one kept elsewhere)
	NoAnchor bool   // print a version 1 bundle even if the index is anchored
}

func init() {
	register(func() *cobra.Command {
		var o proveOptions
		c := &cobra.Command{
			Use:   "prove --index DIR KEY",
			Short: "Print the proof bundle of one file (JSON) on stdout",
			Long: `Print a self-contained JSON proof that the file KEY (its path relative to the
dataset root) is part of the indexed dataset. The proof is checked against the
index's root before it is printed. Exit 1 if KEY is not in the dataset.

If the index has an anchor receipt ('lakeproof anchor', or index --anchor), the
bundle is two-level (format lakeproof/proof/v2): file → dataset root → anchor
entry signed by the writer → channel checkpoint signed by the gateway, all
verifiable offline with 'lakeproof verify --proof'. With several receipts choose
one with --channel; --receipt FILE uses a receipt kept outside the index (e.g.
for an index in S3); --no-anchor prints a version 1 bundle.`,
			Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				o.Key = args[0]
				return runProve(cmd.Context(), o, cmd.OutOrStdout())
			},
		}
		c.Flags().StringVarP(&o.Index, "index", "i", "", "index directory")
		c.Flags().StringVar(&o.Channel, "channel", "", "use the anchor receipt of this channel")
		c.Flags().StringVar(&o.Receipt, "receipt", "", "anchor receipt file (default: the index's anchor-*.json)")
		c.Flags().BoolVar(&o.NoAnchor, "no-anchor", false, "print a version 1 bundle (no anchor level)")
		o.s3.add(c.Flags())
		c.MarkFlagRequired("index")
		return c
	})
}

func runProve(ctx context.Context, o proveOptions, stdout io.Writer) error {
	if o.NoAnchor && (o.Receipt != "" || o.Channel != "") {
		return usageError{errors.New("--no-anchor excludes --receipt and --channel")}
	}
	ix, err := openIndexAt(ctx, o.Index, o.s3)
	if err != nil {
		return err
	}
	defer ix.Close()
	r, haveReceipt, err := proveReceipt(ctx, o)
	if err != nil {
		return err
	}
	b, err := ix.Prove(ctx, o.Key)
	if errors.Is(err, index.ErrKeyNotFound) {
		return invalidError{fmt.Errorf("%w (keys are paths relative to the dataset root %s, '/'-separated; see 'lakeproof ls')", err, ix.Summary().Source)}
	}
	if err != nil {
		return err
	}
	if haveReceipt {
		if b, err = anchoredBundle(ctx, b, r, o.Index); err != nil {
			return err
		}
	}
	_, err = stdout.Write(b.Marshal())
	return err
}

// proveReceipt finds the anchor receipt to use: --receipt, else the local
// index's receipt (of --channel, or its only one). An index without a
// receipt gives a version 1 bundle unless --channel asked for one.
func proveReceipt(ctx context.Context, o proveOptions) (anchor.Receipt, bool, error) {
	switch {
	case o.NoAnchor:
		return anchor.Receipt{}, false, nil
	case o.Receipt != "":
		raw, err := readLimited(o.Receipt, 1<<20)
		if err != nil {
			return anchor.Receipt{}, false, usageError{fmt.Errorf("read anchor receipt: %w", err)}
		}
		r, err := anchor.ParseReceipt(raw)
		if err != nil {
			return anchor.Receipt{}, false, fmt.Errorf("%s: %w", o.Receipt, err)
		}
		if o.Channel != "" && r.Channel != o.Channel {
			return anchor.Receipt{}, false, usageError{fmt.Errorf("receipt %s is for channel %s, not %s", o.Receipt, r.Channel, o.Channel)}
		}
		return r, true, nil
	case isS3(o.Index):
		if o.Channel != "" {
			return anchor.Receipt{}, false, usageError{errors.New("for an index in S3 give the receipt file with --receipt")}
		}
		return anchor.Receipt{}, false, nil
	}
	r, err := anchor.ReceiptFor(o.Index, o.Channel)
	if errors.Is(err, os.ErrNotExist) && o.Channel == "" {
		return anchor.Receipt{}, false, nil
	}
	if err != nil {
		return anchor.Receipt{}, false, usageError{err}
	}
	return r, true, nil
}

// anchoredBundle turns the version 1 bundle b into a two-level bundle with
// receipt r, after checking that r anchors this very dataset (root, tree
// size and, for a local index, the index digest).
func anchoredBundle(ctx context.Context, b *lakeproof.Bundle, r anchor.Receipt, indexLoc string) (*lakeproof.Bundle, error) {
	_, p, err := anchor.ParsePayload(r.Entry)
	if err != nil {
		return nil, fmt.Errorf("anchor receipt of channel %s: %w", r.Channel, err)
	}
	if p.Root != b.Root || p.TreeSize != b.TreeSize {
		return nil, invalidError{fmt.Errorf("%w: the receipt of channel %s anchors root %s of %d files, the index %s has root %s of %d",
			anchor.ErrPayloadMismatch, r.Channel, p.Root, p.TreeSize, indexLoc, b.Root, b.TreeSize)}
	}
	if !isS3(indexLoc) {
		d, _, err := index.SummaryDigest(ctx, index.LocalDir(indexLoc))
		if err != nil {
			return nil, err
		}
		if d != p.IndexDigest {
			return nil, invalidError{fmt.Errorf("%w: the receipt of channel %s anchors index digest %s, %s/%s has %s",
				anchor.ErrPayloadMismatch, r.Channel, p.IndexDigest, indexLoc, index.SummaryFile, d)}
		}
	}
	a := r.Anchored()
	out := *b
	out.Format, out.Anchor = lakeproof.BundleFormatAnchored, &a
	// The bundle must parse as it will be read.
	if _, err := lakeproof.ParseBundle(out.Marshal()); err != nil {
		return nil, fmt.Errorf("two-level bundle for %q: %w", b.Key, err)
	}
	return &out, nil
}
