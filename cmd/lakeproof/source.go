package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/lakeproof/lakeproof/pipeline"
	"github.com/lakeproof/lakeproof/sources/local"
)

// sourceOptions are the flags shared by every command that reads a dataset.
type sourceOptions struct {
	FollowSymlinks bool
	s3Flags
}

// pipelineDefaults returns the pipeline options suited to a source: object
// stores are latency-bound, so they get many concurrent reads, and their
// large objects are streamed through the driver's own parallel ranged GETs
// rather than read with small ReadAt calls.
func pipelineDefaults(uri string, workers int) pipeline.Options {
	o := pipeline.Options{Workers: workers}
	if strings.HasPrefix(uri, "s3://") {
		if o.Workers == 0 {
			o.Workers = 32
		}
		o.LargeObject = -1
	}
	return o
}

// openSource opens the dataset named by uri: a local path, file://PATH, or
// a URI whose scheme has a driver registered in sourceDrivers.
func openSource(ctx context.Context, uri string, opts sourceOptions) (pipeline.Source, error) {
	if scheme, _, ok := strings.Cut(uri, "://"); ok {
		if scheme == "file" {
			return local.New(strings.TrimPrefix(uri, "file://"), local.Options{FollowSymlinks: opts.FollowSymlinks})
		}
		open, ok := sourceDrivers[scheme]
		if !ok {
			return nil, usageError{fmt.Errorf("source %q: unknown scheme %q (supported: a local path, file://, s3://)", uri, scheme)}
		}
		return open(ctx, uri, opts)
	}
	return local.New(uri, local.Options{FollowSymlinks: opts.FollowSymlinks})
}

// sourceDrivers maps URI schemes to drivers; drivers register in init.
var sourceDrivers = map[string]func(ctx context.Context, uri string, opts sourceOptions) (pipeline.Source, error){}
