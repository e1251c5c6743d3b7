package s3_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/zeebo/blake3"

	"github.com/lakeproof/lakeproof"
	"github.com/lakeproof/lakeproof/internal/s3test"
	"github.com/lakeproof/lakeproof/pipeline"
	s3src "github.com/lakeproof/lakeproof/sources/s3"
)

func TestMain(m *testing.M) {
	s3src.SetFastBackoff()
	s3test.Main(m)
}

// opts returns Options that reach endpoint (the server or a proxy in front
// of it) with the server's credentials.
func opts(srv *s3test.Server, endpoint string) s3src.Options {
	return s3src.Options{
		Endpoint:    endpoint,
		PathStyle:   true,
		Region:      srv.Region,
		Credentials: credentials.NewStaticCredentialsProvider(srv.AccessKey, srv.SecretKey, ""),
	}
}

func newSource(t *testing.T, uri string, o s3src.Options) *s3src.Source {
	t.Helper()
	src, err := s3src.New(context.Background(), uri, o)
	if err != nil {
		t.Fatalf("New(%q): %v", uri, err)
	}
	return src
}

// listing collects Objects: the objects and the object errors; any other
// error fails the test.
func listing(t *testing.T, src *s3src.Source) (objs []pipeline.Object, objErrs []*pipeline.ObjectError) {
	t.Helper()
	for o, err := range src.Objects(context.Background()) {
		if err != nil {
			var oe *pipeline.ObjectError
			if !errors.As(err, &oe) {
				t.Fatalf("Objects: %v", err)
			}
			objErrs = append(objErrs, oe)
			continue
		}
		objs = append(objs, o)
	}
	return objs, objErrs
}

// listErr runs Objects to its end and returns its final, non-object error.
func listErr(src *s3src.Source) error {
	for _, err := range src.Objects(context.Background()) {
		var oe *pipeline.ObjectError
		if err != nil && !errors.As(err, &oe) {
			return err
		}
	}
	return nil
}

func readAll(src *s3src.Source, o pipeline.Object) ([]byte, error) {
	rc, err := src.Open(context.Background(), o)
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(rc)
	if cerr := rc.Close(); err == nil {
		err = cerr
	}
	return b, err
}

func randBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func keysOf(objs []pipeline.Object) []string {
	var ks []string
	for _, o := range objs {
		ks = append(ks, o.Key)
	}
	return ks
}

func sortedKeys(m map[string][]byte) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func TestParseURI(t *testing.T) {
	for _, tc := range []struct {
		uri, bucket, prefix string
		bad                 string // substring of the error, "" for success
	}{
		{uri: "s3://bucket", bucket: "bucket"},
		{uri: "s3://bucket/", bucket: "bucket"},
		{uri: "s3://bucket/p", bucket: "bucket", prefix: "p/"},
		{uri: "s3://bucket/p/", bucket: "bucket", prefix: "p/"},
		{uri: "s3://my.bucket-1_x/a b/c%20d+e/", bucket: "my.bucket-1_x", prefix: "a b/c%20d+e/"},
		{uri: "s3://b/p", bad: "3 to 63"},
		{uri: "s3://", bad: "no bucket"},
		{uri: "s3:///prefix", bad: "no bucket"},
		{uri: "file:///x", bad: "not an s3:// URI"},
		{uri: "S3://bucket", bad: "not an s3:// URI"},
		{uri: "s3://Bucket", bad: "not allowed"},
		{uri: "s3://buck*et", bad: "not allowed"},
		{uri: "s3://-bucket", bad: "not allowed"},
		{uri: "s3://bucket/a//b", bad: "empty path segment"},
		{uri: "s3://bucket/../x", bad: "not allowed"},
		{uri: "s3://bucket/p//", bad: "empty path segment"},
		{uri: "s3://bucket/a\x01b", bad: "control character"},
		{uri: "s3://" + strings.Repeat("b", 64), bad: "3 to 63"},
	} {
		b, p, err := s3src.ParseURI(tc.uri)
		switch {
		case tc.bad == "" && err != nil:
			t.Errorf("ParseURI(%q): %v", tc.uri, err)
		case tc.bad == "" && (b != tc.bucket || p != tc.prefix):
			t.Errorf("ParseURI(%q) = %q, %q; want %q, %q", tc.uri, b, p, tc.bucket, tc.prefix)
		case tc.bad != "" && (err == nil || !strings.Contains(err.Error(), tc.bad)):
			t.Errorf("ParseURI(%q) = %q, %q, %v; want error containing %q", tc.uri, b, p, err, tc.bad)
		}
	}
}

func FuzzParseURI(f *testing.F) {
	for _, s := range []string{"s3://bucket/p", "s3://b", "s3://bucket/a//b", "s3://bucket/ü/+/%", "s3://bucket/p/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, uri string) {
		b, p, err := s3src.ParseURI(uri)
		if err != nil {
			return
		}
		if b == "" || strings.ContainsAny(b, "/") {
			t.Fatalf("ParseURI(%q): bucket %q", uri, b)
		}
		if p != "" && !strings.HasSuffix(p, "/") {
			t.Fatalf("ParseURI(%q): prefix %q does not end in /", uri, p)
		}
		// Round trip: the canonical form parses to the same.
		b2, p2, err := s3src.ParseURI("s3://" + b + "/" + p)
		if err != nil || b2 != b || p2 != p {
			t.Fatalf("canonical form of %q: %q, %q, %v", uri, b2, p2, err)
		}
	})
}

// tree is the test dataset: awkward keys, a zero-byte object, a multipart
// object.
func tree() map[string][]byte {
	return map[string][]byte{
		"a.txt":                   []byte("alpha\n"),
		"dir/b c.txt":             []byte("with a space"),
		"dir/ünïcödé/日本.txt":      []byte("unicode"),
		"plus+sign":               []byte("plus"),
		"pct%20literal":           []byte("percent"),
		"q?x=1&y#frag":            []byte("query-like"),
		"zero":                    {},
		"deep/x/y/z/w.bin":        randBytes(1, 70_000),
		"dir/sub/\u00e9t\u00e9":   []byte("nfc"),
		"dir/sub/e\u0301te\u0301": []byte("nfd"),
		"~tilde and 'quote'":      []byte("q"),
	}
}

func TestListAndRead(t *testing.T) {
	srv := s3test.Get(t)
	bucket := srv.NewBucket(t)
	files := tree()
	for k, v := range files {
		srv.Put(t, bucket, "data/"+k, v)
	}
	big := randBytes(2, 12<<20+12345)
	srv.PutMultipart(t, bucket, "data/multi/big.bin", big, 5<<20)
	files["multi/big.bin"] = big
	// Outside the prefix, and a sibling that shares its first bytes.
	srv.Put(t, bucket, "data.txt", []byte("outside"))
	srv.Put(t, bucket, "datax/y", []byte("outside"))
	srv.Put(t, bucket, "other", []byte("outside"))

	for _, uri := range []string{"s3://" + bucket + "/data", "s3://" + bucket + "/data/"} {
		t.Run(uri, func(t *testing.T) {
			o := opts(srv, srv.Endpoint)
			o.PartSize = 1 << 20
			src := newSource(t, uri, o)
			if got, want := src.URI(), "s3://"+bucket+"/data/"; got != want {
				t.Errorf("URI() = %q, want %q", got, want)
			}
			objs, objErrs := listing(t, src)
			if len(objErrs) != 0 {
				t.Errorf("object errors: %v", objErrs)
			}
			if got, want := keysOf(objs), sortedKeys(files); !slices.Equal(got, want) {
				t.Fatalf("keys:\n got %q\nwant %q", got, want)
			}
			for _, o := range objs {
				if o.Size != int64(len(files[o.Key])) {
					t.Errorf("%q: size %d, want %d", o.Key, o.Size, len(files[o.Key]))
				}
				if o.ETag == "" || strings.Contains(o.ETag, `"`) {
					t.Errorf("%q: ETag %q", o.Key, o.ETag)
				}
				if o.ModTime.IsZero() {
					t.Errorf("%q: no ModTime", o.Key)
				}
				b, err := readAll(src, o)
				if err != nil {
					t.Errorf("read %q: %v", o.Key, err)
					continue
				}
				if !bytes.Equal(b, files[o.Key]) {
					t.Errorf("read %q: wrong content (%d bytes, want %d)", o.Key, len(b), len(files[o.Key]))
				}
			}
			i := slices.IndexFunc(objs, func(o pipeline.Object) bool { return o.Key == "multi/big.bin" })
			if !strings.HasSuffix(objs[i].ETag, "-3") {
				t.Errorf("multipart ETag %q, want suffix -3", objs[i].ETag)
			}
		})
	}
}

func TestChecksumRecorded(t *testing.T) {
	srv := s3test.Get(t)
	bucket := srv.NewBucket(t)
	srv.Put(t, bucket, "small", []byte("hello"))
	srv.Put(t, bucket, "large", randBytes(3, 3<<20))
	// Multipart, read with one whole GET (below the default part size):
	// the SDK must not fail on a composite checksum it cannot verify.
	srv.PutMultipart(t, bucket, "multi", randBytes(4, 6<<20), 5<<20)
	for _, partSize := range []int64{0, 1 << 20} { // whole GETs; HEAD and ranged GETs
		o := opts(srv, srv.Endpoint)
		o.PartSize = partSize
		src := newSource(t, "s3://"+bucket, o)
		objs, _ := listing(t, src)
		for _, obj := range objs {
			rc, err := src.Open(context.Background(), obj)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, rc)
			if err := rc.Close(); err != nil {
				t.Fatal(err)
			}
			cs := rc.(interface{ Checksum() string }).Checksum()
			t.Logf("part size %d: %s: checksum %q", partSize, obj.Key, cs)
			if alg, v, ok := strings.Cut(cs, ":"); !ok || alg == "" || v == "" {
				t.Errorf("part size %d: %s: checksum %q, want ALG:value", partSize, obj.Key, cs)
			}
		}
	}
}

func TestEmptyPrefixAndEmptyBucket(t *testing.T) {
	srv := s3test.Get(t)
	bucket := srv.NewBucket(t)
	src := newSource(t, "s3://"+bucket, opts(srv, srv.Endpoint))
	if objs, errs := listing(t, src); len(objs)+len(errs) != 0 {
		t.Fatalf("empty bucket listed %v %v", objs, errs)
	}
	files := map[string][]byte{"a": []byte("1"), "b/c": []byte("2"), "b/d/e": nil}
	srv.PutTree(t, bucket, files)
	for _, uri := range []string{"s3://" + bucket, "s3://" + bucket + "/"} {
		src := newSource(t, uri, opts(srv, srv.Endpoint))
		if src.URI() != "s3://"+bucket+"/" {
			t.Errorf("URI() = %q", src.URI())
		}
		objs, _ := listing(t, src)
		if got, want := keysOf(objs), sortedKeys(files); !slices.Equal(got, want) {
			t.Errorf("%s: keys %q, want %q", uri, got, want)
		}
	}
	// A prefix with no objects under it is an empty dataset, not an error.
	src = newSource(t, "s3://"+bucket+"/nothing/here", opts(srv, srv.Endpoint))
	if objs, errs := listing(t, src); len(objs)+len(errs) != 0 {
		t.Fatalf("empty prefix listed %v %v", objs, errs)
	}
}

func TestManyPages(t *testing.T) {
	srv := s3test.Get(t)
	bucket := srv.NewBucket(t)
	const n = 1234 // two pages of 1000
	want := make([]string, n)
	sem := make(chan struct{}, 16)
	errc := make(chan error, n)
	for i := range n {
		want[i] = fmt.Sprintf("p/%05d", i)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			_, err := srv.Client.PutObject(context.Background(), putInput(bucket, want[i], []byte(want[i])))
			errc <- err
		}()
	}
	for range n {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	src := newSource(t, "s3://"+bucket+"/p", opts(srv, srv.Endpoint))
	objs, _ := listing(t, src)
	got := keysOf(objs)
	for i := range want {
		want[i] = strings.TrimPrefix(want[i], "p/")
	}
	if !slices.Equal(got, want) {
		t.Fatalf("listed %d keys, want %d (first %q)", len(got), len(want), got[:min(3, len(got))])
	}
}

func putInput(bucket, key string, data []byte) *s3.PutObjectInput {
	return &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(data)}
}

// TestConcurrentLargeReads reads several large objects at once under a
// read-ahead budget smaller than their parts in flight would need.
func TestConcurrentLargeReads(t *testing.T) {
	srv := s3test.Get(t)
	bucket := srv.NewBucket(t)
	files := map[string][]byte{}
	for i := range 6 {
		files[fmt.Sprintf("obj%d", i)] = randBytes(uint64(200+i), 3<<20+i*1000)
	}
	srv.PutTree(t, bucket, files)
	o := opts(srv, srv.Endpoint)
	o.PartSize, o.PartConcurrency, o.ReadAheadMemory = 256<<10, 4, 1<<20
	src := newSource(t, "s3://"+bucket, o)
	objs, _ := listing(t, src)
	errc := make(chan error, len(objs))
	for _, obj := range objs {
		go func() {
			b, err := readAll(src, obj)
			if err == nil && !bytes.Equal(b, files[obj.Key]) {
				err = fmt.Errorf("%s: wrong content", obj.Key)
			}
			errc <- err
		}()
	}
	for range objs {
		if err := <-errc; err != nil {
			t.Error(err)
		}
	}
}

// TestEnvAndProfile configures the driver only through the standard AWS
// variables and shared files, as a user would.
func TestEnvAndProfile(t *testing.T) {
	srv := s3test.Get(t)
	bucket := srv.NewBucket(t)
	srv.Put(t, bucket, "p/k", []byte("x"))
	for _, v := range []string{"AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"} {
		t.Setenv(v, "")
		os.Unsetenv(v)
	}
	// Never let the credential chain ask the EC2 metadata service: the
	// tests talk to loopback addresses only.
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config")
	creds := filepath.Join(dir, "credentials")
	os.WriteFile(cfg, []byte("[profile lake]\nregion = "+srv.Region+"\nendpoint_url = "+srv.Endpoint+"\n"), 0o600)
	os.WriteFile(creds, []byte("[lake]\naws_access_key_id = "+srv.AccessKey+"\naws_secret_access_key = "+srv.SecretKey+"\n"), 0o600)
	t.Setenv("AWS_CONFIG_FILE", cfg)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", creds)
	uri := "s3://" + bucket + "/p"
	ctx := context.Background()

	if _, err := s3src.New(ctx, uri, s3src.Options{Profile: "lake"}); err != nil {
		t.Errorf("Options.Profile: %v", err)
	}
	t.Setenv("AWS_PROFILE", "lake")
	if _, err := s3src.New(ctx, uri, s3src.Options{}); err != nil {
		t.Errorf("AWS_PROFILE: %v", err)
	}
	os.Unsetenv("AWS_PROFILE")
	_, err := s3src.New(ctx, uri, s3src.Options{Endpoint: srv.Endpoint})
	wantErr(t, "no credentials anywhere", err, "no usable AWS credentials")

	t.Setenv("AWS_ACCESS_KEY_ID", srv.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", srv.SecretKey)
	t.Setenv("AWS_ENDPOINT_URL", srv.Endpoint)
	src, err := s3src.New(ctx, uri, s3src.Options{})
	if err != nil {
		t.Fatalf("AWS_ENDPOINT_URL and keys, no region: %v", err)
	}
	if objs, _ := listing(t, src); len(objs) != 1 || objs[0].Key != "k" {
		t.Errorf("listed %v", objs)
	}
}

// TestPipelineDigests hashes through pipeline.Run, with objects small
// enough for one GET, read in parallel parts, and (above LargeObject) read
// with ReadAt: every digest must be BLAKE3 of the content.
func TestPipelineDigests(t *testing.T) {
	srv := s3test.Get(t)
	bucket := srv.NewBucket(t)
	files := map[string][]byte{
		"a":     randBytes(20, 100),
		"b":     randBytes(21, 700<<10),       // parts of 256 KiB, sequential Read
		"c":     randBytes(22, 5<<20+3),       // ReadAt, above LargeObject
		"d/e/f": randBytes(23, 0),             // empty
		"g":     randBytes(24, 256<<10),       // exactly one part
		"h":     randBytes(25, 2<<20+256<<10), // ReadAt
	}
	srv.PutTree(t, bucket, files)
	o := opts(srv, srv.Endpoint)
	o.PartSize = 256 << 10
	src := newSource(t, "s3://"+bucket, o)
	var got []string
	err := pipeline.Run(context.Background(), src, pipeline.Options{Workers: 4, LargeObject: 2 << 20, BufferSize: 64 << 10}, func(r pipeline.Result) error {
		if r.Err != nil {
			return r.Err
		}
		if want := lakeproof.Hash(blake3.Sum256(files[r.Key])); r.Digest != want {
			t.Errorf("%s: digest %s, want %s", r.Key, r.Digest, want)
		}
		got = append(got, r.Key)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := sortedKeys(files); !slices.Equal(got, want) {
		t.Errorf("results for %q, want %q", got, want)
	}
}
