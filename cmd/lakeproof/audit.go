package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/lakeproof/lakeproof/jobs"
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
			Use:   "audit SOURCE --index DIR",
			Short: "Compare a dataset with an index: matched, changed, missing, extra, moved",
			Long: `Hash every object of SOURCE and compare it with the index DIR.

Each key is matched (same size and digest), changed, missing (in the index,
gone from SOURCE), extra (new in SOURCE) or moved (a missing key's content
found under an extra key). Memory stays bounded: the listing and the index
are merge-joined in key order; only unmatched keys wait to be paired as moves,
at most --max-pending of them (beyond that they are reported as missing/extra).

Exit status: 0 when everything matches, 1 when anything differs or could not
be read, 4 with --append-only when an object of the index changed or
disappeared (new objects are allowed), 2 on usage or I/O errors.`,
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
		c.MarkFlagRequired("index")
		return c
	})
}

func runAudit(ctx context.Context, o auditOptions, stdout io.Writer) error {
	if o.Index == "" {
		return usageError{errors.New("--index DIR is required")}
	}
	if o.Workers < 0 || o.MaxItems < 0 || o.MaxPending < 0 {
		return usageError{errors.New("--workers, --max-items and --max-pending must not be negative")}
	}
	ix, err := openIndexAt(ctx, o.Index, s3Flags{})
	if err != nil {
		return usageError{err}
	}
	defer ix.Close()
	src, err := openSource(ctx, o.Source, o.sourceOptions)
	if err != nil {
		return usageError{err}
	}
	out := auditOutput{Index: o.Index, AppendOnly: o.AppendOnly, Items: []jobs.Item{}}
	var pr *jobs.ParquetReport
	if o.Report != "" {
		if pr, err = jobs.NewParquetReport(o.Report); err != nil {
			return usageError{err}
		}
	}
	rep, err := jobs.Audit(ctx, src, ix, jobs.AuditOptions{
		Workers: o.Workers, MaxPending: o.MaxPending,
		OnItem: func(it jobs.Item) error {
			if pr != nil {
				if err := pr.Add(it); err != nil {
					return err
				}
			}
			if len(out.Items) < o.MaxItems {
				out.Items = append(out.Items, it)
			} else {
				out.ItemsTruncated = true
			}
			return nil
		},
	})
	if err != nil {
		if pr != nil {
			pr.Abort()
		}
		return err
	}
	if pr != nil {
		if err := pr.Close(); err != nil {
			return err
		}
	}
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
	fmt.Fprintf(w, "matched  %d\nchanged  %d\nmissing  %d\nextra    %d\nmoved    %d\nerrors   %d\n",
		r.Matched, r.Changed, r.Missing, r.Extra, r.Moved, r.Errors)
	if r.MovedTruncated {
		fmt.Fprintln(w, "note     too many unmatched keys to pair all moves; some moves are counted as missing + extra")
	}
	for _, it := range o.Items {
		switch it.Status {
		case jobs.Moved:
			fmt.Fprintf(w, "%-8s %s (from %s)\n", it.Status, it.Key, it.From)
		case jobs.Failed:
			fmt.Fprintf(w, "%-8s %s: %s\n", it.Status, it.Key, it.Error)
		default:
			fmt.Fprintf(w, "%-8s %s\n", it.Status, it.Key)
		}
	}
	if o.ItemsTruncated {
		fmt.Fprintln(w, "...      (more differences not listed; see --max-items)")
	}
	switch {
	case r.Clean():
		fmt.Fprintf(w, "result   OK: every object matches\n")
	case o.AppendOnly && r.AppendOnlyViolated():
		fmt.Fprintf(w, "result   APPEND-ONLY VIOLATION: objects of the index changed or disappeared\n")
	default:
		fmt.Fprintf(w, "result   DIFFERENT\n")
	}
}
