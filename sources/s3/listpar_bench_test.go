package s3_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/lakeproof/lakeproof/internal/s3test"
)

// BenchmarkListPrefixes times Objects over LAKEPROOF_BENCH_LIST_PREFIXES
// directories (default 200) of 100 keys each (20,000 keys), written
// straight into the posix backend's directory, sequentially
// (ListConcurrency 1) and in parallel, straight to the server and through
// a proxy that delays every request by 10 ms (a distant server):
//
//	go test -run '^$' -bench ListPrefixes -benchtime 5x ./sources/s3
func BenchmarkListPrefixes(b *testing.B) {
	srv := s3test.Get(b)
	dirs := 200
	if v, err := strconv.Atoi(os.Getenv("LAKEPROOF_BENCH_LIST_PREFIXES")); err == nil {
		dirs = v
	}
	const perDir = 100
	bucket := srv.NewBucket(b)
	for d := range dirs {
		dir := filepath.Join(srv.Dir, bucket, "lake", fmt.Sprintf("d%04d", d))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		for i := range perDir {
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%07d.bin", d*perDir+i)), nil, 0o644); err != nil {
				b.Fatal(err)
			}
		}
	}
	up, err := url.Parse(srv.Endpoint)
	if err != nil {
		b.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(up) // keeps Host, so SigV4 verifies
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(10 * time.Millisecond)
		rp.ServeHTTP(w, r)
	}))
	defer slow.Close()
	for _, tc := range []struct {
		name     string
		endpoint string
		conc     int
	}{
		{"local/conc=1", srv.Endpoint, 1}, {"local/conc=2", srv.Endpoint, 2}, {"local/conc=4", srv.Endpoint, 4},
		{"local/conc=8", srv.Endpoint, 8}, {"local/conc=16", srv.Endpoint, 16},
		{"rtt10ms/conc=1", slow.URL, 1}, {"rtt10ms/conc=4", slow.URL, 4}, {"rtt10ms/conc=16", slow.URL, 16},
	} {
		conc := tc.conc
		b.Run(tc.name, func(b *testing.B) {
			o := opts(srv, tc.endpoint)
			o.ListConcurrency = conc
			src, err := newSourceErr("s3://"+bucket+"/lake", o)
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				n := 0
				for _, err := range src.Objects(context.Background()) {
					if err != nil {
						b.Fatal(err)
					}
					n++
				}
				if n != dirs*perDir {
					b.Fatalf("listed %d keys, want %d", n, dirs*perDir)
				}
			}
			b.ReportMetric(float64(dirs*perDir)/(b.Elapsed().Seconds()/float64(b.N)), "keys/s")
		})
	}
}
