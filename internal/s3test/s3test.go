// Package s3test runs a real S3 server for tests: versitygw
// (github.com/versity/versitygw) with its posix backend, where a bucket is a
// plain directory under Server.Dir. It builds nothing: it runs the binary
// named by $LAKEPROOF_VERSITYGW, or $(go env GOPATH)/bin/versitygw, which
// .ci/setup.d/20-s3.sh installs. Without the binary, Get skips the test
// with a message saying what to install, unless LAKEPROOF_REQUIRE_SERVERS=1,
// in which case it fails it.
//
// The server listens on a random port of 127.0.0.1 only, keeps its data in
// a temporary directory, and is killed by Close (or, on Linux, when the
// test process dies). A test package shares one server: call Main from
// TestMain and Get from each test; tests isolate themselves by creating
// their own buckets with NewBucket.
//
// The package also has a fault-injecting HTTP proxy (Proxy) to put in
// front of the server, and a throwaway certificate authority (NewCA) for
// TLS tests.
package s3test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// Version is the versitygw release the tests are written against.
const Version = "v1.8.0"

// InstallHint says how to get the server binary.
const InstallHint = "go install github.com/versity/versitygw/cmd/versitygw@" + Version + " (or set LAKEPROOF_VERSITYGW to the binary)"

// ErrNoBinary means the versitygw binary is not installed.
var ErrNoBinary = errors.New("versitygw binary not found")

// Server is a running versitygw.
type Server struct {
	Endpoint  string // "http://127.0.0.1:PORT"
	AccessKey string
	SecretKey string
	Region    string
	Dir       string // the posix backend's root: bucket b is Dir/b

	// Config has the endpoint, region and static credentials, and no other
	// settings from the environment.
	Config aws.Config
	// Client is a path-style client for Config.
	Client *s3.Client

	tmp     string
	cmd     *exec.Cmd
	exited  chan struct{}
	log     *syncBuffer
	buckets atomic.Int64
}

// Binary returns the path of the versitygw binary, or an error wrapping
// ErrNoBinary.
func Binary() (string, error) {
	if p := os.Getenv("LAKEPROOF_VERSITYGW"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%w: LAKEPROOF_VERSITYGW=%s: %v", ErrNoBinary, p, err)
		}
		return p, nil
	}
	gopath := os.Getenv("GOPATH")
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		gopath = strings.TrimSpace(string(out))
	}
	if gopath == "" {
		home, _ := os.UserHomeDir()
		gopath = filepath.Join(home, "go")
	}
	gopath, _, _ = strings.Cut(gopath, string(os.PathListSeparator))
	p := filepath.Join(gopath, "bin", "versitygw")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("%w at %s; install it with: %s", ErrNoBinary, p, InstallHint)
	}
	return p, nil
}

// Start starts a server in a new temporary directory. Close stops it and
// removes the directory.
func Start() (*Server, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "lakeproof-s3test-")
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(tmp, "root")
	if err := os.Mkdir(dir, 0o755); err != nil {
		os.RemoveAll(tmp)
		return nil, err
	}
	var secret [16]byte
	rand.Read(secret[:])
	s := &Server{
		AccessKey: "lakeproof-test",
		SecretKey: hex.EncodeToString(secret[:]),
		Region:    "us-east-1",
		Dir:       dir,
		tmp:       tmp,
	}
	// The port is chosen by binding :0 and releasing it; another process
	// may take it in between, so try a few times.
	for attempt := 0; ; attempt++ {
		err = s.start(bin)
		if err == nil {
			break
		}
		if attempt == 4 {
			os.RemoveAll(tmp)
			return nil, err
		}
	}
	s.Config = aws.Config{
		Region:       s.Region,
		Credentials:  credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
		HTTPClient:   awshttp.NewBuildableClient(),
		BaseEndpoint: aws.String(s.Endpoint),
	}
	s.Client = s3.NewFromConfig(s.Config, func(o *s3.Options) { o.UsePathStyle = true })
	return s, nil
}

func (s *Server) start(bin string) error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	addr := l.Addr().String()
	l.Close()
	s.log = new(syncBuffer)
	cmd := exec.Command(bin,
		"--access", s.AccessKey, "--secret", s.SecretKey,
		"--port", addr, "--region", s.Region, "--quiet", "--keep-alive",
		"posix", s.Dir)
	cmd.Stdout, cmd.Stderr = s.log, s.log
	setDeathSignal(cmd)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", bin, err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case <-exited:
			return fmt.Errorf("versitygw exited at start (%v): %s", cmd.ProcessState, s.log)
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			<-exited
			return fmt.Errorf("versitygw did not listen on %s within 20s: %s", addr, s.log)
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.Endpoint = "http://" + addr
	s.cmd, s.exited = cmd, exited
	return nil
}

// Close kills the server and removes its directory.
func (s *Server) Close() {
	if s.cmd != nil {
		s.cmd.Process.Kill()
		<-s.exited
		s.cmd = nil
	}
	os.RemoveAll(s.tmp)
}

var shared struct {
	once sync.Once
	srv  *Server
	err  error
}

// Main runs the tests of a package that uses Get and stops the shared server
// afterwards. Call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	if shared.srv != nil {
		shared.srv.Close()
	}
	os.Exit(code)
}

// Get returns the package's shared server, starting it on first use. If the
// binary is missing it skips tb, or fails it when LAKEPROOF_REQUIRE_SERVERS
// is 1.
func Get(tb testing.TB) *Server {
	tb.Helper()
	shared.once.Do(func() { shared.srv, shared.err = Start() })
	if shared.err != nil {
		if errors.Is(shared.err, ErrNoBinary) && os.Getenv("LAKEPROOF_REQUIRE_SERVERS") != "1" {
			tb.Skipf("no S3 server for this test: %v", shared.err)
		}
		tb.Fatalf("S3 test server: %v", shared.err)
	}
	return shared.srv
}

// New starts a server of tb's own, closed when tb's test ends; use it where
// a package cannot have a TestMain of its own. Skips and failures are as
// for Get.
func New(tb testing.TB) *Server {
	tb.Helper()
	s, err := Start()
	if err != nil {
		if errors.Is(err, ErrNoBinary) && os.Getenv("LAKEPROOF_REQUIRE_SERVERS") != "1" {
			tb.Skipf("no S3 server for this test: %v", err)
		}
		tb.Fatalf("S3 test server: %v", err)
	}
	tb.Cleanup(s.Close)
	return s
}

var nonBucket = regexp.MustCompile(`[^a-z0-9]+`)

// NewBucket creates a bucket with a fresh name derived from the test's name.
func (s *Server) NewBucket(tb testing.TB) string {
	tb.Helper()
	n := s.buckets.Add(1)
	name := strings.Trim(nonBucket.ReplaceAllString(strings.ToLower(tb.Name()), "-"), "-")
	name = fmt.Sprintf("t%d-%s", n, name)
	if len(name) > 63 {
		name = strings.TrimRight(name[:63], "-")
	}
	if _, err := s.Client.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		tb.Fatalf("create bucket %q: %v", name, err)
	}
	return name
}

// Put uploads one object with a single PUT.
func (s *Server) Put(tb testing.TB, bucket, key string, data []byte) {
	tb.Helper()
	_, err := s.Client.PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(data),
	})
	if err != nil {
		tb.Fatalf("put s3://%s/%s: %v", bucket, key, err)
	}
}

// PutTree uploads every entry of tree, a map from key to content.
func (s *Server) PutTree(tb testing.TB, bucket string, tree map[string][]byte) {
	tb.Helper()
	for k, v := range tree {
		s.Put(tb, bucket, k, v)
	}
}

// PutMultipart uploads data as a multipart upload of parts of partSize
// bytes (the last one shorter), so that the object's ETag ends in -N.
func (s *Server) PutMultipart(tb testing.TB, bucket, key string, data []byte, partSize int) {
	tb.Helper()
	ctx := context.Background()
	mu, err := s.Client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		tb.Fatalf("create multipart upload s3://%s/%s: %v", bucket, key, err)
	}
	var parts []types.CompletedPart
	for i, off := int32(1), 0; off < len(data); i, off = i+1, off+partSize {
		end := min(off+partSize, len(data))
		out, err := s.Client.UploadPart(ctx, &s3.UploadPartInput{
			Bucket: aws.String(bucket), Key: aws.String(key), UploadId: mu.UploadId,
			PartNumber: aws.Int32(i), Body: bytes.NewReader(data[off:end]),
		})
		if err != nil {
			tb.Fatalf("upload part %d of s3://%s/%s: %v", i, bucket, key, err)
		}
		parts = append(parts, types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(i)})
	}
	_, err = s.Client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket: aws.String(bucket), Key: aws.String(key), UploadId: mu.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
	})
	if err != nil {
		tb.Fatalf("complete multipart upload s3://%s/%s: %v", bucket, key, err)
	}
}

// Delete removes one object.
func (s *Server) Delete(tb testing.TB, bucket, key string) {
	tb.Helper()
	if _, err := s.Client.DeleteObject(context.Background(), &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}); err != nil {
		tb.Fatalf("delete s3://%s/%s: %v", bucket, key, err)
	}
}

// Log returns what the server printed so far.
func (s *Server) Log() string { return s.log.String() }

var _ http.Handler = (*Proxy)(nil)

// syncBuffer is a bytes.Buffer safe for the server's output goroutine and
// readers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
