package jobs

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/lakeproof/lakeproof/internal/s3test"
	s3src "github.com/lakeproof/lakeproof/sources/s3"
)

func TestMain(m *testing.M) { s3test.Main(m) }

func s3Source(t *testing.T, srv *s3test.Server, uri string) *s3src.Source {
	t.Helper()
	src, err := s3src.New(context.Background(), uri, s3src.Options{
		Endpoint: srv.Endpoint, PathStyle: true, Region: srv.Region,
		Credentials: credentials.NewStaticCredentialsProvider(srv.AccessKey, srv.SecretKey, ""),
	})
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// On the real S3 server: incremental re-index reuses by (size, ETag,
// checksum, LastModified) and gives the full root; N = 1, 3, 8 shards
// merge into the single-run root.
func TestS3IncrementalAndShards(t *testing.T) {
	srv := s3test.Get(t)
	bucket := srv.NewBucket(t)
	tree := map[string][]byte{}
	for i := range 240 {
		tree[fmt.Sprintf("data/p%d/obj-%04d", i%5, i)] = content(i, (i*131)%5000)
	}
	srv.PutTree(t, bucket, tree)
	uri := "s3://" + bucket + "/data/"
	tmp := t.TempDir()
	ctx := context.Background()

	full, err := Index(ctx, s3Source(t, srv, uri), IndexOptions{Out: filepath.Join(tmp, "v1"), Workers: 4})
	if err != nil {
		t.Fatal(err)
	}
	again, err := Index(ctx, s3Source(t, srv, uri), IndexOptions{Out: filepath.Join(tmp, "v2"), Previous: filepath.Join(tmp, "v1"), Workers: 4})
	if err != nil {
		t.Fatal(err)
	}
	if again.Root != full.Root || again.Reused != 240 || again.Rehashed != 0 {
		t.Fatalf("unchanged bucket: %+v", again)
	}
	// Same size, other content: the ETag changes, so it is re-hashed.
	srv.Put(t, bucket, "data/p0/obj-0005", content(12345, len(tree["data/p0/obj-0005"])))
	srv.Put(t, bucket, "data/zz-new", []byte("new object"))
	inc, err := Index(ctx, s3Source(t, srv, uri), IndexOptions{Out: filepath.Join(tmp, "v3"), Previous: filepath.Join(tmp, "v2"), Workers: 4})
	if err != nil {
		t.Fatal(err)
	}
	ref, err := Index(ctx, s3Source(t, srv, uri), IndexOptions{Out: filepath.Join(tmp, "ref"), Workers: 4})
	if err != nil {
		t.Fatal(err)
	}
	if inc.Root != ref.Root || inc.Rehashed != 2 || inc.Reused != 239 || !slices.Equal(inc.Changed, []string{"p0/obj-0005"}) {
		t.Fatalf("incremental on S3: %+v (full root %s)", inc, ref.Root)
	}
	for _, n := range []int{1, 3, 8} {
		plan, err := PlanFromIndex(ctx, filepath.Join(tmp, "ref"), n)
		if err != nil {
			t.Fatal(err)
		}
		var dirs []string
		for i := range n {
			sh, _ := plan.Shard(i)
			out := filepath.Join(tmp, fmt.Sprintf("s3-%d-%d", n, i))
			if _, err := Index(ctx, s3Source(t, srv, uri), IndexOptions{Out: out, Shard: sh, Workers: 2}); err != nil {
				t.Fatal(err)
			}
			dirs = append(dirs, out)
		}
		sum, err := Merge(ctx, dirs, filepath.Join(tmp, fmt.Sprintf("merged-%d", n)), "test")
		if err != nil {
			t.Fatal(err)
		}
		if sum.Root != ref.Root || sum.Files != ref.Files {
			t.Fatalf("N=%d: merged root %s, single run %s", n, sum.Root, ref.Root)
		}
	}
}
