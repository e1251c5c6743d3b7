package s3

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/lakeproof/lakeproof/index"
)

// An IndexDir is also a destination of index versions for `lakeproof run`
// (s3://BUCKET/PATH/ holding PATH/VERSION/summary.json, … as in the local
// layout of docs/JOBS.md): Subdirs lists the versions, IndexDir reads one,
// Upload publishes a new one.

// Subdirs returns the names of the "directories" directly below d, or
// below its "directory" under (a '/'-separated path; "" for d itself): the
// common prefixes at '/', in key order, without the trailing '/'.
func (d *IndexDir) Subdirs(ctx context.Context, under string) ([]string, error) {
	if under != "" {
		d = d.Sub(strings.TrimSuffix(under, "/"))
	}
	var names []string
	in := &s3.ListObjectsV2Input{Bucket: aws.String(d.bucket), Prefix: aws.String(d.prefix), Delimiter: aws.String("/"), EncodingType: types.EncodingTypeUrl}
	for {
		out, err := d.client.ListObjectsV2(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", d.uri, err)
		}
		for _, cp := range out.CommonPrefixes {
			p, err := unescapeKey(aws.ToString(cp.Prefix))
			if err != nil {
				return nil, fmt.Errorf("list %s: %w", d.uri, err)
			}
			name := strings.TrimSuffix(strings.TrimPrefix(p, d.prefix), "/")
			if name == "" || strings.Contains(name, "/") {
				return nil, fmt.Errorf("list %s: the server listed common prefix %q, which is not a directory below it (buggy S3 server?)", d.uri, p)
			}
			names = append(names, name)
		}
		if !aws.ToBool(out.IsTruncated) || aws.ToString(out.NextContinuationToken) == "" {
			return names, nil
		}
		in.ContinuationToken = out.NextContinuationToken
	}
}

// Sub returns the index location of the "directory" name directly below d.
func (d *IndexDir) Sub(name string) *IndexDir {
	return &IndexDir{client: d.client, bucket: d.bucket, prefix: d.prefix + name + "/", uri: d.uri + name + "/"}
}

// IndexDir returns Sub(name) as an index.Dir, to read the index there.
func (d *IndexDir) IndexDir(name string) index.Dir { return d.Sub(name) }

// Upload copies the complete local index directory dir to Sub(name), as
// UploadIndex does: summary.json last, never over an existing index
// (errors wrap index.ErrExists).
func (d *IndexDir) Upload(ctx context.Context, dir, name string) error {
	return d.Sub(name).upload(ctx, dir)
}

// UploadFile adds the local file path to Sub(name) under its base name (an
// anchor receipt beside a published index), never over an existing file
// (an error wrapping index.ErrExists).
func (d *IndexDir) UploadFile(ctx context.Context, name, path string) error {
	return d.Sub(name).put(ctx, path, filepath.Base(path))
}
