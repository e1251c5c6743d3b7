package jobs

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"strings"

	"github.com/lakeproof/lakeproof/pipeline"
)

// RangeLister is implemented by sources that can list a key range without
// listing the keys before it (sources/local, sources/s3). Sharded runs use
// it so that N shards together list the dataset about once; a source
// without it is listed from the start and filtered (correct, but shard I
// then lists every key before its range too).
type RangeLister interface {
	// ObjectsRange is Objects restricted to the keys k with start ≤ k and,
	// when end is not "", k < end: same order, same per-object errors (an
	// error is in the range when its key is), same end-of-sequence rules.
	ObjectsRange(ctx context.Context, start, end string) iter.Seq2[pipeline.Object, error]
}

// ChildLister is implemented by sources that can list one "directory" level
// cheaply (a directory read, an S3 delimited listing). PlanFromSource uses
// it to plan shards without listing the whole dataset.
type ChildLister interface {
	// Children yields the entries directly under dir (a key ending in '/',
	// or "" for the dataset root) in key order: objects with their size,
	// sub-directories as keys ending in '/' with size 0.
	Children(ctx context.Context, dir string) iter.Seq2[pipeline.Object, error]
}

// listRange lists the keys of src in [start, end): with ObjectsRange when
// src has it, else by filtering Objects (stopping at end).
func listRange(ctx context.Context, src pipeline.Source, start, end string) iter.Seq2[pipeline.Object, error] {
	if rl, ok := src.(RangeLister); ok {
		return rl.ObjectsRange(ctx, start, end)
	}
	return func(yield func(pipeline.Object, error) bool) {
		for o, err := range src.Objects(ctx) {
			key := o.Key
			var oe *pipeline.ObjectError
			if err != nil && errors.As(err, &oe) && key == "" {
				key = oe.Key
			}
			if err != nil && oe == nil {
				yield(o, err)
				return
			}
			if key < start {
				continue
			}
			if end != "" && key >= end {
				return
			}
			if !yield(o, err) {
				return
			}
		}
	}
}

// Planning without a predecessor: at most planMaxEntries entries of at most
// planMaxDepth directory levels are listed, level by level, until the
// frontier holds planDirsPerShard directories per shard.
const (
	planMaxEntries   = 100_000
	planMaxDepth     = 4
	planDirsPerShard = 8
)

// errPlanTooBig ends a planning listing that exceeds planMaxEntries.
var errPlanTooBig = errors.New("plan: too many entries")

// planFromChildren plans n shards from a few delimited listings: the
// dataset's top level, expanded one directory level at a time (at most
// planMaxDepth) while it has fewer than planDirsPerShard·n directories. The
// resulting units (objects, and directories taken whole) are weighted
// like PlanFromIndex weights objects when the frontier holds objects only
// (then the plan is exactly balanced by bytes); when it holds directories,
// whose sizes a delimited listing does not give, every unit weighs the
// same, so shards get equal numbers of directories (balanced when the
// directories are alike, such as date partitions). ok is false when the
// listing would exceed planMaxEntries entries: the caller then plans from a
// full listing.
func planFromChildren(ctx context.Context, cl ChildLister, n int) (p Plan, ok bool, err error) {
	level := func(dir string, budget int) ([]pipeline.Object, error) {
		var out []pipeline.Object
		for o, err := range cl.Children(ctx, dir) {
			if err != nil {
				return nil, fmt.Errorf("plan shards: list %q: %w", dir, err)
			}
			if len(out) >= budget {
				return nil, errPlanTooBig
			}
			out = append(out, o)
		}
		return out, nil
	}
	units, err := level("", planMaxEntries)
	if errors.Is(err, errPlanTooBig) {
		return Plan{}, false, nil
	}
	if err != nil {
		return Plan{}, false, err
	}
	isDir := func(o pipeline.Object) bool { return strings.HasSuffix(o.Key, "/") }
	for depth := 1; depth < planMaxDepth; depth++ {
		dirs := 0
		for _, u := range units {
			if isDir(u) {
				dirs++
			}
		}
		if dirs == 0 || dirs >= planDirsPerShard*n {
			break
		}
		var next []pipeline.Object
		for _, u := range units {
			if !isDir(u) {
				next = append(next, u)
				continue
			}
			kids, err := level(u.Key, planMaxEntries-len(next))
			if errors.Is(err, errPlanTooBig) {
				return Plan{}, false, nil
			}
			if err != nil {
				return Plan{}, false, err
			}
			next = append(next, kids...)
		}
		units = next
	}
	dirs := false
	for _, u := range units {
		dirs = dirs || isDir(u)
	}
	weight := func(u pipeline.Object) uint64 {
		if dirs {
			return 1
		}
		return uint64(max(u.Size, 0)) + objectWeight
	}
	var total uint64
	for _, u := range units {
		total += weight(u)
	}
	sp := &splitter{n: n, total: total}
	for _, u := range units {
		sp.add(u.Key, weight(u))
	}
	return sp.finish(), true, nil
}
