package s3_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/lakeproof/lakeproof/internal/s3test"
	"github.com/lakeproof/lakeproof/pipeline"
	s3src "github.com/lakeproof/lakeproof/sources/s3"
)

// isObjectGET tells a GET of object content from listings and probes.
func isObjectGET(r *http.Request) bool {
	return r.Method == http.MethodGet && r.URL.Query().Get("list-type") == "" && strings.Count(strings.Trim(r.URL.Path, "/"), "/") >= 1
}

func TestChangedAfterListing(t *testing.T) {
	srv := s3test.Get(t)
	bucket := srv.NewBucket(t)
	srv.Put(t, bucket, "p/small", []byte("version 1"))
	srv.Put(t, bucket, "p/large", randBytes(4, 5<<20))
	srv.Put(t, bucket, "p/gone", []byte("soon deleted"))
	o := opts(srv, srv.Endpoint)
	o.PartSize = 1 << 20
	src := newSource(t, "s3://"+bucket+"/p", o)
	objs, _ := listing(t, src)
	if len(objs) != 3 {
		t.Fatalf("listed %v", objs)
	}
	byKey := map[string]pipeline.Object{}
	for _, o := range objs {
		byKey[o.Key] = o
	}

	// Same length, other content: only the ETag tells.
	srv.Put(t, bucket, "p/small", []byte("version 2"))
	_, err := readAll(src, byKey["small"])
	if !errors.Is(err, pipeline.ErrChanged) || !strings.Contains(err.Error(), "p/small") {
		t.Errorf("read of object overwritten after listing: %v; want ErrChanged naming the key", err)
	}

	srv.Delete(t, bucket, "p/gone")
	_, err = readAll(src, byKey["gone"])
	if !errors.Is(err, pipeline.ErrNotFound) || !strings.Contains(err.Error(), "p/gone") {
		t.Errorf("read of object deleted after listing: %v; want ErrNotFound naming the key", err)
	}

	// Replaced after Open but before the parts are read: Read and Close
	// both report it.
	rc, err := src.Open(context.Background(), byKey["large"])
	if err != nil {
		t.Fatal(err)
	}
	srv.Put(t, bucket, "p/large", randBytes(5, 5<<20))
	_, rerr := io.ReadAll(rc)
	cerr := rc.Close()
	if !errors.Is(rerr, pipeline.ErrChanged) || !errors.Is(cerr, pipeline.ErrChanged) {
		t.Errorf("large object replaced while being read: Read %v, Close %v; want ErrChanged from both", rerr, cerr)
	}

	// A replaced large object fails at Open (its HEAD is pinned too).
	rc, err = src.Open(context.Background(), byKey["large"])
	if err == nil {
		rc.Close()
		t.Errorf("Open of replaced large object succeeded")
	} else if !errors.Is(err, pipeline.ErrChanged) {
		t.Errorf("Open of replaced large object: %v; want ErrChanged", err)
	}
}

func TestReadAt(t *testing.T) {
	srv := s3test.Get(t)
	bucket := srv.NewBucket(t)
	data := randBytes(6, 3<<20+7)
	srv.Put(t, bucket, "obj", data)
	src := newSource(t, "s3://"+bucket, opts(srv, srv.Endpoint))
	objs, _ := listing(t, src)
	rc, err := src.Open(context.Background(), objs[0])
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	ra := rc.(io.ReaderAt)
	for _, tc := range []struct{ off, n int }{{0, 10}, {1 << 20, 1 << 20}, {len(data) - 5, 5}, {len(data) - 5, 10}} {
		buf := make([]byte, tc.n)
		n, err := ra.ReadAt(buf, int64(tc.off))
		want := data[tc.off:min(tc.off+tc.n, len(data))]
		if !bytes.Equal(buf[:n], want) {
			t.Errorf("ReadAt(%d, %d): wrong bytes", tc.off, tc.n)
		}
		if n < tc.n && err != io.EOF || n == tc.n && err != nil {
			t.Errorf("ReadAt(%d, %d) = %d, %v", tc.off, tc.n, n, err)
		}
	}
}

// TestFaults puts the fault proxy between the driver and the server: every
// read must give the right content or fail with an error, never give wrong
// bytes.
func TestFaults(t *testing.T) {
	srv := s3test.Get(t)
	bucket := srv.NewBucket(t)
	files := map[string][]byte{
		"zero":  {},
		"small": randBytes(7, 1000),
		"mid":   randBytes(8, 300_000),
		"large": randBytes(9, 3<<20+5),
	}
	for i := range 6 {
		files[fmt.Sprintf("many/%02d", i)] = randBytes(uint64(100+i), 2000+i)
	}
	srv.PutTree(t, bucket, files)

	every := func(k int, f s3test.Fault, only func(*http.Request) bool) func(int, *http.Request) s3test.Fault {
		return func(n int, r *http.Request) s3test.Fault {
			if n%k == 0 && (only == nil || only(r)) {
				return f
			}
			return s3test.Pass
		}
	}
	all := func(*http.Request) bool { return true }
	for _, tc := range []struct {
		name    string
		decide  func(int, *http.Request) s3test.Fault
		mayFail bool // the fault is permanent: a clear error is the right answer
	}{
		{"503 every 2nd request", every(2, s3test.SlowDown, all), false},
		{"reset every 3rd request", every(3, s3test.Reset, all), false},
		{"truncated body every 2nd GET", every(2, s3test.Truncate, isObjectGET), false},
		{"truncated listing every 2nd request", every(2, s3test.Truncate, func(r *http.Request) bool { return !isObjectGET(r) }), false},
		{"mixed", func(n int, r *http.Request) s3test.Fault {
			return []s3test.Fault{s3test.Pass, s3test.SlowDown, s3test.Pass, s3test.Truncate, s3test.Reset, s3test.Pass}[n%6]
		}, false},
		{"stalled body every 3rd GET", every(3, s3test.Stall, isObjectGET), false},
		{"every GET truncated", every(1, s3test.Truncate, isObjectGET), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			proxy := s3test.NewProxy(t, srv.Endpoint, tc.decide)
			o := opts(srv, proxy.URL)
			o.PartSize = 1 << 20
			src, err := s3src.New(context.Background(), "s3://"+bucket, o)
			if err != nil {
				t.Fatalf("New through proxy: %v", err)
			}
			var objs []pipeline.Object
			for obj, err := range src.Objects(context.Background()) {
				if err != nil {
					t.Fatalf("Objects: %v", err)
				}
				objs = append(objs, obj)
			}
			if len(objs) != len(files) {
				t.Fatalf("listed %d objects, want %d", len(objs), len(files))
			}
			failed := 0
			for _, obj := range objs {
				b, err := readAll(src, obj)
				if err != nil {
					failed++
					if !tc.mayFail {
						t.Errorf("read %q: %v", obj.Key, err)
					} else if !strings.Contains(err.Error(), obj.Key) {
						t.Errorf("read %q: error does not name the object: %v", obj.Key, err)
					}
					continue
				}
				if !bytes.Equal(b, files[obj.Key]) {
					t.Errorf("read %q: WRONG CONTENT without an error", obj.Key)
				}
			}
			if tc.mayFail && failed == 0 {
				t.Errorf("no read failed")
			}
			t.Logf("faults injected: %v; reads failed: %d", proxy.Counts(), failed)
		})
	}
}

func TestAccessErrors(t *testing.T) {
	srv := s3test.Get(t)
	bucket := srv.NewBucket(t)
	srv.Put(t, bucket, "k", []byte("x"))
	ctx := context.Background()

	bad := opts(srv, srv.Endpoint)
	bad.Credentials = credentials.NewStaticCredentialsProvider(srv.AccessKey, "wrong-secret", "")
	_, err := s3src.New(ctx, "s3://"+bucket, bad)
	wantErr(t, "wrong secret", err, "credentials rejected")

	bad.Credentials = credentials.NewStaticCredentialsProvider("no-such-key", srv.SecretKey, "")
	_, err = s3src.New(ctx, "s3://"+bucket, bad)
	wantErr(t, "unknown access key", err, "credentials rejected")

	_, err = s3src.New(ctx, "s3://no-such-bucket-here", opts(srv, srv.Endpoint))
	wantErr(t, "missing bucket", err, `bucket "no-such-bucket-here" does not exist`)

	_, err = s3src.New(ctx, "s3://"+bucket+"/a//b", opts(srv, srv.Endpoint))
	wantErr(t, "bad URI", err, "empty path segment")

	// No permission: versitygw runs in single-account mode here, so the
	// proxy plays a server that denies the listing or the read.
	for _, what := range []string{"list", "read"} {
		proxy := s3test.NewProxy(t, srv.Endpoint, nil)
		h := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			isList := r.URL.Query().Get("list-type") != ""
			if what == "list" && isList || what == "read" && !isList {
				w.Header().Set("Content-Type", "application/xml")
				w.WriteHeader(http.StatusForbidden)
				if r.Method != http.MethodHead {
					io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>`)
				}
				return
			}
			proxy.ServeHTTP(w, r)
		}))
		t.Cleanup(h.Close)
		_, err = s3src.New(ctx, "s3://"+bucket, opts(srv, h.URL))
		wantErr(t, "denied "+what, err, "access denied")
	}
}

func wantErr(t *testing.T, what string, err error, substr string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: no error", what)
		return
	}
	if !strings.Contains(err.Error(), substr) {
		t.Errorf("%s: error %q does not say %q", what, err, substr)
	}
	t.Logf("%s: %v", what, err)
}

func TestNotS3Endpoint(t *testing.T) {
	srv := s3test.Get(t)
	for _, status := range []int{http.StatusOK, http.StatusNotFound, http.StatusForbidden} {
		h := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.WriteHeader(status)
			io.WriteString(w, "<!doctype html><html><head><title>Welcome</title></head><body><h1>It works!</h1></body></html>")
		}))
		t.Cleanup(h.Close)
		_, err := s3src.New(context.Background(), "s3://some-bucket/p", opts(srv, h.URL))
		wantErr(t, fmt.Sprintf("HTML endpoint (HTTP %d)", status), err, "not an S3 server")
	}
}

// TestBuggyListing has the proxy rewrite listings as a buggy server would.
func TestBuggyListing(t *testing.T) {
	srv := s3test.Get(t)
	bucket := srv.NewBucket(t)
	srv.PutTree(t, bucket, map[string][]byte{"p/a": []byte("a"), "p/b": []byte("b"), "p/c": []byte("c"), "p/d": []byte("d")})
	contents := regexp.MustCompile(`<Contents>.*?</Contents>`)
	listings := func(r *http.Request) bool { return r.URL.Query().Get("list-type") == "2" }
	for _, tc := range []struct {
		name    string
		rewrite func([]byte) []byte
		want    string
	}{
		{"repeats a key", func(b []byte) []byte {
			all := contents.FindAll(b, -1)
			if len(all) < 2 {
				return b
			}
			return bytes.Replace(b, all[1], append(append([]byte{}, all[1]...), all[1]...), 1)
		}, "repeats a key"},
		{"goes backwards", func(b []byte) []byte {
			all := contents.FindAll(b, -1)
			if len(all) < 3 {
				return b
			}
			x := bytes.Replace(b, all[1], []byte("\x00SWAP\x00"), 1)
			x = bytes.Replace(x, all[2], all[1], 1)
			return bytes.Replace(x, []byte("\x00SWAP\x00"), all[2], 1)
		}, "goes backwards"},
		{"key outside the prefix", func(b []byte) []byte {
			return bytes.Replace(b, []byte("<Key>p/d</Key>"), []byte("<Key>q/d</Key>"), 1)
		}, "outside the prefix"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			proxy := s3test.NewProxy(t, srv.Endpoint, nil)
			var rewritten atomic.Int32
			proxy.Rewrite = func(r *http.Request, b []byte) []byte {
				if !listings(r) || r.URL.Query().Get("max-keys") == "1" {
					return b
				}
				nb := tc.rewrite(b)
				if !bytes.Equal(nb, b) {
					rewritten.Add(1)
				}
				return nb
			}
			src := newSource(t, "s3://"+bucket+"/p", opts(srv, proxy.URL))
			err := listErr(src)
			if rewritten.Load() == 0 {
				t.Fatalf("the proxy rewrote no listing")
			}
			wantErr(t, tc.name, err, tc.want)
		})
	}
}

// TestInvalidKeys checks that keys that cannot be dataset keys are
// reported, in order, and that folder markers are skipped.
func TestInvalidKeys(t *testing.T) {
	srv := s3test.Get(t)
	bucket := srv.NewBucket(t)
	srv.PutTree(t, bucket, map[string][]byte{
		"p/a":     []byte("a"),
		"p/ctl":   []byte("control char"),
		"p/dir/":  nil, // folder marker
		"p/dir/f": []byte("f"),
		"p/z":     []byte("z"),
	})
	// The posix backend cannot store a//b or ../x (they are file system
	// paths), and versitygw mangles control characters in listings; the
	// proxy renames listed keys to them, as another server could list them.
	proxy := s3test.NewProxy(t, srv.Endpoint, nil)
	proxy.Rewrite = func(r *http.Request, b []byte) []byte {
		if r.URL.Query().Get("list-type") != "2" || r.URL.Query().Get("max-keys") == "1" {
			return b
		}
		b = bytes.Replace(b, []byte("<Key>p/ctl</Key>"), []byte("<Key>p/ctl&#x9;x</Key>"), 1)
		b = bytes.Replace(b, []byte("<Key>p/dir/f</Key>"), []byte("<Key>p/dir//f</Key>"), 1)
		return bytes.Replace(b, []byte("<Key>p/z</Key>"), []byte("<Key>p/z/../y</Key>"), 1)
	}
	src := newSource(t, "s3://"+bucket+"/p", opts(srv, proxy.URL))
	var got []string
	for o, err := range src.Objects(context.Background()) {
		var oe *pipeline.ObjectError
		switch {
		case errors.As(err, &oe):
			if oe.Op != "key" {
				t.Errorf("ObjectError.Op = %q", oe.Op)
			}
			got = append(got, "error:"+oe.Key)
		case err != nil:
			t.Fatal(err)
		default:
			got = append(got, o.Key)
		}
	}
	want := []string{"a", "error:ctl\tx", "error:dir//f", "error:z/../y"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("listing %q, want %q", got, want)
	}
}

// TestCABundle runs against a TLS endpoint whose CA is only in a bundle
// file, with AWS_CA_BUNDLE set and unset.
func TestCABundle(t *testing.T) {
	srv := s3test.Get(t)
	bucket := srv.NewBucket(t)
	srv.Put(t, bucket, "k", []byte("over TLS"))
	caFile, cert := s3test.NewCA(t)
	proxy := s3test.NewTLSProxy(t, srv.Endpoint, cert, nil)

	t.Run("set", func(t *testing.T) {
		t.Setenv("AWS_CA_BUNDLE", caFile)
		src := newSource(t, "s3://"+bucket, opts(srv, proxy.URL))
		objs, _ := listing(t, src)
		if len(objs) != 1 {
			t.Fatalf("listed %v", objs)
		}
		b, err := readAll(src, objs[0])
		if err != nil || string(b) != "over TLS" {
			t.Fatalf("read: %q, %v", b, err)
		}
		// A plain-HTTP endpoint works with the variable set too.
		newSource(t, "s3://"+bucket, opts(srv, srv.Endpoint))
	})
	t.Run("unset", func(t *testing.T) {
		t.Setenv("AWS_CA_BUNDLE", "")
		os.Unsetenv("AWS_CA_BUNDLE")
		newSource(t, "s3://"+bucket, opts(srv, srv.Endpoint))
		_, err := s3src.New(context.Background(), "s3://"+bucket, opts(srv, proxy.URL))
		wantErr(t, "TLS endpoint with an unknown CA", err, "certificate")
	})
}

// TestRangedOnlyWhenAlone: a large object opened while no other object is
// open is read with ranged GETs after a HEAD; one opened while another is
// open is read with a single GET (the caller's parallelism suffices).
func TestRangedOnlyWhenAlone(t *testing.T) {
	srv := s3test.Get(t)
	bucket := srv.NewBucket(t)
	a, b := bytes.Repeat([]byte("a"), 1<<20), bytes.Repeat([]byte("b"), 1<<20+7)
	srv.PutTree(t, bucket, map[string][]byte{"a": a, "b": b})
	var heads atomic.Int64
	proxy := s3test.NewProxy(t, srv.Endpoint, func(_ int, r *http.Request) s3test.Fault {
		if r.Method == http.MethodHead {
			heads.Add(1)
		}
		return s3test.Pass
	})
	h := httptest.NewServer(proxy)
	t.Cleanup(h.Close)
	o := opts(srv, h.URL)
	o.PartSize = 256 << 10
	src := newSource(t, "s3://"+bucket, o)
	objs, _ := listing(t, src)
	if len(objs) != 2 {
		t.Fatalf("listed %d objects", len(objs))
	}
	base := heads.Load() // New's and the listing's probes
	ctx := context.Background()
	ra, err := src.Open(ctx, objs[0])
	if err != nil {
		t.Fatal(err)
	}
	if n := heads.Load() - base; n != 1 {
		t.Fatalf("alone: %d HEADs, want 1 (ranged reading)", n)
	}
	rb, err := src.Open(ctx, objs[1])
	if err != nil {
		t.Fatal(err)
	}
	if n := heads.Load() - base; n != 1 {
		t.Fatalf("second open object: %d HEADs, want still 1 (one GET)", n)
	}
	for _, c := range []struct {
		r    io.ReadCloser
		want []byte
	}{{ra, a}, {rb, b}} {
		got, err := io.ReadAll(c.r)
		if err != nil || !bytes.Equal(got, c.want) {
			t.Fatalf("read %d bytes, %v", len(got), err)
		}
		if err := c.r.Close(); err != nil {
			t.Fatal(err)
		}
	}
	rb, err = src.Open(ctx, objs[1]) // alone again
	if err != nil {
		t.Fatal(err)
	}
	defer rb.Close()
	if n := heads.Load() - base; n != 2 {
		t.Fatalf("alone after both closed: %d HEADs, want 2", n)
	}
}
