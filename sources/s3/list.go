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
// bytewise order of their dataset keys, one ListObjectsV2 page in memory at
// a time. See the package documentation for keys that are not valid
// dataset keys and for folder markers.
func (s *Source) Objects(ctx context.Context) iter.Seq2[pipeline.Object, error] {
	return func(yield func(pipeline.Object, error) bool) {
		var (
			token, prevToken string
			last             string
			first            = true
		)
		for {
			out, err := s.listPage(ctx, token)
			if err != nil {
				yield(pipeline.Object{}, err)
				return
			}
			for i := range out.Contents {
				o := &out.Contents[i]
				key := aws.ToString(o.Key)
				if out.EncodingType == types.EncodingTypeUrl {
					if key, err = unescapeKey(key); err != nil {
						yield(pipeline.Object{}, fmt.Errorf("list %s: %w", s.uri, err))
						return
					}
				}
				if !first && key <= last {
					what := "goes backwards"
					if key == last {
						what = "repeats a key"
					}
					yield(pipeline.Object{}, fmt.Errorf("list %s: the server's listing %s: %q after %q; refusing to build a tree from it (buggy S3 server?)", s.uri, what, key, last))
					return
				}
				first, last = false, key
				rel, ok := strings.CutPrefix(key, s.prefix)
				if !ok {
					yield(pipeline.Object{}, fmt.Errorf("list %s: the server listed key %q, which is outside the prefix %q", s.uri, key, s.prefix))
					return
				}
				size := aws.ToInt64(o.Size)
				if size == 0 && (rel == "" || strings.HasSuffix(rel, "/")) {
					s.log.Debug("s3: skipping folder marker", "uri", s.uri, "key", key)
					continue
				}
				obj := pipeline.Object{
					Key:     rel,
					Size:    size,
					ModTime: aws.ToTime(o.LastModified),
					ETag:    unquoteETag(aws.ToString(o.ETag)),
				}
				if err := lakeproof.CheckKey(rel); err != nil {
					if !yield(obj, &pipeline.ObjectError{Key: rel, Op: "key", Err: fmt.Errorf("S3 object s3://%s/%s: %w", s.bucket, key, err)}) {
						return
					}
					continue
				}
				if !yield(obj, nil) {
					return
				}
			}
			if !aws.ToBool(out.IsTruncated) {
				return
			}
			prevToken, token = token, aws.ToString(out.NextContinuationToken)
			if token == "" || token == prevToken {
				yield(pipeline.Object{}, fmt.Errorf("list %s: the server says the listing is truncated but gives no new continuation token (buggy S3 server?)", s.uri))
				return
			}
		}
	}
}

// listPage fetches one page of up to 1000 keys after token.
func (s *Source) listPage(ctx context.Context, token string) (*s3.ListObjectsV2Output, error) {
	in := &s3.ListObjectsV2Input{
		Bucket: aws.String(s.bucket),
		Prefix: aws.String(s.prefix),
		// Keys may hold characters XML 1.0 cannot carry; ask for them
		// URL-encoded so such a key becomes an ObjectError, not a broken
		// listing.
		EncodingType: types.EncodingTypeUrl,
	}
	if token != "" {
		in.ContinuationToken = aws.String(token)
	}
	for attempt := 0; ; attempt++ {
		out, err := s.client.ListObjectsV2(ctx, in)
		if err == nil {
			return out, nil
		}
		if ctx.Err() != nil || attempt >= listPageRetries || !transient(err) {
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
