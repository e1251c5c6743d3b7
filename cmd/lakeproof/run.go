package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/lakeproof/lakeproof/anchor"
	"github.com/lakeproof/lakeproof/jobs"
	"github.com/lakeproof/lakeproof/pipeline"
	s3src "github.com/lakeproof/lakeproof/sources/s3"
)

type runOptions struct {
	Job         string
	DryRun      bool
	Shard       string
	RunID       string
	Merge       bool
	JSON        bool
	Quiet       bool
	MetricsFile string
	WorkDir     string
	Progress    bool // draw a progress line (set when stderr is a terminal)
	sourceOptions
}

func init() {
	register(func() *cobra.Command {
		var o runOptions
		c := &cobra.Command{
			Use:   "run JOB.yaml",
			Short: "Run a job file: index (incrementally) every dataset it lists",
			Long: `Run the job file JOB.yaml (see docs/JOBS.md): for each dataset, add a new
index version under its index directory, reusing the digests of objects
that did not change since the newest version, and print a run report.

A run killed at any moment resumes where it stopped: the next run takes the
digests journaled by the killed one instead of re-reading those objects.

An index destination may be s3://BUCKET/PATH: each version is built (and
journaled) in a local work directory (--work-dir), then uploaded to
PATH/VERSION/ with summary.json last; the predecessor is read from S3.

Sharded runs: --shard I/N (or N, with the index from $JOB_COMPLETION_INDEX
or $AWS_BATCH_JOB_ARRAY_INDEX) indexes one key range of each dataset into
INDEX/shards/RUN_ID/; --merge --run-id RUN_ID then combines the shards into
a new version.

Exit status: 0 when every dataset was indexed, 1 when objects could not be
hashed or a verification sample found bit rot, 4 when an append-only dataset
changed (nothing published for it), 2 on usage or other errors.`,
			Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				o.Job = args[0]
				o.Progress = !o.Quiet && !o.JSON && !o.DryRun && isTerminal(cmd.ErrOrStderr())
				return runJob(cmd.Context(), o, cmd.OutOrStdout(), cmd.ErrOrStderr())
			},
		}
		f := c.Flags()
		f.BoolVar(&o.DryRun, "dry-run", false, "list what would be done, without listing or hashing anything")
		f.StringVar(&o.Shard, "shard", "", "run shard I of N (I/N, or N to take I from $JOB_COMPLETION_INDEX / $AWS_BATCH_JOB_ARRAY_INDEX)")
		f.StringVar(&o.RunID, "run-id", os.Getenv("LAKEPROOF_RUN_ID"), "identifier shared by the shards of one run (default $LAKEPROOF_RUN_ID)")
		f.BoolVar(&o.Merge, "merge", false, "merge the shards of --run-id into a new version of each dataset")
		f.BoolVar(&o.JSON, "json", false, "print the run report as JSON")
		f.BoolVarP(&o.Quiet, "quiet", "q", false, "print nothing but errors")
		f.StringVar(&o.MetricsFile, "metrics-file", "", "write Prometheus metrics to this file (textfile collector)")
		f.BoolVar(&o.FollowSymlinks, "follow-symlinks", false, "follow symbolic links in local datasets")
		f.StringVar(&o.WorkDir, "work-dir", "", "local directory where indexes for s3:// destinations are built and journaled before upload (default "+jobs.DefaultWorkDir()+")")
		o.s3Flags.add(f)
		return c
	})
}

func runJob(ctx context.Context, o runOptions, stdout, stderr io.Writer) error {
	job, err := jobs.LoadJob(o.Job)
	if err != nil {
		return usageError{err}
	}
	if v := os.Getenv("LAKEPROOF_JOURNAL_SYNC"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return usageError{fmt.Errorf("LAKEPROOF_JOURNAL_SYNC=%q: want a duration such as 1s", v)}
		}
		jobs.JournalSyncEvery = d
	}
	var bar *progressBar
	ro := jobs.RunOptions{
		Tool: "lakeproof " + toolVersion(), DryRun: o.DryRun, RunID: o.RunID, Merge: o.Merge,
		Open: func(ctx context.Context, uri string) (pipeline.Source, error) {
			return openSource(ctx, uri, o.sourceOptions)
		},
		OnError: func(ds string, e *pipeline.ObjectError) {
			bar.Printf(stderr, "error: dataset %s: %v\n", ds, e)
		},
		OpenDest: func(ctx context.Context, uri string) (jobs.Dest, error) {
			if !isS3(uri) {
				return nil, fmt.Errorf("index destination %q: want a local directory or s3://BUCKET/PATH", uri)
			}
			return s3src.NewIndexDir(ctx, uri, s3src.Options{Endpoint: o.Endpoint, PathStyle: o.PathStyle})
		},
		WorkDir: o.WorkDir,
		Anchor:  anchorJobVersion,
	}
	if o.Shard != "" {
		if o.Merge {
			return usageError{errors.New("--shard and --merge cannot be combined")}
		}
		if ro.ShardIndex, ro.ShardCount, err = jobs.ParseShard(o.Shard, os.Getenv); err != nil {
			return usageError{err}
		}
	}
	if (o.Shard != "" || o.Merge) && o.RunID == "" {
		return usageError{errors.New("sharded runs need --run-id (or $LAKEPROOF_RUN_ID), the same for every shard and the merge")}
	}
	if o.Progress {
		ro.Progress = new(pipeline.Progress)
		bar = startProgress(ctx, stderr, nil, ro.Progress)
	}
	rep := jobs.RunJob(ctx, job, ro)
	bar.Stop()
	if o.MetricsFile != "" && !o.DryRun {
		if err := jobs.WriteMetrics(o.MetricsFile, rep, time.Now()); err != nil {
			fmt.Fprintf(stderr, "lakeproof: %v\n", err)
		}
	}
	switch {
	case o.JSON:
		b, _ := json.Marshal(rep)
		fmt.Fprintf(stdout, "%s\n", b)
	case !o.Quiet:
		printRun(stdout, rep)
	}
	if err := rep.Err(); err != nil {
		if errors.Is(err, context.Canceled) {
			return err
		}
		if !o.JSON {
			fmt.Fprintf(stderr, "lakeproof: %v\n", err)
		}
		switch {
		case errors.Is(err, jobs.ErrAppendOnly):
			return reported{codedError{exitAppendOnly, err}}
		case errors.Is(err, jobs.ErrObjects):
			return reported{invalidError{err}}
		}
		return reported{usageError{err}}
	}
	for _, d := range rep.Datasets {
		if d.IndexResult != nil && len(d.IndexResult.Mismatches) > 0 {
			return reported{invalidError{fmt.Errorf("dataset %s: %d object(s) changed content without a metadata change (bit rot?)", d.Name, len(d.IndexResult.Mismatches))}}
		}
	}
	return nil
}

// anchorJobVersion anchors a version published by a job (jobs.AnchorFunc)
// as 'lakeproof anchor' does, under the job's dataset name.
func anchorJobVersion(ctx context.Context, dir, dataset string, a *jobs.Anchor) (jobs.AnchorReport, error) {
	c, err := channelOpts{gateway: a.Gateway, key: a.Key}.client(ctx)
	if err != nil {
		return jobs.AnchorReport{}, err
	}
	r, err := anchor.Anchor(ctx, dir, anchor.Options{Client: c, Channel: a.Channel, Dataset: dataset,
		Tool: "lakeproof " + toolVersion(), GatewayKey: a.TrustGateway})
	if err != nil {
		return jobs.AnchorReport{}, err
	}
	return jobs.AnchorReport{Channel: r.Channel, Entry: r.Index, Receipt: filepath.Join(dir, anchor.ReceiptName(a.Channel))}, nil
}

func printRun(w io.Writer, r *jobs.RunReport) {
	for _, d := range r.Datasets {
		res := d.IndexResult
		if res == nil {
			res = &jobs.IndexResult{}
		}
		switch {
		case r.DryRun:
			fmt.Fprintf(w, "dataset %s: would %s %s", d.Name, d.Action, res.Source)
			if d.Previous != "" {
				fmt.Fprintf(w, " (incremental from %s)", d.Previous)
			}
			fmt.Fprintln(w)
			continue
		case d.Error != "":
			fmt.Fprintf(w, "dataset %s: FAILED: %s\n", d.Name, d.Error)
		default:
			fmt.Fprintf(w, "dataset %s: %s -> %s\n  root %s  files %d  bytes %s\n  rehashed %d (%s)  reused %d (%s)  errors %d  %.2fs\n",
				d.Name, d.Action, res.Index, res.Root, res.Files, humanBytes(int64(res.Bytes)),
				res.Rehashed, humanBytes(int64(res.RehashedBytes)), res.Reused, humanBytes(int64(res.ReusedBytes)), res.Errors, res.Seconds)
		}
		if a := d.Anchor; a != nil {
			fmt.Fprintf(w, "  anchored: channel %s entry %d, receipt %s\n", a.Channel, a.Entry, a.Receipt)
		}
		if res.Resumed > 0 {
			fmt.Fprintf(w, "  resumed %d objects from the journal of an interrupted run\n", res.Resumed)
		}
		if res.Sampled > 0 || len(res.Mismatches) > 0 {
			fmt.Fprintf(w, "  verified %d unchanged objects by re-hashing: %d mismatch(es)\n", res.Sampled, len(res.Mismatches))
			for _, k := range res.Mismatches {
				fmt.Fprintf(w, "    bit rot? %s\n", k)
			}
		}
		if res.ChangedCount+res.MissingCount > 0 {
			fmt.Fprintf(w, "  since the previous version: %d changed, %d missing\n", res.ChangedCount, res.MissingCount)
			for _, k := range res.Changed {
				fmt.Fprintf(w, "    changed %s\n", k)
			}
			for _, k := range res.Missing {
				fmt.Fprintf(w, "    missing %s\n", k)
			}
		}
	}
	if !r.DryRun {
		fmt.Fprintf(w, "total: %d dataset(s), %d failed, files %d, bytes %s, rehashed %d, reused %d, errors %d, %.2fs\n",
			len(r.Datasets), r.Failed, r.Files, humanBytes(int64(r.Bytes)), r.Rehashed, r.Reused, r.Errors, r.Seconds)
	}
}
