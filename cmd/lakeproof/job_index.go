package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/pflag"

	"github.com/lakeproof/lakeproof/jobs"
	"github.com/lakeproof/lakeproof/pipeline"
)

// indexJobFlags are the batch flags of 'lakeproof index'. For the lead, in
// cmd/lakeproof/index.go:
//
//	var jf indexJobFlags          // next to 'var o indexOptions'
//	jf.add(f)                     // after the other flags
//	if jf.active() {              // first line of RunE, after o.Source = args[0]
//		return runIndexJob(cmd.Context(), o, jf, cmd.OutOrStdout(), cmd.ErrOrStderr())
//	}
type indexJobFlags struct {
	Previous     string
	VerifySample string
	RehashAll    bool
	AppendOnly   bool
	Shard        string
	Journal      string
}

func (f *indexJobFlags) add(fs *pflag.FlagSet) {
	fs.StringVar(&f.Previous, "previous", "", "previous index of the dataset (directory or s3://BUCKET/PATH): reuse the digests of unchanged objects")
	fs.StringVar(&f.VerifySample, "verify-sample", "", "with --previous, re-hash this share of unchanged objects (e.g. 1%) to catch bit rot")
	fs.BoolVar(&f.RehashAll, "rehash-all", false, "with --previous, re-hash every object and report content changes with unchanged metadata")
	fs.BoolVar(&f.AppendOnly, "append-only", false, "with --previous, refuse (exit 4) if an object of the previous index changed or disappeared")
	fs.StringVar(&f.Shard, "shard", "", "index key range I of N (I/N; N alone takes I from $JOB_COMPLETION_INDEX or $AWS_BATCH_JOB_ARRAY_INDEX) into a shard index for 'lakeproof merge'")
	fs.StringVar(&f.Journal, "journal", "", "resume journal directory: a re-run after a crash does not re-hash what was journaled")
}

func (f *indexJobFlags) active() bool {
	return f.Previous != "" || f.VerifySample != "" || f.RehashAll || f.AppendOnly || f.Shard != "" || f.Journal != ""
}

// runIndexJob is 'lakeproof index' with batch flags.
func runIndexJob(ctx context.Context, o indexOptions, f indexJobFlags, stdout, stderr io.Writer) error {
	if o.Out == "" {
		return usageError{errors.New("--out DIR is required")}
	}
	sample, err := jobs.ParseFraction(f.VerifySample)
	if err != nil {
		return usageError{fmt.Errorf("--verify-sample %w", err)}
	}
	if f.Previous == "" && (sample > 0 || f.RehashAll || f.AppendOnly) {
		return usageError{errors.New("--verify-sample, --rehash-all and --append-only need --previous")}
	}
	out, err := openIndexOut(ctx, o.Out, o.s3Flags) // s3:// is built locally, then uploaded
	if err != nil {
		return err
	}
	defer out.close()
	src, err := openSource(ctx, o.Source, o.sourceOptions)
	if err != nil {
		return usageError{err}
	}
	if c, ok := src.(io.Closer); ok {
		defer c.Close()
	}
	var bar *progressBar
	opts := jobs.IndexOptions{
		Out: out.Local, Tool: "lakeproof " + toolVersion(), Workers: o.Workers, SkipErrors: o.SkipErrors,
		Previous: f.Previous, VerifySample: sample, RehashAll: f.RehashAll, AppendOnly: f.AppendOnly, Journal: f.Journal,
		OnError: func(e *pipeline.ObjectError) { bar.Printf(stderr, "error: %v\n", e) },
	}
	if isS3(f.Previous) { // read in place with ranged GETs
		if opts.PreviousDir, err = openIndexDir(ctx, f.Previous, o.s3Flags); err != nil {
			return usageError{fmt.Errorf("--previous %s: %w", f.Previous, err)}
		}
	}
	if f.Shard != "" {
		i, n, err := jobs.ParseShard(f.Shard, os.Getenv)
		if err != nil {
			return usageError{err}
		}
		var plan jobs.Plan
		switch {
		case opts.PreviousDir != nil:
			plan, err = jobs.PlanFromIndexDir(ctx, opts.PreviousDir, n)
		case f.Previous != "":
			plan, err = jobs.PlanFromIndex(ctx, f.Previous, n)
		default:
			plan, err = jobs.PlanFromSource(ctx, src, n)
		}
		if err != nil {
			return fmt.Errorf("plan shards: %w", err)
		}
		if opts.Shard, err = plan.Shard(i); err != nil {
			return usageError{err}
		}
	}
	if o.Progress { // no scout listing: a re-index may be bound by the listing
		opts.Progress = new(pipeline.Progress)
		bar = startProgress(ctx, stderr, nil, opts.Progress)
	}
	res, err := jobs.Index(ctx, src, opts)
	bar.Stop()
	if err != nil {
		switch {
		case errors.Is(err, jobs.ErrAppendOnly):
			printIndexJob(stdout, res, o.JSON)
			return reported{codedError{exitAppendOnly, err}}
		case errors.Is(err, jobs.ErrObjects):
			return invalidError{err}
		case errors.Is(err, jobs.ErrPredecessor), errors.Is(err, jobs.ErrJournal), errors.Is(err, jobs.ErrShard):
			return usageError{err}
		}
		return err
	}
	if err := out.publish(ctx); err != nil {
		return err
	}
	res.Index = out.URI
	if !o.Quiet || o.JSON {
		printIndexJob(stdout, res, o.JSON)
	}
	if len(res.Mismatches) > 0 {
		return reported{invalidError{fmt.Errorf("%d object(s) changed content without a metadata change (bit rot?); index written", len(res.Mismatches))}}
	}
	return nil
}

func printIndexJob(w io.Writer, res *jobs.IndexResult, asJSON bool) {
	if asJSON {
		b, _ := json.Marshal(res)
		fmt.Fprintf(w, "%s\n", b)
		return
	}
	printRun(w, &jobs.RunReport{Datasets: []jobs.DatasetReport{{Name: res.Source, Action: "index", IndexResult: res}},
		Files: res.Files, Bytes: res.Bytes, Rehashed: res.Rehashed, Reused: res.Reused, Errors: res.Errors, Seconds: res.Seconds})
}
