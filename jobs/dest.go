package jobs

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/zeebo/blake3"

	"github.com/lakeproof/lakeproof/index"
)

// Dest is an index destination in an object store (index: s3://BUCKET/PATH
// in a job file; sources/s3.IndexDir implements it). It holds the versions
// of the local layout (docs/JOBS.md): DEST/VERSION/ is one complete index,
// complete when its summary.json exists.
type Dest interface {
	// String is the destination's URI, ending in '/'.
	String() string
	// Subdirs lists the names of the "directories" directly below the
	// destination, complete versions or not, in any order.
	Subdirs(ctx context.Context) ([]string, error)
	// IndexDir is the index location DEST/name/, for reading; a missing
	// file is an error wrapping fs.ErrNotExist.
	IndexDir(name string) index.Dir
	// Upload publishes the complete local index directory dir as
	// DEST/name/, summary.json last, so that no reader sees it complete
	// before it is. It never overwrites an index: an error wrapping
	// index.ErrExists if one is there.
	Upload(ctx context.Context, dir, name string) error
	// UploadFile adds the local file path to the complete version name
	// (an anchor receipt), under its base name, never over an existing
	// file (an error wrapping index.ErrExists).
	UploadFile(ctx context.Context, name, path string) error
}

// latestRemote returns the name of the newest complete version in dest
// ("" if none).
func latestRemote(ctx context.Context, dest Dest) (string, error) {
	subs, err := dest.Subdirs(ctx)
	if err != nil {
		return "", err
	}
	var names []string
	for _, s := range subs {
		if versionRE.MatchString(s) {
			names = append(names, s)
		}
	}
	sort.Slice(names, func(i, j int) bool { return versionLess(names[i], names[j]) })
	for i := len(names) - 1; i >= 0; i-- {
		f, err := dest.IndexDir(names[i]).Open(ctx, index.SummaryFile)
		if errors.Is(err, fs.ErrNotExist) {
			continue // an upload that did not finish: not a version
		}
		if err != nil {
			return "", fmt.Errorf("%s%s: %w", dest, names[i], err)
		}
		f.Close()
		return names[i], nil
	}
	return "", nil
}

// workDir is the local directory where a run indexes a dataset destined for
// dest before uploading it, and keeps its resume journal: WORK/dest-HASH,
// HASH naming the destination URI.
func workDir(work, dest string) string {
	h := blake3.Sum256([]byte(dest))
	return filepath.Join(work, fmt.Sprintf("dest-%x", h[:8]))
}

// DefaultWorkDir is where runs with remote index destinations work when
// RunOptions.WorkDir is "": the user's cache directory, else the system's
// temporary directory.
func DefaultWorkDir() string {
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "lakeproof", "run")
	}
	return filepath.Join(os.TempDir(), "lakeproof-run")
}

// runRemote runs one dataset whose index destination is in an object store:
// the index is built in a local work directory (journal included, so a
// killed run resumes), then uploaded as a new version; the predecessor is
// read from the destination with ranged GETs.
func runRemote(ctx context.Context, j *Job, d *Dataset, o RunOptions, opts IndexOptions, incremental bool, now func() time.Time, dr *DatasetReport) {
	if o.OpenDest == nil {
		dr.err = fmt.Errorf("index destination %s: this program cannot write to %s destinations", d.Index, strings.SplitN(d.Index, "://", 2)[0])
		return
	}
	if o.ShardCount > 0 || o.Merge {
		dr.err = fmt.Errorf("%w: index destination %s: sharded runs need a shared local (ReadWriteMany) destination for now", ErrShard, d.Index)
		return
	}
	dest, err := o.OpenDest(ctx, d.Index)
	if err != nil {
		dr.err = err
		return
	}
	prev := ""
	if incremental {
		if prev, err = latestRemote(ctx, dest); err != nil {
			dr.err = fmt.Errorf("find previous index in %s: %w", dest, err)
			return
		}
	}
	dr.Action = "index"
	if prev != "" {
		opts.PreviousDir = dest.IndexDir(prev)
		dr.Previous = opts.PreviousDir.String()
	}
	name := now().UTC().Format("20060102T150405Z")
	dr.IndexResult = &IndexResult{Index: dest.String() + name + "/", Source: d.Source}
	if o.DryRun {
		return
	}
	wd := o.WorkDir
	if wd == "" {
		wd = DefaultWorkDir()
	}
	work := workDir(wd, dest.String())
	if err := os.MkdirAll(work, 0o755); err != nil {
		dr.err = fmt.Errorf("work directory for %s: %w", dest, err)
		return
	}
	unlock, err := lockDest(work)
	if err != nil {
		dr.err = err
		return
	}
	defer unlock()
	removeStaleTemps(work)
	for i := 1; ; i++ {
		if _, err := dest.IndexDir(name).Open(ctx, index.SummaryFile); errors.Is(err, fs.ErrNotExist) {
			break
		} else if err != nil {
			dr.err = fmt.Errorf("%s%s: %w", dest, name, err)
			return
		}
		name = fmt.Sprintf("%s-%d", now().UTC().Format("20060102T150405Z"), i)
	}
	src, err := o.Open(ctx, d.Source)
	if err != nil {
		dr.err = err
		return
	}
	if c, ok := src.(interface{ Close() error }); ok {
		defer c.Close()
	}
	if len(d.Include)+len(d.Exclude) > 0 {
		src = filterSource{src, d}
	}
	opts.Out = filepath.Join(work, name)
	opts.Journal = filepath.Join(work, ".journal")
	os.RemoveAll(opts.Out) // a local copy left by a run whose upload failed
	dr.IndexResult, dr.err = Index(ctx, src, opts)
	if dr.err != nil || !dr.IndexResult.Published {
		return
	}
	if err := dest.Upload(ctx, opts.Out, name); err != nil {
		dr.IndexResult.Published = false
		dr.err = fmt.Errorf("upload index %s to %s%s: %w (the index is kept in %s)", name, dest, name, err, opts.Out)
		return
	}
	dr.IndexResult.Index = dest.String() + name + "/"
	// Anchored from the local copy, which is the uploaded bytes; the
	// receipt is uploaded beside the version.
	if anchorVersion(ctx, j, d, o, opts.Out, dr) && dr.Anchor != nil {
		if err := dest.UploadFile(ctx, name, dr.Anchor.Receipt); err != nil {
			dr.err = fmt.Errorf("%w: upload the receipt to %s%s: %w (it is kept in %s)", ErrAnchor, dest, name, err, opts.Out)
			return
		}
		dr.Anchor.Receipt = dest.String() + name + "/" + filepath.Base(dr.Anchor.Receipt)
	}
	if dr.err == nil {
		os.RemoveAll(opts.Out)
	}
}
