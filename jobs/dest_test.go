package jobs

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
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

// Sharded runs to an S3 destination: each shard uploads its shard index
// to DEST/shards/RUN_ID/, a retried shard finds it there, and the merge
// (read from S3) publishes the single run's root as a new version; the
// next sharded run plans from that version.
func TestRunJobS3DestinationShards(t *testing.T) {
	srv, tmp, full, dest, j, clock := s3JobFixture(t, 90)
	ctx := context.Background()
	for k, run := range []string{"r1", "r2"} {
		base := RunOptions{Open: openAny, Tool: "test", Now: func() time.Time { return clock.Add(time.Duration(k) * time.Hour) },
			OpenDest: s3Dest(srv), WorkDir: filepath.Join(tmp, "work"), RunID: run}
		for i := range 3 {
			o := base
			o.ShardIndex, o.ShardCount = i, 3
			rep := RunJob(ctx, j, o)
			if err := rep.Err(); err != nil {
				t.Fatalf("%s shard %d: %v", run, i, err)
			}
			if d := rep.Datasets[0]; !d.Published || d.Shard == nil || d.Shard.Compact == nil {
				t.Fatalf("%s shard %d: %+v", run, i, d.IndexResult)
			}
		}
		o := base
		o.ShardIndex, o.ShardCount = 1, 3
		if rep := RunJob(ctx, j, o); rep.Err() != nil || rep.Datasets[0].Rehashed != 0 || !rep.Datasets[0].Published {
			t.Fatalf("%s retried shard: %v %+v", run, rep.Err(), rep.Datasets[0].IndexResult)
		}
		o = base
		o.Merge = true
		rep := RunJob(ctx, j, o)
		if err := rep.Err(); err != nil {
			t.Fatalf("%s merge: %v", run, err)
		}
		d := rep.Datasets[0]
		if d.Root != full.Root || d.Files != full.Files || !strings.HasPrefix(d.Index, dest+"/2026") {
			t.Fatalf("%s merge: %+v, single run root %s", run, d.IndexResult, full.Root)
		}
		if (k == 1) != (d.IndexResult.Previous != nil) {
			t.Fatalf("%s merge: previous %+v", run, d.IndexResult.Previous)
		}
	}
	dd, _ := s3Dest(srv)(ctx, dest)
	if latest, err := latestRemote(ctx, dd); err != nil || latest != "20261127T031700Z" {
		t.Fatalf("newest version %q (%v)", latest, err)
	}
}

// racingDest lets another "machine" start uploading to the version name a
// run chose, just before the run uploads there.
type racingDest struct {
	Dest
	t     *testing.T
	raced []string
}

func (d *racingDest) Upload(ctx context.Context, dir, name string) error {
	if len(d.raced) < 2 { // the first two names the run tries are taken under it
		junk := filepath.Join(d.t.TempDir(), "index.parquet")
		if err := os.WriteFile(junk, []byte("another run's upload"), 0o644); err != nil {
			d.t.Fatal(err)
		}
		if err := d.Dest.UploadFile(ctx, name, junk); err != nil {
			d.t.Fatal(err)
		}
		d.raced = append(d.raced, name)
	}
	return d.Dest.Upload(ctx, dir, name)
}

// Runs on two machines (two work directories, so two local locks) that
// pick the same version name: nothing is overwritten and the new version
// moves on to the next free name; a partial directory is never a version
// nor a name chosen again.
func TestRunJobS3ConcurrentPublishers(t *testing.T) {
	srv, tmp, full, dest, j, clock := s3JobFixture(t, 12)
	ctx := context.Background()
	var racer *racingDest
	o := RunOptions{Open: openAny, Tool: "test", Now: func() time.Time { return clock }, WorkDir: filepath.Join(tmp, "work-a"),
		OpenDest: func(ctx context.Context, uri string) (Dest, error) {
			d, err := s3Dest(srv)(ctx, uri)
			racer = &racingDest{Dest: d, t: t}
			return racer, err
		}}
	r := RunJob(ctx, j, o)
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	d := r.Datasets[0]
	if want := dest + "/20261127T021700Z-2/"; d.Index != want || !d.Published || d.Root != full.Root {
		t.Fatalf("published %s (%+v), want %s", d.Index, d.IndexResult, want)
	}
	if len(racer.raced) != 2 || racer.raced[0] != "20261127T021700Z" || racer.raced[1] != "20261127T021700Z-1" {
		t.Fatalf("raced names %v", racer.raced)
	}
	plain, _ := s3Dest(srv)(ctx, dest)
	for _, v := range racer.raced { // the other run's file is intact, and no summary.json came
		rc, err := plain.IndexDir(v).Open(ctx, "index.parquet")
		if err != nil {
			t.Fatal(err)
		}
		b := make([]byte, 64)
		n, _ := rc.ReadAt(b, 0)
		rc.Close()
		if string(b[:n]) != "another run's upload" {
			t.Fatalf("%s/index.parquet overwritten: %q", v, b[:n])
		}
		if _, err := plain.IndexDir(v).Open(ctx, index.SummaryFile); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("%s has a summary.json: %v", v, err)
		}
	}
	// Another machine, same second: the partial directories are skipped.
	o2 := RunOptions{Open: openAny, Tool: "test", Now: func() time.Time { return clock }, WorkDir: filepath.Join(tmp, "work-b"), OpenDest: s3Dest(srv)}
	r2 := RunJob(ctx, j, o2)
	if err := r2.Err(); err != nil {
		t.Fatal(err)
	}
	if d2 := r2.Datasets[0]; d2.Index != dest+"/20261127T021700Z-3/" || d2.Previous != dest+"/20261127T021700Z-2/" || d2.Reused != 12 {
		t.Fatalf("second machine: %s from %s (%+v)", d2.Index, d2.Previous, d2.IndexResult)
	}
}

// s3JobFixture makes a lake of n files in tmp/lake, its full index, and a
// job of one dataset indexing it to s3://BUCKET/idx in a fresh bucket,
// with a fixed clock.
func s3JobFixture(t *testing.T, n int) (srv *s3test.Server, tmp string, full *IndexResult, dest string, j *Job, clock time.Time) {
	srv = s3test.Get(t)
	bucket := srv.NewBucket(t)
	tmp = t.TempDir()
	lake := filepath.Join(tmp, "lake")
	makeLake(t, lake, n)
	full = fullIndex(t, lake, filepath.Join(tmp, "full"))
	dest = "s3://" + bucket + "/idx"
	j = job(t, fmt.Sprintf("version: 1\ndatasets:\n  - name: a\n    source: %s\n    index: %s\n", lake, dest))
	return srv, tmp, full, dest, j, time.Date(2026, 11, 27, 2, 17, 0, 0, time.UTC)
}
