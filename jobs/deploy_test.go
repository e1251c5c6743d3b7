package jobs

import (
	"bufio"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
)

// Every example job file is valid.
func TestExampleJobs(t *testing.T) {
	files, _ := filepath.Glob("../examples/*.yaml")
	if len(files) < 2 {
		t.Fatalf("examples: %v", files)
	}
	for _, f := range files {
		if _, err := LoadJob(f); err != nil {
			t.Errorf("%v", err)
		}
	}
}

// get walks a parsed YAML document: get(doc, "spec", "template", ...).
func get(t *testing.T, file string, v any, path ...string) any {
	t.Helper()
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok || m[p] == nil {
			t.Fatalf("%s: missing %s", file, strings.Join(path, "."))
		}
		v = m[p]
	}
	return v
}

func podSpecOK(t *testing.T, file string, pod any, wantArgs ...string) {
	t.Helper()
	if rp := get(t, file, pod, "restartPolicy"); rp != "Never" && rp != "OnFailure" {
		t.Errorf("%s: restartPolicy %v", file, rp)
	}
	cs := get(t, file, pod, "containers").([]any)
	if len(cs) != 1 {
		t.Fatalf("%s: %d containers", file, len(cs))
	}
	c := cs[0]
	get(t, file, c, "name")
	get(t, file, c, "image")
	var args []string
	for _, a := range get(t, file, c, "args").([]any) {
		args = append(args, a.(string))
	}
	for _, w := range wantArgs {
		if !slices.Contains(args, w) {
			t.Errorf("%s: args %v lack %q", file, args, w)
		}
	}
	// Every volume mounted is declared.
	vols := map[string]bool{}
	for _, v := range get(t, file, pod, "volumes").([]any) {
		vols[get(t, file, v, "name").(string)] = true
	}
	for _, m := range get(t, file, c, "volumeMounts").([]any) {
		if !vols[get(t, file, m, "name").(string)] {
			t.Errorf("%s: volumeMount %v has no volume", file, m)
		}
		get(t, file, m, "mountPath")
	}
}

func TestKubernetesManifests(t *testing.T) {
	docs := map[string]map[string]any{}
	files, _ := filepath.Glob("../deploy/kubernetes/*.yaml")
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var doc map[string]any
		if err := yaml.UnmarshalWithOptions(data, &doc, yaml.Strict()); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		get(t, f, doc, "apiVersion")
		get(t, f, doc, "metadata", "name")
		docs[filepath.Base(f)] = doc
	}
	cm := docs["configmap.yaml"]
	if cm == nil || get(t, "configmap.yaml", cm, "kind") != "ConfigMap" {
		t.Fatal("configmap.yaml: not a ConfigMap")
	}
	if _, err := ParseJob("configmap.yaml data.job.yaml", []byte(get(t, "configmap.yaml", cm, "data", "job.yaml").(string))); err != nil {
		t.Errorf("the ConfigMap's job file: %v", err)
	}

	cj := docs["cronjob.yaml"]
	if get(t, "cronjob.yaml", cj, "kind") != "CronJob" || get(t, "cronjob.yaml", cj, "apiVersion") != "batch/v1" {
		t.Error("cronjob.yaml: not a batch/v1 CronJob")
	}
	get(t, "cronjob.yaml", cj, "spec", "schedule")
	if get(t, "cronjob.yaml", cj, "spec", "concurrencyPolicy") != "Forbid" {
		t.Error("cronjob.yaml: concurrent runs must be forbidden")
	}
	podSpecOK(t, "cronjob.yaml", get(t, "cronjob.yaml", cj, "spec", "jobTemplate", "spec", "template", "spec"), "run", "/etc/lakeproof/job.yaml")

	ij := docs["indexed-job.yaml"]
	spec := get(t, "indexed-job.yaml", ij, "spec")
	if get(t, "indexed-job.yaml", ij, "kind") != "Job" || get(t, "indexed-job.yaml", spec, "completionMode") != "Indexed" {
		t.Error("indexed-job.yaml: not an Indexed Job")
	}
	n := get(t, "indexed-job.yaml", spec, "completions")
	pod := get(t, "indexed-job.yaml", spec, "template", "spec")
	podSpecOK(t, "indexed-job.yaml", pod, "run", "--shard")
	args := get(t, "indexed-job.yaml", pod, "containers").([]any)[0].(map[string]any)["args"].([]any)
	shardArg := args[slices.Index(args, any("--shard"))+1]
	if i, cnt, err := ParseShard(shardArg.(string), func(string) string { return "0" }); err != nil || i != 0 || uint64(cnt) != n.(uint64) {
		t.Errorf("indexed-job.yaml: --shard %v does not match completions %v (%v)", shardArg, n, err)
	}

	mj := docs["merge-job.yaml"]
	podSpecOK(t, "merge-job.yaml", get(t, "merge-job.yaml", mj, "spec", "template", "spec"), "run", "--merge")
	runID := func(file string, doc any, path ...string) string {
		for _, e := range get(t, file, doc, path...).([]any)[0].(map[string]any)["env"].([]any) {
			if e.(map[string]any)["name"] == "LAKEPROOF_RUN_ID" {
				return e.(map[string]any)["value"].(string)
			}
		}
		t.Fatalf("%s: no LAKEPROOF_RUN_ID", file)
		return ""
	}
	if a, b := runID("indexed-job.yaml", pod, "containers"), runID("merge-job.yaml", get(t, "merge-job.yaml", mj, "spec", "template", "spec"), "containers"); a != b {
		t.Errorf("shards (run id %q) and merge (run id %q) disagree", a, b)
	}
}

// parseUnit reads a systemd unit file into section -> key -> values.
func parseUnit(t *testing.T, file string) map[string]map[string][]string {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]map[string][]string{}
	sec := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		l := strings.TrimSpace(sc.Text())
		switch {
		case l == "" || l[0] == '#' || l[0] == ';':
		case l[0] == '[' && l[len(l)-1] == ']':
			sec = l[1 : len(l)-1]
			out[sec] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(l, "=")
			if !ok || sec == "" {
				t.Fatalf("%s:%d: not a key=value line in a section: %q", file, n, l)
			}
			out[sec][k] = append(out[sec][k], v)
		}
	}
	return out
}

func TestSystemdUnits(t *testing.T) {
	svc := parseUnit(t, "../deploy/systemd/lakeproof-job@.service")
	if svc["Service"]["Type"][0] != "oneshot" || !strings.Contains(svc["Service"]["ExecStart"][0], "lakeproof run ") {
		t.Errorf("service: %v", svc["Service"])
	}
	tm := parseUnit(t, "../deploy/systemd/lakeproof-job@.timer")
	if len(tm["Timer"]["OnCalendar"]) == 0 || tm["Timer"]["Persistent"][0] != "true" || tm["Install"]["WantedBy"][0] != "timers.target" {
		t.Errorf("timer: %v", tm)
	}
	if u := tm["Timer"]["Unit"]; len(u) != 1 || u[0] != "lakeproof-job@%i.service" {
		t.Errorf("timer does not start the service: %v", u)
	}
}
