package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/lakeproof/lakeproof/index"
	"github.com/lakeproof/lakeproof/jobs"
	"github.com/lakeproof/lakeproof/pipeline"
)

type auditOptions struct {
	Source     string
	Index      string
	Workers    int
	JSON       bool
	AppendOnly bool
	MaxItems   int
	MaxPending int
	Report     string // Parquet report path
	Ch         auditChannelOptions
	sourceOptions
}

// auditOutput is what audit --json prints.
type auditOutput struct {
	*jobs.AuditReport
	Index          string      `json:"index"`
	Items          []jobs.Item `json:"items"`
	ItemsTruncated bool        `json:"items_truncated,omitempty"`
	AppendOnly     bool        `json:"append_only,omitempty"`
}

func init() {
	register(func() *cobra.Command {
		var o auditOptions
		c := &cobra.Command{
			Use:   "audit SOURCE (--index DIR | --channel ADDR --key FILE --trust-gateway KEY --trust-writer DID [--index DIR])",
			Short: "Compare a dataset with an index, or with the root anchored on a channel",
			Long: `Hash every object of SOURCE and compare it with the index DIR.

Each key is matched (same size and digest), changed, missing (in the index,
gone from SOURCE), extra (new in SOURCE) or moved (a missing key's content
found under an extra key). Memory stays bounded: the listing and the index
are merge-joined in key order; only unmatched keys wait to be paired as moves,
at most --max-pending of them (beyond that they are reported as missing/extra).

With --channel ADDR (a reader's check of a received copy): find the dataset's
latest anchor on the channel (signed by a --trust-writer DID, in a checkpoint
signed by the --trust-gateway key; anchors by other writers are ignored),
hash SOURCE and compare its root with the anchored root. --dataset NAME picks
the dataset (default: the --index directory's base name, else the only dataset
anchored on the channel). With --index DIR, which must be the anchored index
(its summary.json digest is checked), differences are listed per key.

Exit status: 0 when everything matches, 1 when anything differs or could not
be read (with --channel also: no trusted anchor, a bad checkpoint signature,
an entry not in the signed log, --index not the anchored index), 4 with
--append-only when an object of the index changed or disappeared (new
objects are allowed), 2 on usage or I/O errors.`,
			Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				o.Source = args[0]
				return runAudit(cmd.Context(), o, cmd.OutOrStdout())
			},
		}
		f := c.Flags()
		f.StringVar(&o.Index, "index", "", "index directory to compare with")
		f.IntVarP(&o.Workers, "workers", "w", 0, "objects hashed concurrently (default: number of CPUs)")
		f.BoolVar(&o.JSON, "json", false, "print the report as JSON")
		f.BoolVar(&o.AppendOnly, "append-only", false, "only changed or missing objects fail (exit 4); new objects are fine")
		f.IntVar(&o.MaxItems, "max-items", 1000, "differences listed in the report (counts are always exact)")
		f.IntVar(&o.MaxPending, "max-pending", jobs.DefaultMaxPending, "unmatched keys held in memory to detect moves")
		f.StringVar(&o.Report, "report-parquet", "", "also write every difference (not only --max-items) to this Parquet file")
		f.BoolVar(&o.FollowSymlinks, "follow-symlinks", false, "follow symbolic links")
		o.s3Flags.add(f)
		f.StringVar(&o.Ch.Channel, "channel", "", "compare with the latest root anchored on this channel")
		f.StringVar(&o.Ch.Gateway, "gateway", "", "gateway URL (with --channel; default $LAKEPROOF_GATEWAY or the key file's)")
		f.StringVar(&o.Ch.Key, "key", "", "key file of the reading identity (with --channel)")
		f.StringVar(&o.Ch.JWT, "jwt", "", "bearer token instead of --key (with --channel)")
		f.StringVar(&o.Ch.APIKey, "api-key", "", "gateway api key (default $LAKEPROOF_API_KEY)")
		f.StringVar(&o.Ch.Dataset, "dataset", "", "dataset name of the anchor (with --channel)")
		f.StringVar(&o.Ch.TrustFile, "trust", "", "trust file: {\"gateways\":[KEY…],\"writers\":[DID…]} (with --channel)")
		f.StringArrayVar(&o.Ch.TrustGateways, "trust-gateway", nil, "gateway note verifier key, or a file holding it (repeatable)")
		f.StringArrayVar(&o.Ch.TrustWriters, "trust-writer", nil, "DID of a writer whose anchors are trusted (repeatable)")
		return c
	})
}

func runAudit(ctx context.Context, o auditOptions, stdout io.Writer) error {
	if o.Ch.Channel != "" {
		return runAuditChannel(ctx, o, stdout)
	}
	if o.Index == "" {
		return usageError{errors.New("--index DIR (or --channel ADDR) is required")}
	}
	if ch := o.Ch; ch.Gateway != "" || ch.Key != "" || ch.JWT != "" || ch.Dataset != "" || ch.TrustFile != "" || len(ch.TrustGateways) > 0 || len(ch.TrustWriters) > 0 {
		return usageError{errors.New("--gateway, --key, --jwt, --dataset and --trust* only apply with --channel ADDR")}
	}
	if o.Workers < 0 || o.MaxItems < 0 || o.MaxPending < 0 {
		return usageError{errors.New("--workers, --max-items and --max-pending must not be negative")}
	}
	ix, err := openIndexAt(ctx, o.Index, o.s3Flags)
	if err != nil {
		return usageError{err}
	}
	defer ix.Close()
	src, err := openSource(ctx, o.Source, o.sourceOptions)
	if err != nil {
		return usageError{err}
	}
	out := auditOutput{Index: o.Index, AppendOnly: o.AppendOnly, Items: []jobs.Item{}}
	rep, items, truncated, err := auditReport(ctx, src, ix, o)
	if err != nil {
		return err
	}
	out.Items, out.ItemsTruncated = items, truncated
	out.AuditReport = rep
	if o.JSON {
		b, _ := json.Marshal(out)
		fmt.Fprintf(stdout, "%s\n", b)
	} else {
		printAudit(stdout, &out)
	}
	switch {
	case o.AppendOnly && rep.AppendOnlyViolated():
		return reported{codedError{exitAppendOnly, fmt.Errorf("%w: %d changed, %d missing, %d moved",
			jobs.ErrAppendOnly, rep.Changed, rep.Missing, rep.Moved)}}
	case o.AppendOnly && rep.Errors == 0:
		return nil
	case !rep.Clean():
		return reported{invalidError{errors.New("the dataset does not match the index")}}
	}
	return nil
}

func printAudit(w io.Writer, o *auditOutput) {
	r := o.AuditReport
	fmt.Fprintf(w, "source   %s\nindex    %s (root %s)\n", r.Source, o.Index, r.IndexRoot)
	printAuditDiff(w, r, o.Items, o.ItemsTruncated)
	switch {
	case r.Clean():
		fmt.Fprintf(w, "result   OK: every object matches\n")
	case o.AppendOnly && r.AppendOnlyViolated():
		fmt.Fprintf(w, "result   APPEND-ONLY VIOLATION: objects of the index changed or disappeared\n")
	default:
		fmt.Fprintf(w, "result   DIFFERENT\n")
	}
}

// auditReport compares src with ix (jobs.Audit), keeping the first
// o.MaxItems differences and writing all of them to the --report-parquet
// file when one is asked for (removed again if the audit fails).
func auditReport(ctx context.Context, src pipeline.Source, ix *index.Index, o auditOptions) (rep *jobs.AuditReport, items []jobs.Item, truncated bool, err error) {
	var pr *jobs.ParquetReport
	if o.Report != "" {
		if pr, err = jobs.NewParquetReport(o.Report); err != nil {
			return nil, nil, false, usageError{err}
		}
	}
	items = []jobs.Item{}
	rep, err = jobs.Audit(ctx, src, ix, jobs.AuditOptions{
		Workers: o.Workers, MaxPending: o.MaxPending,
		OnItem: func(it jobs.Item) error {
			if pr != nil {
				if err := pr.Add(it); err != nil {
					return err
				}
			}
			if len(items) < o.MaxItems {
				items = append(items, it)
			} else {
				truncated = true
			}
			return nil
		},
	})
	if err != nil {
		if pr != nil {
			pr.Abort()
		}
		return nil, nil, false, err
	}
	if pr != nil {
		if err := pr.Close(); err != nil {
			return nil, nil, false, err
		}
	}
	return rep, items, truncated, nil
}

// printAuditDiff prints the counts of an audit report and the differences
// kept (items; truncated when --max-items cut the list).
func printAuditDiff(w io.Writer, r *jobs.AuditReport, items []jobs.Item, truncated bool) {
	fmt.Fprintf(w, "matched  %d\nchanged  %d\nmissing  %d\nextra    %d\nmoved    %d\nerrors   %d\n",
		r.Matched, r.Changed, r.Missing, r.Extra, r.Moved, r.Errors)
	if r.MovedTruncated {
		fmt.Fprintln(w, "note     too many unmatched keys to pair all moves; some moves are counted as missing + extra")
	}
	for _, it := range items {
		switch it.Status {
		case jobs.Moved:
			fmt.Fprintf(w, "%-8s %s (from %s)\n", it.Status, it.Key, it.From)
		case jobs.Failed:
			fmt.Fprintf(w, "%-8s %s: %s\n", it.Status, it.Key, it.Error)
		default:
			fmt.Fprintf(w, "%-8s %s\n", it.Status, it.Key)
		}
	}
	if truncated {
		fmt.Fprintln(w, "...      (more differences not listed; see --max-items)")
	}
}
