package jobs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/lakeproof/lakeproof/index"
	"github.com/lakeproof/lakeproof/internal/s3test"
	s3src "github.com/lakeproof/lakeproof/sources/s3"
)

func s3Dest(srv *s3test.Server) func(ctx context.Context, uri string) (Dest, error) {
	return func(ctx context.Context, uri string) (Dest, error) {
		return s3src.NewIndexDir(ctx, uri, s3src.Options{Endpoint: srv.Endpoint, PathStyle: true, Region: srv.Region,
			Credentials: credentials.NewStaticCredentialsProvider(srv.AccessKey, srv.SecretKey, "")})
	}
}

// On the real S3 server: `index: s3://…` builds each version in the work
// directory, uploads it as DEST/VERSION/, reads the predecessor from S3
// for the next run (everything reused, same root as a local full index),
// leaves nothing in the work directory, and publishes nothing when an
// append-only dataset changed.
func TestRunJobS3Destination(t *testing.T) {
	srv := s3test.Get(t)
	bucket := srv.NewBucket(t)
	tmp := t.TempDir()
	lake := filepath.Join(tmp, "lake")
	makeLake(t, lake, 40)
	full := fullIndex(t, lake, filepath.Join(tmp, "full"))
	dest := "s3://" + bucket + "/_lakeproof/sales"
	work := filepath.Join(tmp, "work")
	j := job(t, fmt.Sprintf("version: 1\ndatasets:\n  - name: sales\n    source: %s\n    index: %s\n    append_only: true\n", lake, dest))
	clock := time.Date(2026, 11, 27, 2, 17, 0, 0, time.UTC)
	o := RunOptions{Open: openAny, Tool: "test", Now: func() time.Time { return clock }, OpenDest: s3Dest(srv), WorkDir: work}
	ctx := context.Background()

	if rep := RunJob(ctx, j, RunOptions{Open: openAny, Tool: "test", DryRun: true}); rep.Err() == nil {
		t.Fatal("an s3:// destination was accepted without OpenDest")
	}
	r1 := RunJob(ctx, j, o)
	if err := r1.Err(); err != nil {
		t.Fatal(err)
	}
	d1 := r1.Datasets[0]
	if d1.Root != full.Root || !d1.Published || d1.Index != dest+"/20261127T021700Z/" || d1.Previous != "" {
		t.Fatalf("first run: %+v", d1.IndexResult)
	}
	r2 := RunJob(ctx, j, o) // same second: a suffixed version, incremental from the first
	if err := r2.Err(); err != nil {
		t.Fatal(err)
	}
	d2 := r2.Datasets[0]
	if d2.Root != full.Root || d2.Reused != 40 || d2.Rehashed != 0 || d2.Previous != dest+"/20261127T021700Z/" ||
		d2.Index != dest+"/20261127T021700Z-1/" || d2.IndexResult.Previous == nil || d2.IndexResult.Previous.Root != full.Root {
		t.Fatalf("second run: %+v previous %q", d2.IndexResult, d2.Previous)
	}
	dd, _ := s3Dest(srv)(ctx, dest)
	for _, v := range []string{"20261127T021700Z", "20261127T021700Z-1"} {
		ix, err := index.OpenDir(ctx, dd.IndexDir(v))
		if err != nil {
			t.Fatal(err)
		}
		if ix.Summary().Root != full.Root {
			t.Fatalf("%s on S3: root %s", v, ix.Summary().Root)
		}
		ix.Close()
	}
	if ents, _ := os.ReadDir(workDir(work, dest+"/")); len(ents) > 1 { // the lock file may stay
		t.Fatalf("work directory not emptied: %v", ents)
	}

	// An object of the previous version changed: append-only refuses,
	// nothing is uploaded.
	writeFile(t, filepath.Join(lake, "d00/f00000.bin"), []byte("changed"))
	r3 := RunJob(ctx, j, o)
	if !errors.Is(r3.Err(), ErrAppendOnly) || r3.Datasets[0].Published {
		t.Fatalf("append-only violation: %v %+v", r3.Err(), r3.Datasets[0].IndexResult)
	}
	if latest, err := latestRemote(ctx, dd); err != nil || latest != "20261127T021700Z-1" {
		t.Fatalf("after a refused run the newest version is %q (%v)", latest, err)
	}
}
