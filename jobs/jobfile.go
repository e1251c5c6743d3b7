package jobs

import (
	"errors"
	"fmt"
	"os"
	"path"
	"regexp"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

// Job is a job file: one or more datasets to index. See docs/JOBS.md.
type Job struct {
	Version  int       `yaml:"version"`
	Defaults Defaults  `yaml:"defaults"`
	Datasets []Dataset `yaml:"datasets"`

	// File is the path the job was read from (not in the YAML).
	File string `yaml:"-"`
}

// Defaults apply to every dataset that does not set the field.
type Defaults struct {
	Workers     int          `yaml:"workers"`
	Incremental *Incremental `yaml:"incremental"`
	// Anchor holds anchor settings shared by the datasets (typically
	// gateway and key); a dataset is anchored when its channel is set.
	Anchor *Anchor `yaml:"anchor"`
}

// Dataset is one dataset of a job.
type Dataset struct {
	Name    string   `yaml:"name"`
	Source  string   `yaml:"source"`
	Include []string `yaml:"include"`
	Exclude []string `yaml:"exclude"`
	// Index is the destination directory: each run adds a version
	// directory (UTC timestamp) under it; the newest is the predecessor.
	Index       string       `yaml:"index"`
	Workers     int          `yaml:"workers"`
	Incremental *Incremental `yaml:"incremental"`
	AppendOnly  bool         `yaml:"append_only"`
	SkipErrors  bool         `yaml:"skip_errors"`
	// Anchor, with a channel (here or in defaults), anchors every version
	// the run publishes (see anchor.go).
	Anchor *Anchor `yaml:"anchor"`
}

// Incremental is the reuse policy of a dataset.
type Incremental struct {
	// Mode is "metadata" (reuse digests of objects whose size and mtime,
	// or size, ETag and checksum on S3, are unchanged; the default),
	// "rehash-all" (re-hash everything, compare with the predecessor), or
	// "off" (full run, no predecessor).
	Mode string `yaml:"mode"`
	// VerifySample is the share of reusable objects re-hashed anyway,
	// as "1%" or "0.01".
	VerifySample string `yaml:"verify_sample"`
}

// Incremental modes.
const (
	ModeMetadata  = "metadata"
	ModeRehashAll = "rehash-all"
	ModeOff       = "off"
)

// ErrJobFile is wrapped by every job file error.
var ErrJobFile = errors.New("invalid job file")

// FieldError is a problem with one field of a job file.
type FieldError struct {
	File  string
	Line  int
	Field string // e.g. datasets[1].source
	Msg   string
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s:%d: %s: %s", e.File, e.Line, e.Field, e.Msg)
}

func (e *FieldError) Unwrap() error { return ErrJobFile }

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$`)

// maxJobFile bounds the size of a job file.
const maxJobFile = 1 << 20

// LoadJob reads and validates a job file.
func LoadJob(file string) (*Job, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read job file: %w", err)
	}
	return ParseJob(file, data)
}

// ParseJob parses and validates the job file data read from file (the
// name is used in messages). Unknown keys, wrong types, duplicate keys and
// every semantic problem are errors naming the file, line and field.
func ParseJob(file string, data []byte) (*Job, error) {
	if len(data) > maxJobFile {
		return nil, &FieldError{File: file, Line: 1, Msg: fmt.Sprintf("larger than %d bytes", maxJobFile)}
	}
	var j Job
	if err := yaml.UnmarshalWithOptions(data, &j, yaml.Strict(), yaml.DisallowUnknownField()); err != nil {
		var ye yaml.Error
		if errors.As(err, &ye) && ye.GetToken() != nil {
			line := ye.GetToken().Position.Line
			return nil, &FieldError{File: file, Line: line, Field: keyAt(data, line), Msg: ye.GetMessage()}
		}
		return nil, &FieldError{File: file, Line: 1, Msg: err.Error()}
	}
	j.File = file
	f, err := parser.ParseBytes(data, 0)
	if err != nil {
		return nil, &FieldError{File: file, Line: 1, Msg: err.Error()}
	}
	v := &validator{file: file, ast: f}
	v.job(&j)
	if len(v.errs) > 0 {
		return nil, errors.Join(v.errs...)
	}
	return &j, nil
}

type validator struct {
	file string
	ast  *ast.File
	errs []error
}

// line returns the line of the YAML node at path, or of its closest
// existing parent.
func (v *validator) line(p string) int {
	for p != "" {
		if yp, err := yaml.PathString(p); err == nil {
			if n, err := yp.FilterFile(v.ast); err == nil && n != nil && n.GetToken() != nil {
				return n.GetToken().Position.Line
			}
		}
		i := strings.LastIndexAny(p, ".[")
		if i <= 0 {
			break
		}
		p = p[:i]
	}
	return 1
}

func (v *validator) fail(yamlPath, field, format string, args ...any) {
	v.errs = append(v.errs, &FieldError{File: v.file, Line: v.line(yamlPath), Field: field, Msg: fmt.Sprintf(format, args...)})
}

func (v *validator) job(j *Job) {
	if j.Version != 1 {
		v.fail("$.version", "version", "must be 1 (got %d)", j.Version)
	}
	if j.Defaults.Workers < 0 {
		v.fail("$.defaults.workers", "defaults.workers", "must not be negative")
	}
	v.incremental("$.defaults.incremental", "defaults.incremental", j.Defaults.Incremental)
	if len(j.Datasets) == 0 {
		v.fail("$.datasets", "datasets", "at least one dataset is required")
	}
	names := map[string]int{}
	dests := map[string]int{}
	for i := range j.Datasets {
		d := &j.Datasets[i]
		yp := fmt.Sprintf("$.datasets[%d]", i)
		fp := fmt.Sprintf("datasets[%d]", i)
		switch {
		case d.Name == "":
			v.fail(yp, fp+".name", "required")
		case !nameRE.MatchString(d.Name):
			v.fail(yp+".name", fp+".name", "%q: use letters, digits, '.', '_' and '-'", d.Name)
		default:
			if o, ok := names[d.Name]; ok {
				v.fail(yp+".name", fp+".name", "%q is also the name of datasets[%d]", d.Name, o)
			}
			names[d.Name] = i
		}
		if d.Source == "" {
			v.fail(yp, fp+".source", "required")
		}
		if d.Index == "" {
			v.fail(yp, fp+".index", "required")
		} else {
			key := strings.TrimSuffix(d.Index, "/")
			if !strings.Contains(key, "://") {
				key = path.Clean(key)
			}
			if o, ok := dests[key]; ok {
				v.fail(yp+".index", fp+".index", "%q is also the index of datasets[%d]: two datasets cannot write to one index", d.Index, o)
			}
			dests[key] = i
		}
		if d.Workers < 0 {
			v.fail(yp+".workers", fp+".workers", "must not be negative")
		}
		for k, g := range d.Include {
			if err := checkGlob(g); err != nil {
				v.fail(fmt.Sprintf("%s.include[%d]", yp, k), fmt.Sprintf("%s.include[%d]", fp, k), "%v", err)
			}
		}
		for k, g := range d.Exclude {
			if err := checkGlob(g); err != nil {
				v.fail(fmt.Sprintf("%s.exclude[%d]", yp, k), fmt.Sprintf("%s.exclude[%d]", fp, k), "%v", err)
			}
		}
		v.incremental(yp+".incremental", fp+".incremental", d.Incremental)
		v.anchor(yp, fp, d.Anchor, j.Defaults.Anchor)
	}
	if a := j.Defaults.Anchor; a != nil {
		v.anchorFields("$.defaults.anchor", "defaults.anchor", a)
	}
}

func (v *validator) incremental(yp, fp string, inc *Incremental) {
	if inc == nil {
		return
	}
	switch inc.Mode {
	case "", ModeMetadata, ModeRehashAll, ModeOff:
	default:
		v.fail(yp+".mode", fp+".mode", "%q: want %s, %s or %s", inc.Mode, ModeMetadata, ModeRehashAll, ModeOff)
	}
	if _, err := ParseFraction(inc.VerifySample); err != nil {
		v.fail(yp+".verify_sample", fp+".verify_sample", "%v", err)
	}
}

// ParseFraction parses "1%", "0.5%" or "0.01" into a fraction in [0, 1];
// "" is 0.
func ParseFraction(s string) (float64, error) {
	if s == "" {
		return 0, nil
	}
	t, pct := strings.CutSuffix(strings.TrimSpace(s), "%")
	f, err := strconv.ParseFloat(t, 64)
	if pct {
		f /= 100
	}
	if err != nil || f < 0 || f > 1 || f != f {
		return 0, fmt.Errorf("%q: want a share such as 1%% or 0.01, between 0 and 100%%", s)
	}
	return f, nil
}

// Policy resolves a dataset's settings against the job defaults.
func (j *Job) Policy(d *Dataset) (workers int, mode string, sample float64) {
	workers = d.Workers
	if workers == 0 {
		workers = j.Defaults.Workers
	}
	inc := d.Incremental
	if inc == nil {
		inc = j.Defaults.Incremental
	}
	mode = ModeMetadata
	if inc != nil {
		if inc.Mode != "" {
			mode = inc.Mode
		}
		sample, _ = ParseFraction(inc.VerifySample)
	}
	return workers, mode, sample
}

// checkGlob validates a pattern: '/'-separated segments in path.Match
// syntax, where a segment "**" matches any number of segments.
func checkGlob(g string) error {
	if g == "" {
		return errors.New("empty pattern")
	}
	for _, seg := range strings.Split(g, "/") {
		if seg == "**" {
			continue
		}
		if _, err := path.Match(seg, ""); err != nil {
			return fmt.Errorf("pattern %q: %v", g, err)
		}
	}
	return nil
}

// MatchGlob reports whether key matches the pattern (see checkGlob).
func MatchGlob(pattern, key string) bool {
	return matchSegs(strings.Split(pattern, "/"), strings.Split(key, "/"))
}

func matchSegs(p, k []string) bool {
	for len(p) > 0 {
		if p[0] == "**" {
			for i := 0; i <= len(k); i++ {
				if matchSegs(p[1:], k[i:]) {
					return true
				}
			}
			return false
		}
		if len(k) == 0 {
			return false
		}
		if ok, _ := path.Match(p[0], k[0]); !ok {
			return false
		}
		p, k = p[1:], k[1:]
	}
	return len(k) == 0
}

// Selects reports whether the dataset's include/exclude globs keep key.
func (d *Dataset) Selects(key string) bool {
	if len(d.Include) > 0 {
		ok := false
		for _, g := range d.Include {
			if MatchGlob(g, key) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	for _, g := range d.Exclude {
		if MatchGlob(g, key) {
			return false
		}
	}
	return true
}

// keyAt returns the mapping key written on line n (1-based) of data, for
// messages: the decoder names Go types, not YAML fields.
func keyAt(data []byte, n int) string {
	lines := strings.Split(string(data), "\n")
	if n < 1 || n > len(lines) {
		return ""
	}
	l := strings.TrimLeft(strings.TrimSpace(lines[n-1]), "- ")
	k, _, ok := strings.Cut(l, ":")
	if !ok || strings.ContainsAny(k, " \t\"'{[") {
		return ""
	}
	return k
}
