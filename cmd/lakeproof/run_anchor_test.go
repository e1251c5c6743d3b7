package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/lakeproof/lakeproof"
	"github.com/lakeproof/lakeproof/anchor"
	"github.com/lakeproof/lakeproof/jobs"
	"github.com/lakeproof/lakeproof/trail"
)

// TestRunJobAnchors: a job file with an anchor block anchors every version
// it publishes (receipt in the version, dataset named after the job's
// dataset); an append-only violation publishes and anchors nothing (exit
// 4, the channel does not grow); bad anchor fields are refused naming
// file, line and field.
func TestRunJobAnchors(t *testing.T) {
	dir := t.TempDir()
	gw, _ := gatewayAt(t, filepath.Join(dir, "gw"))
	wkey := filepath.Join(dir, "jobs", "writer.key")
	os.MkdirAll(filepath.Dir(wkey), 0o755)
	mustLP(t, "identity", "new", "--out", wkey, "--gateway", gw)
	var ch struct{ ChannelAddress string }
	if err := json.Unmarshal([]byte(mustLP(t, "channel", "create", "--key", wkey, "--gateway", gw, "--name", "lake",
		"--topic", "dataset:lake", "--json")), &ch); err != nil {
		t.Fatal(err)
	}
	addr := ch.ChannelAddress
	lake := filepath.Join(dir, "lake")
	for i := range 5 {
		p := filepath.Join(lake, fmt.Sprintf("d%d/part-%d.csv", i%2, i))
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte(strings.Repeat("row\n", i+1)), 0o644)
	}
	dest := filepath.Join(dir, "dest")
	jobFile := filepath.Join(dir, "jobs", "job.yaml")
	writeJob := func(text string) {
		if err := os.WriteFile(jobFile, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The key is relative to the job file's directory.
	writeJob(fmt.Sprintf("version: 1\ndefaults:\n  anchor:\n    gateway: %s\n    key: writer.key\ndatasets:\n  - name: sales\n    source: %s\n    index: %s\n    append_only: true\n    anchor:\n      channel: %s\n", gw, lake, dest, addr))

	type report struct {
		Datasets []struct {
			Index  string
			Root   lakeproof.Hash
			Anchor *struct {
				Channel string
				Entry   int64
				Receipt string
			}
		}
	}
	run := func() (report, string, int) {
		out, code := lp(t, "run", jobFile, "--json")
		var r report
		json.Unmarshal([]byte(strings.SplitN(out, "\n", 2)[0]), &r)
		return r, out, code
	}
	size := func() int64 {
		cp, err := trail.NewClient(gw).Checkpoint(context.Background(), addr)
		if err != nil {
			t.Fatal(err)
		}
		_, n, _, err := lakeproof.CheckpointBody(cp)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	var entries []int64
	for i := range 2 {
		r, out, code := run()
		if code != 0 || len(r.Datasets) != 1 || r.Datasets[0].Anchor == nil {
			t.Fatalf("run %d: exit %d\n%s", i, code, out)
		}
		d := r.Datasets[0]
		rc, err := anchor.ReceiptFor(d.Index, addr)
		if err != nil || d.Anchor.Receipt != filepath.Join(d.Index, anchor.ReceiptName(addr)) || rc.Index != d.Anchor.Entry {
			t.Fatalf("run %d: receipt %+v (%v), report %+v", i, rc, err, d.Anchor)
		}
		_, p, err := anchor.ParsePayload(rc.Entry)
		if err != nil || p.Dataset != "sales" || p.Root != d.Root {
			t.Fatalf("run %d: anchored payload %+v (%v)", i, p, err)
		}
		entries = append(entries, d.Anchor.Entry)
	}
	if entries[1] <= entries[0] {
		t.Fatalf("second version anchored at entry %d after %d", entries[1], entries[0])
	}
	before := size()
	latest, _ := jobs.Latest(dest)
	os.WriteFile(filepath.Join(lake, "d0/part-0.csv"), []byte("rewritten\n"), 0o644)
	if _, out, code := run(); code != exitAppendOnly {
		t.Fatalf("append-only violation: exit %d\n%s", code, out)
	}
	if after := size(); after != before {
		t.Fatalf("the channel grew from %d to %d entries on an append-only violation", before, after)
	}
	if now, _ := jobs.Latest(dest); now != latest {
		t.Fatalf("version %s was published on an append-only violation", now)
	}

	// An S3 destination: the version is uploaded, then anchored, and its
	// receipt uploaded beside it; nothing stays in the work directory.
	srv := s3Env(t, false)
	bucket := srv.NewBucket(t)
	writeJob(fmt.Sprintf("version: 1\ndatasets:\n  - name: sales\n    source: %s\n    index: s3://%s/idx/sales\n    anchor:\n      channel: %s\n      gateway: %s\n      key: writer.key\n", lake, bucket, addr, gw))
	work := filepath.Join(dir, "work")
	out, code := lp(t, "run", jobFile, "--json", "--work-dir", work, "--s3-endpoint", srv.Endpoint, "--s3-path-style")
	var r report
	json.Unmarshal([]byte(strings.SplitN(out, "\n", 2)[0]), &r)
	if code != 0 || len(r.Datasets) != 1 || r.Datasets[0].Anchor == nil {
		t.Fatalf("run to S3: exit %d\n%s", code, out)
	}
	d := r.Datasets[0]
	if !strings.HasPrefix(d.Index, "s3://"+bucket+"/idx/sales/") || d.Anchor.Receipt != d.Index+anchor.ReceiptName(addr) {
		t.Fatalf("run to S3: index %s, receipt %s", d.Index, d.Anchor.Receipt)
	}
	key := strings.TrimPrefix(d.Anchor.Receipt, "s3://"+bucket+"/")
	obj, err := srv.Client.GetObject(context.Background(), &s3.GetObjectInput{Bucket: &bucket, Key: &key})
	if err != nil {
		t.Fatalf("receipt on S3: %v", err)
	}
	body, _ := io.ReadAll(obj.Body)
	obj.Body.Close()
	if rc, err := anchor.ParseReceipt(body); err != nil || rc.Index != d.Anchor.Entry {
		t.Fatalf("receipt on S3: %+v %v", rc, err)
	}
	filepath.WalkDir(work, func(p string, e fs.DirEntry, err error) error {
		if err == nil && e.Type().IsRegular() && filepath.Base(p) != ".lock" {
			t.Errorf("left in the work directory: %s", p)
		}
		return nil
	})

	for _, tc := range []struct{ anchor, want string }{
		{"    anchor:\n      channel: nope\n", "job.yaml:9: datasets[0].anchor.channel: \"nope\" is not a channel address"},
		{"    anchor:\n      gateway: " + gw + "\n", "job.yaml:9: datasets[0].anchor.channel: required"},
		{"    anchor:\n      channel: " + addr + "\n      trust_gateway: xyz\n", "job.yaml:10: datasets[0].anchor.trust_gateway:"},
		{"    anchor:\n      channel: " + addr + "\n      gateway: ftp://x\n", "job.yaml:10: datasets[0].anchor.gateway:"},
	} {
		writeJob(fmt.Sprintf("version: 1\ndatasets:\n  - name: sales\n    source: %s\n    index: %s\n    append_only: true\n    workers: 1\n%s", lake, dest, tc.anchor))
		out, code := lp(t, "run", jobFile)
		if code != exitUsage || !strings.Contains(out, tc.want) {
			t.Errorf("anchor block %q: exit %d, want 2 and %q:\n%s", tc.anchor, code, tc.want, out)
		}
	}
	writeJob(fmt.Sprintf("version: 1\ndatasets:\n  - name: sales\n    source: %s\n    index: %s\n    anchor:\n      channel: %s\n", lake, dest, addr))
	if out, code := lp(t, "run", jobFile); code != exitUsage || !strings.Contains(out, "job.yaml:7: datasets[0].anchor.key: required") {
		t.Errorf("anchor without a key: exit %d\n%s", code, out)
	}
}
