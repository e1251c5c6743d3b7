package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/lakeproof/lakeproof/index"
)

// IndexDir is a lakeproof index stored under an S3 prefix
// (s3://BUCKET/PATH/ holds PATH/summary.json, PATH/index.parquet, …). It
// implements index.Dir: files are read with ranged GETs, each pinned with
// If-Match to the ETag seen when the file was opened, so a proof reads a
// few ranges of the index rather than all of it.
type IndexDir struct {
	client *s3.Client
	bucket string
	prefix string // ends in '/'
	uri    string
}

var _ index.Dir = (*IndexDir)(nil)

// NewIndexDir returns the index location named by uri (s3://BUCKET/PATH).
// It checks the configuration but not that an index is there: OpenDir or
// UploadIndex do that.
func NewIndexDir(ctx context.Context, uri string, opts Options) (*IndexDir, error) {
	bucket, prefix, err := ParseURI(uri)
	if err != nil {
		return nil, err
	}
	if prefix == "" {
		return nil, fmt.Errorf("index location %q: want s3://BUCKET/PATH (an index is not a whole bucket)", uri)
	}
	cfg, err := loadConfig(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("index %s: load AWS configuration: %w", uri, err)
	}
	return &IndexDir{client: newClient(cfg, opts, ""), bucket: bucket, prefix: prefix, uri: "s3://" + bucket + "/" + prefix}, nil
}

// String returns the canonical URI of the index location.
func (d *IndexDir) String() string { return d.uri }

// Open opens one file of the index with a HEAD request. A missing file is
// an error wrapping fs.ErrNotExist. ctx governs the file's later reads.
func (d *IndexDir) Open(ctx context.Context, name string) (index.File, error) {
	key := d.prefix + name
	out, err := d.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(d.bucket), Key: aws.String(key)})
	if err != nil {
		if statusOf(err) == http.StatusNotFound {
			return nil, fmt.Errorf("open s3://%s/%s: %w", d.bucket, key, fs.ErrNotExist)
		}
		return nil, fmt.Errorf("open s3://%s/%s: %w", d.bucket, key, err)
	}
	return &indexFile{ctx: ctx, d: d, key: key, size: aws.ToInt64(out.ContentLength), etag: aws.ToString(out.ETag)}, nil
}

type indexFile struct {
	ctx  context.Context
	d    *IndexDir
	key  string
	size int64
	etag string // as sent, with quotes
}

func (f *indexFile) Size() int64  { return f.size }
func (f *indexFile) Close() error { return nil }

// ReadAt reads with one ranged GET pinned to the ETag seen at Open.
func (f *indexFile) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("read s3://%s/%s: negative offset", f.d.bucket, f.key)
	}
	if off >= f.size {
		return 0, io.EOF
	}
	want := p[:min(int64(len(p)), f.size-off)]
	if len(want) == 0 {
		return 0, nil
	}
	in := &s3.GetObjectInput{
		Bucket: aws.String(f.d.bucket),
		Key:    aws.String(f.key),
		Range:  aws.String(fmt.Sprintf("bytes=%d-%d", off, off+int64(len(want))-1)),
	}
	if f.etag != "" {
		in.IfMatch = aws.String(f.etag)
	}
	out, err := f.d.client.GetObject(f.ctx, in)
	if err != nil {
		if s := statusOf(err); s == http.StatusPreconditionFailed || s == http.StatusNotFound {
			return 0, fmt.Errorf("read s3://%s/%s: the index file changed or disappeared while open: %w", f.d.bucket, f.key, err)
		}
		return 0, fmt.Errorf("read s3://%s/%s: %w", f.d.bucket, f.key, err)
	}
	defer out.Body.Close()
	if out.ContentLength != nil && *out.ContentLength != int64(len(want)) {
		return 0, fmt.Errorf("read s3://%s/%s: asked for %d bytes at %d, server sent %d", f.d.bucket, f.key, len(want), off, *out.ContentLength)
	}
	n, err := io.ReadFull(out.Body, want)
	if err != nil {
		return n, fmt.Errorf("read s3://%s/%s at %d: %w", f.d.bucket, f.key, off+int64(n), err)
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// UploadIndex copies a complete local index directory (as published by
// index.Writer.Commit) to uri (s3://BUCKET/PATH). An index is complete when
// its summary.json exists (index.OpenDir refuses one without it), so
// summary.json is uploaded last: a reader never sees an incomplete index
// as complete. Every PUT carries If-None-Match: * so that nothing already
// there is ever overwritten, on servers that support conditional writes;
// on those that do not, a HEAD of summary.json first still refuses to
// upload over a complete index. Refusals wrap index.ErrExists. Each file must be under 5 GiB (one PUT).
func UploadIndex(ctx context.Context, dir, uri string, opts Options) error {
	d, err := NewIndexDir(ctx, uri, opts)
	if err != nil {
		return err
	}
	return d.upload(ctx, dir)
}

// upload is UploadIndex to d.
func (d *IndexDir) upload(ctx context.Context, dir string) error {
	if err := d.CheckFree(ctx); err != nil {
		return err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("upload index %s: %w", dir, err)
	}
	var names []string
	haveSummary := false
	for _, e := range entries {
		switch {
		case !e.Type().IsRegular():
			return fmt.Errorf("upload index %s: %s is not a regular file", dir, e.Name())
		case e.Name() == index.SummaryFile:
			haveSummary = true
		default:
			names = append(names, e.Name())
		}
	}
	if !haveSummary {
		return fmt.Errorf("upload index %s: no %s: not a complete index", dir, index.SummaryFile)
	}
	for _, name := range append(names, index.SummaryFile) {
		if err := d.put(ctx, filepath.Join(dir, name), name); err != nil {
			return err
		}
	}
	return nil
}

// CheckFree returns an error wrapping index.ErrExists if a complete index
// (its summary.json) is at d, and nil if none is. Call it before hashing a
// dataset whose index is to be uploaded there, to fail before the work.
func (d *IndexDir) CheckFree(ctx context.Context) error {
	_, err := d.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(d.bucket), Key: aws.String(d.prefix + index.SummaryFile)})
	switch {
	case err == nil:
		return fmt.Errorf("index %s: %w (a complete index is never overwritten; choose another location)", d.uri, index.ErrExists)
	case statusOf(err) != http.StatusNotFound:
		return fmt.Errorf("index %s: check for an existing index: %w", d.uri, err)
	}
	return nil
}

func (d *IndexDir) put(ctx context.Context, path, name string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("upload index: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("upload index: %w", err)
	}
	key := d.prefix + name
	_, err = d.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        aws.String(d.bucket),
		Key:           aws.String(key),
		Body:          f,
		ContentLength: aws.Int64(st.Size()),
		IfNoneMatch:   aws.String("*"),
	})
	if err != nil {
		if s := statusOf(err); s == http.StatusPreconditionFailed || s == http.StatusConflict {
			return fmt.Errorf("upload index to %s: %s: %w (left by another upload? remove the partial index or choose another location)", d.uri, name, index.ErrExists)
		}
		return fmt.Errorf("upload index to %s: put %s: %w", d.uri, name, err)
	}
	return nil
}

// IsS3URI reports whether s names an S3 location.
func IsS3URI(s string) bool { return strings.HasPrefix(s, "s3://") }

func statusOf(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}
