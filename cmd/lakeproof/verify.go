package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lakeproof/lakeproof"
	"github.com/lakeproof/lakeproof/index"
	"github.com/lakeproof/lakeproof/pipeline"
	"github.com/lakeproof/lakeproof/pipeline/parhash"
	"github.com/lakeproof/lakeproof/sources/local"
)

type verifyOptions struct {
	Proof   string
	Index   string
	Root    string
	Paths   []string
	Workers int
	JSON    bool
	Quiet   bool
	sourceOptions
	trust verifyTrustFlags // two-level bundles (verify_anchor.go)
}

func init() {
	register(func() *cobra.Command {
		var o verifyOptions
		c := &cobra.Command{
			Use:   "verify (--proof BUNDLE FILE [--trust-gateway KEY --trust-writer DID | --trust FILE] [--gateway URL] | --index DIR [PATH...])",
			Short: "Check files against a proof bundle or an index, offline",
			Long: `With --proof, re-hash FILE and check it against the proof bundle: the content
(size and BLAKE3), then the inclusion proof up to the bundle's root. A two-level
bundle (lakeproof/proof/v2, from an anchored index) is checked further with the
trusted gateway verifier keys and writer DIDs (--trust-gateway, --trust-writer, or
a --trust file): the anchor entry's signature, its writer, that it anchors this
root, the checkpoint's signature and channel, and the entry's inclusion in the
checkpoint. The first failing link is named. With --gateway URL the gateway's
latest checkpoint must also extend the bundle's (consistency proof).

With --index, re-hash PATH (a file or a folder inside the dataset) and compare it
with the index: every file must be in the index with the same size and digest, and
every indexed file under PATH must be present. PATH is mapped to keys relative to
the dataset root recorded in the index, or to --root for a copy elsewhere. Without
PATH, check the index itself (file digests, rows, tree and root).

Exit status: 0 valid, 1 invalid (a check failed), 2 usage, I/O or malformed input.`,
			RunE: func(cmd *cobra.Command, args []string) error {
				o.Paths = args
				return runVerify(cmd.Context(), o, cmd.OutOrStdout())
			},
		}
		f := c.Flags()
		f.StringVarP(&o.Proof, "proof", "p", "", "proof bundle (JSON) from 'lakeproof prove'")
		f.StringVarP(&o.Index, "index", "i", "", "index directory")
		f.StringVar(&o.Root, "root", "", "dataset root of the local copy (default: the root recorded in the index)")
		f.IntVarP(&o.Workers, "workers", "w", 0, "files hashed concurrently (default: number of CPUs)")
		o.s3Flags.add(f)
		f.BoolVar(&o.FollowSymlinks, "follow-symlinks", false, "follow symbolic links")
		f.BoolVar(&o.JSON, "json", false, "JSON output")
		f.BoolVarP(&o.Quiet, "quiet", "q", false, "print only problems")
		o.trust.add(f)
		return c
	})
}

func runVerify(ctx context.Context, o verifyOptions, stdout io.Writer) error {
	switch {
	case o.Proof != "" && o.Index != "":
		return usageError{errors.New("use either --proof or --index, not both")}
	case o.Proof != "":
		if len(o.Paths) != 1 {
			return usageError{errors.New("--proof BUNDLE takes exactly one FILE to check")}
		}
		return verifyProof(ctx, o, stdout)
	case o.Index != "":
		return verifyIndex(ctx, o, stdout)
	}
	return usageError{errors.New("give --proof BUNDLE FILE or --index DIR [PATH...]")}
}

func verifyProof(ctx context.Context, o verifyOptions, stdout io.Writer) error {
	raw, err := readLimited(o.Proof, lakeproof.MaxBundleSize)
	if err != nil {
		return fmt.Errorf("read proof bundle: %w", err)
	}
	b, err := lakeproof.ParseBundle(raw)
	if err != nil {
		return fmt.Errorf("%s: %w", o.Proof, err)
	}
	path := o.Paths[0]
	size, digest, err := hashFile(ctx, path)
	if err != nil {
		return err
	}
	// anchorState is reported in --json for two-level bundles: "verified",
	// or "not-checked" when no trust anchors were given (then only the
	// dataset level was checked, as for a v1 bundle).
	anchorState := ""
	if b.Anchor != nil {
		anchorState = "not-checked"
	}
	report := func(valid bool, check string, err error) error {
		if o.JSON {
			out := map[string]any{"valid": valid, "key": b.Key, "root": b.Root, "file": path, "check": check}
			if anchorState != "" {
				out["anchor"] = anchorState
			}
			if err != nil {
				out["error"] = err.Error()
			}
			j, _ := json.Marshal(out)
			fmt.Fprintf(stdout, "%s\n", j)
		} else if valid && !o.Quiet {
			fmt.Fprintf(stdout, "OK %s: content matches key %q, leaf %d of %d, root %s\n", path, b.Key, b.LeafIndex, b.TreeSize, b.Root)
		} else if !valid {
			fmt.Fprintf(stdout, "INVALID %s: %v\n", path, err)
		}
		if !valid {
			return invalidError{reported{err}}
		}
		return nil
	}
	if err := b.VerifyContent(size, digest); err != nil {
		return report(false, "content", err)
	}
	if err := b.VerifyProof(); err != nil {
		return report(false, "proof", err)
	}
	if b.Anchor != nil || o.trust.given() {
		check, checked, err := verifyAnchorLevel(ctx, o, b, stdout)
		if err != nil {
			if check == "" {
				return err
			}
			if b.Anchor != nil {
				anchorState = "failed"
			}
			return report(false, check, err)
		}
		if checked {
			anchorState = "verified"
		}
	}
	if !o.JSON && !o.Quiet && !pathEndsWithKey(path, b.Key) {
		fmt.Fprintf(stdout, "note: %s is not named like key %q; its content is what the proof covers\n", path, b.Key)
	}
	return report(true, "all", nil)
}

func pathEndsWithKey(path, key string) bool {
	p := filepath.ToSlash(filepath.Clean(path))
	return p == key || strings.HasSuffix(p, "/"+key)
}

func readLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(raw)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, limit)
	}
	return raw, nil
}

// hashFile returns the size and BLAKE3 digest of a regular file, failing if
// the file changes while it is read.
func hashFile(ctx context.Context, path string) (uint64, lakeproof.Hash, error) {
	var d lakeproof.Hash
	st, err := os.Stat(path)
	if err != nil {
		return 0, d, err
	}
	if !st.Mode().IsRegular() {
		return 0, d, fmt.Errorf("%s is not a regular file", path)
	}
	src, err := local.New(filepath.Dir(path), local.Options{FollowSymlinks: true})
	if err != nil {
		return 0, d, err
	}
	defer src.Close() // the reader stays usable
	obj := pipeline.Object{Key: filepath.Base(path), Size: st.Size(), ModTime: st.ModTime()}
	rc, err := src.Open(ctx, obj)
	if err != nil {
		return 0, d, fmt.Errorf("open %s: %w", path, err)
	}
	// The same hasher as the pipeline: large files are hashed by parallel
	// BLAKE3 subtrees; exactly st.Size() bytes are read, and Close reports
	// a file that changed while it was read.
	sum, err := parhash.SumObject(ctx, rc, st.Size(), parhash.Options{})
	if cerr := rc.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, d, fmt.Errorf("read %s: %w", path, err)
	}
	return uint64(st.Size()), lakeproof.Hash(sum), nil
}

// verifyCounts are the outcomes of verify --index.
type verifyCounts struct {
	Valid   bool   `json:"valid"`
	Checked int64  `json:"checked"`
	OK      int64  `json:"ok"`
	Changed int64  `json:"changed"`
	Missing int64  `json:"missing"`
	Extra   int64  `json:"extra"`
	Errors  int64  `json:"errors"`
	Root    string `json:"root"`
}

func verifyIndex(ctx context.Context, o verifyOptions, stdout io.Writer) error {
	ix, err := openIndexAt(ctx, o.Index, o.s3Flags)
	if err != nil {
		if len(o.Paths) == 0 && errors.Is(err, index.ErrCorrupt) {
			// Checking the index itself: damage found on opening it is a
			// failed check (exit 1), like damage found by ix.Check below.
			return invalidError{err}
		}
		return err
	}
	defer ix.Close()
	sum := ix.Summary()
	if len(o.Paths) == 0 {
		if err := ix.Check(ctx); err != nil {
			return invalidError{err}
		}
		if !o.Quiet {
			fmt.Fprintf(stdout, "OK index %s: %d files, %d bytes, root %s\n", o.Index, sum.Files, sum.Bytes, sum.Root)
		}
		return nil
	}
	root := o.Root
	if root == "" {
		u, err := url.Parse(sum.Source)
		if err != nil || u.Scheme != "file" {
			return usageError{fmt.Errorf("the index was made from %s; give --root DIR, the root of the local copy", sum.Source)}
		}
		root = u.Path
	}
	rootAbs, err := realPath(root)
	if err != nil {
		return usageError{fmt.Errorf("dataset root: %w", err)}
	}
	c := verifyCounts{Valid: true, Root: sum.Root.String()}
	emit := func(kind, key, detail string) {
		c.Checked++ // every key looked at, whatever the outcome
		switch kind {
		case "ok":
			c.OK++
		case "changed":
			c.Changed++
		case "missing":
			c.Missing++
		case "extra":
			c.Extra++
		case "error":
			c.Errors++
		}
		if kind != "ok" {
			c.Valid = false
		}
		if kind == "ok" && o.Quiet {
			return
		}
		if kind == "ok" && !o.JSON {
			return // one line per problem; the summary counts the rest
		}
		if o.JSON {
			j, _ := json.Marshal(map[string]string{"status": kind, "key": key, "detail": detail})
			fmt.Fprintf(stdout, "%s\n", j)
			return
		}
		fmt.Fprintf(stdout, "%-8s %s", strings.ToUpper(kind), key)
		if detail != "" {
			fmt.Fprintf(stdout, "  (%s)", detail)
		}
		fmt.Fprintln(stdout)
	}
	for _, p := range o.Paths {
		abs, err := realPath(p)
		if err != nil {
			return usageError{err}
		}
		rel, err := filepath.Rel(rootAbs, abs)
		if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return usageError{fmt.Errorf("%s is not inside the dataset root %s; give --root DIR, the root of your copy", p, rootAbs)}
		}
		st, err := os.Stat(abs)
		if err != nil {
			return usageError{err}
		}
		if err := verifyPath(ctx, o, ix, abs, filepath.ToSlash(rel), st.IsDir(), emit); err != nil {
			return err
		}
	}
	if o.JSON {
		j, _ := json.Marshal(c)
		fmt.Fprintf(stdout, "%s\n", j)
	} else if !o.Quiet || !c.Valid {
		fmt.Fprintf(stdout, "%d ok, %d changed, %d missing, %d extra, %d errors (index %s, root %s)\n",
			c.OK, c.Changed, c.Missing, c.Extra, c.Errors, o.Index, sum.Root)
	}
	if !c.Valid {
		return invalidError{reported{errors.New("verification failed")}}
	}
	return nil
}

// verifyPath compares the file or folder abs, whose key (or key prefix)
// is rel, with the index, by a merge-join of two key-ordered streams.
func verifyPath(ctx context.Context, o verifyOptions, ix *index.Index, abs, rel string, dir bool,
	emit func(kind, key, detail string)) error {
	if !dir {
		size, digest, err := hashFile(ctx, abs)
		if err != nil {
			emit("error", rel, err.Error())
			return nil
		}
		e, err := ix.Lookup(ctx, rel)
		if errors.Is(err, index.ErrKeyNotFound) {
			emit("extra", rel, "on disk, not in the index")
			return nil
		} else if err != nil {
			return err
		}
		compareEntry(e, size, digest, emit)
		return nil
	}
	prefix := ""
	if rel != "." {
		prefix = rel + "/"
	}
	src, err := local.New(abs, local.Options{FollowSymlinks: o.FollowSymlinks})
	if err != nil {
		return usageError{err}
	}
	defer src.Close()
	next, stop := iter.Pull2(ix.Entries(ctx, prefix))
	defer stop()
	cur, ierr, more := next()
	advance := func() error {
		if ierr != nil {
			return ierr
		}
		cur, ierr, more = next()
		return ierr
	}
	if ierr != nil {
		return ierr
	}
	err = pipeline.Run(ctx, prefixed{src, prefix}, pipeline.Options{Workers: o.Workers}, func(r pipeline.Result) error {
		for more && cur.Key < r.Key {
			emit("missing", cur.Key, "in the index, not on disk")
			if err := advance(); err != nil {
				return err
			}
		}
		inIndex := more && cur.Key == r.Key
		switch {
		case r.Err != nil:
			emit("error", r.Key, r.Err.Err.Error())
		case !inIndex:
			emit("extra", r.Key, "on disk, not in the index")
		default:
			compareEntry(cur, uint64(r.Size), r.Digest, emit)
		}
		if inIndex {
			return advance()
		}
		return nil
	})
	if err != nil {
		return err
	}
	for more {
		emit("missing", cur.Key, "in the index, not on disk")
		if err := advance(); err != nil {
			return err
		}
	}
	return nil
}

func compareEntry(e index.Entry, size uint64, digest lakeproof.Hash, emit func(kind, key, detail string)) {
	switch {
	case size != uint64(e.Size):
		emit("changed", e.Key, fmt.Sprintf("size %d, index says %d", size, e.Size))
	case digest != e.Digest:
		emit("changed", e.Key, fmt.Sprintf("BLAKE3 %s, index says %s", digest, e.Digest))
	default:
		emit("ok", e.Key, "")
	}
}

func realPath(p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	return filepath.EvalSymlinks(abs)
}

// prefixed presents a source's keys under a key prefix.
type prefixed struct {
	pipeline.Source
	prefix string
}

func (p prefixed) Objects(ctx context.Context) iter.Seq2[pipeline.Object, error] {
	return func(yield func(pipeline.Object, error) bool) {
		for obj, err := range p.Source.Objects(ctx) {
			obj.Key = p.prefix + obj.Key
			var oe *pipeline.ObjectError
			if errors.As(err, &oe) {
				err = &pipeline.ObjectError{Key: p.prefix + oe.Key, Op: oe.Op, Err: oe.Err}
			}
			if !yield(obj, err) {
				return
			}
		}
	}
}

func (p prefixed) Open(ctx context.Context, obj pipeline.Object) (io.ReadCloser, error) {
	obj.Key = strings.TrimPrefix(obj.Key, p.prefix)
	return p.Source.Open(ctx, obj)
}
