package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/lakeproof/lakeproof"
	"github.com/lakeproof/lakeproof/index"
	"github.com/lakeproof/lakeproof/pipeline"
)

type indexOptions struct {
	Source     string
	Out        string
	Workers    int
	SkipErrors bool
	JSON       bool
	Quiet      bool
	Progress   bool // draw a progress bar (set when stderr is a terminal)
	sourceOptions
	anchor indexAnchorFlags // --anchor ADDR --gateway URL --key FILE (anchor.go)
}

// indexResult is the machine summary printed by index --json.
type indexResult struct {
	Root    lakeproof.Hash `json:"root"`
	Files   uint64         `json:"files"`
	Bytes   uint64         `json:"bytes"`
	Errors  uint64         `json:"errors"`
	Source  string         `json:"source"`
	Index   string         `json:"index"`
	Seconds float64        `json:"seconds"`
}

func init() {
	register(func() *cobra.Command {
		var o indexOptions
		var jf indexJobFlags
		c := &cobra.Command{
			Use:   "index SOURCE --out DIR",
			Short: "Hash a dataset into a Merkle root and a Parquet index",
			Long: `Hash every file of SOURCE (a local directory or s3://bucket/prefix) with BLAKE3,
build the dataset's Merkle root, and write the index directory DIR.

DIR must not exist; it appears only when the index is complete. Objects that
cannot be hashed (unreadable, special files, invalid names, changed while being
read) are listed on stderr; the index is then not written (exit 1), unless
--skip-errors is given, which indexes the rest and records them in the index.`,
			Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				o.Source = args[0]
				if o.anchor.channel != "" && jf.active() {
					return usageError{errors.New("--anchor cannot be combined with the batch flags (--previous, --shard, --journal, …); run 'lakeproof anchor' on the published index")}
				}
				o.Progress = !o.Quiet && !o.JSON && isTerminal(cmd.ErrOrStderr())
				if jf.active() {
					return runIndexJob(cmd.Context(), o, jf, cmd.OutOrStdout(), cmd.ErrOrStderr())
				}
				if o.anchor.channel != "" {
					return runIndexAnchored(cmd.Context(), o, cmd.OutOrStdout(), cmd.ErrOrStderr())
				}
				_, err := runIndex(cmd.Context(), o, cmd.OutOrStdout(), cmd.ErrOrStderr())
				return err
			},
		}
		f := c.Flags()
		f.StringVarP(&o.Out, "out", "o", "", "index directory to create, or s3://BUCKET/PATH (built locally, then uploaded); must not exist")
		f.IntVarP(&o.Workers, "workers", "w", 0, "objects hashed concurrently (default: number of CPUs)")
		f.BoolVar(&o.SkipErrors, "skip-errors", false, "index what can be hashed and record the failures in the index")
		f.BoolVar(&o.FollowSymlinks, "follow-symlinks", false, "follow symbolic links (loops are detected and reported)")
		f.BoolVar(&o.JSON, "json", false, "print a JSON summary on stdout")
		f.BoolVarP(&o.Quiet, "quiet", "q", false, "print nothing but errors")
		jf.add(f)
		o.s3Flags.add(f)
		o.anchor.add(f)
		c.MarkFlagRequired("out")
		return c
	})
}

func runIndex(ctx context.Context, o indexOptions, stdout, stderr io.Writer) (indexResult, error) {
	start := time.Now()
	var res indexResult
	if o.Out == "" {
		return res, usageError{errors.New("--out DIR is required")}
	}
	if o.Workers < 0 {
		return res, usageError{fmt.Errorf("--workers %d: must be positive", o.Workers)}
	}
	// An index destined for S3 is built in a local temporary directory,
	// then uploaded (summary.json last, each object with If-None-Match: *).
	out, err := openIndexOut(ctx, o.Out, o.s3Flags)
	if err != nil {
		return res, err
	}
	defer out.close()
	outURI := o.Out
	o.Out = out.Local
	src, err := openSource(ctx, o.Source, o.sourceOptions)
	if err != nil {
		return res, usageError{err}
	}
	if c, ok := src.(io.Closer); ok {
		defer c.Close()
	}
	if err := checkOutOutside(src, o.Out); err != nil {
		return res, err
	}
	w, err := index.Create(o.Out, index.Meta{Source: src.URI(), Tool: "lakeproof " + toolVersion()})
	if err != nil {
		return res, usageError{err}
	}
	defer w.Abort() // no-op after a successful Commit

	var prog pipeline.Progress
	var bar *progressBar
	if o.Progress {
		bar = startProgress(ctx, stderr, src, &prog)
	}
	var nerr uint64
	popts := pipelineDefaults(src.URI(), o.Workers)
	popts.Progress = &prog
	err = pipeline.Run(ctx, src, popts, func(r pipeline.Result) error {
		if r.Err != nil {
			nerr++
			bar.Printf(stderr, "error: %v\n", r.Err)
			return w.AddError(index.ObjectError{Key: r.Err.Key, Op: r.Err.Op, Message: r.Err.Err.Error()})
		}
		return w.Add(index.Entry{
			Key: r.Key, Size: r.Size, ModTime: r.ModTime, Digest: r.Digest,
			ETag: r.ETag, Checksum: r.Checksum,
		})
	})
	bar.Stop()
	if err != nil {
		return res, fmt.Errorf("index %s: %w (nothing written to %s)", src.URI(), err, o.Out)
	}
	if nerr > 0 && !o.SkipErrors {
		return res, invalidError{fmt.Errorf("%d object(s) could not be hashed (listed above); index not written. "+
			"Fix them, or use --skip-errors to index the rest and record them in the index", nerr)}
	}
	sum, err := w.Commit(ctx)
	if err != nil {
		return res, fmt.Errorf("index %s: %w (nothing written to %s)", src.URI(), err, outURI)
	}
	if err := out.publish(ctx); err != nil {
		return res, err
	}
	o.Out = outURI
	res = indexResult{
		Root: sum.Root, Files: sum.Files, Bytes: sum.Bytes, Errors: sum.Errors,
		Source: sum.Source, Index: o.Out, Seconds: time.Since(start).Seconds(),
	}
	slog.Info("index written", "index", o.Out, "root", sum.Root, "files", sum.Files, "bytes", sum.Bytes)
	switch {
	case o.JSON:
		out, _ := json.Marshal(res)
		fmt.Fprintf(stdout, "%s\n", out)
	case !o.Quiet:
		fmt.Fprintf(stdout, "root    %s\nfiles   %d\nbytes   %d (%s)\n", res.Root, res.Files, res.Bytes, humanBytes(int64(res.Bytes)))
		if res.Errors > 0 {
			fmt.Fprintf(stdout, "errors  %d (recorded in %s/%s)\n", res.Errors, o.Out, index.ErrorsFile)
		}
		fmt.Fprintf(stdout, "time    %.2fs (%s/s)\nindex   %s\n", res.Seconds,
			humanBytes(int64(float64(res.Bytes)/max(res.Seconds, 1e-3))), o.Out)
	}
	return res, nil
}

// checkOutOutside refuses an output index inside a local dataset: its
// temporary files would be listed and hashed as part of the dataset, giving
// a root that no later verification can reproduce.
func checkOutOutside(src pipeline.Source, out string) error {
	u, err := url.Parse(src.URI())
	if err != nil || u.Scheme != "file" {
		return nil
	}
	root, err := realPath(filepath.FromSlash(u.Path))
	if err != nil {
		return nil
	}
	parent, err := realPath(filepath.Dir(filepath.Clean(out)))
	if err != nil {
		return nil // index.Create reports a missing parent
	}
	rel, err := filepath.Rel(root, parent)
	if err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return usageError{fmt.Errorf("output %s is inside the dataset %s: the index would be hashed as part of the dataset; choose an --out outside it", out, root)}
	}
	return nil
}
