package index

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/metadata"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	pqschema "github.com/apache/arrow-go/v18/parquet/schema"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"

	"github.com/lakeproof/lakeproof"
)

// Dir is where the files of one index are read from: a local directory,
// or an object-store prefix.
type Dir interface {
	// Open opens the named file of the index for random access. It must be
	// safe for concurrent use. A missing file is an error satisfying
	// errors.Is(err, fs.ErrNotExist).
	Open(ctx context.Context, name string) (File, error)
	// String names the index location for messages.
	String() string
}

// File is one file of an index, opened for random access.
type File interface {
	io.ReaderAt
	io.Closer
	Size() int64
}

// LocalDir is an index directory on the local file system.
type LocalDir string

func (d LocalDir) String() string { return string(d) }

// Open opens a file of the index directory.
func (d LocalDir) Open(_ context.Context, name string) (File, error) {
	f, err := os.Open(filepath.Join(string(d), name))
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	return localFile{f, st.Size()}, nil
}

type localFile struct {
	*os.File
	size int64
}

func (f localFile) Size() int64 { return f.size }

// Index is an open, read-only index. It is safe for concurrent use.
type Index struct {
	dir    Dir
	sum    Summary
	pqf    File
	pf     *file.Reader
	fr     *pqarrow.FileReader
	levels map[uint]File
	// fences[i] is the smallest key of row group i, from the Parquet
	// statistics; nil if a row group has no statistics.
	fences []string
	starts []int64 // first row of each row group
}

// maxSummarySize bounds summary.json.
const maxSummarySize = 1 << 20

// Open opens the index directory at path.
func Open(ctx context.Context, path string) (*Index, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("open index: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("open index: %s is not an index directory", path)
	}
	return OpenDir(ctx, LocalDir(path))
}

// OpenDir opens an index from d. It reads summary.json and the Parquet
// footer and checks that they agree; it does not read every row (see Check).
func OpenDir(ctx context.Context, d Dir) (_ *Index, err error) {
	corrupt := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrCorrupt, d, fmt.Sprintf(format, args...))
	}
	ix := &Index{dir: d, levels: map[uint]File{}}
	defer func() {
		if err != nil {
			ix.Close()
		}
	}()
	sf, err := d.Open(ctx, SummaryFile)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, corrupt("no %s: not a lakeproof index, or an incomplete one", SummaryFile)
		}
		return nil, fmt.Errorf("open index %s: %w", d, err)
	}
	raw, err := io.ReadAll(io.NewSectionReader(sf, 0, min(sf.Size(), maxSummarySize+1)))
	sf.Close()
	if err != nil {
		return nil, fmt.Errorf("open index %s: read %s: %w", d, SummaryFile, err)
	}
	if ix.sum, err = ParseSummary(raw); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrCorrupt, d, err)
	}
	if ix.pqf, err = d.Open(ctx, ParquetFile); err != nil {
		return nil, corrupt("%s: %v", ParquetFile, err)
	}
	if ix.pf, err = openParquet(ix.pqf); err != nil {
		return nil, corrupt("%s: %v", ParquetFile, err)
	}
	if err := ix.checkParquetMeta(); err != nil {
		return nil, corrupt("%s: %v", ParquetFile, err)
	}
	if ix.fr, err = pqarrow.NewFileReader(ix.pf, pqarrow.ArrowReadProperties{BatchSize: RowGroupRows}, memory.DefaultAllocator); err != nil {
		return nil, corrupt("%s: %v", ParquetFile, err)
	}
	for level := uint(0); ix.sum.Files>>level > 0; level += LevelStride {
		name := levelFile(level)
		f, err := d.Open(ctx, name)
		if err != nil {
			return nil, corrupt("%s: %v", name, err)
		}
		ix.levels[level] = f
		if want := int64(ix.sum.Files>>level) * lakeproof.HashSize; f.Size() != want {
			return nil, corrupt("%s has %d bytes, want %d for %d entries", name, f.Size(), want, ix.sum.Files)
		}
	}
	return ix, nil
}

// openParquet reads the footer, converting the library's panics on
// malformed input into errors.
func openParquet(f File) (pf *file.Reader, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = errors.New("malformed Parquet footer")
		}
	}()
	return file.NewParquetReader(io.NewSectionReader(f, 0, f.Size()))
}

// ParseSummary decodes and validates summary.json.
func ParseSummary(raw []byte) (Summary, error) {
	var s Summary
	if len(raw) > maxSummarySize {
		return s, fmt.Errorf("%s larger than %d bytes", SummaryFile, maxSummarySize)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return s, fmt.Errorf("%s: %v", SummaryFile, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return s, fmt.Errorf("%s: trailing data", SummaryFile)
	}
	if s.Format != Format {
		return s, fmt.Errorf("%s: format %q, want %q (index written by another lakeproof version?)", SummaryFile, s.Format, Format)
	}
	if s.Digests[ParquetFile] == "" {
		return s, fmt.Errorf("%s: no digest for %s", SummaryFile, ParquetFile)
	}
	if s.Files == 0 && s.Root != lakeproof.EmptyRoot {
		return s, fmt.Errorf("%s: root of an empty dataset must be %s", SummaryFile, lakeproof.EmptyRoot)
	}
	return s, nil
}

func (ix *Index) checkParquetMeta() error {
	kv := ix.pf.MetaData().KeyValueMetadata()
	want := map[string]string{
		MetaFormat:  Format,
		MetaSource:  ix.sum.Source,
		MetaRoot:    ix.sum.Root.String(),
		MetaFiles:   strconv.FormatUint(ix.sum.Files, 10),
		MetaBytes:   strconv.FormatUint(ix.sum.Bytes, 10),
		MetaErrors:  strconv.FormatUint(ix.sum.Errors, 10),
		MetaCreated: ix.sum.Created.Format(time.RFC3339),
		MetaTool:    ix.sum.Tool,
	}
	for k, v := range want {
		got := kv.FindValue(k)
		if got == nil || *got != v {
			return fmt.Errorf("metadata %s does not match %s", k, SummaryFile)
		}
	}
	if n := ix.pf.NumRows(); n != int64(ix.sum.Files) {
		return fmt.Errorf("%d rows, %s says %d files", n, SummaryFile, ix.sum.Files)
	}
	if !ix.pf.MetaData().Schema.Equals(parquetSchema) {
		return errors.New("unexpected column schema")
	}
	var row int64
	for i := range ix.pf.NumRowGroups() {
		rg := ix.pf.MetaData().RowGroup(i)
		ix.starts = append(ix.starts, row)
		row += rg.NumRows()
		if ix.fences == nil && i > 0 {
			continue
		}
		cc, err := rg.ColumnChunk(colKey)
		if err != nil {
			return err
		}
		st, err := cc.Statistics()
		if bs, ok := st.(*metadata.ByteArrayStatistics); err == nil && ok && bs.HasMinMax() {
			ix.fences = append(ix.fences, string(bs.Min()))
		} else {
			ix.fences = nil
		}
	}
	return nil
}

// Summary returns the parsed summary.json.
func (ix *Index) Summary() Summary { return ix.sum }

// Close releases the index's files.
func (ix *Index) Close() error {
	if ix.pqf != nil {
		ix.pqf.Close()
	}
	for _, f := range ix.levels {
		f.Close()
	}
	return nil
}

// readGroup decodes row group rg, validating every row.
func (ix *Index) readGroup(ctx context.Context, rg int) ([]Entry, error) {
	return ix.readGroupInto(ctx, rg, nil)
}

// readGroupInto is readGroup decoding into buf when it is large enough
// (Entries reuses one buffer for every group of a scan, so that reading a
// predecessor of millions of rows does not allocate a slice per group).
func (ix *Index) readGroupInto(ctx context.Context, rg int, buf []Entry) (_ []Entry, err error) {
	corrupt := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s row group %d: %s", ErrCorrupt, ix.dir, ParquetFile, rg, fmt.Sprintf(format, args...))
	}
	// The Parquet decoder may panic on malformed input; the details of such
	// a panic say nothing useful to a user, so they are not shown.
	const undecodable = "the column data cannot be decoded (malformed or damaged Parquet)"
	defer func() {
		if r := recover(); r != nil {
			err = corrupt(undecodable)
		}
	}()
	tbl, err := ix.fr.ReadRowGroups(ctx, allColumns, []int{rg})
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if strings.Contains(err.Error(), "panic") || strings.Contains(err.Error(), "runtime error") {
			return nil, corrupt(undecodable)
		}
		return nil, corrupt("%v", err)
	}
	defer tbl.Release()
	n := int(tbl.NumRows())
	if want := ix.pf.MetaData().RowGroup(rg).NumRows(); int64(n) != want || int(tbl.NumCols()) != len(allColumns) {
		return nil, corrupt("decoded %d rows and %d columns, want %d and %d", n, tbl.NumCols(), want, len(allColumns))
	}
	out := buf[:0]
	if cap(out) < n {
		out = make([]Entry, n)
	} else {
		out = out[:n]
		clear(out)
	}
	for c := range int(tbl.NumCols()) {
		i := 0
		for _, chunk := range tbl.Column(c).Data().Chunks() {
			for j := range chunk.Len() {
				e := &out[i]
				i++
				switch c {
				case colKey:
					e.Key = chunk.(*array.String).Value(j)
				case colSize:
					e.Size = chunk.(*array.Int64).Value(j)
				case colMtime:
					e.ModTime = time.Unix(0, int64(chunk.(*array.Timestamp).Value(j))).UTC()
				case colDigest:
					copy(e.Digest[:], chunk.(*array.FixedSizeBinary).Value(j))
				case colLeaf:
					e.Leaf = uint64(chunk.(*array.Int64).Value(j))
				case colETag:
					if a := chunk.(*array.String); a.IsValid(j) {
						e.ETag = a.Value(j)
					}
				case colChecksum:
					if a := chunk.(*array.String); a.IsValid(j) {
						e.Checksum = a.Value(j)
					}
				}
			}
		}
	}
	if ix.fences != nil && n > 0 && out[0].Key != ix.fences[rg] {
		return nil, corrupt("first key does not match the row group statistics")
	}
	first := uint64(ix.starts[rg])
	for i := range out {
		e := &out[i]
		if e.Leaf != first+uint64(i) {
			return nil, corrupt("row %d has leaf %d", first+uint64(i), e.Leaf)
		}
		if err := lakeproof.CheckKey(e.Key); err != nil {
			return nil, corrupt("row %d: %v", e.Leaf, err)
		}
		if i > 0 && e.Key <= out[i-1].Key {
			return nil, corrupt("row %d: keys out of order", e.Leaf)
		}
		if e.Size < 0 {
			return nil, corrupt("row %d: negative size", e.Leaf)
		}
	}
	return out, nil
}

// groupFor returns the row group that would hold key.
func (ix *Index) groupFor(key string) int {
	if ix.fences == nil {
		return -1
	}
	// The last group whose smallest key is <= key.
	return sort.Search(len(ix.fences), func(i int) bool { return ix.fences[i] > key }) - 1
}

// Lookup returns the entry of key, or an error wrapping ErrKeyNotFound.
// A "not found" answer is only given after the row groups around key have
// been read and found consistent with the footer statistics used to pick
// them, so a damaged footer gives ErrCorrupt rather than a false negative.
func (ix *Index) Lookup(ctx context.Context, key string) (Entry, error) {
	notFound := fmt.Errorf("%w: %q is not in the index %s", ErrKeyNotFound, key, ix.dir)
	if lakeproof.CheckKey(key) != nil || ix.sum.Files == 0 {
		return Entry{}, notFound
	}
	if ix.fences == nil { // no statistics: scan every group
		for rg := range ix.pf.NumRowGroups() {
			es, err := ix.readGroup(ctx, rg)
			if err != nil {
				return Entry{}, err
			}
			if e, ok := search(es, key); ok {
				return e, nil
			}
		}
		return Entry{}, notFound
	}
	g := max(ix.groupFor(key), 0)
	es, err := ix.readGroup(ctx, g)
	if err != nil {
		return Entry{}, err
	}
	if e, ok := search(es, key); ok {
		return e, nil
	}
	// Not in group g. It is truly absent if key sorts before g's first key
	// only when g is the first group, and before the next group's first key.
	if g == 0 && len(es) > 0 && key < es[0].Key {
		return Entry{}, notFound
	}
	if g+1 < ix.pf.NumRowGroups() {
		next, err := ix.readGroup(ctx, g+1)
		if err != nil {
			return Entry{}, err
		}
		if len(next) > 0 && next[0].Key <= key {
			return Entry{}, fmt.Errorf("%w: %s: %s: row group statistics do not match the rows", ErrCorrupt, ix.dir, ParquetFile)
		}
	}
	return Entry{}, notFound
}

func search(es []Entry, key string) (Entry, bool) {
	i := sort.Search(len(es), func(i int) bool { return es[i].Key >= key })
	if i < len(es) && es[i].Key == key {
		return es[i], true
	}
	return Entry{}, false
}

// Entries yields the entries whose keys start with prefix, in key order.
// An empty prefix yields all entries. A corrupt row ends the sequence with
// an error wrapping ErrCorrupt.
func (ix *Index) Entries(ctx context.Context, prefix string) iter.Seq2[Entry, error] {
	return func(yield func(Entry, error) bool) {
		start := 0
		if prefix != "" && ix.fences != nil {
			start = max(ix.groupFor(prefix), 0)
		}
		var (
			prev string
			buf  []Entry // reused: entries are yielded by value
		)
		for rg := start; rg < ix.pf.NumRowGroups(); rg++ {
			es, err := ix.readGroupInto(ctx, rg, buf)
			buf = es
			if err != nil {
				yield(Entry{}, err)
				return
			}
			if rg > start && len(es) > 0 && es[0].Key <= prev {
				yield(Entry{}, fmt.Errorf("%w: %s: row group %d: keys out of order", ErrCorrupt, ix.dir, rg))
				return
			}
			for _, e := range es {
				prev = e.Key
				if !strings.HasPrefix(e.Key, prefix) {
					if e.Key > prefix {
						return
					}
					continue
				}
				if !yield(e, nil) {
					return
				}
			}
		}
	}
}

// node returns the hash of the perfect subtree node id, recomputing it
// from the nearest stored level below.
func (ix *Index) node(id compact.NodeID) ([]byte, error) {
	base := id.Level - id.Level%LevelStride
	width := uint64(1) << (id.Level - base)
	f := ix.levels[base]
	if f == nil {
		return nil, fmt.Errorf("%w: %s: no stored level %d", ErrCorrupt, ix.dir, base)
	}
	buf := make([]byte, width*lakeproof.HashSize)
	if _, err := f.ReadAt(buf, int64(id.Index*width*lakeproof.HashSize)); err != nil {
		return nil, fmt.Errorf("%w: %s: read %s: %v", ErrCorrupt, ix.dir, levelFile(base), err)
	}
	hs := make([][]byte, width)
	for i := range hs {
		hs[i] = buf[i*lakeproof.HashSize : (i+1)*lakeproof.HashSize]
	}
	for len(hs) > 1 {
		for i := range len(hs) / 2 {
			hs[i] = lakeproof.Hasher.HashChildren(hs[2*i], hs[2*i+1])
		}
		hs = hs[:len(hs)/2]
	}
	return hs[0], nil
}

// Prove returns the proof bundle of key. The proof is checked against the
// root of summary.json before it is returned: a damaged tree file gives an
// error wrapping ErrCorrupt, never a bundle that does not verify.
func (ix *Index) Prove(ctx context.Context, key string) (*lakeproof.Bundle, error) {
	e, err := ix.Lookup(ctx, key)
	if err != nil {
		return nil, err
	}
	nodes, err := proof.Inclusion(e.Leaf, ix.sum.Files)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, ix.dir, err)
	}
	hashes := make([][]byte, len(nodes.IDs))
	for i, id := range nodes.IDs {
		if hashes[i], err = ix.node(id); err != nil {
			return nil, err
		}
	}
	hashes, err = nodes.Rehash(hashes, lakeproof.Hasher.HashChildren)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, ix.dir, err)
	}
	b := &lakeproof.Bundle{
		Format: lakeproof.BundleFormat, Key: e.Key, Size: uint64(e.Size), Digest: e.Digest,
		LeafIndex: e.Leaf, TreeSize: ix.sum.Files, Root: ix.sum.Root,
		Inclusion: make([]lakeproof.Hash, len(hashes)),
		Dataset: &lakeproof.DatasetInfo{
			Source: ix.sum.Source, Created: ix.sum.Created.Format(time.RFC3339), Tool: ix.sum.Tool,
		},
	}
	for i, h := range hashes {
		b.Inclusion[i] = lakeproof.Hash(h)
	}
	if err := b.VerifyProof(); err != nil {
		return nil, fmt.Errorf("%w: %s: the stored tree does not lead to the root in %s: %v", ErrCorrupt, ix.dir, SummaryFile, err)
	}
	return b, nil
}

// allColumns are the indices of every column of schema.
var allColumns = []int{colKey, colSize, colMtime, colDigest, colLeaf, colETag, colChecksum}

var parquetSchema = func() *pqschema.Schema {
	s, err := pqarrow.ToParquet(schema, nil, pqarrow.DefaultWriterProps())
	if err != nil {
		panic(err)
	}
	return s
}()
