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
	// destination's "directory" under ("" = the destination itself; a
	// '/'-separated path), complete indexes or not, in any order.
	Subdirs(ctx context.Context, under string) ([]string, error)
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
	subs, err := dest.Subdirs(ctx, "")
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

// uploadTries bounds the names a new version tries when uploads of other
// runs take them first.
const uploadTries = 5

// freeName returns the first of want, T-1, T-2, … (T: want's timestamp)
// that names no directory in dest: neither a version nor the partial
// upload of another run.
func freeName(ctx context.Context, dest Dest, want string) (string, error) {
	subs, err := dest.Subdirs(ctx, "")
	if err != nil {
		return "", fmt.Errorf("list the versions in %s: %w", dest, err)
	}
	taken := make(map[string]bool, len(subs))
	for _, s := range subs {
		taken[s] = true
	}
	stamp, _, _ := strings.Cut(want, "-")
	name := want
	for i := 1; taken[name]; i++ {
		name = fmt.Sprintf("%s-%d", stamp, i)
	}
	return name, nil
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
	if (o.ShardCount > 0 || o.Merge) && (o.RunID == "" || strings.ContainsAny(o.RunID, "/\\") || o.RunID != strings.TrimSpace(o.RunID)) {
		dr.err = fmt.Errorf("%w: a sharded run needs a run id without '/' (--run-id or LAKEPROOF_RUN_ID) shared by its shards", ErrShard)
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
	shards := "shards/" + o.RunID // DEST/shards/RUN_ID/shard-IIII-of-NNNN/
	name := now().UTC().Format("20060102T150405Z")
	switch {
	case o.Merge:
		dr.Action = "merge"
	case o.ShardCount > 0:
		dr.Action = fmt.Sprintf("shard %d/%d", o.ShardIndex, o.ShardCount)
		name = fmt.Sprintf("%s/shard-%04d-of-%04d", shards, o.ShardIndex, o.ShardCount)
	}
	dr.IndexResult = &IndexResult{Index: dest.String() + name + "/", Source: d.Source}
	if o.DryRun {
		return
	}
	wd := o.WorkDir
	if wd == "" {
		wd = DefaultWorkDir()
	}
	work := workDir(wd, dest.String())
	if o.ShardCount > 0 { // one work directory (and lock) per shard
		work = filepath.Join(work, "shards", o.RunID, fmt.Sprintf("%04d", o.ShardIndex))
	}
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
	exists := func(name string) (bool, error) {
		_, err := dest.IndexDir(name).Open(ctx, index.SummaryFile)
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("%s%s: %w", dest, name, err)
		}
		return true, nil
	}
	if o.ShardCount == 0 { // a new version: a name no directory has, complete or not
		if name, err = freeName(ctx, dest, name); err != nil {
			dr.err = err
			return
		}
	}
	local := filepath.Join(work, filepath.Base(name))
	os.RemoveAll(local) // a local copy left by a run whose upload failed

	if o.Merge {
		subs, err := dest.Subdirs(ctx, shards)
		if err != nil {
			dr.err = fmt.Errorf("list the shards of run %s in %s: %w", o.RunID, dest, err)
			return
		}
		var dirs []index.Dir
		for _, s := range subs {
			if strings.HasPrefix(s, "shard-") {
				dirs = append(dirs, dest.IndexDir(shards+"/"+s))
			}
		}
		if len(dirs) == 0 {
			dr.err = fmt.Errorf("%w: no shard under %s%s/", ErrShard, dest, shards)
			return
		}
		start := time.Now()
		sum, err := MergeDirs(ctx, dirs, local, o.Tool)
		if err != nil {
			dr.err = err
			return
		}
		dr.IndexResult = &IndexResult{Index: local, Source: sum.Source, Root: sum.Root, Files: sum.Files, Bytes: sum.Bytes,
			Errors: sum.Errors, Previous: sum.Previous, Published: true, Seconds: time.Since(start).Seconds()}
		publishRemote(ctx, j, d, o, dest, local, name, true, dr)
		return
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
	opts.Out = local
	opts.Journal = filepath.Join(work, ".journal")
	if o.ShardCount > 0 {
		var plan Plan
		if prev != "" {
			plan, err = PlanFromIndexDir(ctx, opts.PreviousDir, o.ShardCount)
		} else {
			plan, err = PlanFromSource(ctx, src, o.ShardCount)
		}
		if err != nil {
			dr.err = fmt.Errorf("plan shards: %w", err)
			return
		}
		if opts.Shard, err = plan.Shard(o.ShardIndex); err != nil {
			dr.err = err
			return
		}
		opts.Journal = filepath.Join(work, fmt.Sprintf(".journal-%04d", o.ShardIndex))
		if done, err := exists(name); err != nil || done { // a retried pod whose shard was uploaded
			if err == nil {
				err = sameShard(ctx, dest.IndexDir(name), opts.Shard, dr)
			}
			dr.err = err
			return
		}
	}
	dr.IndexResult, dr.err = Index(ctx, src, opts)
	if dr.err != nil || !dr.IndexResult.Published {
		return
	}
	publishRemote(ctx, j, d, o, dest, local, name, o.ShardCount == 0, dr)
}

// sameShard reports (into dr) the shard index already at d, or an error if
// it is not shard sh of the same plan.
func sameShard(ctx context.Context, d index.Dir, sh *index.Shard, dr *DatasetReport) error {
	ix, err := index.OpenDir(ctx, d)
	if err != nil {
		return err
	}
	s := ix.Summary()
	ix.Close()
	if s.Shard == nil || !sameRange(s.Shard, sh) {
		return fmt.Errorf("%w: %s exists and is not shard %d/%d of this plan", ErrShard, d, sh.Index, sh.Count)
	}
	dr.IndexResult = &IndexResult{Index: d.String(), Shard: s.Shard, Root: s.Root, Files: s.Files, Bytes: s.Bytes, Published: true}
	return nil
}

// publishRemote uploads the complete local index as DEST/name/, anchors it
// when it is a new version (not a shard) and the dataset has a channel (from the local copy,
// which is the uploaded bytes; the receipt is then uploaded beside it), and
// removes the local copy once all went well.
//
// The local lock only serialises runs on one machine. Runs on several
// machines may pick the same new version name; every PUT of an upload is
// conditional (If-None-Match: *), so the one that comes second fails on a
// file the other wrote, and a new version then moves on to the next free
// name (at most uploadTries times). Nothing is overwritten; the loser may
// leave a partial directory without summary.json, which is not a version.
func publishRemote(ctx context.Context, j *Job, d *Dataset, o RunOptions, dest Dest, local, name string, version bool, dr *DatasetReport) {
	for try := 1; ; try++ {
		err := dest.Upload(ctx, local, name)
		if err == nil {
			break
		}
		if version && errors.Is(err, index.ErrExists) && try < uploadTries { // a new version: another run took the name
			if next, nerr := freeName(ctx, dest, name); nerr == nil {
				name = next
				continue
			}
		}
		dr.IndexResult.Published = false
		dr.err = fmt.Errorf("upload index %s to %s%s: %w (the index is kept in %s)", name, dest, name, err, local)
		return
	}
	dr.IndexResult.Index = dest.String() + name + "/"
	if version && anchorVersion(ctx, j, d, o, local, dr) && dr.Anchor != nil {
		if err := dest.UploadFile(ctx, name, dr.Anchor.Receipt); err != nil {
			dr.err = fmt.Errorf("%w: upload the receipt to %s%s: %w (it is kept in %s)", ErrAnchor, dest, name, err, local)
			return
		}
		dr.Anchor.Receipt = dest.String() + name + "/" + filepath.Base(dr.Anchor.Receipt)
	}
	if dr.err == nil {
		os.RemoveAll(local)
	}
}
