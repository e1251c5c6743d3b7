package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lakeproof/lakeproof/jobs"
)

func writeLake(t *testing.T, dir string, n int) {
	t.Helper()
	for i := range n {
		p := filepath.Join(dir, fmt.Sprintf("logs/%04d.log", i))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(strings.Repeat(fmt.Sprint(i), 100+i)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func exitOf(err error) int {
	var c codedError
	if errors.As(err, &c) {
		return c.code
	}
	return exitCode(err)
}

// Append-only: appending passes; changing or removing a logged object
// fails with exit 4, names the keys, and publishes nothing.
func TestAppendOnlyExitCodes(t *testing.T) {
	ctx := context.Background()
	tmp := t.TempDir()
	lake := filepath.Join(tmp, "lake")
	writeLake(t, lake, 20)
	job := filepath.Join(tmp, "job.yaml")
	os.WriteFile(job, fmt.Appendf(nil, "version: 1\ndatasets:\n  - name: orders\n    source: %s\n    index: %s\n    append_only: true\n", lake, filepath.Join(tmp, "idx")), 0o644)
	var out, errb bytes.Buffer
	if err := runJob(ctx, runOptions{Job: job}, &out, &errb); err != nil {
		t.Fatalf("first run: %v\n%s%s", err, out.String(), errb.String())
	}
	first, _ := jobs.Latest(filepath.Join(tmp, "idx"))
	os.WriteFile(filepath.Join(lake, "logs/9999.log"), []byte("rotated in"), 0o644)
	out.Reset()
	if err := runJob(ctx, runOptions{Job: job}, &out, &errb); err != nil {
		t.Fatalf("appending: %v\n%s", err, out.String())
	}
	second, _ := jobs.Latest(filepath.Join(tmp, "idx"))
	if second == first {
		t.Fatal("appending did not add a version")
	}

	// audit --append-only against the first version: only additions.
	if err := runAudit(ctx, auditOptions{Source: lake, Index: first, AppendOnly: true}, &out); err != nil {
		t.Fatalf("audit --append-only with additions: %v", err)
	}
	os.WriteFile(filepath.Join(lake, "logs/0003.log"), []byte("tampered"), 0o644)
	os.Remove(filepath.Join(lake, "logs/0004.log"))
	out.Reset()
	err := runAudit(ctx, auditOptions{Source: lake, Index: first, AppendOnly: true, MaxItems: 10}, &out)
	if exitOf(err) != exitAppendOnly || !strings.Contains(out.String(), "changed  logs/0003.log") || !strings.Contains(out.String(), "missing  logs/0004.log") {
		t.Fatalf("audit --append-only: exit %d (%v)\n%s", exitOf(err), err, out.String())
	}
	out.Reset()
	err = runJob(ctx, runOptions{Job: job}, &out, &errb)
	if exitOf(err) != exitAppendOnly || !errors.Is(err, jobs.ErrAppendOnly) {
		t.Fatalf("run: exit %d (%v)", exitOf(err), err)
	}
	for _, want := range []string{"changed logs/0003.log", "missing logs/0004.log", "FAILED"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("run report lacks %q:\n%s", want, out.String())
		}
	}
	if latest, _ := jobs.Latest(filepath.Join(tmp, "idx")); latest != second {
		t.Fatalf("a violating run published %s", latest)
	}
}

// runIndexJob: the batch flags of 'lakeproof index' (wired by the lead).
func TestIndexJobFlags(t *testing.T) {
	ctx := context.Background()
	tmp := t.TempDir()
	lake := filepath.Join(tmp, "lake")
	writeLake(t, lake, 50)
	var out, errb bytes.Buffer
	base := indexOptions{Source: lake, Out: filepath.Join(tmp, "v1"), Quiet: true}
	if _, err := runIndex(ctx, base, &out, &errb); err != nil {
		t.Fatal(err)
	}
	o := base
	o.Out, o.JSON = filepath.Join(tmp, "v2"), true
	if err := runIndexJob(ctx, o, indexJobFlags{Previous: base.Out, VerifySample: "50%"}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `"reused":`) || !strings.Contains(out.String(), `"rehashed":`) {
		t.Fatalf("output %s", out.String())
	}
	var shards []string
	for i := range 3 {
		o.Out = filepath.Join(tmp, fmt.Sprintf("s%d", i))
		shards = append(shards, o.Out)
		if err := runIndexJob(ctx, o, indexJobFlags{Shard: fmt.Sprintf("%d/3", i), Previous: base.Out}, &out, &errb); err != nil {
			t.Fatal(err)
		}
	}
	out.Reset()
	if err := runMerge(ctx, mergeOptions{Shards: shards, Out: filepath.Join(tmp, "merged"), JSON: true}, &out); err != nil {
		t.Fatal(err)
	}
	if root, want := extract(out.String(), `"root":"`), string(must(os.ReadFile(filepath.Join(tmp, "v1", "summary.json")))); len(root) != 64 || !strings.Contains(want, root) {
		t.Fatalf("merged root differs: %s", out.String())
	}
	for _, bad := range []indexJobFlags{{Shard: "3/3"}, {RehashAll: true}, {Previous: base.Out, VerifySample: "120%"}} {
		o.Out = filepath.Join(tmp, "bad")
		if err := runIndexJob(ctx, o, bad, &out, &errb); exitOf(err) != exitUsage {
			t.Errorf("%+v: exit %d (%v), want usage", bad, exitOf(err), err)
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func extract(s, after string) string {
	_, rest, _ := strings.Cut(s, after)
	v, _, _ := strings.Cut(rest, `"`)
	return v
}
