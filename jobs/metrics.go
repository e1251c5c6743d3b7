package jobs

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// WriteMetrics writes the run report in the Prometheus text exposition
// format to file, for node_exporter's textfile collector (batch jobs have
// no scrape endpoint). The file is written to a temporary sibling, fsynced
// and renamed, so the collector never reads half a file.
func WriteMetrics(file string, r *RunReport, now time.Time) error {
	var b bytes.Buffer
	type metric struct {
		name, help, typ string
		val             func(d *DatasetReport) (float64, bool)
	}
	ok := func(d *DatasetReport) bool { return d.err == nil && d.IndexResult != nil && d.IndexResult.Published }
	ms := []metric{
		{"lakeproof_job_success", "1 if the dataset's last run published an index, 0 if it failed.", "gauge",
			func(d *DatasetReport) (float64, bool) { return map[bool]float64{true: 1}[ok(d)], true }},
		{"lakeproof_job_append_only_violation", "1 if an append-only dataset changed.", "gauge",
			func(d *DatasetReport) (float64, bool) {
				return map[bool]float64{true: 1}[d.err != nil && strings.Contains(d.err.Error(), ErrAppendOnly.Error())], true
			}},
		{"lakeproof_job_files", "Files in the published index.", "gauge",
			func(d *DatasetReport) (float64, bool) { return float64(d.files()), ok(d) }},
		{"lakeproof_job_bytes", "Bytes in the published index.", "gauge",
			func(d *DatasetReport) (float64, bool) { return float64(d.bytes()), ok(d) }},
		{"lakeproof_job_rehashed_objects", "Objects read and hashed by the run.", "gauge",
			func(d *DatasetReport) (float64, bool) { return float64(d.get().Rehashed), d.IndexResult != nil }},
		{"lakeproof_job_reused_objects", "Objects whose digest was reused from the previous index or the resume journal.", "gauge",
			func(d *DatasetReport) (float64, bool) { return float64(d.get().Reused), d.IndexResult != nil }},
		{"lakeproof_job_object_errors", "Objects that could not be hashed.", "gauge",
			func(d *DatasetReport) (float64, bool) { return float64(d.get().Errors), d.IndexResult != nil }},
		{"lakeproof_job_sample_mismatches", "Re-hashed objects with unchanged metadata whose content no longer matches (bit rot).", "gauge",
			func(d *DatasetReport) (float64, bool) { return float64(len(d.get().Mismatches)), d.IndexResult != nil }},
		{"lakeproof_job_duration_seconds", "Duration of the dataset's run.", "gauge",
			func(d *DatasetReport) (float64, bool) { return d.get().Seconds, d.IndexResult != nil }},
		{"lakeproof_job_last_success_timestamp_seconds", "Unix time of the run, when it succeeded.", "gauge",
			func(d *DatasetReport) (float64, bool) { return float64(now.Unix()), ok(d) }},
	}
	for _, m := range ms {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", m.name, m.help, m.name, m.typ)
		for i := range r.Datasets {
			d := &r.Datasets[i]
			if v, ok := m.val(d); ok {
				fmt.Fprintf(&b, "%s{dataset=%q} %g\n", m.name, d.Name, v)
			}
		}
	}
	tmp, err := os.CreateTemp(filepath.Dir(file), "."+filepath.Base(file)+".tmp-")
	if err != nil {
		return fmt.Errorf("write metrics: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b.Bytes()); err != nil {
		tmp.Close()
		return fmt.Errorf("write metrics %s: %w", file, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write metrics %s: %w", file, err)
	}
	tmp.Close()
	os.Chmod(tmp.Name(), 0o644)
	if err := os.Rename(tmp.Name(), file); err != nil {
		return fmt.Errorf("write metrics %s: %w", file, err)
	}
	return nil
}

func (d *DatasetReport) get() *IndexResult {
	if d.IndexResult == nil {
		return &IndexResult{}
	}
	return d.IndexResult
}

func (d *DatasetReport) files() uint64 { return d.get().Files }
func (d *DatasetReport) bytes() uint64 { return d.get().Bytes }
