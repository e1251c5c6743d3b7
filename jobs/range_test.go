package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/transparency-dev/merkle/compact"

	"github.com/lakeproof/lakeproof"
	"github.com/lakeproof/lakeproof/index"
	"github.com/lakeproof/lakeproof/internal/s3test"
	s3src "github.com/lakeproof/lakeproof/sources/s3"
)

// On the real S3 server, counted through the proxy: shards planned from
// the previous index list only their own range (together each directory
// about once, no directory outside a shard's range), shards planned from
// the source use delimited listings only, and both merge into the single
// run's root.
func TestShardsListOnlyTheirRange(t *testing.T) {
	srv := s3test.Get(t)
	bucket := srv.NewBucket(t)
	tree := map[string][]byte{}
	for d := range 12 {
		for i := range 30 {
			tree[fmt.Sprintf("p/d%02d/obj-%03d", d, i)] = content(d*100+i, 100+(i*37)%900)
		}
	}
	srv.PutTree(t, bucket, tree)
	var (
		mu    sync.Mutex
		lists []string // "prefix delimiter start-after" of each ListObjectsV2
	)
	proxy := s3test.NewProxy(t, srv.Endpoint, func(n int, r *http.Request) s3test.Fault {
		if q := r.URL.Query(); q.Get("list-type") == "2" && q.Get("max-keys") != "1" { // not New's probe
			mu.Lock()
			lists = append(lists, q.Get("prefix")+" "+q.Get("delimiter")+" "+q.Get("start-after"))
			mu.Unlock()
		}
		return s3test.Pass
	})
	open := func() *s3src.Source {
		src, err := s3src.New(context.Background(), "s3://"+bucket+"/p/", s3src.Options{
			Endpoint: proxy.URL, PathStyle: true, Region: srv.Region,
			Credentials: credentials.NewStaticCredentialsProvider(srv.AccessKey, srv.SecretKey, ""),
		})
		if err != nil {
			t.Fatal(err)
		}
		return src
	}
	take := func() []string {
		mu.Lock()
		defer mu.Unlock()
		l := lists
		lists = nil
		return l
	}
	ctx := context.Background()
	tmp := t.TempDir()
	ref, err := Index(ctx, open(), IndexOptions{Out: filepath.Join(tmp, "ref"), Workers: 4})
	if err != nil {
		t.Fatal(err)
	}
	take()
	const n = 3
	for _, planned := range []string{"index", "source"} {
		var plan Plan
		if planned == "index" {
			plan, err = PlanFromIndex(ctx, filepath.Join(tmp, "ref"), n)
		} else {
			plan, err = PlanFromSource(ctx, open(), n)
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range take() {
			if planned == "index" || !strings.Contains(l, " / ") {
				t.Errorf("planned from the %s: listing %q", planned, l)
			}
		}
		dirListings := map[string]int{}
		var shardDirs []string
		for i := range n {
			sh, _ := plan.Shard(i)
			out := filepath.Join(tmp, fmt.Sprintf("%s-%d", planned, i))
			if _, err := Index(ctx, open(), IndexOptions{Out: out, Shard: sh, Workers: 2}); err != nil {
				t.Fatal(err)
			}
			shardDirs = append(shardDirs, out)
			for _, l := range take() {
				prefix := strings.Fields(l)[0]
				if prefix == "p/" {
					continue // the top-level delimited listing
				}
				d := strings.TrimPrefix(prefix, "p/")
				dirListings[d]++
				if (d < sh.Start && !strings.HasPrefix(sh.Start, d)) || (sh.End != "" && d >= sh.End) {
					t.Errorf("planned from the %s: shard %d [%q, %q) listed %q", planned, i, sh.Start, sh.End, l)
				}
			}
		}
		total := 0
		for d, c := range dirListings {
			total += c
			if c > 2 {
				t.Errorf("planned from the %s: %s listed %d times", planned, d, c)
			}
		}
		if total > 12+n-1 {
			t.Errorf("planned from the %s: %d directory listings for 12 directories and %d shards: %v", planned, total, n, dirListings)
		}
		sum, err := Merge(ctx, shardDirs, filepath.Join(tmp, "merged-"+planned), "test")
		if err != nil {
			t.Fatal(err)
		}
		if sum.Root != ref.Root || sum.Files != ref.Files {
			t.Fatalf("planned from the %s: merged root %s over %d, single run %s over %d", planned, sum.Root, sum.Files, ref.Root, ref.Files)
		}
		t.Logf("planned from the %s: splits %q, directory listings %v", planned, plan.Splits, dirListings)
	}
}

// Shard indexes record their compact range (docs/FORMAT.md §8.2); it
// folds to the shard's root, and merge refuses a shard whose rows do not
// give it.
func TestShardCompactRange(t *testing.T) {
	tmp := t.TempDir()
	lake := filepath.Join(tmp, "lake")
	makeLake(t, lake, 61)
	plan, err := PlanFromSource(context.Background(), openLocal(t, lake), 3)
	if err != nil {
		t.Fatal(err)
	}
	_, dirs := runShards(t, lake, t.TempDir(), plan, "")
	rf := compact.RangeFactory{Hash: lakeproof.Hasher.HashChildren}
	for _, d := range dirs {
		ix, err := index.Open(context.Background(), d)
		if err != nil {
			t.Fatal(err)
		}
		sum := ix.Summary()
		ix.Close()
		c := sum.Shard.Compact
		if c == nil || c.Size != sum.Files || len(c.Hashes) != bits.OnesCount64(c.Size) {
			t.Fatalf("%s: compact %+v for %d files", d, c, sum.Files)
		}
		var hs [][]byte
		for _, h := range c.Hashes {
			hs = append(hs, h[:])
		}
		r, err := rf.NewRange(0, c.Size, hs)
		if err != nil {
			t.Fatal(err)
		}
		root, err := r.GetRootHash(nil)
		if err != nil || lakeproof.Hash(root) != sum.Root {
			t.Fatalf("%s: compact range folds to %x, root is %s (%v)", d, root, sum.Root, err)
		}
	}
	// Alter one hash of shard 1's compact range.
	sumFile := filepath.Join(dirs[1], index.SummaryFile)
	b, err := os.ReadFile(sumFile)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	hashes := raw["shard"].(map[string]any)["compact"].(map[string]any)["hashes"].([]any)
	hashes[0] = strings.Repeat("00", 32)
	b, _ = json.MarshalIndent(raw, "", "  ")
	os.Chmod(dirs[1], 0o755)
	os.Chmod(sumFile, 0o644)
	if err := os.WriteFile(sumFile, b, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Merge(context.Background(), dirs, filepath.Join(tmp, "merged"), "test")
	if !errors.Is(err, index.ErrCorrupt) || !strings.Contains(err.Error(), "compact range") {
		t.Fatalf("merge with an altered compact range: %v", err)
	}
}

// Without a predecessor, a partitioned lake is planned from its directory
// levels: split keys are directories, shards get equal numbers of them, and
// the shards merge into the single run's root.
func TestPlanFromDirectories(t *testing.T) {
	tmp := t.TempDir()
	lake := filepath.Join(tmp, "lake")
	for m := 1; m <= 12; m++ {
		for d := 1; d <= 28; d++ {
			for p := range 2 {
				writeFile(t, filepath.Join(lake, fmt.Sprintf("year=2026/month=%02d/day=%02d/part-%d.csv", m, d, p)), []byte(fmt.Sprint(m, d, p)))
			}
		}
	}
	writeFile(t, filepath.Join(lake, "README"), []byte("top-level file"))
	full := fullIndex(t, lake, filepath.Join(tmp, "full"))
	plan, err := PlanFromSource(context.Background(), openLocal(t, lake), 4)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range plan.Splits {
		if !strings.HasSuffix(s, "/") || strings.Count(s, "/") != 3 {
			t.Fatalf("split %q is not a day directory: %q", s, plan.Splits)
		}
	}
	sum, dirs := runShards(t, lake, t.TempDir(), plan, "")
	if sum.Root != full.Root {
		t.Fatalf("merged root %s, single run %s", sum.Root, full.Root)
	}
	for _, d := range dirs {
		ix, err := index.Open(context.Background(), d)
		if err != nil {
			t.Fatal(err)
		}
		if f := ix.Summary().Files; f < 160 || f > 180 { // 672 day files (+1) in 4 shards of 84 days
			t.Errorf("%s holds %d files: unbalanced (plan %q)", d, f, plan.Splits)
		}
		ix.Close()
	}
}
