package s3_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/lakeproof/lakeproof/internal/s3test"
	"github.com/lakeproof/lakeproof/pipeline"
)

// trickyTree is a tree whose names sort around '/' (0x2F): top-level keys
// that sort before and after a directory of the same stem ("a.txt", "a-b",
// "a b", "a!" < "a/…" < "a0"), deep directories, a directory holding only a
// folder marker, a directory holding more than one page, unicode and
// characters S3 encodes, and many directories.
func trickyTree() map[string][]byte {
	t := map[string][]byte{}
	for _, k := range []string{
		"a.txt", "a/b", "a-b", "a b", "a!", "a/c/d/e/f", "a/c.txt", "a0", "a/b c",
		"b.txt", "b/x", "b0/y", "c/ü/日本.txt", "c+d", "c%20e", "c/+/x", "zero/",
		"deep/1/2/3/4/5/6/7/8/leaf", "deep.txt", "~end",
		"empty/", // a folder marker alone: a directory that yields nothing
	} {
		if strings.HasSuffix(k, "/") {
			t[k] = nil
			continue
		}
		t[k] = []byte("content of " + k)
	}
	for i := range 40 {
		t[fmt.Sprintf("dir%02d/f", i)] = []byte{byte(i)}
		if i%3 == 0 {
			t[fmt.Sprintf("dir%02d.csv", i)] = []byte{byte(i), 1}
		}
	}
	for i := range 1050 {
		t[fmt.Sprintf("many/%04d", i)] = []byte{byte(i)}
	}
	return t
}

// putTreeUnder uploads tree under prefix with 16 concurrent PUTs.
func putTreeUnder(t *testing.T, srv *s3test.Server, bucket, prefix string, tree map[string][]byte) {
	t.Helper()
	sem := make(chan struct{}, 16)
	errc := make(chan error, len(tree))
	for k, v := range tree {
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			_, err := srv.Client.PutObject(context.Background(), putInput(bucket, prefix+k, v))
			errc <- err
		}()
	}
	for range tree {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
}

func TestParallelListingOrder(t *testing.T) {
	srv := s3test.Get(t)
	bucket := srv.NewBucket(t)
	tr := trickyTree()
	putTreeUnder(t, srv, bucket, "p/", tr)
	// Keys outside the prefix that a wrong split could pick up.
	putTreeUnder(t, srv, bucket, "", map[string][]byte{"p.txt": []byte("x"), "p0/a": []byte("y"), "o/a": []byte("z")})

	var want []string
	for k, v := range tr {
		if !strings.HasSuffix(k, "/") || len(v) > 0 {
			want = append(want, k)
		}
	}
	slices.Sort(want) // Go strings sort bytewise

	summary := func(objs []pipeline.Object) []string {
		s := make([]string, len(objs))
		for i, o := range objs {
			s[i] = fmt.Sprintf("%s %d %s", o.Key, o.Size, o.ETag)
		}
		return s
	}
	var seq []string
	for _, conc := range []int{1, 2, 8} {
		o := opts(srv, srv.Endpoint)
		o.ListConcurrency = conc
		src := newSource(t, "s3://"+bucket+"/p/", o)
		objs, errs := listing(t, src)
		if len(errs) != 0 {
			t.Fatalf("ListConcurrency %d: object errors %v", conc, errs)
		}
		if got := keysOf(objs); !slices.Equal(got, want) {
			t.Fatalf("ListConcurrency %d: listed %d keys %q…, want %d %q…", conc, len(got), got[:min(len(got), 12)], len(want), want[:12])
		}
		if conc == 1 {
			seq = summary(objs)
		} else if got := summary(objs); !slices.Equal(got, seq) {
			t.Fatalf("ListConcurrency %d: objects differ from the sequential listing", conc)
		}
	}

	// The whole bucket (empty prefix) in parallel equals it sequentially.
	var whole [][]string
	for _, conc := range []int{1, 8} {
		o := opts(srv, srv.Endpoint)
		o.ListConcurrency = conc
		objs, _ := listing(t, newSource(t, "s3://"+bucket, o))
		whole = append(whole, summary(objs))
	}
	if !slices.Equal(whole[0], whole[1]) || len(whole[0]) != len(want)+3 {
		t.Fatalf("whole bucket: sequential %d objects, parallel %d, want %d", len(whole[0]), len(whole[1]), len(want)+3)
	}
}

func TestParallelListingStopAndCancel(t *testing.T) {
	srv := s3test.Get(t)
	bucket := srv.NewBucket(t)
	tr := map[string][]byte{}
	for i := range 30 {
		for j := range 5 {
			tr[fmt.Sprintf("d%02d/%d", i, j)] = []byte("x")
		}
	}
	putTreeUnder(t, srv, bucket, "", tr)
	o := opts(srv, srv.Endpoint)
	o.ListConcurrency = 8
	src := newSource(t, "s3://"+bucket, o)

	// The consumer stops early: the sequence returns (its workers are
	// waited for inside).
	n := 0
	for _, err := range src.Objects(context.Background()) {
		if err != nil {
			t.Fatal(err)
		}
		if n++; n == 12 {
			break
		}
	}

	// The context is cancelled part-way: the sequence ends with an error
	// wrapping context.Canceled, not with a short listing that looks whole.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n = 0
	var last error
	for _, err := range src.Objects(ctx) {
		if err != nil {
			last = err
			continue
		}
		if n++; n == 7 {
			cancel()
		}
	}
	if !errors.Is(last, context.Canceled) {
		t.Fatalf("after cancel: %d objects, final error %v; want context.Canceled", n, last)
	}
	if n >= len(tr) {
		t.Fatalf("after cancel: all %d objects listed", n)
	}
}

// TestParallelListingFault fails the listing of one directory through the
// fault proxy: a transient fault is retried and the listing is whole; a
// permanent one ends the sequence, in order, with an error naming the
// directory.
func TestParallelListingFault(t *testing.T) {
	srv := s3test.Get(t)
	bucket := srv.NewBucket(t)
	tr := map[string][]byte{}
	for i := range 20 {
		for j := range 3 {
			tr[fmt.Sprintf("d%02d/%d", i, j)] = []byte("x")
		}
	}
	putTreeUnder(t, srv, bucket, "p/", tr)
	isD07 := func(r *http.Request) bool { return r.URL.Query().Get("prefix") == "p/d07/" }

	for _, tc := range []struct {
		name      string
		permanent bool
	}{{"transient", false}, {"permanent", true}} {
		t.Run(tc.name, func(t *testing.T) {
			var faults atomic.Int64
			proxy := s3test.NewProxy(t, srv.Endpoint, func(n int, r *http.Request) s3test.Fault {
				if isD07(r) && (tc.permanent || faults.Load() == 0) {
					faults.Add(1)
					return s3test.Reset
				}
				return s3test.Pass
			})
			o := opts(srv, proxy.URL)
			o.ListConcurrency = 4
			src := newSource(t, "s3://"+bucket+"/p", o)
			var keys []string
			var final error
			for obj, err := range src.Objects(context.Background()) {
				if err != nil {
					final = err
					continue
				}
				if final != nil {
					t.Fatalf("object %q after the error %v", obj.Key, final)
				}
				keys = append(keys, obj.Key)
			}
			if faults.Load() == 0 {
				t.Fatal("the proxy injected no fault")
			}
			if !tc.permanent {
				if final != nil || len(keys) != len(tr) {
					t.Fatalf("transient fault: %d keys, error %v", len(keys), final)
				}
				return
			}
			if final == nil || !strings.Contains(final.Error(), `"p/d07/"`) {
				t.Fatalf("permanent fault: final error %v; want one naming p/d07/", final)
			}
			var oe *pipeline.ObjectError
			if errors.As(final, &oe) {
				t.Fatalf("permanent fault reported as an object error: %v", final)
			}
			if len(keys) != 7*3 || keys[len(keys)-1] != "d06/2" {
				t.Fatalf("permanent fault: listed %d keys up to %q, want the 21 before d07/", len(keys), keys[len(keys)-1])
			}
			t.Logf("error: %v", final)
		})
	}
}
