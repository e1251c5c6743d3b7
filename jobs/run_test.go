package jobs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/lakeproof/lakeproof/internal/s3test"
	"github.com/lakeproof/lakeproof/pipeline"
	"github.com/lakeproof/lakeproof/sources/local"
	s3src "github.com/lakeproof/lakeproof/sources/s3"
)

func openAny(ctx context.Context, uri string) (pipeline.Source, error) {
	return local.New(uri, local.Options{})
}

func job(t *testing.T, text string) *Job {
	t.Helper()
	j, err := ParseJob("job.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func TestRunJobGlobsVersionsMetrics(t *testing.T) {
	tmp := t.TempDir()
	lake := filepath.Join(tmp, "lake")
	makeLake(t, lake, 70) // d00..d06
	dest := filepath.Join(tmp, "dest")
	j := job(t, fmt.Sprintf("version: 1\ndatasets:\n  - name: a\n    source: %s\n    index: %s\n    include: [\"d0[0-2]/**\"]\n    exclude: [\"d01/**\"]\n", lake, dest))
	clock := time.Date(2026, 11, 27, 2, 17, 0, 0, time.UTC)
	o := RunOptions{Open: openAny, Tool: "test", Now: func() time.Time { return clock }}

	dry := RunJob(context.Background(), j, RunOptions{Open: openAny, DryRun: true})
	if dry.Err() != nil || dry.Datasets[0].Action != "index" || pathExists(dest) {
		t.Fatalf("dry run: %+v", dry)
	}
	r1 := RunJob(context.Background(), j, o)
	if err := r1.Err(); err != nil {
		t.Fatal(err)
	}
	if r1.Files != 20 { // d00 and d02: 10 each
		t.Fatalf("globs kept %d files", r1.Files)
	}
	for _, e := range entries(t, filepath.Join(dest, "20261127T021700Z")) {
		if !strings.HasPrefix(e.Key, "d00/") && !strings.HasPrefix(e.Key, "d02/") {
			t.Fatalf("key %q should have been filtered out", e.Key)
		}
	}
	r2 := RunJob(context.Background(), j, o) // same second: a suffixed version
	if err := r2.Err(); err != nil || r2.Reused != 20 || r2.Datasets[0].Previous != filepath.Join(dest, "20261127T021700Z") {
		t.Fatalf("second run: %v %+v", err, r2.Datasets[0])
	}
	if latest, _ := Latest(dest); latest != filepath.Join(dest, "20261127T021700Z-1") {
		t.Fatalf("latest %s", latest)
	}
	mf := filepath.Join(tmp, "m.prom")
	if err := WriteMetrics(mf, r2, clock); err != nil {
		t.Fatal(err)
	}
	m, _ := os.ReadFile(mf)
	for _, want := range []string{`lakeproof_job_success{dataset="a"} 1`, `lakeproof_job_reused_objects{dataset="a"} 20`,
		`lakeproof_job_rehashed_objects{dataset="a"} 0`, "# TYPE lakeproof_job_files gauge"} {
		if !strings.Contains(string(m), want) {
			t.Errorf("metrics lack %q:\n%s", want, m)
		}
	}
}

func pathExists(p string) bool { _, err := os.Stat(p); return err == nil }

func TestRunJobLocked(t *testing.T) {
	tmp := t.TempDir()
	lake := filepath.Join(tmp, "lake")
	makeLake(t, lake, 5)
	dest := filepath.Join(tmp, "dest")
	os.MkdirAll(dest, 0o755)
	unlock, err := lockDest(dest)
	if err != nil {
		t.Fatal(err)
	}
	j := job(t, fmt.Sprintf("version: 1\ndatasets:\n  - name: a\n    source: %s\n    index: %s\n", lake, dest))
	rep := RunJob(context.Background(), j, RunOptions{Open: openAny})
	if !errors.Is(rep.Err(), ErrBusy) {
		t.Fatalf("err %v, want ErrBusy", rep.Err())
	}
	unlock()
	if rep := RunJob(context.Background(), j, RunOptions{Open: openAny}); rep.Err() != nil {
		t.Fatal(rep.Err())
	}
}

// Wrong S3 credentials: a clear error before any work; nothing is created.
func TestRunJobS3BadCredentials(t *testing.T) {
	srv := s3test.Get(t)
	bucket := srv.NewBucket(t)
	srv.Put(t, bucket, "data/a", []byte("a"))
	dest := filepath.Join(t.TempDir(), "dest")
	j := job(t, fmt.Sprintf("version: 1\ndatasets:\n  - name: a\n    source: s3://%s/data/\n    index: %s\n", bucket, dest))
	rep := RunJob(context.Background(), j, RunOptions{Open: func(ctx context.Context, uri string) (pipeline.Source, error) {
		return s3src.New(ctx, uri, s3src.Options{Endpoint: srv.Endpoint, PathStyle: true, Region: srv.Region,
			Credentials: credentials.NewStaticCredentialsProvider(srv.AccessKey, "wrong-secret", "")})
	}})
	err := rep.Err()
	if err == nil {
		t.Fatal("wrong credentials accepted")
	}
	t.Logf("error: %v", err)
	if pathExists(dest) {
		t.Fatal("the destination was created before the credentials were checked")
	}
}
