package s3_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/zeebo/blake3"

	"github.com/lakeproof/lakeproof"
	"github.com/lakeproof/lakeproof/index"
	"github.com/lakeproof/lakeproof/internal/s3test"
	s3src "github.com/lakeproof/lakeproof/sources/s3"
)

// buildIndex writes a local index of n synthetic entries.
func buildIndex(t *testing.T, n int) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "ix")
	w, err := index.Create(dir, index.Meta{Source: "s3://example/lake/", Tool: "test"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		key := fmt.Sprintf("file-%07d.parquet", i)
		if err := w.Add(index.Entry{Key: key, Size: int64(i), ModTime: time.Unix(1700000000, 0), Digest: lakeproof.Hash(blake3.Sum256([]byte(key))), ETag: fmt.Sprintf("etag-%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	return dir
}

func dirSize(t *testing.T, dir string) int64 {
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, e := range entries {
		info, _ := e.Info()
		n += info.Size()
	}
	return n
}

func TestIndexOnS3(t *testing.T) {
	srv := s3test.Get(t)
	bucket := srv.NewBucket(t)
	local := buildIndex(t, 50_000)
	ctx := context.Background()
	uri := "s3://" + bucket + "/_lakeproof/lake/v1"
	o := opts(srv, srv.Endpoint)
	if err := s3src.UploadIndex(ctx, local, uri, o); err != nil {
		t.Fatalf("UploadIndex: %v", err)
	}
	// Never over a complete index.
	err := s3src.UploadIndex(ctx, local, uri, o)
	if !errors.Is(err, index.ErrExists) {
		t.Errorf("second UploadIndex: %v; want index.ErrExists", err)
	}
	// Never over the files of an incomplete one (If-None-Match: *).
	partial := "s3://" + bucket + "/_lakeproof/lake/partial"
	srv.Put(t, bucket, "_lakeproof/lake/partial/"+index.ParquetFile, []byte("left by a crashed upload"))
	err = s3src.UploadIndex(ctx, local, partial, o)
	if !errors.Is(err, index.ErrExists) {
		t.Errorf("UploadIndex over a partial index: %v; want index.ErrExists", err)
	}
	if _, err := index.OpenDir(ctx, mustIndexDir(t, partial, o)); !errors.Is(err, index.ErrCorrupt) {
		t.Errorf("OpenDir of a partial index: %v; want ErrCorrupt (incomplete)", err)
	}

	// Read it back through a proxy that counts the bytes: a proof reads a
	// small part of the index.
	proxy := s3test.NewProxy(t, srv.Endpoint, nil)
	remote, err := index.OpenDir(ctx, mustIndexDir(t, uri, opts(srv, proxy.URL)))
	if err != nil {
		t.Fatalf("OpenDir: %v", err)
	}
	defer remote.Close()
	want, err := index.Open(ctx, local)
	if err != nil {
		t.Fatal(err)
	}
	defer want.Close()
	if remote.Summary().Root != want.Summary().Root {
		t.Fatalf("root %s, want %s", remote.Summary().Root, want.Summary().Root)
	}
	opened := proxy.BytesOut()
	key := "file-0031337.parquet"
	got, err := remote.Prove(ctx, key)
	if err != nil {
		t.Fatalf("Prove from S3: %v", err)
	}
	exp, err := want.Prove(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	gj, _ := json.Marshal(got)
	ej, _ := json.Marshal(exp)
	if len(gj) < 100 || string(gj) != string(ej) {
		t.Errorf("proof from S3 differs from the local one:\n%s\n%s", gj, ej)
	}
	total := dirSize(t, local)
	read := proxy.BytesOut()
	t.Logf("index %d bytes; open read %d bytes, open+proof %d bytes in %d requests", total, opened, read, proxy.Requests())
	if read*4 > total {
		t.Errorf("open+proof read %d of the index's %d bytes; want a small part", read, total)
	}
}

func mustIndexDir(t *testing.T, uri string, o s3src.Options) *s3src.IndexDir {
	t.Helper()
	d, err := s3src.NewIndexDir(context.Background(), uri, o)
	if err != nil {
		t.Fatal(err)
	}
	return d
}
