package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/pflag"

	"github.com/lakeproof/lakeproof/index"
	"github.com/lakeproof/lakeproof/pipeline"
	s3src "github.com/lakeproof/lakeproof/sources/s3"
)

// S3 datasets (s3://BUCKET/PREFIX) are read with the AWS SDK's default
// configuration chain: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/
// AWS_SESSION_TOKEN, AWS_PROFILE and the shared config files, AWS_REGION,
// AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL for S3-compatible servers,
// AWS_CA_BUNDLE, AWS_MAX_ATTEMPTS. See package sources/s3.
func init() {
	sourceDrivers["s3"] = func(ctx context.Context, uri string, o sourceOptions) (pipeline.Source, error) {
		return openS3(ctx, uri, o.s3Flags)
	}
}

// s3Flags are the command-line settings of S3 datasets.
type s3Flags struct {
	Endpoint  string
	PathStyle bool
}

// add defines the S3 flags on fs.
func (f *s3Flags) add(fs *pflag.FlagSet) {
	fs.StringVar(&f.Endpoint, "s3-endpoint", "", "S3 endpoint URL for s3:// datasets, for MinIO, versitygw, Ceph, R2… (default: $AWS_ENDPOINT_URL_S3, $AWS_ENDPOINT_URL, or AWS)")
	fs.BoolVar(&f.PathStyle, "s3-path-style", false, "address S3 buckets as https://HOST/BUCKET/ (most servers other than AWS need it)")
}

func openS3(ctx context.Context, uri string, f s3Flags) (pipeline.Source, error) {
	return s3src.New(ctx, uri, s3src.Options{Endpoint: f.Endpoint, PathStyle: f.PathStyle})
}

// openIndexAt opens an index from a local directory or an s3:// location
// (read with ranged GETs).
func openIndexAt(ctx context.Context, loc string, f s3Flags) (*index.Index, error) {
	if !s3src.IsS3URI(loc) {
		return index.Open(ctx, loc)
	}
	d, err := openIndexDir(ctx, loc, f)
	if err != nil {
		return nil, err
	}
	return index.OpenDir(ctx, d)
}

// openIndexDir returns the location of an existing index: a local
// directory (which must exist) or s3://BUCKET/PATH.
func openIndexDir(ctx context.Context, loc string, f s3Flags) (index.Dir, error) {
	if !s3src.IsS3URI(loc) {
		if _, err := os.Stat(loc); err != nil {
			return nil, err
		}
		return index.LocalDir(loc), nil
	}
	return s3src.NewIndexDir(ctx, loc, s3src.Options{Endpoint: f.Endpoint, PathStyle: f.PathStyle})
}

// indexOut is the --out of a command that writes an index: a local
// directory, or s3://BUCKET/PATH, which is checked free before any work,
// built in a local temporary directory (Local) and uploaded by publish
// (summary.json last, each object with If-None-Match: *). close removes
// the temporary directory.
type indexOut struct {
	URI   string          // as given
	Local string          // where the index is built
	s3    *s3src.IndexDir // nil for a local directory
	opts  s3src.Options
	tmp   string
}

func openIndexOut(ctx context.Context, out string, f s3Flags) (*indexOut, error) {
	o := &indexOut{URI: out, Local: out}
	if isS3(out) {
		o.opts = s3src.Options{Endpoint: f.Endpoint, PathStyle: f.PathStyle}
		d, err := s3src.NewIndexDir(ctx, out, o.opts)
		if err != nil {
			return nil, usageError{err}
		}
		if err := d.CheckFree(ctx); err != nil { // before any hashing
			return nil, usageError{fmt.Errorf("output %s: %w", out, err)}
		}
		if o.tmp, err = os.MkdirTemp("", "lakeproof-upload-"); err != nil {
			return nil, err
		}
		o.s3, o.Local = d, filepath.Join(o.tmp, "index")
	}
	if index.Exists(o.Local) {
		return nil, usageError{fmt.Errorf("output %s already exists: a complete index is never overwritten; choose another --out", out)}
	}
	return o, nil
}

// publish uploads the index committed in o.Local when o is on S3.
func (o *indexOut) publish(ctx context.Context) error {
	if o.s3 == nil {
		return nil
	}
	if err := s3src.UploadIndex(ctx, o.Local, o.URI, o.opts); err != nil {
		return fmt.Errorf("upload index to %s: %w", o.URI, err)
	}
	return nil
}

func (o *indexOut) close() {
	if o.tmp != "" {
		os.RemoveAll(o.tmp)
	}
}

// isS3 reports whether a location is an s3:// URI.
func isS3(loc string) bool { return s3src.IsS3URI(loc) }
