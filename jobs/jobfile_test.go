package jobs

import (
	"errors"
	"strings"
	"testing"
)

func TestParseJobErrors(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"unknown key", "version: 1\ndatasets:\n  - name: a\n    source: s\n    index: i\n    colour: red\n", "job.yaml:6: colour: unknown field \"colour\""},
		{"unknown top key", "version: 1\nnope: 1\ndatasets: []\n", "job.yaml:2: nope: unknown field"},
		{"wrong type", "version: 1\ndatasets:\n  - name: a\n    source: s\n    index: i\n    append_only: maybe\n", "job.yaml:6: append_only:"},
		{"missing source", "version: 1\ndatasets:\n  - name: a\n    index: i\n", "job.yaml:3: datasets[0].source: required"},
		{"missing index", "version: 1\ndatasets:\n  - name: a\n    source: s\n", "job.yaml:3: datasets[0].index: required"},
		{"missing name", "version: 1\ndatasets:\n  - source: s\n    index: i\n", "job.yaml:3: datasets[0].name: required"},
		{"two datasets one index", "version: 1\ndatasets:\n  - name: a\n    source: s\n    index: out/x\n  - name: b\n    source: t\n    index: out/./x\n", "job.yaml:8: datasets[1].index: \"out/./x\" is also the index of datasets[0]"},
		{"same name", "version: 1\ndatasets:\n  - name: a\n    source: s\n    index: i\n  - name: a\n    source: s\n    index: j\n", "job.yaml:6: datasets[1].name: \"a\" is also the name of datasets[0]"},
		{"bad glob", "version: 1\ndatasets:\n  - name: a\n    source: s\n    index: i\n    include: [\"x/[\"]\n", "job.yaml:6: datasets[0].include[0]: pattern"},
		{"bad sample", "version: 1\ndatasets:\n  - name: a\n    source: s\n    index: i\n    incremental: {verify_sample: 150%}\n", "datasets[0].incremental.verify_sample: \"150%\""},
		{"bad mode", "version: 1\ndefaults:\n  incremental:\n    mode: sometimes\ndatasets:\n  - name: a\n    source: s\n    index: i\n", "job.yaml:4: defaults.incremental.mode: \"sometimes\""},
		{"no version", "datasets:\n  - name: a\n    source: s\n    index: i\n", "version: must be 1"},
		{"no datasets", "version: 1\n", "datasets: at least one dataset"},
		{"negative workers", "version: 1\ndatasets:\n  - name: a\n    source: s\n    index: i\n    workers: -2\n", "job.yaml:6: datasets[0].workers: must not be negative"},
		{"duplicate key", "version: 1\nversion: 1\ndatasets: []\n", "job.yaml:2"},
		{"not yaml", "version: [1\n", "job.yaml:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseJob("job.yaml", []byte(tc.yaml))
			if !errors.Is(err, ErrJobFile) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want ErrJobFile containing %q", err, tc.want)
			}
		})
	}
}

func TestParseJobPolicy(t *testing.T) {
	j, err := ParseJob("job.yaml", []byte(`version: 1
defaults:
  workers: 3
  incremental: {mode: rehash-all, verify_sample: "2%"}
datasets:
  - name: a
    source: s
    index: i
  - name: b
    source: s
    index: j
    workers: 5
    incremental: {mode: "off"}
`))
	if err != nil {
		t.Fatal(err)
	}
	if w, m, s := j.Policy(&j.Datasets[0]); w != 3 || m != ModeRehashAll || s != 0.02 {
		t.Errorf("a: %d %s %g", w, m, s)
	}
	if w, m, s := j.Policy(&j.Datasets[1]); w != 5 || m != ModeOff || s != 0 {
		t.Errorf("b: %d %s %g", w, m, s)
	}
}

func TestGlobs(t *testing.T) {
	for _, tc := range []struct {
		pattern, key string
		want         bool
	}{
		{"**/*.parquet", "a.parquet", true},
		{"**/*.parquet", "x/y/a.parquet", true},
		{"**/*.parquet", "x/y/a.csv", false},
		{"sales/**", "sales/2026/a", true},
		{"sales/**", "sales", true},
		{"sales/*", "sales/2026/a", false},
		{"**/_temporary/**", "a/_temporary/0/x", true},
		{"**/_temporary/**", "a/temporary/x", false},
		{"a/**/b", "a/b", true},
		{"a/**/b", "a/x/y/b", true},
		{"a/?", "a/bc", false},
	} {
		if got := MatchGlob(tc.pattern, tc.key); got != tc.want {
			t.Errorf("MatchGlob(%q, %q) = %v", tc.pattern, tc.key, got)
		}
	}
	d := &Dataset{Include: []string{"**/*.log"}, Exclude: []string{"tmp/**"}}
	for key, want := range map[string]bool{"a.log": true, "x/a.log": true, "tmp/a.log": false, "a.txt": false} {
		if d.Selects(key) != want {
			t.Errorf("Selects(%q) != %v", key, want)
		}
	}
}

func FuzzParseJob(f *testing.F) {
	f.Add([]byte("version: 1\ndatasets:\n  - name: a\n    source: s\n    index: i\n"))
	f.Add([]byte("version: 1\ndatasets:\n  - {name: a, source: s, index: i, include: ['**']}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		j, err := ParseJob("fuzz.yaml", data)
		if err != nil {
			if !errors.Is(err, ErrJobFile) {
				t.Fatalf("error not wrapping ErrJobFile: %v", err)
			}
			return
		}
		for _, d := range j.Datasets {
			if d.Name == "" || d.Source == "" || d.Index == "" {
				t.Fatalf("accepted an incomplete dataset: %+v", d)
			}
		}
	})
}
