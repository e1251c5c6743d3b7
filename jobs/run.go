package jobs

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/lakeproof/lakeproof/index"
	"github.com/lakeproof/lakeproof/pipeline"
)

// RunOptions tune RunJob.
type RunOptions struct {
	// Open opens a source URI (the CLI's openSource).
	Open func(ctx context.Context, uri string) (pipeline.Source, error)
	Tool string
	// DryRun plans without listing or hashing.
	DryRun bool
	// ShardIndex/ShardCount, when ShardCount > 0, run one shard of each
	// dataset into DEST/shards/RunID/; Merge merges them.
	ShardIndex, ShardCount int
	RunID                  string
	Merge                  bool
	// Now gives version names; nil means time.Now.
	Now func() time.Time
	// OnError is told of every object error.
	OnError func(dataset string, e *pipeline.ObjectError)
	// Progress, if not nil, is shared by the datasets' pipelines.
	Progress *pipeline.Progress
	// OpenDest opens an index destination URI that is not a local path
	// (s3://…); nil refuses such destinations.
	OpenDest func(ctx context.Context, uri string) (Dest, error)
	// WorkDir is the local directory where indexes for remote destinations
	// are built and journaled before upload; "" means DefaultWorkDir().
	WorkDir string
	// Anchor anchors published versions of datasets with an anchor
	// channel; nil fails those datasets (after publishing).
	Anchor AnchorFunc
}

// DatasetReport is the outcome of one dataset of a run.
type DatasetReport struct {
	Name     string `json:"name"`
	Action   string `json:"action"` // "index", "shard", "merge", or for dry runs what would be done
	Previous string `json:"previous_index,omitempty"`
	*IndexResult
	Anchor *AnchorReport `json:"anchor,omitempty"`
	Error  string        `json:"error,omitempty"`
	err    error
}

// RunReport is the outcome of a run.
type RunReport struct {
	Job      string          `json:"job"`
	DryRun   bool            `json:"dry_run,omitempty"`
	Datasets []DatasetReport `json:"datasets"`
	Files    uint64          `json:"files"`
	Bytes    uint64          `json:"bytes"`
	Rehashed uint64          `json:"rehashed"`
	Reused   uint64          `json:"reused"`
	Errors   uint64          `json:"errors"`
	Failed   int             `json:"failed"`
	Seconds  float64         `json:"seconds"`
}

// Err returns the first dataset error, preferring append-only violations
// (they get their own exit code).
func (r *RunReport) Err() error {
	var first error
	for _, d := range r.Datasets {
		if d.err != nil {
			if errors.Is(d.err, ErrAppendOnly) {
				return fmt.Errorf("dataset %s: %w", d.Name, d.err)
			}
			if first == nil {
				first = fmt.Errorf("dataset %s: %w", d.Name, d.err)
			}
		}
	}
	return first
}

var versionRE = regexp.MustCompile(`^[0-9]{8}T[0-9]{6}Z(-[0-9]+)?$`)

// Latest returns the newest complete index version under dest ("" if none).
func Latest(dest string) (string, error) {
	ents, err := os.ReadDir(dest)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	var names []string
	for _, e := range ents {
		if e.IsDir() && versionRE.MatchString(e.Name()) {
			if _, err := os.Stat(filepath.Join(dest, e.Name(), index.SummaryFile)); err == nil {
				names = append(names, e.Name())
			}
		}
	}
	if len(names) == 0 {
		return "", nil
	}
	sort.Slice(names, func(i, j int) bool { return versionLess(names[i], names[j]) })
	return filepath.Join(dest, names[len(names)-1]), nil
}

func versionLess(a, b string) bool {
	at, as, _ := strings.Cut(a, "-")
	bt, bs, _ := strings.Cut(b, "-")
	if at != bt {
		return at < bt
	}
	return len(as) < len(bs) || len(as) == len(bs) && as < bs
}

// newVersion returns a fresh version path under dest.
func newVersion(dest string, now time.Time) string {
	base := now.UTC().Format("20060102T150405Z")
	p := filepath.Join(dest, base)
	for i := 1; index.Exists(p); i++ {
		p = filepath.Join(dest, fmt.Sprintf("%s-%d", base, i))
	}
	return p
}

// RunJob runs every dataset of j and returns the report; a failed dataset
// does not stop the others. See docs/JOBS.md for the directory layout.
func RunJob(ctx context.Context, j *Job, o RunOptions) *RunReport {
	start := time.Now()
	now := o.Now
	if now == nil {
		now = time.Now
	}
	rep := &RunReport{Job: j.File, DryRun: o.DryRun}
	for i := range j.Datasets {
		d := &j.Datasets[i]
		dr := runDataset(ctx, j, d, o, now)
		if dr.err != nil {
			dr.Error = dr.err.Error()
			rep.Failed++
		}
		if r := dr.IndexResult; r != nil && r.Published {
			rep.Files += r.Files
			rep.Bytes += r.Bytes
			rep.Rehashed += r.Rehashed
			rep.Reused += r.Reused
		}
		if dr.IndexResult != nil {
			rep.Errors += dr.IndexResult.Errors
		}
		rep.Datasets = append(rep.Datasets, dr)
	}
	rep.Seconds = time.Since(start).Seconds()
	return rep
}

func shardDir(dest, runID string) string { return filepath.Join(dest, "shards", runID) }

func runDataset(ctx context.Context, j *Job, d *Dataset, o RunOptions, now func() time.Time) (dr DatasetReport) {
	dr.Name = d.Name
	workers, mode, sample := j.Policy(d)
	opts := IndexOptions{
		Tool: o.Tool, Workers: workers, SkipErrors: d.SkipErrors, AppendOnly: d.AppendOnly,
		RehashAll: mode == ModeRehashAll, VerifySample: sample, Progress: o.Progress,
	}
	if o.OnError != nil {
		opts.OnError = func(e *pipeline.ObjectError) { o.OnError(d.Name, e) }
	}
	if strings.Contains(d.Index, "://") {
		runRemote(ctx, j, d, o, opts, mode != ModeOff, now, &dr)
		return dr
	}
	prev := ""
	if mode != ModeOff {
		var err error
		if prev, err = Latest(d.Index); err != nil {
			dr.err = fmt.Errorf("find previous index in %s: %w", d.Index, err)
			return dr
		}
	}
	dr.Previous = prev
	if o.ShardCount > 0 && o.RunID == "" {
		dr.err = fmt.Errorf("%w: a sharded run needs a run id (--run-id or LAKEPROOF_RUN_ID) shared by its shards", ErrShard)
		return dr
	}
	if o.Merge {
		dr.Action = "merge"
		dirs, err := filepath.Glob(filepath.Join(shardDir(d.Index, o.RunID), "shard-*"))
		if err != nil || len(dirs) == 0 {
			dr.err = fmt.Errorf("%w: no shard under %s", ErrShard, shardDir(d.Index, o.RunID))
			return dr
		}
		out := newVersion(d.Index, now())
		dr.IndexResult = &IndexResult{Index: out}
		if o.DryRun {
			return dr
		}
		unlock, err := lockDest(d.Index)
		if err != nil {
			dr.err = err
			return dr
		}
		defer unlock()
		start := time.Now()
		sum, err := Merge(ctx, dirs, out, o.Tool)
		if err != nil {
			dr.err = err
			return dr
		}
		dr.IndexResult = &IndexResult{Index: out, Source: sum.Source, Root: sum.Root, Files: sum.Files, Bytes: sum.Bytes,
			Errors: sum.Errors, Previous: sum.Previous, Published: true, Seconds: time.Since(start).Seconds()}
		// The shards are redundant once merged into a published version.
		os.RemoveAll(shardDir(d.Index, o.RunID))
		anchorVersion(ctx, j, d, o, out, &dr)
		return dr
	}
	if prev != "" {
		opts.Previous = prev
	}
	if o.DryRun {
		dr.Action = "index"
		if o.ShardCount > 0 {
			dr.Action = fmt.Sprintf("shard %d/%d", o.ShardIndex, o.ShardCount)
		}
		dr.IndexResult = &IndexResult{Source: d.Source}
		return dr
	}
	src, err := o.Open(ctx, d.Source)
	if err != nil {
		dr.err = err
		return dr
	}
	if c, ok := src.(interface{ Close() error }); ok {
		defer c.Close()
	}
	if len(d.Include)+len(d.Exclude) > 0 {
		src = filterSource{src, d}
	}
	if err := os.MkdirAll(d.Index, 0o755); err != nil {
		dr.err = err
		return dr
	}
	if o.ShardCount == 0 {
		unlock, err := lockDest(d.Index)
		if err != nil {
			dr.err = err
			return dr
		}
		defer unlock()
	}
	if o.ShardCount > 0 {
		dr.Action = fmt.Sprintf("shard %d/%d", o.ShardIndex, o.ShardCount)
		var plan Plan
		if prev != "" {
			plan, err = PlanFromIndex(ctx, prev, o.ShardCount)
		} else {
			plan, err = PlanFromSource(ctx, src, o.ShardCount)
		}
		if err != nil {
			dr.err = fmt.Errorf("plan shards: %w", err)
			return dr
		}
		if opts.Shard, err = plan.Shard(o.ShardIndex); err != nil {
			dr.err = err
			return dr
		}
		sd := shardDir(d.Index, o.RunID)
		if err := os.MkdirAll(sd, 0o755); err != nil {
			dr.err = err
			return dr
		}
		opts.Out = filepath.Join(sd, fmt.Sprintf("shard-%04d-of-%04d", o.ShardIndex, o.ShardCount))
		opts.Journal = filepath.Join(sd, fmt.Sprintf(".journal-%04d", o.ShardIndex))
		if index.Exists(opts.Out) { // a retried pod whose shard was already done
			dr.IndexResult = &IndexResult{Index: opts.Out, Shard: opts.Shard}
			ix, err := index.Open(ctx, opts.Out)
			if err != nil {
				dr.err = err
				return dr
			}
			s := ix.Summary()
			ix.Close()
			if s.Shard == nil || !sameRange(s.Shard, opts.Shard) {
				dr.err = fmt.Errorf("%w: %s exists and is not shard %d/%d of this plan", ErrShard, opts.Out, o.ShardIndex, o.ShardCount)
				return dr
			}
			dr.IndexResult.Root, dr.IndexResult.Files, dr.IndexResult.Bytes, dr.IndexResult.Published = s.Root, s.Files, s.Bytes, true
			return dr
		}
	} else {
		dr.Action = "index"
		opts.Out = newVersion(d.Index, now())
		opts.Journal = filepath.Join(d.Index, ".journal")
		removeStaleTemps(d.Index)
	}
	dr.IndexResult, dr.err = Index(ctx, src, opts)
	if dr.err == nil && dr.IndexResult.Published && o.ShardCount == 0 {
		anchorVersion(ctx, j, d, o, opts.Out, &dr)
	}
	return dr
}

// removeStaleTemps removes the temporary directories of index versions
// that a killed run left behind (never a complete index: those have no
// leading dot).
func removeStaleTemps(dest string) {
	tmps, _ := filepath.Glob(filepath.Join(dest, ".*.tmp-*"))
	for _, t := range tmps {
		if base := filepath.Base(t); versionRE.MatchString(strings.SplitN(base[1:], ".tmp-", 2)[0]) {
			os.RemoveAll(t)
		}
	}
}

// filterSource keeps the objects a dataset's globs select.
type filterSource struct {
	pipeline.Source
	d *Dataset
}

func (s filterSource) Objects(ctx context.Context) iter.Seq2[pipeline.Object, error] {
	return s.filter(s.Source.Objects(ctx))
}

// ObjectsRange filters the source's range listing (RangeLister).
func (s filterSource) ObjectsRange(ctx context.Context, start, end string) iter.Seq2[pipeline.Object, error] {
	return s.filter(listRange(ctx, s.Source, start, end))
}

func (s filterSource) filter(seq iter.Seq2[pipeline.Object, error]) iter.Seq2[pipeline.Object, error] {
	return func(yield func(pipeline.Object, error) bool) {
		for o, err := range seq {
			key := o.Key
			var oe *pipeline.ObjectError
			if err != nil {
				if !errors.As(err, &oe) {
					yield(o, err)
					return
				}
				if key == "" {
					key = oe.Key
				}
			}
			if !s.d.Selects(key) {
				continue
			}
			if !yield(o, err) {
				return
			}
		}
	}
}
