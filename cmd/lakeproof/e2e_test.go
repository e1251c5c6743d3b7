package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lakeproof/lakeproof/index"
	"github.com/lakeproof/lakeproof/pipeline"
	"github.com/lakeproof/lakeproof/sources/local"
)

// writeTree creates the files of tree (key -> content) under dir.
func writeTree(t *testing.T, dir string, tree map[string]string) {
	t.Helper()
	for k, v := range tree {
		p := filepath.Join(dir, filepath.FromSlash(k))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// assertNothingAt fails unless out does not exist and its parent holds no
// temporary index directory.
func assertNothingAt(t *testing.T, out string) {
	t.Helper()
	if _, err := os.Lstat(out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s exists after a failed run (err=%v)", out, err)
	}
	des, err := os.ReadDir(filepath.Dir(out))
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range des {
		if strings.Contains(de.Name(), ".tmp-") {
			t.Errorf("temporary directory %s left behind", de.Name())
		}
	}
}

// growingSource is the local source of a directory whose files grow while
// they are hashed: after the first read of key grow, it appends to the file
// on disk, as a writer still producing it would. Everything else is the
// real local source.
type growingSource struct {
	*local.Source
	dir, grow string
	once      sync.Once
	grew      chan struct{}
}

func (s *growingSource) Open(ctx context.Context, obj pipeline.Object) (io.ReadCloser, error) {
	rc, err := s.Source.Open(ctx, obj)
	if err != nil || obj.Key != s.grow {
		return rc, err
	}
	return &growingReader{ReadCloser: rc, src: s}, nil
}

type growingReader struct {
	io.ReadCloser
	src *growingSource
}

func (r *growingReader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	r.src.once.Do(func() {
		f, ferr := os.OpenFile(filepath.Join(r.src.dir, r.src.grow), os.O_WRONLY|os.O_APPEND, 0)
		if ferr == nil {
			_, ferr = f.Write([]byte("one more line\n"))
			f.Close()
		}
		if ferr != nil {
			panic(ferr)
		}
		close(r.src.grew)
	})
	return n, err
}

// TestIndexFileGrowsWhileHashed: a file appended to while it is hashed is
// reported as changed, by key; the index is not written, or with
// --skip-errors is written without it and records the error.
func TestIndexFileGrowsWhileHashed(t *testing.T) {
	dir := t.TempDir()
	lake := filepath.Join(dir, "lake")
	big := strings.Repeat("0123456789abcdef", 1<<16) // 1 MiB, several reads
	writeTree(t, lake, map[string]string{"a.txt": "a", "logs/app.log": big, "z.txt": "z"})

	var src *growingSource
	sourceDrivers["growtest"] = func(_ context.Context, uri string, opts sourceOptions) (pipeline.Source, error) {
		ls, err := local.New(strings.TrimPrefix(uri, "growtest://"), local.Options{FollowSymlinks: opts.FollowSymlinks})
		if err != nil {
			return nil, err
		}
		src = &growingSource{Source: ls, dir: lake, grow: "logs/app.log", grew: make(chan struct{})}
		return src, nil
	}
	t.Cleanup(func() { delete(sourceDrivers, "growtest") })

	for _, skip := range []bool{false, true} {
		t.Run(fmt.Sprintf("skip-errors=%v", skip), func(t *testing.T) {
			if err := os.WriteFile(filepath.Join(lake, "logs/app.log"), []byte(big), 0o644); err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(dir, fmt.Sprintf("lake-%v.idx", skip))
			var stdout, stderr bytes.Buffer
			res, err := runIndex(context.Background(), indexOptions{
				Source: "growtest://" + lake, Out: out, Workers: 2, SkipErrors: skip, JSON: true,
			}, &stdout, &stderr)
			select {
			case <-src.grew:
			default:
				t.Fatal("the file was never appended to: the test did not test anything")
			}
			if !strings.Contains(stderr.String(), `error: read "logs/app.log"`) ||
				!strings.Contains(stderr.String(), "changed while being read") {
				t.Errorf("stderr does not report logs/app.log as changed:\n%s", stderr.String())
			}
			if !skip {
				if code := exitCode(err); code != exitInvalid {
					t.Fatalf("exit code %d (err %v), want %d", code, err, exitInvalid)
				}
				assertNothingAt(t, out)
				return
			}
			if err != nil {
				t.Fatalf("runIndex --skip-errors: %v", err)
			}
			if res.Files != 2 || res.Errors != 1 {
				t.Errorf("files=%d errors=%d, want 2 and 1", res.Files, res.Errors)
			}
			if !strings.Contains(stdout.String(), `"errors":1`) {
				t.Errorf("--json summary has no errors count: %s", stdout.String())
			}
			errs, err := os.ReadFile(filepath.Join(out, index.ErrorsFile))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(errs, []byte(`"key":"logs/app.log"`)) || !bytes.Contains(errs, []byte("changed while being read")) {
				t.Errorf("errors.jsonl does not record the change:\n%s", errs)
			}
			ix, err := index.Open(context.Background(), out)
			if err != nil {
				t.Fatal(err)
			}
			defer ix.Close()
			if _, err := ix.Lookup(context.Background(), "logs/app.log"); !errors.Is(err, index.ErrKeyNotFound) {
				t.Errorf("the changed file is in the index (err %v)", err)
			}
		})
	}
}

// TestIndexFileAppendedConcurrently is the same without any hook: a
// goroutine appends to a large file every millisecond for the whole run,
// as a log writer would. Hashing 32 MiB takes far longer than a
// millisecond, so the file always changes between listing and the end of
// its read, and must be reported, at open or at close.
func TestIndexFileAppendedConcurrently(t *testing.T) {
	dir := t.TempDir()
	lake := filepath.Join(dir, "lake")
	writeTree(t, lake, map[string]string{"a.txt": "a", "big.log": strings.Repeat("x", 32<<20)})
	f, err := os.OpenFile(filepath.Join(lake, "big.log"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				if _, err := f.Write([]byte("line\n")); err != nil {
					t.Error(err)
					return
				}
			}
		}
	}()
	out := filepath.Join(dir, "lake.idx")
	var stdout, stderr bytes.Buffer
	_, err = runIndex(context.Background(), indexOptions{Source: lake, Out: out}, &stdout, &stderr)
	close(done)
	wg.Wait()
	if code := exitCode(err); code != exitInvalid {
		t.Fatalf("exit code %d (err %v), want %d; stderr:\n%s", code, err, exitInvalid, stderr.String())
	}
	if !strings.Contains(stderr.String(), `"big.log"`) || !strings.Contains(stderr.String(), "object changed while being read") {
		t.Errorf("stderr does not report big.log as changed:\n%s", stderr.String())
	}
	assertNothingAt(t, out)
}

// lakeproofBinary returns the lakeproof command that TestMain installed in
// PATH: this test binary, which runs the real main when called lakeproof.
func lakeproofBinary(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("lakeproof")
	if err != nil {
		t.Fatalf("lakeproof is not in PATH (TestMain should have put it there): %v", err)
	}
	return p
}

// TestIndexSignal: SIGTERM or SIGINT (Ctrl-C) while hashing stops the real
// process with exit status 130 and leaves nothing at the output path, not
// even a temporary directory.
func TestIndexSignal(t *testing.T) {
	bin := lakeproofBinary(t)
	lake := filepath.Join(t.TempDir(), "lake")
	// A large dataset that costs no disk: sparse files read as zeros. 16 GiB
	// take seconds to hash on any machine; the signal comes well before.
	writeTree(t, lake, map[string]string{"a.txt": "a"})
	for i := range 8 {
		p := filepath.Join(lake, fmt.Sprintf("part-%d.bin", i))
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Truncate(2 << 30); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			outDir := t.TempDir()
			out := filepath.Join(outDir, "lake.idx")
			cmd := exec.Command(bin, "index", lake, "--out", out)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			t.Cleanup(func() {
				if cmd.ProcessState == nil {
					cmd.Process.Kill()
					<-exited
				}
			})
			// Hashing has started once the temporary index directory exists
			// (it is created just before); give it a moment more.
			deadline := time.Now().Add(30 * time.Second)
			for {
				m, _ := filepath.Glob(filepath.Join(outDir, ".lake.idx.tmp-*"))
				if len(m) > 0 {
					break
				}
				select {
				case err := <-exited:
					t.Fatalf("lakeproof exited (%v) before hashing started:\n%s%s", err, stdout.String(), stderr.String())
				case <-time.After(5 * time.Millisecond):
				}
				if time.Now().After(deadline) {
					t.Fatal("the temporary index directory never appeared")
				}
			}
			time.Sleep(300 * time.Millisecond)
			start := time.Now()
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			var err error
			select {
			case err = <-exited:
			case <-time.After(30 * time.Second):
				t.Fatalf("lakeproof did not stop within 30s of %v", sig)
			}
			t.Logf("stopped %v after %v; stderr: %s", sig, time.Since(start), stderr.String())
			var ee *exec.ExitError
			if !errors.As(err, &ee) {
				t.Fatalf("lakeproof exited with %v after %v, want exit status 130 (did it finish before the signal?)", err, sig)
			}
			if code := ee.ExitCode(); code != exitCanceled {
				t.Errorf("exit status %d after %v, want %d", code, sig, exitCanceled)
			}
			if s := stderr.String(); strings.Contains(s, "panic") || strings.Contains(s, "goroutine") {
				t.Errorf("stderr shows a crash:\n%s", s)
			}
			if !strings.Contains(stderr.String(), "nothing written to") {
				t.Errorf("stderr does not say that nothing was written:\n%s", stderr.String())
			}
			if stdout.Len() > 0 {
				t.Errorf("stdout after %v: %s", sig, stdout.String())
			}
			assertNothingAt(t, out)
		})
	}
}

// TestIndexProgressBar draws the progress bar (as on a terminal) into a
// buffer: it shows files and bytes, erases itself at the end, and leaves
// the summary on stdout unchanged. Under -race this also checks the
// concurrent listing that the bar uses to estimate the total.
func TestIndexProgressBar(t *testing.T) {
	dir := t.TempDir()
	lake := filepath.Join(dir, "lake")
	tree := map[string]string{}
	for i := range 50 {
		tree[fmt.Sprintf("d%d/f%03d", i%5, i)] = strings.Repeat("y", 1<<20)
	}
	writeTree(t, lake, tree)
	var stdout, stderr bytes.Buffer
	res, err := runIndex(context.Background(), indexOptions{
		Source: lake, Out: filepath.Join(dir, "lake.idx"), Workers: 1, Progress: true,
	}, &stdout, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	if res.Files != 50 {
		t.Errorf("files = %d, want 50", res.Files)
	}
	bar := stderr.String()
	if bar != "" && !strings.HasSuffix(bar, "\r\033[K") {
		t.Errorf("progress bar not erased at the end: %q", bar)
	}
	if strings.Contains(bar, "\r\033[K1") && !strings.Contains(bar, " files  ") {
		t.Errorf("progress bar without a file count: %q", bar)
	}
	if strings.Contains(bar, "\n") {
		t.Errorf("progress bar wrote a newline: %q", bar)
	}
	if !strings.Contains(stdout.String(), "files   50\n") {
		t.Errorf("summary: %q", stdout.String())
	}
}

// TestCorruptIndexEveryByte damages an index one byte at a time, in every
// file and at every offset (every 4th under -race or -short), and runs ls, prove and verify on it in-process.
// No damage may crash them or show an internal error ("panic", "goroutine");
// verify --index DIR must always find it (exit 1); ls, prove and verify of
// the dataset must either fail with exit 2 ("index is corrupt") or print
// exactly what the undamaged index gives: a byte no reader depends on may be
// harmless, but a wrong entry or bundle, or a wrong "not in the dataset",
// must never come out of a damaged index.
func TestCorruptIndexEveryByte(t *testing.T) {
	dir := t.TempDir()
	lake := filepath.Join(dir, "lake")
	writeTree(t, lake, map[string]string{"a.txt": "a", "a/b": "bb", "sales/2026/11/part-0001.parquet": "hello", "z": ""})
	good := filepath.Join(dir, "good.idx")
	if _, err := runIndex(context.Background(), indexOptions{Source: lake, Out: good, Quiet: true}, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	type outcome struct {
		out  string
		code int
		msg  string
	}
	run := func(name string, f func(io.Writer) error) (o outcome) {
		defer func() {
			if r := recover(); r != nil {
				t.Fatalf("%s: panic: %v", name, r)
			}
		}()
		var buf bytes.Buffer
		err := f(&buf)
		o = outcome{out: buf.String(), code: exitCode(err)}
		if err != nil {
			o.msg = err.Error()
		}
		return o
	}
	cmds := func(ix string) map[string]func(io.Writer) error {
		return map[string]func(io.Writer) error{
			"verify --index DIR": func(w io.Writer) error { return runVerify(ctx, verifyOptions{Index: ix, Quiet: true}, w) },
			"ls":                 func(w io.Writer) error { return runLs(ctx, lsOptions{Index: ix, Format: "jsonl"}, w) },
			"prove":              func(w io.Writer) error { return runProve(ctx, proveOptions{Index: ix, Key: "a/b"}, w) },
			"verify --index DIR lake": func(w io.Writer) error {
				return runVerify(ctx, verifyOptions{Index: ix, Paths: []string{lake}, JSON: true}, w)
			},
		}
	}
	want := map[string]outcome{}
	for name, f := range cmds(good) {
		if want[name] = run(name, f); want[name].code != 0 {
			t.Fatalf("%s on the good index: %+v", name, want[name])
		}
	}
	// Every byte normally; every 4th under -race or -short, which would
	// otherwise take minutes on a loaded 2-core machine.
	stride := 1
	if raceEnabled || testing.Short() {
		stride = 4
	}
	// problems maps "file: command: what went wrong" to the offsets where it did.
	problems := map[string][]int{}
	example := map[string]string{}
	for _, file := range []string{index.ParquetFile, "tree-00.bin", index.SummaryFile} {
		orig, err := os.ReadFile(filepath.Join(good, file))
		if err != nil {
			t.Fatal(err)
		}
		bad := filepath.Join(dir, "bad-"+file)
		if err := os.CopyFS(bad, os.DirFS(good)); err != nil {
			t.Fatal(err)
		}
		for off := 0; off < len(orig); off += stride {
			b := bytes.Clone(orig)
			b[off] ^= 0xff
			if err := os.WriteFile(filepath.Join(bad, file), b, 0o644); err != nil {
				t.Fatal(err)
			}
			for name, f := range cmds(bad) {
				o := run(name, f)
				var problem string
				switch {
				case strings.Contains(o.msg, "panic") || strings.Contains(o.msg, "goroutine"):
					problem = "error message shows an internal failure"
				case name == "verify --index DIR" && o.code != exitInvalid:
					problem = fmt.Sprintf("exit %d, want %d: the damage was not found", o.code, exitInvalid)
				case name == "verify --index DIR":
				case o.code == exitOK && o.out != want[name].out:
					problem = "succeeded with output that differs from the undamaged index"
				case o.code != exitOK && o.code != exitUsage:
					problem = fmt.Sprintf("exit %d, want %d (index is corrupt)", o.code, exitUsage)
				}
				if problem != "" {
					k := fmt.Sprintf("%s: %s: %s", file, name, problem)
					problems[k] = append(problems[k], off)
					if _, ok := example[k]; !ok {
						example[k] = o.msg + "\n" + o.out
					}
				}
			}
		}
	}
	for k, offs := range problems {
		t.Errorf("%s\n\tat %d offset(s): %s\n\tfirst: %s", k, len(offs), ranges(offs), example[k])
	}
}

// ranges formats sorted ints as "1-3 7 9-10".
func ranges(xs []int) string {
	var b strings.Builder
	for i := 0; i < len(xs); {
		j := i
		for j+1 < len(xs) && xs[j+1] == xs[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		if i == j {
			fmt.Fprintf(&b, "%d", xs[i])
		} else {
			fmt.Fprintf(&b, "%d-%d", xs[i], xs[j])
		}
		i = j + 1
	}
	return b.String()
}

// slowSource is the local source with one object slow to open, so that a
// run lasts long enough for the progress bar to draw while errors are
// reported.
type slowSource struct {
	*local.Source
	slow  string
	delay time.Duration
}

func (s slowSource) Open(ctx context.Context, obj pipeline.Object) (io.ReadCloser, error) {
	if obj.Key == s.slow {
		time.Sleep(s.delay)
	}
	return s.Source.Open(ctx, obj)
}

// TestIndexProgressBarWithErrors reports errors while the bar is drawn:
// each error is on a line of its own (the bar is erased first), and the
// bar and the error lines are written without a data race (run with -race).
func TestIndexProgressBarWithErrors(t *testing.T) {
	dir := t.TempDir()
	lake := filepath.Join(dir, "lake")
	writeTree(t, lake, map[string]string{"b.txt": "b", "m.txt": "m", "y.txt": "y"})
	for _, fifo := range []string{"a-fifo", "z-fifo"} {
		if err := syscall.Mkfifo(filepath.Join(lake, fifo), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sourceDrivers["slowtest"] = func(_ context.Context, uri string, _ sourceOptions) (pipeline.Source, error) {
		ls, err := local.New(strings.TrimPrefix(uri, "slowtest://"), local.Options{})
		if err != nil {
			return nil, err
		}
		return slowSource{Source: ls, slow: "m.txt", delay: 700 * time.Millisecond}, nil
	}
	t.Cleanup(func() { delete(sourceDrivers, "slowtest") })
	var stdout, stderr bytes.Buffer
	res, err := runIndex(context.Background(), indexOptions{
		Source: "slowtest://" + lake, Out: filepath.Join(dir, "lake.idx"), Workers: 1, Progress: true, SkipErrors: true,
	}, &stdout, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	if res.Files != 3 || res.Errors != 2 {
		t.Errorf("files=%d errors=%d, want 3 and 2", res.Files, res.Errors)
	}
	out := stderr.String()
	if !strings.Contains(out, " files  ") {
		t.Errorf("the bar was never drawn in a 700 ms run: %q", out)
	}
	for _, line := range strings.Split(out, "\n") {
		if i := strings.Index(line, "error: "); i >= 0 && !strings.HasSuffix(line[:i], "\r\033[K") {
			t.Errorf("error not on a line of its own: %q", line)
		}
	}
	if n := strings.Count(out, "error: "); n != 2 {
		t.Errorf("%d errors on stderr, want 2:\n%q", n, out)
	}
}

// Without a scout (re-index, job runs) the progress line counts objects,
// how many were reused and hashed, and the bytes hashed; a re-index and a
// job run draw it on "a terminal" and erase it at the end.
func TestProgressWithoutTotals(t *testing.T) {
	var p pipeline.Progress
	p.Files.Store(3000)
	p.Bytes.Store(3000 << 20)
	p.Reused.Store(1_200_000)
	var buf bytes.Buffer
	pb := &progressBar{out: &buf, p: &p, start: time.Now().Add(-1000 * time.Second)}
	pb.draw()
	if got := buf.String(); !strings.HasPrefix(got, "\r\033[K1203000 files (1200000 reused, 3000 hashed)  1203 files/s  2.9 GiB hashed  3.0 MiB/s") {
		t.Errorf("progress line %q", got)
	}

	dir := t.TempDir()
	lake := filepath.Join(dir, "lake")
	tree := map[string]string{}
	for i := range 40 {
		tree[fmt.Sprintf("d%d/f%03d", i%4, i)] = strings.Repeat("z", 1<<18)
	}
	writeTree(t, lake, tree)
	mustLP(t, "index", lake, "--out", filepath.Join(dir, "v1"), "--quiet")
	var stdout, stderr bytes.Buffer
	err := runIndexJob(context.Background(), indexOptions{Source: lake, Out: filepath.Join(dir, "v2"), Progress: true},
		indexJobFlags{Previous: filepath.Join(dir, "v1"), RehashAll: true}, &stdout, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	job := filepath.Join(dir, "job.yaml")
	os.WriteFile(job, fmt.Appendf(nil, "version: 1\ndatasets:\n  - name: a\n    source: %s\n    index: %s\n", lake, filepath.Join(dir, "dest")), 0o644)
	if err := runJob(context.Background(), runOptions{Job: job, Progress: true}, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	if bar := stderr.String(); bar != "" && (!strings.HasSuffix(bar, "\r\033[K") || strings.Contains(bar, "\n")) {
		t.Errorf("progress output %q", bar)
	}
}
