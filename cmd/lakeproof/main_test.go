package main

// End-to-end tests of the lakeproof command. TestMain turns this test binary
// into the real lakeproof command when it is run under that name (see
// testscript.Main), so the scripts in testdata/script and the Go tests in
// e2e_test.go drive the real main in a separate process: real flags, real
// exit codes, real stdout/stderr, real signals.
//
// Script commands added here (see scriptCmds):
//
//	lp CODE ARGS...        run 'lakeproof ARGS...', require exit status CODE, and
//	                       require a stderr free of "panic" and "goroutine"
//	mkfile PATH SIZE       create PATH (Go escapes such as \n and \xff allowed, so
//	                       names no txtar archive can hold are possible) with SIZE
//	                       deterministic bytes; parents are created
//	gendata DIR N MAX      N files of 0..MAX deterministic bytes in nested folders
//	mkfifo PATH            create a named pipe
//	flipbyte FILE OFFSET   XOR the byte at OFFSET (negative: from the end) with 0xff
//	truncate FILE SIZE     truncate FILE to SIZE bytes (negative: drop that many)
//	appendbyte FILE        append one byte to FILE
//	jsonset FILE PATH JSON set the field at PATH ('/'-separated, array indexes
//	                       allowed: inclusion/0) of the JSON document FILE
//	jsonget FILE PATH OUT  write the JSON value at PATH of FILE to OUT
//	samejson PATH F1 F2    the JSON values at PATH of F1 and F2 are equal (! negates)
//	note MSG...            log a message (used to explain a skipped step)
//	emptydir DIR           DIR exists and is empty (! negates); used to check that
//	                       no index and no temporary directory were left behind
//
// Scripts see $REPO, the root of the module (for testdata/example-lake).
//
// Conditions:
//
//	[b3sum]       the b3sum binary is installed; if it is not and
//	              LAKEPROOF_REQUIRE_SERVERS=1, the script fails instead
//	[unreadable]  chmod 000 stops this process from reading a file (false as
//	              root, where permission bits do not stop reads)

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

func TestMain(m *testing.M) {
	// Child lakeproof processes (this binary, built with -race in CI)
	// would each sleep 1 s at exit, the race runtime's default.
	if os.Getenv("GORACE") == "" {
		os.Setenv("GORACE", "atexit_sleep_ms=0")
	}
	testscript.Main(m, map[string]func(){
		"lakeproof": func() { os.Exit(run()) },
	})
}

func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 filepath.Join("testdata", "script"),
		RequireExplicitExec: true,
		RequireUniqueNames:  true,
		Cmds:                scriptCmds,
		Condition:           scriptCondition,
		Setup: func(env *testscript.Env) error {
			env.Setenv("LAKEPROOF_REQUIRE_SERVERS", os.Getenv("LAKEPROOF_REQUIRE_SERVERS"))
			repo, err := filepath.Abs(filepath.Join("..", ".."))
			if err != nil {
				return err
			}
			env.Setenv("REPO", repo) // the module root, for the README's example dataset
			return nil
		},
	})
}

var scriptCmds = map[string]func(ts *testscript.TestScript, neg bool, args []string){
	"lp":         cmdLP,
	"mkfile":     cmdMkfile,
	"gendata":    cmdGendata,
	"mkfifo":     cmdMkfifo,
	"flipbyte":   cmdFlipbyte,
	"truncate":   cmdTruncate,
	"appendbyte": cmdAppendbyte,
	"jsonset":    cmdJSONSet,
	"jsonget":    cmdJSONGet,
	"samejson":   cmdSameJSON,
	"note":       cmdNote,
	"emptydir":   cmdEmptydir,
}

func scriptCondition(cond string) (bool, error) {
	switch cond {
	case "b3sum":
		if _, err := exec.LookPath("b3sum"); err != nil {
			if os.Getenv("LAKEPROOF_REQUIRE_SERVERS") == "1" {
				return false, errors.New("b3sum is not installed and LAKEPROOF_REQUIRE_SERVERS=1: apt-get install b3sum")
			}
			return false, nil
		}
		return true, nil
	case "unreadable":
		return chmodStopsReads()
	}
	return false, fmt.Errorf("unknown condition %q", cond)
}

// chmodStopsReads reports whether a file with mode 000 cannot be opened by
// this process (false when running as root or with CAP_DAC_OVERRIDE).
func chmodStopsReads() (bool, error) {
	dir, err := os.MkdirTemp("", "lakeproof-perm")
	if err != nil {
		return false, err
	}
	defer os.RemoveAll(dir)
	p := filepath.Join(dir, "f")
	if err := os.WriteFile(p, []byte("x"), 0o000); err != nil {
		return false, err
	}
	f, err := os.Open(p)
	if err == nil {
		f.Close()
		return false, nil
	}
	return true, nil
}

func noNeg(ts *testscript.TestScript, neg bool, name string) {
	if neg {
		ts.Fatalf("%s does not support negation", name)
	}
}

// cmdLP runs the lakeproof command and checks its exit status and that it
// did not crash: a Go panic also exits with status 2, so the status alone
// cannot tell a clean usage error from a crash.
func cmdLP(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "lp")
	if len(args) < 1 {
		ts.Fatalf("usage: lp CODE [ARGS...]")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("lp: exit code %q: %v", args[0], err)
	}
	err = ts.Exec("lakeproof", args[1:]...)
	got := 0
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			ts.Fatalf("lp: %v", err)
		}
		got = ee.ExitCode()
	}
	stderr := ts.ReadFile("stderr")
	for _, bad := range []string{"panic", "goroutine"} {
		if strings.Contains(stderr, bad) {
			ts.Fatalf("lakeproof %s: stderr contains %q (a crash or an internal error shown to the user)", strings.Join(args[1:], " "), bad)
		}
	}
	if got != want {
		ts.Fatalf("lakeproof %s: exit status %d, want %d", strings.Join(args[1:], " "), got, want)
	}
}

// unescape interprets Go escape sequences in a script argument.
func unescape(ts *testscript.TestScript, s string) string {
	u, err := strconv.Unquote(`"` + strings.ReplaceAll(s, `"`, `\"`) + `"`)
	if err != nil {
		ts.Fatalf("cannot unescape %q: %v", s, err)
	}
	return u
}

// content returns size deterministic bytes derived from seed.
func content(seed string, size int) []byte {
	// xorshift64*, seeded from FNV-1a of seed.
	x := uint64(14695981039346656037)
	for i := 0; i < len(seed); i++ {
		x = (x ^ uint64(seed[i])) * 1099511628211
	}
	if x == 0 {
		x = 1
	}
	b := make([]byte, size)
	for i := range b {
		x ^= x >> 12
		x ^= x << 25
		x ^= x >> 27
		b[i] = byte((x * 2685821657736338717) >> 56)
	}
	return b
}

func atoi(ts *testscript.TestScript, s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		ts.Fatalf("not a number: %q", s)
	}
	return n
}

func cmdMkfile(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "mkfile")
	if len(args) != 2 {
		ts.Fatalf("usage: mkfile PATH SIZE")
	}
	name := unescape(ts, args[0])
	p := ts.MkAbs(name)
	ts.Check(os.MkdirAll(filepath.Dir(p), 0o755))
	ts.Check(os.WriteFile(p, content(name, atoi(ts, args[1])), 0o644))
}

func cmdGendata(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "gendata")
	if len(args) != 3 {
		ts.Fatalf("usage: gendata DIR N MAXSIZE")
	}
	dir := ts.MkAbs(args[0])
	n, maxSize := atoi(ts, args[1]), atoi(ts, args[2])
	for i := range n {
		key := fmt.Sprintf("part=%d/sub-%d/file-%05d.bin", i%7, i%3, i)
		size := int(content(key, 4)[0]) * 257 % (maxSize + 1)
		p := filepath.Join(dir, filepath.FromSlash(key))
		ts.Check(os.MkdirAll(filepath.Dir(p), 0o755))
		ts.Check(os.WriteFile(p, content(key, size), 0o644))
	}
}

func cmdMkfifo(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "mkfifo")
	if len(args) != 1 {
		ts.Fatalf("usage: mkfifo PATH")
	}
	ts.Check(syscall.Mkfifo(ts.MkAbs(args[0]), 0o644))
}

func offset(ts *testscript.TestScript, s string, size int) int {
	off := atoi(ts, s)
	if off < 0 {
		off += size
	}
	if off < 0 || off > size {
		ts.Fatalf("offset %s out of range for %d bytes", s, size)
	}
	return off
}

func cmdFlipbyte(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "flipbyte")
	if len(args) != 2 {
		ts.Fatalf("usage: flipbyte FILE OFFSET")
	}
	p := ts.MkAbs(args[0])
	b, err := os.ReadFile(p)
	ts.Check(err)
	off := offset(ts, args[1], len(b)-1)
	b[off] ^= 0xff
	ts.Check(os.WriteFile(p, b, 0o644))
}

func cmdTruncate(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "truncate")
	if len(args) != 2 {
		ts.Fatalf("usage: truncate FILE SIZE")
	}
	p := ts.MkAbs(args[0])
	st, err := os.Stat(p)
	ts.Check(err)
	ts.Check(os.Truncate(p, int64(offset(ts, args[1], int(st.Size())))))
}

func cmdAppendbyte(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "appendbyte")
	if len(args) != 1 {
		ts.Fatalf("usage: appendbyte FILE")
	}
	f, err := os.OpenFile(ts.MkAbs(args[0]), os.O_WRONLY|os.O_APPEND, 0)
	ts.Check(err)
	_, err = f.Write([]byte{'!'})
	ts.Check(err)
	ts.Check(f.Close())
}

func readJSON(ts *testscript.TestScript, file string) any {
	var v any
	dec := json.NewDecoder(strings.NewReader(ts.ReadFile(file)))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		ts.Fatalf("%s: %v", file, err)
	}
	return v
}

// jsonAt returns the parent container and the final step of path in v.
func jsonAt(ts *testscript.TestScript, v any, path string) (any, string) {
	steps := strings.Split(path, "/")
	for _, s := range steps[:len(steps)-1] {
		v = jsonStep(ts, v, s, path)
	}
	return v, steps[len(steps)-1]
}

func jsonStep(ts *testscript.TestScript, v any, step, path string) any {
	switch c := v.(type) {
	case map[string]any:
		x, ok := c[step]
		if !ok {
			ts.Fatalf("JSON path %s: no field %q", path, step)
		}
		return x
	case []any:
		i := atoi(ts, step)
		if i < 0 || i >= len(c) {
			ts.Fatalf("JSON path %s: index %d out of range", path, i)
		}
		return c[i]
	}
	ts.Fatalf("JSON path %s: %q is not in an object or array", path, step)
	return nil
}

func cmdJSONSet(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "jsonset")
	if len(args) != 3 {
		ts.Fatalf("usage: jsonset FILE PATH JSON")
	}
	doc := readJSON(ts, args[0])
	var val any
	dec := json.NewDecoder(strings.NewReader(args[2]))
	dec.UseNumber() // keep 64-bit integers exact
	ts.Check(dec.Decode(&val))
	parent, last := jsonAt(ts, doc, args[1])
	switch c := parent.(type) {
	case map[string]any:
		c[last] = val
	case []any:
		i := atoi(ts, last)
		if i < 0 || i >= len(c) {
			ts.Fatalf("JSON path %s: index out of range", args[1])
		}
		c[i] = val
	default:
		ts.Fatalf("JSON path %s: not in an object or array", args[1])
	}
	out, err := json.MarshalIndent(doc, "", "  ")
	ts.Check(err)
	ts.Check(os.WriteFile(ts.MkAbs(args[0]), append(out, '\n'), 0o644))
}

func jsonValue(ts *testscript.TestScript, file, path string) string {
	parent, last := jsonAt(ts, readJSON(ts, file), path)
	out, err := json.Marshal(jsonStep(ts, parent, last, path))
	ts.Check(err)
	return string(out)
}

func cmdJSONGet(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "jsonget")
	if len(args) != 3 {
		ts.Fatalf("usage: jsonget FILE PATH OUT")
	}
	ts.Check(os.WriteFile(ts.MkAbs(args[2]), []byte(jsonValue(ts, args[0], args[1])+"\n"), 0o644))
}

func cmdSameJSON(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 3 {
		ts.Fatalf("usage: samejson PATH FILE1 FILE2")
	}
	a, b := jsonValue(ts, args[1], args[0]), jsonValue(ts, args[2], args[0])
	switch {
	case a != b && !neg:
		ts.Fatalf("%s differs: %s has %s, %s has %s", args[0], args[1], a, args[2], b)
	case a == b && neg:
		ts.Fatalf("%s is %s in both %s and %s", args[0], a, args[1], args[2])
	}
}

func cmdNote(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "note")
	ts.Logf("NOTE: %s", strings.Join(args, " "))
}

func cmdEmptydir(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: emptydir DIR")
	}
	des, err := os.ReadDir(ts.MkAbs(args[0]))
	ts.Check(err)
	var names bytes.Buffer
	for _, de := range des {
		fmt.Fprintf(&names, " %q", de.Name())
	}
	switch {
	case len(des) > 0 && !neg:
		ts.Fatalf("%s is not empty:%s", args[0], names.String())
	case len(des) == 0 && neg:
		ts.Fatalf("%s is empty", args[0])
	}
}
