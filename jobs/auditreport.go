package jobs

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// ReportSchema is the schema of an audit's Parquet report: one row per
// non-matching key, columns as in Item (digests as 64-digit hex, empty
// when not applicable).
var ReportSchema = arrow.NewSchema([]arrow.Field{
	{Name: "status", Type: arrow.BinaryTypes.String},
	{Name: "key", Type: arrow.BinaryTypes.String},
	{Name: "from", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "size", Type: arrow.PrimitiveTypes.Int64},
	{Name: "digest", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "old_size", Type: arrow.PrimitiveTypes.Int64},
	{Name: "old_digest", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "error", Type: arrow.BinaryTypes.String, Nullable: true},
}, nil)

// ParquetReport streams audit items into a Parquet file. The file appears
// at its path only when Close succeeds (temporary sibling, fsync, rename).
type ParquetReport struct {
	path string
	f    *os.File
	w    *pqarrow.FileWriter
	b    *array.RecordBuilder
	n    int
}

// NewParquetReport starts a report to be written at path.
func NewParquetReport(path string) (*ParquetReport, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-")
	if err != nil {
		return nil, fmt.Errorf("audit report: %w", err)
	}
	props := parquet.NewWriterProperties(parquet.WithCompression(compress.Codecs.Zstd), parquet.WithMaxRowGroupLength(1<<16))
	w, err := pqarrow.NewFileWriter(ReportSchema, f, props, pqarrow.NewArrowWriterProperties())
	if err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, fmt.Errorf("audit report: %w", err)
	}
	return &ParquetReport{path: path, f: f, w: w, b: array.NewRecordBuilder(memory.DefaultAllocator, ReportSchema)}, nil
}

func optHex(b *array.StringBuilder, zero bool, s string) {
	if zero {
		b.AppendNull()
	} else {
		b.Append(s)
	}
}

// Add appends one item.
func (r *ParquetReport) Add(it Item) error {
	var none Item
	b := r.b
	b.Field(0).(*array.StringBuilder).Append(string(it.Status))
	b.Field(1).(*array.StringBuilder).Append(it.Key)
	optHex(b.Field(2).(*array.StringBuilder), it.From == "", it.From)
	b.Field(3).(*array.Int64Builder).Append(it.Size)
	optHex(b.Field(4).(*array.StringBuilder), it.Digest == none.Digest, it.Digest.String())
	b.Field(5).(*array.Int64Builder).Append(it.OldSize)
	optHex(b.Field(6).(*array.StringBuilder), it.OldDigest == none.OldDigest, it.OldDigest.String())
	optHex(b.Field(7).(*array.StringBuilder), it.Error == "", it.Error)
	r.n++
	if r.n%(1<<16) == 0 {
		return r.flush()
	}
	return nil
}

func (r *ParquetReport) flush() error {
	rec := r.b.NewRecordBatch()
	defer rec.Release()
	if rec.NumRows() == 0 {
		return nil
	}
	if err := r.w.Write(rec); err != nil {
		return fmt.Errorf("audit report: %w", err)
	}
	return nil
}

// Close finishes the file and publishes it at its path.
func (r *ParquetReport) Close() error {
	err := r.flush()
	r.b.Release()
	if cerr := r.w.Close(); err == nil && cerr != nil { // also closes r.f
		err = cerr
	}
	if err == nil {
		if f, oerr := os.OpenFile(r.f.Name(), os.O_RDWR, 0); oerr == nil {
			err = f.Sync()
			f.Close()
		}
	}
	if err == nil {
		os.Chmod(r.f.Name(), 0o644)
		err = os.Rename(r.f.Name(), r.path)
	}
	if err != nil {
		os.Remove(r.f.Name())
		return fmt.Errorf("audit report %s: %w", r.path, err)
	}
	return nil
}

// Abort discards the report.
func (r *ParquetReport) Abort() {
	r.b.Release()
	r.w.Close()
	os.Remove(r.f.Name())
}
