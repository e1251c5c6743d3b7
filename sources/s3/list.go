package s3

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"math/rand/v2"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/lakeproof/lakeproof"
	"github.com/lakeproof/lakeproof/pipeline"
)

// listPageRetries is how many times one listing page is asked for again
// after an error the SDK retryer did not handle (such as a body cut off in
// the middle of the XML).
const listPageRetries = 4

// Objects yields the objects under the prefix in strictly increasing
// bytewise order of their dataset keys. With Options.ListConcurrency 1 it is
// one ListObjectsV2 stream, one page in memory at a time; above 1 the top
// level is listed with a delimiter and its "directories" are listed
// concurrently (see parallelObjects). See the package documentation for keys
// that are not valid dataset keys and for folder markers.
func (s *Source) Objects(ctx context.Context) iter.Seq2[pipeline.Object, error] {
	return s.objects(ctx, "", "")
}

// objects is Objects restricted to the dataset keys in [start, end) (end ""
// = no end; see ObjectsRange).
func (s *Source) objects(ctx context.Context, start, end string) iter.Seq2[pipeline.Object, error] {
	if s.listConc > 1 {
		return s.parallelObjects(ctx, start, end)
	}
	return func(yield func(pipeline.Object, error) bool) {
		var c keyChecker
		for out, err := range s.pages(ctx, s.prefix, "", s.startAfter(start)) {
			if err != nil {
				yield(pipeline.Object{}, err)
				return
			}
			for i := range out.Contents {
				obj, objErr, skip, err := c.next(s, &out.Contents[i], out.EncodingType, s.prefix)
				if err != nil {
					yield(pipeline.Object{}, err)
					return
				}
				if skip || obj.Key < start {
					continue
				}
				if end != "" && obj.Key >= end {
					return
				}
				if !yield(obj, objErr) {
					return
				}
			}
		}
	}
}

// keyChecker turns listed objects, in the order they are to be yielded, into
// what Objects yields, and refuses keys that do not strictly increase.
type keyChecker struct {
	last    string
	started bool
}

// next checks one listed object o, whose key must start with under (the
// prefix listed, which lies within s.prefix). It returns the object and,
// for a key that is not a valid dataset key, its *pipeline.ObjectError;
// skip for a folder marker; or a fatal error that ends the sequence.
func (c *keyChecker) next(s *Source, o *types.Object, enc types.EncodingType, under string) (obj pipeline.Object, objErr error, skip bool, fatal error) {
	key := aws.ToString(o.Key)
	if enc == types.EncodingTypeUrl {
		var err error
		if key, err = unescapeKey(key); err != nil {
			return obj, nil, false, fmt.Errorf("list %s: %w", s.uri, err)
		}
	}
	if c.started && key <= c.last {
		what := "goes backwards"
		if key == c.last {
			what = "repeats a key"
		}
		return obj, nil, false, fmt.Errorf("list %s: the server's listing %s: %q after %q; refusing to build a tree from it (buggy S3 server?)", s.uri, what, key, c.last)
	}
	c.started, c.last = true, key
	if !strings.HasPrefix(key, under) {
		return obj, nil, false, fmt.Errorf("list %s: the server listed key %q, which is outside the prefix %q", s.uri, key, under)
	}
	rel := strings.TrimPrefix(key, s.prefix)
	size := aws.ToInt64(o.Size)
	if size == 0 && (rel == "" || strings.HasSuffix(rel, "/")) {
		s.log.Debug("s3: skipping folder marker", "uri", s.uri, "key", key)
		return obj, nil, true, nil
	}
	obj = pipeline.Object{
		Key:     rel,
		Size:    size,
		ModTime: aws.ToTime(o.LastModified),
		ETag:    unquoteETag(aws.ToString(o.ETag)),
	}
	if err := lakeproof.CheckKey(rel); err != nil {
		return obj, &pipeline.ObjectError{Key: rel, Op: "key", Err: fmt.Errorf("S3 object s3://%s/%s: %w", s.bucket, key, err)}, false, nil
	}
	return obj, nil, false, nil
}

// pages yields the ListObjectsV2 pages of the keys under prefix (grouped at
// delimiter when it is not empty), one at a time, and ends after the first
// error. With startAfter (a full S3 key), the listing starts after it.
func (s *Source) pages(ctx context.Context, prefix, delimiter, startAfter string) iter.Seq2[*s3.ListObjectsV2Output, error] {
	return func(yield func(*s3.ListObjectsV2Output, error) bool) {
		var token, prevToken string
		for {
			out, err := s.listPage(ctx, prefix, delimiter, startAfter, token)
			if err != nil {
				yield(nil, err)
				return
			}
			if !yield(out, nil) || !aws.ToBool(out.IsTruncated) {
				return
			}
			prevToken, token = token, aws.ToString(out.NextContinuationToken)
			if token == "" || token == prevToken {
				yield(nil, fmt.Errorf("list %s: the server says the listing of %q is truncated but gives no new continuation token (buggy S3 server?)", s.uri, prefix))
				return
			}
		}
	}
}

// listPage fetches one page of up to 1000 keys under prefix after token, or
// for the first page (no token) after startAfter when it is not "".
func (s *Source) listPage(ctx context.Context, prefix, delimiter, startAfter, token string) (*s3.ListObjectsV2Output, error) {
	in := &s3.ListObjectsV2Input{
		Bucket: aws.String(s.bucket),
		Prefix: aws.String(prefix),
		// Keys may hold characters XML 1.0 cannot carry; ask for them
		// URL-encoded so such a key becomes an ObjectError, not a broken
		// listing.
		EncodingType: types.EncodingTypeUrl,
	}
	if delimiter != "" {
		in.Delimiter = aws.String(delimiter)
	}
	if token != "" {
		in.ContinuationToken = aws.String(token)
	} else if startAfter != "" {
		in.StartAfter = aws.String(startAfter)
	}
	for attempt := 0; ; attempt++ {
		out, err := s.client.ListObjectsV2(ctx, in)
		if err == nil {
			return out, nil
		}
		if ctx.Err() != nil || attempt >= listPageRetries || !transient(err) {
			if prefix != s.prefix {
				return nil, fmt.Errorf("list %s (keys under %q): %w", s.uri, prefix, err)
			}
			return nil, fmt.Errorf("list %s: %w", s.uri, err)
		}
		s.log.Debug("s3: retrying listing page", "uri", s.uri, "err", err)
		if err := sleep(ctx, backoff(attempt)); err != nil {
			return nil, fmt.Errorf("list %s: %w", s.uri, err)
		}
	}
}

// unescapeKey decodes a key of a listing made with encoding-type=url. S3
// encodes like an HTML form ('+' for space, %2B for '+').
func unescapeKey(k string) (string, error) {
	u, err := url.QueryUnescape(k)
	if err != nil {
		return "", fmt.Errorf("malformed URL-encoded key %q in listing: %w", k, err)
	}
	return u, nil
}

// unquoteETag removes the quotes around an ETag as S3 sends it.
func unquoteETag(e string) string {
	if len(e) >= 2 && e[0] == '"' && e[len(e)-1] == '"' {
		return e[1 : len(e)-1]
	}
	return e
}

// transient reports whether err may go away if the request is made again:
// anything but a cancelled context and an answer of the server (an API
// error), except the server's 5xx answers, which the SDK retryer has
// already retried but which may still pass.
func transient(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if errors.Is(err, pipeline.ErrChanged) || errors.Is(err, pipeline.ErrNotFound) {
		return false
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorFault() == smithy.FaultServer || ae.ErrorCode() == "SlowDown"
	}
	return true
}

// Backoff bases; variables so that tests of permanent faults run fast.
var (
	// sdkBackoffBase is the SDK retryer's first backoff, doubled on each
	// attempt up to sdkMaxBackoff, with full jitter (like the SDK's own).
	sdkBackoffBase = time.Second
	// resumeBackoffBase is the first pause before our own retries (a listing
	// page or a body cut off part-way), doubled up to 2s.
	resumeBackoffBase = 100 * time.Millisecond
	// readTimeout is how long a connection may stay silent while a request
	// waits for an answer or reads a body.
	readTimeout = 2 * time.Minute
)

const sdkMaxBackoff = 20 * time.Second

// backoff is the pause before retry number attempt+1 of our own retry loops
// (the SDK retryer has already backed off inside each request).
func backoff(attempt int) time.Duration {
	return min(resumeBackoffBase<<min(attempt, 16), 2*time.Second)
}

// jitterBackoff is the SDK retryer's backoff: exponential with full jitter.
type jitterBackoff struct{}

func (jitterBackoff) BackoffDelay(attempt int, _ error) (time.Duration, error) {
	d := min(sdkBackoffBase<<min(attempt, 16), sdkMaxBackoff)
	return rand.N(d + 1), nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
