package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/lakeproof/lakeproof/index"
	"github.com/lakeproof/lakeproof/jobs"
)

type mergeOptions struct {
	Shards []string
	Out    string
	JSON   bool
	s3Flags
}

func init() {
	register(func() *cobra.Command {
		var o mergeOptions
		c := &cobra.Command{
			Use:   "merge SHARD_DIR... --out DIR",
			Short: "Combine the shard indexes of a sharded run into one index",
			Long: `Combine the partial indexes written by 'lakeproof index --shard I/N' or
'lakeproof run --shard I/N' (one per shard) into the complete index DIR: the
same entries and root a single run gives. Every shard of the run must be
given once; missing, duplicated or overlapping shards, and shards of another
run, plan or dataset are refused. Shards and DIR may be local directories or
s3://BUCKET/PATH locations (shards are read in place with ranged GETs; an
s3:// DIR is built locally, then uploaded).`,
			Args: cobra.MinimumNArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				o.Shards = args
				return runMerge(cmd.Context(), o, cmd.OutOrStdout())
			},
		}
		c.Flags().StringVarP(&o.Out, "out", "o", "", "index directory to create, or s3://BUCKET/PATH (built locally, then uploaded); must not exist")
		c.Flags().BoolVar(&o.JSON, "json", false, "print a JSON summary")
		o.s3Flags.add(c.Flags())
		c.MarkFlagRequired("out")
		return c
	})
}

func runMerge(ctx context.Context, o mergeOptions, stdout io.Writer) error {
	if o.Out == "" {
		return usageError{errors.New("--out DIR is required")}
	}
	start := time.Now()
	out, err := openIndexOut(ctx, o.Out, o.s3Flags)
	if err != nil {
		return err
	}
	defer out.close()
	dirs := make([]index.Dir, len(o.Shards))
	for i, s := range o.Shards {
		if dirs[i], err = openIndexDir(ctx, s, o.s3Flags); err != nil {
			return usageError{fmt.Errorf("merge: shard %s: %w", s, err)}
		}
	}
	sum, err := jobs.MergeDirs(ctx, dirs, out.Local, "lakeproof "+toolVersion())
	if err != nil {
		if errors.Is(err, jobs.ErrShard) {
			return usageError{err}
		}
		return err
	}
	if err := out.publish(ctx); err != nil {
		return err
	}
	res := indexResult{Root: sum.Root, Files: sum.Files, Bytes: sum.Bytes, Errors: sum.Errors,
		Source: sum.Source, Index: o.Out, Seconds: time.Since(start).Seconds()}
	if o.JSON {
		b, _ := json.Marshal(res)
		fmt.Fprintf(stdout, "%s\n", b)
		return nil
	}
	fmt.Fprintf(stdout, "root    %s\nfiles   %d\nbytes   %d\nshards  %d\ntime    %.2fs\nindex   %s\n",
		res.Root, res.Files, res.Bytes, len(o.Shards), res.Seconds, o.Out)
	return nil
}
