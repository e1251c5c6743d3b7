package s3

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/lakeproof/lakeproof"
	"github.com/lakeproof/lakeproof/pipeline"
)

// Defaults for Options fields left zero.
const (
	// DefaultPartSize is the size of one ranged GET of a large object:
	// large enough that per-request overhead is small, small enough that a
	// few parts in flight per object stay within tens of MiB.
	DefaultPartSize = 8 << 20
	// DefaultPartConcurrency is the number of ranged GETs in flight for one
	// large object read sequentially.
	DefaultPartConcurrency = 4
	// DefaultReadAheadMemory bounds the parts held by all readers at once.
	DefaultReadAheadMemory = 256 << 20
	// DefaultMaxConns is the number of idle connections kept to the
	// server; it should be at least the number of concurrent readers.
	DefaultMaxConns = 256
	// DefaultListConcurrency is the number of "directories" listed at
	// once by Objects.
	DefaultListConcurrency = 4
	// defaultMaxAttempts is the SDK retryer's attempt count per request
	// unless AWS_MAX_ATTEMPTS says otherwise.
	defaultMaxAttempts = 8
	// defaultRegion is used when nothing configures a region.
	defaultRegion = "us-east-1"
)

// Options adjusts how New reaches the store. The zero value uses the SDK's
// default configuration chain unchanged.
type Options struct {
	// Endpoint is the S3 endpoint URL, e.g. "http://127.0.0.1:7070"; it
	// overrides AWS_ENDPOINT_URL_S3 and AWS_ENDPOINT_URL. Empty: as configured.
	Endpoint string
	// PathStyle addresses buckets as http://host/bucket/key instead of
	// http://bucket.host/key; most servers other than AWS need it. Endpoints
	// given as an IP address always use path style.
	PathStyle bool
	// Region overrides AWS_REGION and the profile's region.
	Region string
	// Profile selects a shared-config profile, overriding AWS_PROFILE.
	Profile string
	// Credentials, when non-nil, replaces the default credential chain.
	Credentials aws.CredentialsProvider
	// PartSize is the size of the ranged GETs used for objects larger than
	// it. Zero means DefaultPartSize.
	PartSize int64
	// PartConcurrency is the number of ranged GETs in flight per large
	// object being read. Zero means DefaultPartConcurrency; 1 reads large
	// objects with one GET.
	PartConcurrency int
	// ReadAheadMemory bounds the memory of all parts fetched ahead of Read
	// by all readers of the Source together; each reader gets at least one
	// part at a time. Zero means DefaultReadAheadMemory.
	ReadAheadMemory int64
	// ListConcurrency is the number of top-level "directories" (common
	// prefixes at '/' under the dataset prefix) listed at once by Objects,
	// each holding at most two pages of 1000 keys. Zero means
	// DefaultListConcurrency; 1 lists with one sequential ListObjectsV2
	// stream and no delimiter.
	ListConcurrency int
	// MaxConns is the connection pool size. Zero means DefaultMaxConns.
	MaxConns int
	// Logger receives debug messages (skipped folder markers, retries).
	// Nil means slog.Default().
	Logger *slog.Logger
}

// Source is an S3 dataset: the objects under one prefix of one bucket. It
// implements pipeline.Source.
type Source struct {
	client   *s3.Client
	bucket   string
	prefix   string // "" or ends in '/'
	uri      string
	endpoint string // for messages
	partSize int64
	partConc int
	listConc int
	log      *slog.Logger
	bufs     sync.Pool     // *[]byte of len partSize
	slots    chan struct{} // one token per part buffer in use, bounding read-ahead memory
	open     atomic.Int64  // readers open (Open succeeded, Close not yet called)
}

var _ pipeline.Source = (*Source)(nil)

// ParseURI splits an s3://BUCKET[/PREFIX] URI. The returned prefix is empty
// or ends in '/'; it is taken literally (no percent-decoding). The bucket
// must be 3 to 63 characters of lowercase letters, digits, '.', '-' and '_'
// starting and ending with a letter or digit; the prefix, without its
// trailing '/', must be a valid dataset key (lakeproof.CheckKey).
func ParseURI(uri string) (bucket, prefix string, err error) {
	rest, ok := strings.CutPrefix(uri, "s3://")
	if !ok {
		return "", "", fmt.Errorf("parse %q: not an s3:// URI", uri)
	}
	bucket, prefix, _ = strings.Cut(rest, "/")
	if bucket == "" {
		return "", "", fmt.Errorf("parse %q: no bucket name (want s3://BUCKET/PREFIX)", uri)
	}
	if err := checkBucket(bucket); err != nil {
		return "", "", fmt.Errorf("parse %q: %w", uri, err)
	}
	if prefix != "" {
		p := strings.TrimSuffix(prefix, "/")
		if err := lakeproof.CheckKey(p); err != nil {
			return "", "", fmt.Errorf("parse %q: bad prefix: %w", uri, err)
		}
		prefix = p + "/"
	}
	return bucket, prefix, nil
}

func checkBucket(b string) error {
	if len(b) < 3 || len(b) > 63 {
		return fmt.Errorf("bucket name %q: must be 3 to 63 characters", b)
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		alnum := 'a' <= c && c <= 'z' || '0' <= c && c <= '9'
		if !alnum && (c != '.' && c != '-' && c != '_' || i == 0 || i == len(b)-1) {
			return fmt.Errorf("bucket name %q: character %q at %d not allowed (lowercase letters, digits, '.', '-', '_')", b, c, i)
		}
	}
	return nil
}

// New opens the dataset at uri (s3://BUCKET[/PREFIX]) and checks, before
// returning, that the bucket exists and that the credentials may list it
// and read its objects. Every failure of that check is one error saying
// which of those it is.
func New(ctx context.Context, uri string, opts Options) (*Source, error) {
	bucket, prefix, err := ParseURI(uri)
	if err != nil {
		return nil, err
	}
	s := &Source{
		bucket:   bucket,
		prefix:   prefix,
		uri:      "s3://" + bucket + "/" + prefix,
		partSize: opts.PartSize,
		partConc: opts.PartConcurrency,
		listConc: opts.ListConcurrency,
		log:      opts.Logger,
	}
	if s.partSize <= 0 {
		s.partSize = DefaultPartSize
	}
	if s.listConc <= 0 {
		s.listConc = DefaultListConcurrency
	}
	if s.partConc <= 0 {
		s.partConc = DefaultPartConcurrency
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.bufs.New = func() any { b := make([]byte, s.partSize); return &b }
	mem := opts.ReadAheadMemory
	if mem <= 0 {
		mem = DefaultReadAheadMemory
	}
	s.slots = make(chan struct{}, max(int64(s.partConc), mem/s.partSize))

	cfg, err := loadConfig(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("s3 %s: load AWS configuration: %w", s.uri, err)
	}
	s.client = newClient(cfg, opts, "")
	s.endpoint = endpointName(cfg, opts)

	err = s.probe(ctx)
	var redirect *regionRedirect
	if errors.As(err, &redirect) {
		s.log.Debug("s3: following bucket region", "bucket", bucket, "region", redirect.region)
		s.client = newClient(cfg, opts, redirect.region)
		err = s.probe(ctx)
	}
	if err != nil {
		return nil, err
	}
	return s, nil
}

func loadConfig(ctx context.Context, opts Options) (aws.Config, error) {
	maxConns := opts.MaxConns
	if maxConns <= 0 {
		maxConns = DefaultMaxConns
	}
	// The SDK's buildable client, not a plain *http.Client: with
	// AWS_CA_BUNDLE set, LoadDefaultConfig must be able to add the bundle to
	// its transport and rejects any other client.
	httpClient := awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
		tr.MaxIdleConns = maxConns
		tr.MaxIdleConnsPerHost = maxConns
	}).WithReadTimeout(readTimeout) // a silent connection fails, and is retried or resumed
	lo := []func(*config.LoadOptions) error{
		config.WithHTTPClient(httpClient),
		// No client-side retry quota: a data-lake run must ride out a
		// SlowDown storm, not fail once a token bucket is empty.
		config.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				// A certificate the client does not trust will not become
				// trusted by asking again.
				o.Retryables = append([]retry.IsErrorRetryable{retry.IsErrorRetryableFunc(notCertificateError)}, o.Retryables...)
				o.MaxAttempts = defaultMaxAttempts
				o.Backoff = jitterBackoff{}
				o.RateLimiter = ratelimit.None
			})
		}),
	}
	if opts.Region != "" {
		lo = append(lo, config.WithRegion(opts.Region))
	}
	if opts.Profile != "" {
		lo = append(lo, config.WithSharedConfigProfile(opts.Profile))
	}
	if opts.Credentials != nil {
		lo = append(lo, config.WithCredentialsProvider(opts.Credentials))
	}
	cfg, err := config.LoadDefaultConfig(ctx, lo...)
	if err != nil {
		return cfg, err
	}
	if cfg.Region == "" {
		cfg.Region = defaultRegion
	}
	return cfg, nil
}

func notCertificateError(err error) aws.Ternary {
	var (
		verr *tls.CertificateVerificationError
		uerr x509.UnknownAuthorityError
		herr x509.HostnameError
		cerr x509.CertificateInvalidError
	)
	if errors.As(err, &verr) || errors.As(err, &uerr) || errors.As(err, &herr) || errors.As(err, &cerr) {
		return aws.FalseTernary
	}
	return aws.UnknownTernary
}

func newClient(cfg aws.Config, opts Options, region string) *s3.Client {
	return s3.NewFromConfig(cfg, func(o *s3.Options) {
		if opts.Endpoint != "" {
			o.BaseEndpoint = aws.String(opts.Endpoint)
		}
		if opts.PathStyle {
			o.UsePathStyle = true
		}
		if region != "" {
			o.Region = region
		}
		// Composite (multipart) checksums cannot be validated on a GET; the
		// SDK would log a warning for each such object.
		o.DisableLogOutputChecksumValidationSkipped = true
	})
}

func endpointName(cfg aws.Config, opts Options) string {
	switch {
	case opts.Endpoint != "":
		return opts.Endpoint
	case cfg.BaseEndpoint != nil:
		return *cfg.BaseEndpoint
	default:
		return "AWS S3 (" + cfg.Region + ")"
	}
}

// URI returns the canonical URI of the dataset: s3://BUCKET/ or
// s3://BUCKET/PREFIX/ (always with the trailing '/').
func (s *Source) URI() string { return s.uri }

// regionRedirect is the probe's answer when AWS says the bucket is in
// another region.
type regionRedirect struct{ region string }

func (r *regionRedirect) Error() string { return "bucket is in region " + r.region }

// probe lists one key under the prefix and reads the metadata of the first
// object found, so that missing buckets, rejected credentials, missing
// permissions and non-S3 endpoints fail before any work.
func (s *Source) probe(ctx context.Context) error {
	out, err := s.client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{
		Bucket:  aws.String(s.bucket),
		Prefix:  aws.String(s.prefix),
		MaxKeys: aws.Int32(1),
	})
	if err != nil {
		var re *awshttp.ResponseError
		if errors.As(err, &re) && re.Response != nil {
			if r := re.Response.Header.Get("X-Amz-Bucket-Region"); r != "" && re.HTTPStatusCode() == http.StatusMovedPermanently {
				return &regionRedirect{region: r}
			}
		}
		return s.accessError("list bucket", err)
	}
	if raw, ok := awsmiddleware.GetRawResponse(out.ResultMetadata).(*smithyhttp.Response); ok && isHTML(raw.Response) {
		return fmt.Errorf("s3 %s: endpoint %s is not an S3 server: it answered a bucket listing with an HTML page", s.uri, s.endpoint)
	}
	if aws.ToString(out.Name) != s.bucket {
		return fmt.Errorf("s3 %s: endpoint %s is not an S3 server: its answer to a bucket listing names bucket %q", s.uri, s.endpoint, aws.ToString(out.Name))
	}
	if len(out.Contents) == 0 {
		return nil
	}
	key := aws.ToString(out.Contents[0].Key)
	if out.EncodingType == "url" {
		if key, err = unescapeKey(key); err != nil {
			return fmt.Errorf("s3 %s: %w", s.uri, err)
		}
	}
	_, err = s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)})
	if err != nil {
		return s.accessError(fmt.Sprintf("read object %q", key), err)
	}
	return nil
}

func isHTML(r *http.Response) bool {
	return r != nil && strings.Contains(strings.ToLower(r.Header.Get("Content-Type")), "html")
}

// accessError turns an error of the up-front check into one clear message.
func (s *Source) accessError(op string, err error) error {
	var re *awshttp.ResponseError
	if errors.As(err, &re) && isHTML(re.Response.Response) {
		return fmt.Errorf("s3 %s: endpoint %s is not an S3 server: it answered %s with an HTML page (HTTP %d)", s.uri, s.endpoint, op, re.HTTPStatusCode())
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "NoSuchBucket":
			return fmt.Errorf("s3 %s: bucket %q does not exist at %s: %w", s.uri, s.bucket, s.endpoint, err)
		case "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken", "TokenRefreshRequired", "InvalidClientTokenId", "AuthorizationHeaderMalformed", "XAdminUserNotFound":
			return fmt.Errorf("s3 %s: credentials rejected by %s (check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_PROFILE): %w", s.uri, s.endpoint, err)
		case "AccessDenied", "AllAccessDisabled", "Forbidden":
			return fmt.Errorf("s3 %s: access denied by %s: the credentials may not %s: %w", s.uri, s.endpoint, op, err)
		}
	}
	if re != nil && re.HTTPStatusCode() == http.StatusForbidden {
		return fmt.Errorf("s3 %s: access denied by %s: the credentials may not %s: %w", s.uri, s.endpoint, op, err)
	}
	if re != nil && re.HTTPStatusCode() == http.StatusNotFound && strings.HasPrefix(op, "list") {
		return fmt.Errorf("s3 %s: bucket %q does not exist at %s: %w", s.uri, s.bucket, s.endpoint, err)
	}
	if msg := err.Error(); strings.Contains(msg, "retrieve credentials") || strings.Contains(msg, "get credentials") {
		return fmt.Errorf("s3 %s: no usable AWS credentials (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE): %w", s.uri, err)
	}
	return fmt.Errorf("s3 %s: %s at %s: %w", s.uri, op, s.endpoint, err)
}
