package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/lakeproof/lakeproof/index"
	"github.com/lakeproof/lakeproof/jobs"
)

// TestRunCrashLoop kills the real 'lakeproof run' with SIGKILL at random
// moments, then runs it again to completion: the second run must give
// exactly the root of a clean run, take the journaled digests of the killed
// run instead of re-reading those objects, and no incomplete index may
// ever be visible as a version.
func TestRunCrashLoop(t *testing.T) {
	bin := lakeproofBinary(t)
	tmp := t.TempDir()
	lake := filepath.Join(tmp, "lake")
	for i := range 800 {
		p := filepath.Join(lake, fmt.Sprintf("d%d/f%05d", i%13, i))
		os.MkdirAll(filepath.Dir(p), 0o755)
		b := make([]byte, (i*7919)%40000)
		for j := range b {
			b[j] = byte(i + j*31)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dest := filepath.Join(tmp, "idx")
	job := filepath.Join(tmp, "job.yaml")
	os.WriteFile(job, fmt.Appendf(nil, "version: 1\ndatasets:\n  - name: lake\n    source: %s\n    index: %s\n    workers: 2\n    incremental: {mode: \"off\"}\n", lake, dest), 0o644)

	// GORACE: a binary built with -race sleeps 1 s at exit by default,
	// which would make the clean run's time (the range of kill delays)
	// mostly that sleep.
	env := append(os.Environ(), "LAKEPROOF_JOURNAL_SYNC=2ms", "GORACE=atexit_sleep_ms=0")
	run := func(ctx context.Context) (*jobs.RunReport, error) {
		cmd := exec.CommandContext(ctx, bin, "run", job, "--json")
		cmd.Env = env
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			return nil, fmt.Errorf("%v: %s", err, errb.String())
		}
		var rep jobs.RunReport
		if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
			return nil, fmt.Errorf("%v: %s", err, out.String())
		}
		return &rep, nil
	}
	start := time.Now()
	clean, err := run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	cleanTime := time.Since(start)
	root := clean.Datasets[0].Root
	os.RemoveAll(dest)
	t.Logf("clean run: %d files in %v, root %s", clean.Files, cleanTime, root)

	versionRE := regexp.MustCompile(`^[0-9]{8}T[0-9]{6}Z(-[0-9]+)?$`)
	checkVersions := func(trial int) {
		ents, _ := os.ReadDir(dest)
		for _, e := range ents {
			if !versionRE.MatchString(e.Name()) {
				continue
			}
			ix, err := index.Open(context.Background(), filepath.Join(dest, e.Name()))
			if err != nil {
				t.Fatalf("trial %d: visible version %s is not a complete index: %v", trial, e.Name(), err)
			}
			if err := ix.Check(context.Background()); err != nil || ix.Summary().Root != root {
				t.Fatalf("trial %d: version %s: root %s, clean %s, check %v", trial, e.Name(), ix.Summary().Root, root, err)
			}
			ix.Close()
		}
	}
	rng := rand.New(rand.NewPCG(1, uint64(time.Now().UnixNano())))
	trials, resumedRuns := 20, 0
	journal := filepath.Join(dest, ".journal")
	for trial := range trials {
		cmd := exec.Command(bin, "run", job, "--quiet")
		cmd.Env = env
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		delay := time.Duration(rng.Int64N(int64(cleanTime)))
		if trial%2 == 1 {
			// Every other kill lands after the journal holds its first
			// records (results reach it a batch at a time), within a few
			// sync periods: hashing can be a small part of a run
			// (start-up, listing and publishing dominate on a loaded
			// machine), and resuming must be exercised on every run.
			for end := time.Now().Add(2 * cleanTime); time.Now().Before(end); time.Sleep(200 * time.Microsecond) {
				if journalHasRecords(journal) {
					break
				}
			}
			delay = time.Duration(rng.Int64N(int64(20 * time.Millisecond)))
		}
		time.Sleep(delay)
		cmd.Process.Kill() // SIGKILL; the run may have finished already
		cmd.Wait()
		checkVersions(trial)
		rep, err := run(context.Background())
		if err != nil {
			t.Fatalf("trial %d: re-run: %v", trial, err)
		}
		d := rep.Datasets[0]
		if d.Root != root {
			t.Fatalf("trial %d: root after kill and re-run %s, clean %s", trial, d.Root, root)
		}
		if d.Resumed > 0 {
			resumedRuns++
		}
		if d.Rehashed+d.Resumed != clean.Files {
			t.Fatalf("trial %d: rehashed %d + resumed %d != %d files", trial, d.Rehashed, d.Resumed, clean.Files)
		}
		checkVersions(trial)
		os.RemoveAll(dest)
	}
	t.Logf("%d trials in %v; %d re-runs resumed from a journal", trials, time.Since(start), resumedRuns)
	if resumedRuns == 0 {
		t.Fatal("no re-run ever resumed from the journal of a killed run")
	}
}

// journalHasRecords reports whether a segment of the journal directory
// holds more than its header line.
func journalHasRecords(dir string) bool {
	segs, _ := filepath.Glob(filepath.Join(dir, "seg-*"))
	for _, s := range segs {
		b, err := os.ReadFile(s)
		if i := bytes.IndexByte(b, '\n'); err == nil && i >= 0 && len(b) > i+1 {
			return true
		}
	}
	return false
}
