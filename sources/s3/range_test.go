package s3_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/lakeproof/lakeproof/internal/s3test"
	s3src "github.com/lakeproof/lakeproof/sources/s3"
)

func rangeKeys(t *testing.T, src *s3src.Source, start, end string) []string {
	t.Helper()
	var ks []string
	for o, err := range src.ObjectsRange(context.Background(), start, end) {
		if err != nil {
			t.Fatalf("ObjectsRange(%q, %q): %v", start, end, err)
		}
		ks = append(ks, o.Key)
	}
	return ks
}

// ObjectsRange yields exactly the keys of [start, end) that Objects
// yields, sequentially and in parallel, for bounds around '/' and
// multi-byte characters.
func TestObjectsRange(t *testing.T) {
	srv := s3test.Get(t)
	bucket := srv.NewBucket(t)
	putTreeUnder(t, srv, bucket, "p/", trickyTree())
	putTreeUnder(t, srv, bucket, "", map[string][]byte{"p.txt": []byte("x"), "p0/a": []byte("y")})
	o := opts(srv, srv.Endpoint)
	o.ListConcurrency = 1
	all, _ := listing(t, newSource(t, "s3://"+bucket+"/p/", o))
	keys := keysOf(all)
	ranges := [][2]string{
		{"", "a/c.txt"}, {"a/", "b/x"}, {"a/b", ""}, {"a-b", "a0"}, {"a/c/d/e/f", "dir07/f"}, {"c/ü", "many/0999"},
		{"c/ü/日本.txt", "~"}, {"many/0500", "many/0999"}, {"dir05.csv", "dir05/f"}, {"~end", ""}, {"ü", ""}, {"", ""},
	}
	for _, conc := range []int{1, 8} {
		o := opts(srv, srv.Endpoint)
		o.ListConcurrency = conc
		src := newSource(t, "s3://"+bucket+"/p/", o)
		for _, r := range ranges {
			start, end := r[0], r[1]
			var want []string
			for _, k := range keys {
				if k >= start && (end == "" || k < end) {
					want = append(want, k)
				}
			}
			if got := rangeKeys(t, src, start, end); !slices.Equal(got, want) {
				t.Errorf("ListConcurrency %d [%q, %q): got %d keys %q…, want %d", conc, start, end, len(got), got[:min(len(got), 5)], len(want))
			}
		}
	}

	// Children lists one level with a delimiter.
	src := newSource(t, "s3://"+bucket+"/p/", o)
	var got []string
	for c, err := range src.Children(context.Background(), "a/") {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s:%d", c.Key, c.Size))
	}
	if want := []string{"a/b:14", "a/b c:16", "a/c.txt:18", "a/c/:0"}; !slices.Equal(got, want) {
		t.Errorf("Children(a/) = %q, want %q", got, want)
	}
	for _, err := range src.Children(context.Background(), "a") {
		if err == nil {
			t.Error("Children(\"a\"): no error for a key that is not a directory")
		}
	}
}

// Each shard's range listing asks the server only for its range: counted
// through the proxy, the requests of a range inside three directories are
// the top-level page and those directories (parallel), or one page
// (sequential), where the whole listing takes 31 and 2.
func TestObjectsRangeRequests(t *testing.T) {
	srv := s3test.Get(t)
	bucket := srv.NewBucket(t)
	tr := map[string][]byte{}
	for d := range 30 {
		for i := range 40 {
			tr[fmt.Sprintf("d%02d/%03d", d, i)] = []byte{byte(i)}
		}
	}
	putTreeUnder(t, srv, bucket, "p/", tr)
	var (
		mu   sync.Mutex
		reqs []string
	)
	proxy := s3test.NewProxy(t, srv.Endpoint, func(n int, r *http.Request) s3test.Fault {
		q := r.URL.Query()
		if q.Get("list-type") == "2" {
			mu.Lock()
			reqs = append(reqs, fmt.Sprintf("prefix=%s delimiter=%s start-after=%s", q.Get("prefix"), q.Get("delimiter"), q.Get("start-after")))
			mu.Unlock()
		}
		return s3test.Pass
	})
	count := func(conc int, start, end string) (keys int, lists []string) {
		o := opts(srv, proxy.URL)
		o.ListConcurrency = conc
		src := newSource(t, "s3://"+bucket+"/p/", o)
		mu.Lock()
		reqs = nil
		mu.Unlock()
		keys = len(rangeKeys(t, src, start, end))
		mu.Lock()
		defer mu.Unlock()
		return keys, slices.Clone(reqs)
	}
	for _, tc := range []struct {
		conc, whole, ranged int
	}{{1, 2, 1}, {8, 31, 4}} {
		n, lists := count(tc.conc, "", "")
		if n != 1200 || len(lists) != tc.whole {
			t.Errorf("ListConcurrency %d, whole listing: %d keys in %d requests, want 1200 in %d: %q", tc.conc, n, len(lists), tc.whole, lists)
		}
		n, lists = count(tc.conc, "d10/020", "d12/010")
		if n != 70 || len(lists) != tc.ranged {
			t.Errorf("ListConcurrency %d, range: %d keys in %d requests, want 70 in %d: %q", tc.conc, n, len(lists), tc.ranged, lists)
		}
		for _, l := range lists {
			for _, d := range []string{"d09/", "d13/", "d00/", "d29/"} {
				if strings.Contains(l, "prefix=p/"+d) {
					t.Errorf("ListConcurrency %d: range listing listed %s: %s", tc.conc, d, l)
				}
			}
		}
		t.Logf("ListConcurrency %d range requests: %q", tc.conc, lists)
	}
}
